/**
 * The SockJS server transport: what a Go kite's sockjs-go handler serves
 * under `/kite` (docs/protocol.md §1.2–1.4), plus the raw WebSocket that kite.js clients
 * dial (docs/protocol.md §1.7). It hands whole message strings to the layer above
 * through {@linkcode Session} and knows nothing of dnode.
 *
 * @example
 * ```ts ignore
 * import { SockJsServer } from "./sockjs_server.ts";
 *
 * const sockjs = new SockJsServer({
 *   onSession: (session) => ({
 *     onMessage: (message) => session.send(message), // echo
 *     onClose: (info) => console.log("closed", info.code, info.reason),
 *   }),
 * });
 * Deno.serve((request, info) =>
 *   sockjs.handle(request, info) ?? new Response("not found", { status: 404 })
 * );
 * ```
 *
 * @module
 */

import { type Clock, systemClock } from "../clock.ts";
import type { Session, SessionHandler } from "./session.ts";
import { decodeClientFrame } from "./sockjs_frames.ts";
import { Heartbeats, type SessionHost } from "./sockjs_session.ts";
import { tooBig, WebSocketSession } from "./sockjs_websocket.ts";
import {
  XhrPollReceiver,
  XhrSession,
  XhrStreamReceiver,
} from "./sockjs_xhr.ts";

/** Options for {@linkcode SockJsServer}. */
export interface SockJsServerOptions {
  /** Path the SockJS routes live under. @default {"/kite"} */
  prefix?: string;
  /** Interval of `h` frames; 0 turns them off. @default {10000} */
  heartbeatMs?: number;
  /** How long an XHR session lives with no request attached. @default {10000} */
  disconnectDelayMs?: number;
  /** Frame bytes after which an `xhr_streaming` response ends. @default {131072} */
  responseLimit?: number;
  /**
   * Largest accepted incoming WebSocket message or `xhr_send` body, in
   * bytes. A bigger one closes the session with code 4009.
   * @default {1048576}
   */
  maxMessageBytes?: number;
  /** Cap on XHR sessions; past it new ones get `503`. @default {10000} */
  maxSessions?: number;
  /**
   * Cap on connections over every transport (open WebSockets, closing ones
   * included, plus XHR sessions); past it new ones get `503`.
   * @default {10000}
   */
  maxConnections?: number;
  /**
   * Unread outgoing data per session (queued messages plus the WebSocket's
   * `bufferedAmount`) past which the session is closed with code 4008.
   * @default {16777216}
   */
  maxBufferedBytes?: number;
  /** Source of timers. @default {systemClock} */
  clock?: Clock;
  /**
   * Called synchronously for each new session, before any message is
   * delivered; returns the handler for its messages.
   */
  onSession(session: Session): SessionHandler;
  /**
   * Called when a handler throws. The session stays open.
   * @default {logs to console.error}
   */
  onError?(error: unknown, session: Session): void;
}

/** The numeric options, each checked against a lower bound. */
type NumericOption = Exclude<keyof typeof SOCKJS_SERVER_DEFAULTS, "prefix">;

/** The defaults of {@linkcode SockJsServerOptions} (kite values, docs/protocol.md §1.4). */
export const SOCKJS_SERVER_DEFAULTS: {
  readonly prefix: string;
  readonly heartbeatMs: number;
  readonly disconnectDelayMs: number;
  readonly responseLimit: number;
  readonly maxMessageBytes: number;
  readonly maxSessions: number;
  readonly maxConnections: number;
  readonly maxBufferedBytes: number;
} = {
  prefix: "/kite",
  heartbeatMs: 10_000,
  disconnectDelayMs: 10_000,
  responseLimit: 131_072,
  maxMessageBytes: 1_048_576,
  maxSessions: 10_000,
  maxConnections: 10_000,
  maxBufferedBytes: 16_777_216,
};

// `{server}` and `{session}` are `[^/.]+` (docs/protocol.md §1.2).
const SESSION_ROUTE =
  /^\/[^/.]+\/([^/.]+)\/(websocket|xhr|xhr_send|xhr_streaming)$/;
