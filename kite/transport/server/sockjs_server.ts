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

import { type Clock, systemClock } from "../../clock.ts";
import type { CloseInfo, Session, SessionHandler } from "../session.ts";
import { decodeClientFrame } from "../sockjs_frames.ts";
import { Heartbeats, type SessionHost } from "./sockjs_session.ts";
import { AddressQuota, peerOf } from "./address_quota.ts";
import { declaresTooBig, readBoundedBody } from "./http_body.ts";
import { tooBig, WebSocketSession } from "./sockjs_websocket.ts";
import {
  EVENTSOURCE_FRAMING,
  XHR_STREAM_FRAMING,
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
  /**
   * Connections one peer (an IPv4 address, an IPv6 /64) may hold at once,
   * counted like `maxConnections`; past it its new ones get `503`.
   * @default {1000}
   */
  maxConnectionsPerAddress?: number;
  /** XHR sessions one peer may hold at once; past it `503`. @default {100} */
  maxXhrSessionsPerAddress?: number;
  /**
   * A session that has sent no message this long after it opened is
   * closed with code 4001; 0 never closes one. @default {300000}
   */
  idleSessionMs?: number;
  /**
   * An `xhr_send` body not complete after this long is answered `408`;
   * 0 waits forever. @default {15000}
   */
  bodyTimeoutMs?: number;
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
  readonly maxConnectionsPerAddress: number;
  readonly maxXhrSessionsPerAddress: number;
  readonly idleSessionMs: number;
  readonly bodyTimeoutMs: number;
} = {
  prefix: "/kite",
  heartbeatMs: 10_000,
  disconnectDelayMs: 10_000,
  responseLimit: 131_072,
  maxMessageBytes: 1_048_576,
  maxSessions: 10_000,
  maxConnections: 10_000,
  maxBufferedBytes: 16_777_216,
  maxConnectionsPerAddress: 1_000,
  maxXhrSessionsPerAddress: 100,
  idleSessionMs: 300_000,
  bodyTimeoutMs: 15_000,
};

// `{server}` and `{session}` are `[^/.]+` (docs/protocol.md §1.2).
const SESSION_ROUTE =
  /^\/[^/.]+\/([^/.]+)\/(websocket|xhr|xhr_send|xhr_streaming|eventsource|jsonp|jsonp_send)$/;
