/**
 * The kite's side of a tunnel proxy (`registerToTunnel()`): a kite that
 * cannot accept connections dials the proxy's `/tunnel` endpoint once,
 * proves who it is with its kite.key, gets its public URL back, and serves
 * every caller's session arriving as a stream of that one connection as an
 * accepted session — auth, limits, metrics and methods as for any other.
 * It registers the public URL with Kontrol, and dials again (with backoff)
 * whenever the connection drops. See docs/proxy.md, "Tunnel proxy".
 *
 * @module
 */

import { Backoff, type BackoffOptions } from "./backoff.ts";
import type { Clock } from "./clock.ts";
import type { KiteConfig } from "./config.ts";
import type { FoundKite } from "./kontrol_client.ts";
import type { Logger } from "./log.ts";
import type { KiteIdentity, KontrolQuery } from "./protocol.ts";
import type {
  ConnectTextSocket,
  TextSocket,
} from "./transport/client/client_session.ts";
import type { Session, SessionHandler } from "./transport/session.ts";
import {
  HEARTBEAT,
  Mux,
  muxFailure,
  TUNNEL_GONE,
} from "./transport/tunnel/mux.ts";
import { TunnelStream } from "./transport/tunnel/stream.ts";

/** The name a tunnel proxy kite registers under (Go's `tunnelproxy`). */
export const TUNNEL_PROXY_NAME = "tunnelproxy";

/** The part of a kite a tunnel uses (a `Kite` is one). */
export interface TunnelHost {
  /** Limits (maxConnections, maxMessageBytes, timeoutMs, …) and the kite.key. */
  readonly config: KiteConfig;
  /** The identity the proxy names the public URL after. */
  readonly identity: KiteIdentity;
  /** Where the tunnel logs. */
  readonly logger: Logger;
  /** Time source of the redial backoff. */
  readonly clock: Clock;
  /** Serves one accepted session. */
  acceptSession(session: Session): SessionHandler;
  /** Finds the tunnel proxy through Kontrol. */
  getKites(query: Partial<KontrolQuery>): Promise<FoundKite[]>;
  /** Registers the public URL with Kontrol and keeps it registered. */
  registerForever(url: string): Promise<unknown>;
  /** Runs `fn` when the kite closes. */
  addCloser(fn: () => void | Promise<void>): () => void;
  /**
   * Opens the WebSocket to the proxy: `Deno.connect` in a Deno kite, the
   * browser's `WebSocket` in a page (this module touches neither).
   */
  readonly connectTunnel: ConnectTextSocket;
}

/** Options for `Kite.registerToTunnel()`. */
export interface RegisterToTunnelOptions {
  /**
   * The tunnel proxy: its kite URL (`http://host:3999/kite`) or its tunnel
   * endpoint (`ws://host:3999/tunnel`). @default {found through Kontrol:
   * name `tunnelproxy`, the kite's environment and `kontrolUser`}
   */
  url?: string;
  /**
   * How to find the proxy through Kontrol when `url` is not given.
   * @default {Go's: name `tunnelproxy`, the kite's environment, `kontrolUser`}
   */
  query?: Partial<KontrolQuery>;
  /**
   * Register the public URL with Kontrol.
   * @default {true when the kite has a Kontrol URL (its kite.key's, or `KITE_KONTROL_URL`)}
   */
  register?: boolean;
  /** Redial delays. @default {500 ms growing to 30 s} */
  backoff?: BackoffOptions;
}

/** What `Kite.registerToTunnel()` gives back. */
export interface KiteTunnel {
  /** The public URL of the current tunnel (`http://proxy/<kite id>/kite`). */
  readonly url: string;
  /** True while the tunnel connection is up. */
  readonly connected: boolean;
  /** Tunnel connections made so far (1 + reconnects). */
  readonly connects: number;
  /** Drops the current connection; the kite dials again (tests, operators). */
  reconnect(): void;
  /** Closes the tunnel for good (the kite's close does it too). */
  close(): Promise<void>;
}