const NO_CACHE = "no-store, no-cache, must-revalidate, max-age=0";
const ONE_YEAR_S = 365 * 24 * 60 * 60;
const JS_TYPE = "application/javascript; charset=UTF-8";
const TOO_BIG = Symbol("too big");

/**
 * Serves SockJS (WebSocket, xhr polling, xhr streaming) and raw WebSocket
 * under a prefix. `handle` fits `Deno.serve`; it answers `undefined` for
 * paths outside the prefix so that other routes can share the server.
 */
export class SockJsServer {
  #prefix: string;
  #responseLimit: number;
  #maxSessions: number;
  #maxConnections: number;
  #disconnectDelayMs: number;
  #onSession: (session: Session) => SessionHandler;
  #host: SessionHost;
  #live = new Set<Session>();
  #xhr = new Map<string, XhrSession>();
  /** WebSockets not closed yet, including sessions closed on a peer that never reads. */
  #openSockets = 0;
  #closed = false;

  /** Checks the options; nothing is served until `handle` is called. */
  constructor(options: SockJsServerOptions) {
    if (typeof options?.onSession !== "function") {
      throw new TypeError("SockJsServer: onSession must be a function");
    }
    const d = SOCKJS_SERVER_DEFAULTS;
    const num = (name: NumericOption, min: number): number =>
      checkNumber(name, options[name] ?? d[name], min);
    this.#prefix = checkPrefix(options.prefix ?? d.prefix);
    const heartbeatMs = num("heartbeatMs", 0);
    this.#disconnectDelayMs = num("disconnectDelayMs", 0);
    this.#responseLimit = num("responseLimit", 1);
    const maxMessageBytes = num("maxMessageBytes", 1);
    this.#maxSessions = num("maxSessions", 1);
    this.#maxConnections = num("maxConnections", 1);
    const maxBufferedBytes = num("maxBufferedBytes", 1);
    this.#onSession = options.onSession;
    const onError = options.onError ?? logHandlerError;
    const live = this.#live;
    const clock = options.clock ?? systemClock;
    this.#host = {
      clock,
      heartbeatMs,
      heartbeats: new Heartbeats(clock, heartbeatMs),
      maxMessageBytes,
      maxBufferedBytes,
      onError,
      ended: (session) => live.delete(session),
    };
  }

  /** Number of sessions not yet closed, over every transport. */
  get sessionCount(): number {
    return this.#live.size;
  }

  /**
   * Connections counted against `maxConnections`: WebSockets until their
   * socket has closed, XHR sessions until they are forgotten.
   */
  get connectionCount(): number {
    return this.#openSockets + this.#xhr.size;
  }

  /**
   * Handles a request under the prefix.
   * @returns the response, or `undefined` when the path is not under the
   * prefix.
   */
  handle(
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> | Response | undefined {
    const path = new URL(request.url).pathname;
    const prefix = this.#prefix;
    let rest: string;
    if (path === prefix) rest = "";
    else if (path.startsWith(prefix + "/")) rest = path.slice(prefix.length);
    else return undefined;

    const method = request.method;
    const match = SESSION_ROUTE.exec(rest);
    if (match) {
      const [, id, route] = match;
      const remoteAddr = formatAddr(info?.remoteAddr);
      if (route === "websocket") {
        if (method !== "GET") return notAllowed("GET");
        return this.#webSocket(request, remoteAddr, true, id);
      }
      if (method === "OPTIONS") return corsOptions(request, "OPTIONS, POST");
      if (method !== "POST") return notAllowed("POST, OPTIONS");
      if (route === "xhr_send") return this.#xhrSend(request, id);
      return this.#xhrReceive(request, remoteAddr, id, route === "xhr");
    }
    if (rest === "/info") {
      if (method === "GET") return infoResponse(request);
      if (method === "OPTIONS") return corsOptions(request, "OPTIONS, GET");
      return notAllowed("OPTIONS, GET");
    }
    // kite.js's raw client dials the kite URL as given (docs/protocol.md §1.7).
    if (method === "GET" && isWebSocketUpgrade(request)) {
      const remoteAddr = formatAddr(info?.remoteAddr);
      return this.#webSocket(request, remoteAddr, false, crypto.randomUUID());
    }
    if (rest === "" || rest === "/") {
      if (method !== "GET") return notAllowed("GET");
      return new Response("Welcome to SockJS!\n", {
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
      });
    }
    if (rest === "/websocket") {
      return method === "GET" ? badUpgrade() : notAllowed("GET");
    }
    return notFound(new Headers());
  }

  /** Closes every live session (sending `c[3000,"Go away!"]`) and stops timers. */
  close(): void {
    this.#closed = true;
    for (const session of [...this.#live]) session.close();
    for (const session of this.#xhr.values()) session.dispose();
    this.#xhr.clear();
  }

  #webSocket(
    request: Request,
    remoteAddr: string,
    framed: boolean,
    id: string,
  ): Response {
    if (this.#closed) return unavailable(new Headers(), "Server closed");
    if (this.connectionCount >= this.#maxConnections) {
      return unavailable(new Headers(), this.#tooManyConnections());
    }
    // Deno upgrades any version; gorilla (sockjs-go) insists on 13.
    const version = request.headers.get("sec-websocket-version");
    if (version !== null && version.trim() !== "13") {
      return textError(
        new Headers({ "Sec-WebSocket-Version": "13" }),
        400,
        "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header",
      );
    }
    let upgrade: { socket: WebSocket; response: Response };
    try {
      // Deno negotiates no extension, so kite.js's permessage-deflate offer
      // is declined (docs/protocol.md §1.7).
      upgrade = Deno.upgradeWebSocket(request);
    } catch {
      return badUpgrade();
    }
    this.#openSockets++;
    upgrade.socket.addEventListener("close", () => this.#openSockets--);
    const session = new WebSocketSession(this.#host, upgrade.socket, {
      framed,
      id,
      remoteAddr,
      onSession: this.#onSession,
    });
    this.#live.add(session);
    return upgrade.response;
  }

  #xhrReceive(
    request: Request,
    remoteAddr: string,
    id: string,
    polling: boolean,
  ): Response | Promise<Response> {
    const headers = corsHeaders(request);
    headers.set("Cache-Control", NO_CACHE);
    let session = this.#xhr.get(id);
    if (!session) {
      if (this.#closed) return unavailable(headers, "Server closed");
      if (this.#xhr.size >= this.#maxSessions) {
        return unavailable(
          headers,
          `Too many sessions: limit is ${this.#maxSessions} XHR sessions`,
        );
      }
      if (this.connectionCount >= this.#maxConnections) {
        return unavailable(headers, this.#tooManyConnections());
      }
      session = new XhrSession(this.#host, {
        transport: polling ? "xhr-polling" : "xhr-streaming",
        id,
        remoteAddr,
        disconnectDelayMs: this.#disconnectDelayMs,
        remove: (s) => {
          if (this.#xhr.get(s.id) === s) this.#xhr.delete(s.id);
        },
      });
      this.#xhr.set(id, session);
      this.#live.add(session);
      session.start(this.#onSession);
    }
    headers.set("Content-Type", JS_TYPE);
    if (polling) {
      const receiver = new XhrPollReceiver(headers);
      session.attach(receiver);
      if (!receiver.done) {
        const attached = session;
        receiver.watch(request.signal, () => attached.interrupted(receiver));
      }
      return receiver.response;
    }
    const receiver = new XhrStreamReceiver(this.#responseLimit);
    const attached = session;
    receiver.onInterrupt = () => attached.interrupted(receiver);
    session.attach(receiver);
    return new Response(receiver.body, { headers });
  }

  #tooManyConnections(): string {
    return `Too many connections: limit is ${this.#maxConnections}`;
  }

  async #xhrSend(request: Request, id: string): Promise<Response> {
    const headers = corsHeaders(request);
    headers.set("Cache-Control", NO_CACHE);
    const limit = this.#host.maxMessageBytes;
    const body = await readBody(request, limit);
    // Like sockjs-go, the body is judged before the session is looked up.
    if (body === TOO_BIG) {
      const info = tooBig(limit);
      this.#xhr.get(id)?.close(info.code, info.reason);
      return textError(headers, 413, info.reason);
    }
    if (body.trim() === "") {
      return textError(headers, 500, "Payload expected.");
    }
    const messages = decodeClientFrame(body);
    if (!messages) return textError(headers, 500, "Broken JSON encoding.");
    const session = this.#xhr.get(id);
    if (!session) return notFound(headers);
    session.receive(messages);
    headers.set("Content-Type", "text/plain; charset=UTF-8");
    return new Response(null, { status: 204, headers });
  }
}

function checkPrefix(prefix: string): string {
  if (typeof prefix !== "string" || (prefix !== "" && prefix[0] !== "/")) {
    throw new TypeError(
      `SockJsServer: prefix must be "" or start with "/", got ${
        JSON.stringify(prefix)
      }`,
    );
  }
  return prefix.replace(/\/+$/, "");
}

function checkNumber(name: string, value: number, min: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new RangeError(
      `SockJsServer: ${name} must be a finite number >= ${min}, got ${value}`,
    );
  }
  return value;
}

function logHandlerError(error: unknown, session: Session): void {
  console.error(
    `SockJS ${session.transport} session ${session.id}: handler threw`,
    error,
  );
}

function isWebSocketUpgrade(request: Request): boolean {
  return request.headers.get("upgrade")?.toLowerCase() === "websocket";
}

function formatAddr(addr: Deno.Addr | undefined): string {
  if (!addr || (addr.transport !== "tcp" && addr.transport !== "udp")) {
    return "";
  }
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** CORS headers of the session and info routes (sockjs-go `xhrCors`). */
function corsHeaders(request: Request): Headers {
  const headers = new Headers();
  headers.set("Access-Control-Allow-Credentials", "true");
  headers.set(
    "Access-Control-Allow-Origin",
    request.headers.get("origin") || "*",
  );
  const asked = request.headers.get("access-control-request-headers");
  if (asked && asked !== "null") {
    headers.set("Access-Control-Allow-Headers", asked);
  }
  return headers;
}

function corsOptions(request: Request, methods: string): Response {
  const headers = corsHeaders(request);
  headers.set("Access-Control-Allow-Methods", methods);
  headers.set("Access-Control-Max-Age", String(ONE_YEAR_S));
  headers.set("Cache-Control", `public, max-age=${ONE_YEAR_S}`);
  headers.set(
    "Expires",
    new Date(Date.now() + ONE_YEAR_S * 1000).toUTCString(),
  );
  return new Response(null, { status: 204, headers });
}

function infoResponse(request: Request): Response {
  const headers = corsHeaders(request);
  headers.set("Cache-Control", NO_CACHE);
  headers.set("Content-Type", "application/json; charset=UTF-8");
  const entropy = crypto.getRandomValues(new Uint32Array(1))[0] >>> 1;
  // Go key order and trailing newline (docs/protocol.md §1.2).
  return new Response(
    `{"websocket":true,"cookie_needed":false,"origins":["*:*"],"entropy":${entropy}}\n`,
    { headers },
  );
}

function notAllowed(allow: string): Response {
  return new Response(null, { status: 405, headers: { Allow: allow } });
}

function notFound(headers: Headers): Response {
  headers.set("Content-Type", "text/plain; charset=utf-8");
  headers.set("X-Content-Type-Options", "nosniff");
  return new Response("404 page not found\n", { status: 404, headers });
}

function badUpgrade(): Response {
  return textError(
    new Headers(),
    400,
    'Can "Upgrade" only to "WebSocket".',
  );
}

function unavailable(headers: Headers, reason: string): Response {
  return textError(headers, 503, reason);
}

function textError(headers: Headers, status: number, text: string): Response {
  headers.set("Content-Type", "text/plain; charset=utf-8");
  return new Response(text, { status, headers });
}

/** Reads a request body as text, refusing more than `limit` bytes. */
async function readBody(
  request: Request,
  limit: number,
): Promise<string | typeof TOO_BIG> {
  const declared = request.headers.get("content-length");
  if (declared !== null) {
    if (Number(declared) > limit) {
      await request.body?.cancel();
      return TOO_BIG;
    }
    return await request.text();
  }
  // Chunked, as sockjs-client sends it (docs/protocol.md §1.7).
  if (!request.body) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      return TOO_BIG;
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return new TextDecoder().decode(chunks[0]);
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(all);
}