const NO_CACHE = "no-store, no-cache, must-revalidate, max-age=0";
const ONE_YEAR_S = 365 * 24 * 60 * 60;
const JS_TYPE = "application/javascript; charset=UTF-8";
const EVENT_STREAM_TYPE = "text/event-stream; charset=UTF-8";
/** What a `jsonp` callback name may hold (sockjs-node's rule). */
const JSONP_CALLBACK = /^[a-zA-Z0-9_.-]+$/;
const decoder = new TextDecoder();

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
  #bodyTimeoutMs: number;
  /** Connections per peer (WebSockets until their socket closed, XHR sessions). */
  #peerConnections: AddressQuota;
  #peerXhr: AddressQuota;
  /** Sessions that have not sent a message yet, checked once when their time is up. */
  #silent = new Map<Session, SilenceCheck>();
  #idleWatch: Heartbeats | undefined;
  #idleReason: CloseInfo;
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
    this.#peerConnections = new AddressQuota(
      num("maxConnectionsPerAddress", 1),
    );
    this.#peerXhr = new AddressQuota(num("maxXhrSessionsPerAddress", 1));
    const idleSessionMs = num("idleSessionMs", 0);
    this.#idleReason = idleTooLong(idleSessionMs);
    this.#bodyTimeoutMs = num("bodyTimeoutMs", 0);
    this.#onSession = options.onSession;
    const onError = options.onError ?? logHandlerError;
    const live = this.#live;
    const clock = options.clock ?? systemClock;
    if (idleSessionMs > 0) {
      this.#idleWatch = new Heartbeats(clock, idleSessionMs);
    }
    this.#host = {
      clock,
      heartbeatMs,
      heartbeats: new Heartbeats(clock, heartbeatMs),
      maxMessageBytes,
      maxBufferedBytes,
      onError,
      ended: (session) => {
        live.delete(session);
        this.#heard(session);
      },
      heard: (session) => this.#heard(session),
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

  /** Connections (as counted for `maxConnections`) that `addr`'s peer holds. */
  connectionsOf(addr: Deno.Addr | undefined): number {
    return this.#peerConnections.heldBy(peerOf(addr));
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
    // Judged before anything else; xhr_send also closes its session.
    const limit = this.#host.maxMessageBytes;
    if (match?.[2] !== "xhr_send" && declaresTooBig(request, limit)) {
      const headers = new Headers({ Connection: "close" });
      return textError(headers, 413, tooBig(limit).reason);
    }
    if (match) {
      const [, id, route] = match;
      const remote = info?.remoteAddr;
      if (route === "websocket") {
        if (method !== "GET") return notAllowed("GET");
        return this.#webSocket(request, remote, true, id);
      }
      if (route === "jsonp") {
        if (method !== "GET") return notAllowed("GET");
        const callback = new URL(request.url).searchParams.get("c");
        const headers = corsHeaders(request);
        headers.set("Cache-Control", NO_CACHE);
        if (!callback) {
          return textError(headers, 500, '"callback" parameter required');
        }
        // The name is written into a script: only what a JS path can hold.
        if (!JSONP_CALLBACK.test(callback)) {
          return textError(headers, 500, 'invalid "callback" parameter');
        }
        return this.#xhrReceive(request, remote, id, "jsonp-polling", callback);
      }
      if (route === "jsonp_send") {
        if (method !== "POST") return notAllowed("POST");
        return this.#xhrSend(request, id, true);
      }
      if (route === "eventsource") {
        if (method !== "GET") return notAllowed("GET");
        return this.#xhrReceive(request, remote, id, "eventsource");
      }
      if (method === "OPTIONS") return corsOptions(request, "OPTIONS, POST");
      if (method !== "POST") return notAllowed("POST, OPTIONS");
      if (route === "xhr_send") return this.#xhrSend(request, id);
      return this.#xhrReceive(
        request,
        remote,
        id,
        route === "xhr" ? "xhr-polling" : "xhr-streaming",
      );
    }
    if (rest === "/info") {
      if (method === "GET") return infoResponse(request);
      if (method === "OPTIONS") return corsOptions(request, "OPTIONS, GET");
      return notAllowed("OPTIONS, GET");
    }
    // kite.js's raw client dials the kite URL as given (docs/protocol.md §1.7).
    if (method === "GET" && isWebSocketUpgrade(request)) {
      return this.#webSocket(
        request,
        info?.remoteAddr,
        false,
        crypto.randomUUID(),
      );
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
    for (const check of this.#silent.values()) this.#idleWatch?.delete(check);
    this.#silent.clear();
  }

  /** The session sent its first message or ended: it is not idle. */
  #heard(session: Session): void {
    const check = this.#silent.get(session);
    if (!check) return;
    this.#silent.delete(session);
    this.#idleWatch!.delete(check);
  }

  /** Starts the idle check of a new session (a no-op when turned off). */
  #watchSilence(session: Session): void {
    const watch = this.#idleWatch;
    if (!watch) return;
    const check = new SilenceCheck(session, this.#silent, this.#idleReason);
    this.#silent.set(session, check);
    watch.add(check);
  }

  #webSocket(
    request: Request,
    remote: Deno.Addr | undefined,
    framed: boolean,
    id: string,
  ): Response {
    if (this.#closed) return unavailable(new Headers(), "Server closed");
    if (this.connectionCount >= this.#maxConnections) {
      return unavailable(new Headers(), this.#tooManyConnections());
    }
    const peer = peerOf(remote);
    if (this.#peerConnections.heldBy(peer) >= this.#peerConnections.limit) {
      return unavailable(new Headers(), this.#tooManyFromPeer(peer));
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
    this.#peerConnections.take(peer);
    upgrade.socket.addEventListener("close", () => {
      this.#openSockets--;
      this.#peerConnections.release(peer);
    });
    const session = new WebSocketSession(this.#host, upgrade.socket, {
      framed,
      id,
      remoteAddr: formatAddr(remote),
      onSession: this.#onSession,
    });
    this.#live.add(session);
    this.#watchSilence(session);
    return upgrade.response;
  }

  #xhrReceive(
    request: Request,
    remote: Deno.Addr | undefined,
    id: string,
    transport:
      | "xhr-polling"
      | "xhr-streaming"
      | "eventsource"
      | "jsonp-polling",
    callback?: string,
  ): Response | Promise<Response> {
    const polling = transport === "xhr-polling" ||
      transport === "jsonp-polling";
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
      const peer = peerOf(remote);
      if (this.#peerXhr.heldBy(peer) >= this.#peerXhr.limit) {
        return unavailable(
          headers,
          `Too many sessions from ${
            peer || "this address"
          }: limit is ${this.#peerXhr.limit} XHR sessions per address (maxXhrSessionsPerAddress)`,
        );
      }
      if (this.#peerConnections.heldBy(peer) >= this.#peerConnections.limit) {
        return unavailable(headers, this.#tooManyFromPeer(peer));
      }
      this.#peerXhr.take(peer);
      this.#peerConnections.take(peer);
      session = new XhrSession(this.#host, {
        transport,
        id,
        remoteAddr: formatAddr(remote),
        disconnectDelayMs: this.#disconnectDelayMs,
        remove: (s) => {
          if (this.#xhr.get(s.id) !== s) return;
          this.#xhr.delete(s.id);
          this.#peerXhr.release(peer);
          this.#peerConnections.release(peer);
        },
      });
      this.#xhr.set(id, session);
      this.#live.add(session);
      this.#watchSilence(session);
      session.start(this.#onSession);
    }
    headers.set(
      "Content-Type",
      transport === "eventsource" ? EVENT_STREAM_TYPE : JS_TYPE,
    );
    if (polling) {
      const receiver = new XhrPollReceiver(
        headers,
        callback === undefined ? undefined : (frame) =>
          // `/**/` keeps a callback name from being read as something else
          // at the start of a script (Rosetta Flash).
          `/**/${callback}(${JSON.stringify(frame)});\r\n`,
      );
      session.attach(receiver);
      if (!receiver.done) {
        const attached = session;
        receiver.watch(request.signal, () => attached.interrupted(receiver));
      }
      return receiver.response;
    }
    const receiver = new XhrStreamReceiver(
      this.#responseLimit,
      transport === "eventsource" ? EVENTSOURCE_FRAMING : XHR_STREAM_FRAMING,
    );
    const attached = session;
    receiver.onInterrupt = () => attached.interrupted(receiver);
    session.attach(receiver);
    return new Response(receiver.body, { headers });
  }

  #tooManyConnections(): string {
    return `Too many connections: limit is ${this.#maxConnections}`;
  }

  #tooManyFromPeer(peer: string): string {
    return `Too many connections from ${
      peer || "this address"
    }: limit is ${this.#peerConnections.limit} per address (maxConnectionsPerAddress)`;
  }

  #slowBody(): string {
    return `Request body not complete within ${this.#bodyTimeoutMs} ms`;
  }

  async #xhrSend(
    request: Request,
    id: string,
    jsonp = false,
  ): Promise<Response> {
    const headers = corsHeaders(request);
    headers.set("Cache-Control", NO_CACHE);
    const limit = this.#host.maxMessageBytes;
    const read = await readBoundedBody(request, {
      limit,
      timeoutMs: this.#bodyTimeoutMs,
    });
    // Like sockjs-go, the body is judged before the session is looked up.
    if (!read.ok) {
      if (read.refusal === "timeout") {
        headers.set("Connection", "close");
        return textError(headers, 408, this.#slowBody());
      }
      const info = tooBig(limit);
      this.#xhr.get(id)?.close(info.code, info.reason);
      headers.set("Connection", "close");
      return textError(headers, 413, info.reason);
    }
    let body = decoder.decode(read.bytes);
    // jsonp_send comes from a form post (`d=<frame>`) or as plain text.
    if (
      jsonp && request.headers.get("content-type")?.startsWith(
        "application/x-www-form-urlencoded",
      )
    ) body = new URLSearchParams(body).get("d") ?? "";
    if (body.trim() === "") {
      return textError(headers, 500, "Payload expected.");
    }
    const messages = decodeClientFrame(body);
    if (!messages) return textError(headers, 500, "Broken JSON encoding.");
    const session = this.#xhr.get(id);
    if (!session) return notFound(headers);
    session.receive(messages);
    headers.set("Content-Type", "text/plain; charset=UTF-8");
    if (jsonp) return new Response("ok", { status: 200, headers });
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

/**
 * Closes a session that has sent nothing by the time it is checked (once:
 * `beat` returns false, so {@linkcode Heartbeats} drops it either way).
 */
class SilenceCheck {
  constructor(
    readonly session: Session,
    readonly silent: Map<Session, SilenceCheck>,
    readonly reason: CloseInfo,
  ) {}

  beat(): boolean {
    this.silent.delete(this.session);
    if (!this.session.closed) {
      this.session.close(this.reason.code, this.reason.reason);
    }
    return false;
  }
}

/** The close reason of a session that sent nothing within `ms`. */
export function idleTooLong(ms: number): CloseInfo {
  return {
    code: 4001,
    reason: `Idle session: no message within ${ms} ms of opening`,
  };
}