/** The close code a proxy refusing a kite uses (bad kite.key, id taken). */
export const TUNNEL_REFUSED = 4003;

/** The endpoint to dial for a proxy URL (kite URL or tunnel endpoint). */
export function tunnelEndpoint(url: string): URL {
  const u = new URL(url);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (!u.pathname.endsWith("/tunnel")) {
    u.pathname = u.pathname.replace(/\/kite\/?$/, "").replace(/\/$/, "") +
      "/tunnel";
  }
  return u;
}

/** A kite's tunnel: one connection to the proxy at a time, redialed. */
export class TunnelClient implements KiteTunnel {
  readonly #host: TunnelHost;
  readonly #options: RegisterToTunnelOptions;
  readonly #backoff: Backoff;
  #socket: TextSocket | undefined;
  #url = "";
  #registered = "";
  #connects = 0;
  #closing = false;
  #wake: (() => void) | undefined;
  #running: Promise<void> = Promise.resolve();
  readonly #first = Promise.withResolvers<void>();
  readonly #removeCloser: () => void;

  private constructor(host: TunnelHost, options: RegisterToTunnelOptions) {
    this.#host = host;
    this.#options = options;
    this.#backoff = new Backoff({ maxMs: 30_000, ...options.backoff });
    this.#removeCloser = host.addCloser(() => this.close());
  }

  /**
   * Opens the tunnel and keeps it open; resolves once the first tunnel is
   * up (and its URL registered with Kontrol, unless `register: false`).
   * @throws when the proxy refuses the kite's kite.key (retrying cannot help).
   */
  static async open(
    host: TunnelHost,
    options: RegisterToTunnelOptions = {},
  ): Promise<TunnelClient> {
    const tunnel = new TunnelClient(host, options);
    tunnel.#running = tunnel.#run();
    try {
      await tunnel.#first.promise;
    } catch (err) {
      await tunnel.close();
      throw err;
    }
    return tunnel;
  }

  get url(): string {
    return this.#url;
  }

  get connected(): boolean {
    return this.#socket !== undefined;
  }

  get connects(): number {
    return this.#connects;
  }

  reconnect(): void {
    this.#socket?.close(1001, "reconnecting");
  }

