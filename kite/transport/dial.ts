/**
 * Client transports: SockJS WebSocket (what Go clients use), raw WebSocket
 * (kite.js's default) and XHR polling (Go's `XHRPolling`) — spec §1.5, §1.7.
 *
 * @module
 */
import type {
  CloseInfo,
  Session,
  SessionHandler,
  TransportName,
} from "./session.ts";
import { decodeServerFrame } from "./sockjs_frames.ts";
import { TcpWebSocket } from "./websocket_client.ts";

/** Transports a client can dial with. */
export type ClientTransport = "websocket" | "raw-websocket" | "xhr-polling";

/** Options for {@linkcode dial}. */
export interface DialOptions {
  /** @default {"websocket"} */
  transport?: ClientTransport;
  /** Handshake / XHR open timeout, ms (spec §1.4 `Config.Timeout`). @default {15000} */
  timeoutMs?: number;
  /** XHR: wait this long for a poll's answer before polling again, ms. @default {15000} */
  pollTimeoutMs?: number;
  /** Largest accepted incoming frame, bytes. @default {1048576} */
  maxMessageBytes?: number;
}

const DEFAULTS = {
  timeoutMs: 15_000,
  pollTimeoutMs: 15_000,
  maxMessageBytes: 1 << 20,
};

/**
 * Parses `KITE_TRANSPORT` values as Go does (`WebSocket`, `XHRPolling`,
 * `auto`), plus `raw-websocket` and our own transport names.
 * @throws {RangeError} for anything else.
 */
export function parseTransport(value: string): ClientTransport {
  switch (value) {
    case "WebSocket":
    case "websocket":
    case "auto":
      return "websocket";
    case "XHRPolling":
    case "xhr-polling":
      return "xhr-polling";
    case "RawWebSocket":
    case "raw-websocket":
      return "raw-websocket";
  }
  throw new RangeError(
    `unknown transport ${
      JSON.stringify(value)
    }: use WebSocket, XHRPolling, auto or raw-websocket`,
  );
}

/** `server_id` 100–999 and a 20-hex-char `session_id`, as the Go client makes them (spec §1.5). */
function sessionPath(): { server: string; session: string } {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  const session = Array.from(bytes, (b) => b.toString(16).padStart(2, "0"))
    .join("");
  return { server: String(100 + Math.floor(Math.random() * 900)), session };
}

function join(...parts: string[]): string {
  return "/" + parts.join("/").split("/").filter(Boolean).join("/");
}

/** Dials a kite URL such as `http://127.0.0.1:3636/kite`; resolves once the session can send. */
export function dial(
  url: string,
  handler: SessionHandler,
  options: DialOptions = {},
): Promise<Session> {
  const o = { ...DEFAULTS, ...options };
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.reject(
      new TypeError(`invalid kite URL ${JSON.stringify(url)}`),
    );
  }
  const transport = o.transport ?? "websocket";
  if (transport === "xhr-polling") {
    return XhrPollingSession.open(url, handler, o);
  }
  const ws = new URL(target);
  ws.protocol = target.protocol === "https:" ? "wss:" : "ws:";
  const { server, session } = sessionPath();
  if (transport === "websocket") {
    ws.pathname = join(target.pathname, server, session, "websocket");
  }
  return WebSocketSession.open(ws.href, url, handler, {
    framed: transport === "websocket",
    id: transport === "websocket" ? session : crypto.randomUUID(),
    ...o,
  });
}

/** A SockJS-framed or raw WebSocket client session. */
class WebSocketSession implements Session {
  readonly transport: TransportName;
  readonly id: string;
  readonly remoteAddr: string;
  readonly #ws: TcpWebSocket;
  readonly #handler: SessionHandler;
  readonly #framed: boolean;
  #closed = false;

  private constructor(
    ws: TcpWebSocket,
    handler: SessionHandler,
    o: { framed: boolean; id: string },
    remoteAddr: string,
  ) {
    this.#ws = ws;
    this.#handler = handler;
    this.#framed = o.framed;
    this.transport = o.framed ? "websocket" : "raw-websocket";
    this.id = o.id;
    this.remoteAddr = remoteAddr;
  }

  static async open(
    wsURL: string,
    kiteURL: string,
    handler: SessionHandler,
    o: {
      framed: boolean;
      id: string;
      timeoutMs: number;
      maxMessageBytes: number;
    },
  ): Promise<Session> {
    const url = new URL(wsURL);
    const origin = new URL(kiteURL);
    let ws: TcpWebSocket;
    try {
      ws = await TcpWebSocket.connect(url, {
        timeoutMs: o.timeoutMs,
        maxMessageBytes: o.maxMessageBytes,
        // Go clients send Origin: <scheme>://<host> (spec §1.5 step 5).
        origin: o.framed ? `${origin.protocol}//${origin.host}` : undefined,
      });
    } catch (err) {
      throw new Error(`cannot dial ${kiteURL}: ${(err as Error).message}`);
    }
    const session = new WebSocketSession(ws, handler, o, url.host);
    ws.start({
      onText: (text) => session.#receive(text),
      onClose: (code, reason) =>
        session.#finish({ code, reason: reason || "connection closed" }),
    });
    return session;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(message: string): void {
    if (this.#closed) throw new Error("session is closed");
    // SockJS clients send a JSON array of strings (spec §12 #2).
    this.#ws.send(this.#framed ? JSON.stringify([message]) : message);
  }

  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    this.#finish({ code, reason });
    this.#ws.close(
      code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000,
      reason,
    );
  }

