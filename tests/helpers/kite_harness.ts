/**
 * Helpers for the kite integration tests: quiet kites on port 0 of
 * 127.0.0.1, a raw WebSocket peer that speaks frames by hand, and bounded
 * waits (a test fails after a guard time instead of hanging).
 *
 * @module
 */
import { Kite, type KiteOptions } from "../../mod.ts";
import type { KiteConfig } from "../../kite/config.ts";
import type { Logger } from "../../kite/log.ts";
import { mathKite } from "../../examples/math/server.ts";

/** How long a test waits for something that should happen, before failing. */
export { eventually as waitFor, GUARD_MS, within } from "./wait.ts";
import { GUARD_MS, within } from "./wait.ts";

/** A logger that keeps its lines, so tests stay quiet and can read them. */
export class MemoryLogger implements Logger {
  /** Every line, as `LEVEL message`. */
  readonly lines: string[] = [];
  /** Records a debug line. */
  debug = (m: string): void => void this.lines.push(`DEBUG ${m}`);
  /** Records an info line. */
  info = (m: string): void => void this.lines.push(`INFO ${m}`);
  /** Records a warning. */
  warning = (m: string): void => void this.lines.push(`WARNING ${m}`);
  /** Records an error. */
  error = (m: string): void => void this.lines.push(`ERROR ${m}`);
}

/**
 * A kite that ignores `KITE_*` variables and any kite.key on the machine,
 * listens on 127.0.0.1 and logs into memory.
 */
export function testKite(
  name: string,
  config: Partial<KiteConfig> = {},
  options: KiteOptions = {},
): Kite {
  return new Kite(name, "1.0.0", {
    env: false,
    kiteKey: false,
    logger: new MemoryLogger(),
    ...options,
    config: { ip: "127.0.0.1", port: 0, ...config },
  });
}

/** What {@linkcode settle} saw: the value or the error. */
export type Settled =
  | { ok: true; value: unknown }
  | { ok: false; error: unknown };

/** Never rejects: turns a promise into its outcome (for calls whose failure is the point). */
export function settle(p: Promise<unknown>): Promise<Settled> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (error) => ({ ok: false as const, error }),
  );
}

/**
 * A WebSocket peer driven by hand: frames it receives are queued for
 * {@linkcode RawSocket.next}, and {@linkcode RawSocket.close} waits for the
 * close handshake so the sanitizers see nothing left open.
 */
export class RawSocket {
  /** The socket. */
  readonly socket: WebSocket;
  /** Resolves with the close event. */
  readonly closed: Promise<CloseEvent>;
  readonly #frames: string[] = [];
  #waiters: (() => void)[] = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => {
      socket.addEventListener("close", (ev) => {
        resolve(ev);
        this.#wake();
      });
    });
    socket.onmessage = (ev) => {
      this.#frames.push(String(ev.data));
      this.#wake();
    };
  }

  /** Opens a socket to `url` and waits for the handshake. */
  static async open(url: string): Promise<RawSocket> {
    const socket = new WebSocket(url);
    const raw = new RawSocket(socket);
    await within(
      new Promise<void>((resolve, reject) => {
        socket.onopen = () => resolve();
        socket.onerror = () => reject(new Error(`cannot open ${url}`));
      }),
      `WebSocket handshake with ${url}`,
    );
    return raw;
  }

  /** Opens a SockJS WebSocket session under a kite URL and consumes its `o` frame. */
  static async sockjs(kiteURL: string): Promise<RawSocket> {
    const url = kiteURL.replace(/^http/, "ws") +
      "/123/abcdefabcdefabcdefab/websocket";
    const raw = await RawSocket.open(url);
    const open = await raw.next();
    if (open !== "o") throw new Error(`expected the "o" frame, got ${open}`);
    return raw;
  }

  /** True once the socket closed. */
  get isClosed(): boolean {
    return this.socket.readyState === WebSocket.CLOSED;
  }

  /** Sends one text frame. */
  send(text: string): void {
    this.socket.send(text);
  }

  /** The next frame that is not a SockJS heartbeat; fails on close or after the guard time. */
  async next(what = "a frame"): Promise<string> {
    const deadline = Date.now() + GUARD_MS;
    for (;;) {
      const frame = this.#frames.shift();
      if (frame !== undefined) {
        if (frame === "h") continue;
        return frame;
      }
      if (this.isClosed) {
        throw new Error(`socket closed while waiting for ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`gave up waiting for ${what}`);
      await within(
        new Promise<void>((resolve) => this.#waiters.push(resolve)),
        what,
        left,
      );
    }
  }

  /** Closes (if still open) and waits for the close event. */
  async close(): Promise<void> {
    if (this.socket.readyState !== WebSocket.CLOSED) {
      if (this.socket.readyState !== WebSocket.CLOSING) this.socket.close();
      await within(this.closed, "the socket to close");
    }
  }

  #wake(): void {
    for (const fn of this.#waiters.splice(0)) fn();
  }
}

/** Sends one dnode message inside a SockJS client frame. */
export function sockjsSend(raw: RawSocket, dnode: string): void {
  raw.send(JSON.stringify([dnode]));
}

/** Parses an `a[...]` frame into its dnode messages. */
export function sockjsMessages(frame: string): Record<string, unknown>[] {
  if (!frame.startsWith("a[")) {
    throw new Error(`expected an "a" frame, got ${frame.slice(0, 120)}`);
  }
  return (JSON.parse(frame.slice(1)) as string[]).map((m) => JSON.parse(m));
}

/** A Go-shaped call to `method` with one options object and response callback id `cb`. */
export function goCall(
  method: string,
  withArgs: unknown,
  cb: number,
  authentication: unknown = null,
): string {
  return JSON.stringify({
    method,
    arguments: [{
      kite: {
        name: "kiteclient",
        username: "unknown",
        id: "942541e5-0ebd-4a1c-b2c8-3039aff227a1",
        environment: "unknown",
        region: "unknown",
        version: "1.0.0",
        hostname: "vm",
      },
      authentication,
      responseCallback: "[Function]",
      withArgs,
    }],
    callbacks: { [cb]: [0, "responseCallback"] },
  });
}

/**
 * The example math kite (`square`, `squareCb`, `echo`), quiet and on
 * 127.0.0.1, plus `fail` (a handler that throws a plain Error).
 */
export function mathTestKite(config: Partial<KiteConfig> = {}): Kite {
  const kite = mathKite({
    env: false,
    kiteKey: false,
    logger: new MemoryLogger(),
    config: { ip: "127.0.0.1", port: 0, ...config },
  });
  kite.handle("fail", () => {
    throw new Error("intentional failure");
  });
  return kite;
}