  async close(): Promise<void> {
    if (this.#closing) return await this.#running;
    this.#closing = true;
    this.#removeCloser();
    this.#socket?.close(1001, "kite closing");
    this.#wake?.();
    await this.#running;
  }

  async #run(): Promise<void> {
    while (!this.#closing) {
      let problem: string;
      try {
        problem = await this.#connectOnce();
      } catch (err) {
        problem = err instanceof Error ? err.message : String(err);
        if (err instanceof TunnelRefused && this.#connects === 0) {
          this.#first.reject(err);
          return;
        }
      }
      if (this.#closing) break;
      const wait = this.#backoff.next();
      this.#host.logger.warning(
        `tunnel: ${problem}; dialing the tunnel proxy again in ${wait} ms`,
      );
      await new Promise<void>((resolve) => {
        const timer = this.#host.clock.setTimeout(resolve, wait);
        this.#wake = () => {
          this.#host.clock.clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** One tunnel connection, from dial to drop; resolves with why it ended. */
  async #connectOnce(): Promise<string> {
    const proxy = await this.#proxy();
    const endpoint = tunnelEndpoint(proxy.url);
    const config = this.#host.config;
    let socket: TextSocket;
    try {
      socket = await this.#host.connectTunnel(endpoint, {
        timeoutMs: config.timeoutMs,
        // A caller's big message closes only its stream (checked below).
        maxMessageBytes: config.maxDialedMessageBytes,
        maxBufferedBytes: config.maxBufferedBytes,
      });
    } catch (err) {
      throw new Error(
        `cannot reach the tunnel proxy at ${endpoint}: ${
          (err as Error).message
        }`,
      );
    }
    const conn = new TunnelConnection(
      this.#host,
      socket,
      endpoint.href,
      proxy.token,
    );
    const url = await conn.hello();
    if (this.#closing) {
      socket.close(1001, "kite closing");
      await conn.ended;
      return "closing";
    }
    this.#socket = socket;
    this.#connects++;
    this.#backoff.reset();
    this.#url = url;
    this.#host.logger.info(`tunnel: serving at ${url} through ${endpoint}`);
    try {
      const register = this.#options.register ??
        this.#host.config.kontrolURL !== "";
      if (register && url !== this.#registered) {
        this.#registered = url;
        const registering = this.#host.registerForever(url);
        if (this.#connects === 1) await registering;
        else registering.catch(() => {});
      }
      this.#first.resolve();
    } catch (err) {
      this.#first.reject(err);
      this.#closing = true;
      socket.close(1001, "kite closing");
    }
    const why = await conn.ended;
    this.#socket = undefined;
    return why;
  }

  /**
   * The proxy's URL: given, or a `tunnelproxy` Kontrol knows, with the
   * token Kontrol gave for it (a kite without a kite.key proves itself to
   * the proxy with that token).
   */
  async #proxy(): Promise<{ url: string; token?: string }> {
    const { config } = this.#host;
    // A page given a URL has no token for the proxy: the proxy refuses it,
    // saying to find the proxy through Kontrol.
    if (this.#options.url) return { url: this.#options.url };
    const query = this.#options.query ?? {
      name: TUNNEL_PROXY_NAME,
      environment: config.environment,
      ...(config.kontrolUser ? { username: config.kontrolUser } : {}),
    };
    const found = await this.#host.getKites(query);
    for (const f of found) {
      f.renewer.stop();
      f.client.close();
    }
    if (found.length === 0) {
      throw new Error(
        `Kontrol knows no tunnel proxy (${
          JSON.stringify(query)
        }); start one with \`deno task tunnel\` or pass registerToTunnel({ url })`,
      );
    }
    const chosen = found[Math.floor(Math.random() * found.length)];
    return { url: chosen.url, token: chosen.token };
  }
}

/** The proxy refused this kite (bad kite.key, kite id taken). */
export class TunnelRefused extends Error {
  override name = "TunnelRefused";
}

/** One connection to the proxy: the hello, then the streams. */
class TunnelConnection {
  readonly #host: TunnelHost;
  readonly #socket: TextSocket;
  readonly #endpoint: string;
  readonly #mux: Mux;
  readonly #streams = new Map<number, TunnelStream>();
  readonly #hello = Promise.withResolvers<string>();
  readonly #ended = Promise.withResolvers<string>();
  #greeted = false;
  /** A frame arrived since the watchdog last looked. */
  #heard = false;
  #done = false;
  #watchdog: number | undefined;