  #finish(info: CloseInfo): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler.onClose(info);
  }

  #receive(data: string): void {
    if (this.#closed) return;
    if (!this.#framed) return this.#handler.onMessage(data);
    let frame;
    try {
      frame = decodeServerFrame(data);
    } catch (err) {
      return this.close(
        4002,
        `invalid SockJS frame: ${(err as Error).message}`,
      );
    }
    switch (frame.type) {
      case "messages":
        for (const m of frame.messages) {
          if (this.#closed) return;
          this.#handler.onMessage(m);
        }
        return;
      case "close":
        this.#finish({ code: frame.code, reason: frame.reason });
        this.#ws.close();
        return;
    }
  }
}

/** Go's `XHRPolling` client session (spec §1.5). */
class XhrPollingSession implements Session {
  readonly transport: TransportName = "xhr-polling";
  readonly id: string;
  readonly remoteAddr: string;
  readonly #base: string;
  readonly #handler: SessionHandler;
  readonly #o: typeof DEFAULTS;
  readonly #queue: string[] = [];
  #sending = false;
  #closed = false;
  #poll: AbortController | undefined;

  private constructor(
    base: string,
    id: string,
    handler: SessionHandler,
    o: typeof DEFAULTS,
  ) {
    this.#base = base;
    this.id = id;
    this.#handler = handler;
    this.#o = o;
    this.remoteAddr = new URL(base).host;
  }

  static async open(
    kiteURL: string,
    handler: SessionHandler,
    o: typeof DEFAULTS,
  ): Promise<Session> {
    const { server, session } = sessionPath();
    const base = `${kiteURL.replace(/\/+$/, "")}/${server}/${session}`;
    let res: Response;
    try {
      res = await fetch(`${base}/xhr`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        signal: AbortSignal.timeout(o.timeoutMs),
      });
    } catch (err) {
      throw new Error(`cannot dial ${kiteURL}: ${(err as Error).message}`);
    }
    const text = await res.text().catch(() => "");
    if (res.status !== 200 || !text.startsWith("o")) {
      throw new Error(
        `cannot dial ${kiteURL}: xhr open answered ${res.status} ${
          JSON.stringify(text.slice(0, 60))
        }`,
      );
    }
    const s = new XhrPollingSession(base, session, handler, o);
    void s.#pollLoop();
    return s;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(message: string): void {
    if (this.#closed) throw new Error("session is closed");
    this.#queue.push(message);
    if (!this.#sending) void this.#flush();
  }

  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    // Dropping the poll in flight ends the session on the server (spec §1.5 step 5).
    this.#finish({ code, reason });
  }

  #finish(info: CloseInfo): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#poll?.abort();
    this.#handler.onClose(info);
  }

  async #flush(): Promise<void> {
    this.#sending = true;
    while (this.#queue.length > 0 && !this.#closed) {
      const batch = this.#queue.splice(0);
      try {
        const res = await fetch(`${this.#base}/xhr_send`, {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: JSON.stringify(batch),
          signal: AbortSignal.timeout(this.#o.timeoutMs),
        });
        await res.body?.cancel();
        if (res.status === 404) {
          return this.#finish({
            code: 1006,
            reason: "session closed by server",
          });
        }
        if (res.status !== 200 && res.status !== 204) {
          return this.#finish({
            code: 1006,
            reason: `xhr_send answered ${res.status}`,
          });
        }
      } catch (err) {
        return this.#finish({
          code: 1006,
          reason: `xhr_send failed: ${(err as Error).message}`,
        });
      }
    }
    this.#sending = false;
  }

  async #pollLoop(): Promise<void> {
    while (!this.#closed) {
      const ctrl = new AbortController();
      this.#poll = ctrl;
      const timer = setTimeout(
        () => ctrl.abort(new Error("poll timeout")),
        this.#o.pollTimeoutMs,
      );
      let text: string;
      try {
        const res = await fetch(`${this.#base}/xhr`, {
          method: "POST",
          signal: ctrl.signal,
        });
        text = await res.text();
        if (res.status === 404) {
          return this.#finish({
            code: 1006,
            reason: "session closed by server",
          });
        }
        if (res.status !== 200) {
          return this.#finish({
            code: 1006,
            reason: `poll answered ${res.status}`,
          });
        }
      } catch (err) {
        if (this.#closed) return;
        if (ctrl.signal.aborted) continue; // no first byte in time: poll again (spec §1.5)
        return this.#finish({
          code: 1006,
          reason: `poll failed: ${(err as Error).message}`,
        });
      } finally {
        clearTimeout(timer);
      }
      if (text.length > this.#o.maxMessageBytes) {
        return this.close(
          4009,
          `Message too big: limit is ${this.#o.maxMessageBytes} bytes`,
        );
      }
      for (const line of text.split("\n")) {
        if (line === "" || this.#closed) continue;
        let frame;
        try {
          frame = decodeServerFrame(line);
        } catch (err) {
          return this.close(
            4002,
            `invalid SockJS frame: ${(err as Error).message}`,
          );
        }
        if (frame.type === "messages") {
          for (const m of frame.messages) {
            !this.#closed && this.#handler.onMessage(m);
          }
        } else if (frame.type === "close") {
          return this.#finish({ code: frame.code, reason: frame.reason });
        }
      }
    }
  }
}