  /** Says hello with the kite.key, else with `token` (a page's). */
  constructor(
    host: TunnelHost,
    socket: TextSocket,
    endpoint: string,
    token: string | undefined,
  ) {
    this.#host = host;
    this.#socket = socket;
    this.#endpoint = endpoint;
    this.#hello.promise.catch(() => {});
    this.#mux = new Mux({
      onOpen: (id, transport, remoteAddr) =>
        this.#open(id, transport, remoteAddr),
      onMessage: (id, message) => this.#message(id, message),
      onClose: (id, info) => {
        const stream = this.#streams.get(id);
        this.#streams.delete(id);
        stream?.ended(info);
      },
    }, { send: (frame) => socket.send(frame) });
    socket.start({
      onText: (text) => this.#receive(text),
      onClose: (code, reason) => this.#closed(code, reason),
    });
    const identity = host.identity;
    const kiteKey = host.config.kiteKey;
    socket.send(JSON.stringify(
      kiteKey || token === undefined
        ? { kite: identity, kiteKey }
        : { kite: identity, token },
    ));
  }

  /** Resolves with the public URL the proxy answered. */
  hello(): Promise<string> {
    const timer = this.#host.clock.setTimeout(() => {
      this.#socket.close(1002, "no answer to the tunnel hello");
    }, this.#host.config.timeoutMs);
    const clear = () => this.#host.clock.clearTimeout(timer);
    this.#hello.promise.then(clear, clear);
    return this.#hello.promise;
  }

  /** Resolves with why the connection ended. */
  get ended(): Promise<string> {
    return this.#ended.promise;
  }

  #receive(text: string): void {
    this.#heard = true;
    if (!this.#greeted) {
      this.#greeted = true;
      const answer = parseHello(text);
      if (!answer) {
        this.#socket.close(1002, "bad tunnel hello answer");
        return;
      }
      if (answer.heartbeatMs > 0) this.#watch(answer.heartbeatMs);
      this.#hello.resolve(answer.url);
      return;
    }
    if (text === HEARTBEAT) return;
    try {
      this.#mux.receive(text);
    } catch (err) {
      const { code, reason } = muxFailure(err);
      this.#host.logger.error(`tunnel ${this.#endpoint}: ${reason}`);
      this.#socket.close(code, reason.slice(0, 100));
    }
  }

  /**
   * Closes a connection the proxy has been silent on for three of its
   * heartbeats (a peer gone without a FIN: a dead host, a dropped route),
   * so the kite dials again instead of waiting for TCP to give up.
   */
  #watch(heartbeatMs: number): void {
    const clock = this.#host.clock;
    const every = Math.max(heartbeatMs, 10) * 3;
    const check = () => {
      if (this.#done) return;
      if (!this.#heard) {
        this.#socket.close(
          1001,
          `no frame from the proxy in ${every} ms (heartbeats every ${heartbeatMs} ms)`,
        );
        return;
      }
      this.#heard = false;
      this.#watchdog = clock.setTimeout(check, every);
    };
    this.#heard = false;
    this.#watchdog = clock.setTimeout(check, every);
  }

  #open(id: number, transport: string, remoteAddr: string): void {
    const { maxConnections } = this.#host.config;
    if (this.#streams.size >= maxConnections) {
      this.#mux.close(id, {
        code: 4503,
        reason: `the kite serves ${maxConnections} connections already`,
      });
      return;
    }
    const stream = new TunnelStream(this.#mux, id, transport, remoteAddr);
    this.#streams.set(id, stream);
    stream.start(this.#host.acceptSession(stream));
  }

  #message(id: number, message: string): void {
    const limit = this.#host.config.maxMessageBytes;
    // Characters bound bytes from below; the UTF-8 size is checked only
    // when a message could pass the limit.
    if (
      message.length > limit ||
      (message.length * 3 > limit &&
        new TextEncoder().encode(message).length > limit)
    ) {
      this.#mux.close(id, {
        code: 4009,
        reason: `Message too big: limit is ${limit} bytes`,
      });
      return;
    }
    this.#streams.get(id)?.deliver(message);
  }

  #closed(code: number, reason: string): void {
    this.#done = true;
    if (this.#watchdog !== undefined) {
      this.#host.clock.clearTimeout(this.#watchdog);
    }
    const why = `tunnel to ${this.#endpoint} closed (${code}${
      reason ? ` ${reason}` : ""
    })`;
    // Settles the hello only if it is still waiting.
    this.#hello.reject(
      code === TUNNEL_REFUSED
        ? new TunnelRefused(
          `the tunnel proxy ${this.#endpoint} refused this kite: ${reason}`,
        )
        : new Error(why),
    );
    this.#mux.closeAll({
      code: TUNNEL_GONE,
      reason: `the kite's tunnel to its proxy dropped: ${reason || code}`,
    });
    this.#ended.resolve(why);
  }
}

/** The hello answer `{"url": "...", "heartbeatMs": n}`, or undefined. */
function parseHello(
  text: string,
): { url: string; heartbeatMs: number } | undefined {
  try {
    const answer = JSON.parse(text);
    if (typeof answer?.url !== "string") return undefined;
    const ms = answer.heartbeatMs;
    return {
      url: answer.url,
      heartbeatMs: Number.isFinite(ms) && ms > 0 ? ms : 0,
    };
  } catch {
    return undefined;
  }
}
