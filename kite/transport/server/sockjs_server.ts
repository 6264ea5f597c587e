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

import { systemClock } from "../../clock.ts";
import { offersBatch } from "../batch_frames.ts";
import type { Session, SessionHandler } from "../session.ts";
import { decodeClientFrame } from "../sockjs_frames.ts";
import { Heartbeats, type SessionHost } from "./sockjs_session.ts";
import { IdleSessions } from "./idle_sessions.ts";
import { AddressQuota, peerOf } from "./address_quota.ts";
import { declaresTooBig, readBoundedBody } from "./http_body.ts";
import { tooBig, WebSocketSession } from "./sockjs_websocket.ts";
import {
  checkNumber,
  checkPrefix,
  type NumericOption,
  SOCKJS_SERVER_DEFAULTS,
  type SockJsServerOptions,
} from "./sockjs_server_options.ts";
import {
  badUpgrade,
  corsHeaders,
  corsOptions,
  DEFAULT_SOCKJS_URL,
  IFRAME_ROUTE,
  IframePage,
  infoResponse,
  NO_CACHE,
  notAllowed,
  notFound,
  setSessionCookie,
  textError,
  unavailable,
} from "./sockjs_http.ts";
import {
  EVENTSOURCE_FRAMING,
  htmlfileFraming,
  XHR_STREAM_FRAMING,
  XhrPollReceiver,
  XhrSession,
  XhrStreamReceiver,
} from "./sockjs_xhr.ts";

export { SOCKJS_SERVER_DEFAULTS, type SockJsServerOptions };
export { idleTooLong } from "./idle_sessions.ts";

// `{server}` and `{session}` are `[^/.]+` (docs/protocol.md §1.2).
const SESSION_ROUTE =
  /^\/[^/.]+\/([^/.]+)\/(websocket|xhr|xhr_send|xhr_streaming|eventsource|htmlfile|jsonp|jsonp_send)$/;
/** The transports carried by HTTP requests. */
type HttpTransport =
  | "xhr-polling"
  | "xhr-streaming"
  | "eventsource"
  | "htmlfile"
  | "jsonp-polling";
const JS_TYPE = "application/javascript; charset=UTF-8";
const CONTENT_TYPES: Record<HttpTransport, string> = {
  "xhr-polling": JS_TYPE,
  "xhr-streaming": JS_TYPE,
  "jsonp-polling": JS_TYPE,
  eventsource: "text/event-stream; charset=UTF-8",
  htmlfile: "text/html; charset=UTF-8",
};
/** What a `jsonp`/`htmlfile` callback name may hold (sockjs-node's rule). */
const JSONP_CALLBACK = /^[a-zA-Z0-9_.-]+$/;
/** Longest callback name accepted: it is written into every answer. */
const MAX_CALLBACK = 256;
const decoder = new TextDecoder();

/**
 * Serves SockJS (WebSocket, xhr polling and streaming, EventSource,
 * htmlfile, JSONP polling, the iframe page) and raw WebSocket under a
 * prefix. `handle` fits `Deno.serve`; it answers `undefined` for
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
  #idle: IdleSessions;
  #onSession: (session: Session) => SessionHandler;
  #host: SessionHost;
  #live = new Set<Session>();
  #xhr = new Map<string, XhrSession>();
  /** WebSockets not closed yet, including sessions closed on a peer that never reads. */
  #openSockets = 0;
  #closed = false;
  #websocket: boolean;
  #cookie: boolean;
  #iframe: IframePage;

  /** Checks the options; nothing is served until `handle` is called. */
  constructor(options: SockJsServerOptions) {
    if (typeof options?.onSession !== "function") {
      throw new TypeError("SockJsServer: onSession must be a function");
    }
    const d = SOCKJS_SERVER_DEFAULTS;
    const num = (name: NumericOption, min: number): number =>
      checkNumber(name, options[name] ?? d[name], min);
    this.#prefix = checkPrefix(options.prefix ?? d.prefix);
    this.#websocket = options.websocket ?? true;
    this.#cookie = options.jsessionid ?? false;
    this.#iframe = new IframePage(options.sockjsUrl ?? DEFAULT_SOCKJS_URL);
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
    this.#bodyTimeoutMs = num("bodyTimeoutMs", 0);
    this.#onSession = options.onSession;
    const onError = options.onError ?? logHandlerError;
    const live = this.#live;
    const clock = options.clock ?? systemClock;
    const idle = this.#idle = new IdleSessions(clock, idleSessionMs);
    this.#host = {
      clock,
      heartbeatMs,
      heartbeats: new Heartbeats(clock, heartbeatMs),
      maxMessageBytes,
      maxBufferedBytes,
      closing: () => this.#closed,
      onError,
      ended: (session) => {
        live.delete(session);
        idle.heard(session);
      },
      heard: (session) => idle.heard(session),
      socketClosed: (peer) => {
        this.#openSockets--;
        this.#peerConnections.release(peer);
      },
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
    // Judged before anything else; the send routes also close their session.
    const limit = this.#host.maxMessageBytes;
    if (
      match?.[2] !== "xhr_send" && match?.[2] !== "jsonp_send" &&
      declaresTooBig(request, limit)
    ) {
      const headers = new Headers({ Connection: "close" });
      return textError(headers, 413, tooBig(limit).reason);
    }
    if (match) {
      return this.#sessionRoute(request, info?.remoteAddr, match[1], match[2]);
    }
    if (rest === "/info") {
      const options = {
        websocket: this.#websocket,
        cookieNeeded: this.#cookie,
      };
      if (method === "GET") return infoResponse(request, options);
      if (method === "OPTIONS") return corsOptions(request, "OPTIONS, GET");
      return notAllowed("OPTIONS, GET");
    }
    if (IFRAME_ROUTE.test(rest)) {
      return method === "GET"
        ? this.#iframe.answer(request)
        : notAllowed("GET");
    }
    // kite.js's raw client dials the kite URL as given (docs/protocol.md §1.7).
    if (method === "GET" && isWebSocketUpgrade(request)) {
      if (!this.#websocket) return notFound();
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
    if (rest === "/websocket" && this.#websocket) {
      return method === "GET" ? badUpgrade() : notAllowed("GET");
    }
    return notFound();
  }

  /** One of the `{server}/{session}/{route}` routes. */
  #sessionRoute(
    request: Request,
    remote: Deno.Addr | undefined,
    id: string,
    route: string,
  ): Promise<Response> | Response {
    const method = request.method;
    if (route === "websocket") {
      if (!this.#websocket) return notFound();
      if (method !== "GET") return notAllowed("GET");
      return this.#webSocket(request, remote, true, id);
    }
    // Every other route is an HTTP transport: CORS, no caching, the cookie.
    const headers = corsHeaders(request);
    if (this.#cookie) setSessionCookie(request, headers);
    if (
      method === "OPTIONS" && route !== "eventsource" && route !== "htmlfile"
    ) {
      return corsOptions(
        request,
        route === "jsonp" ? "OPTIONS, GET" : "OPTIONS, POST",
        headers,
      );
    }
    headers.set("Cache-Control", NO_CACHE);
    if (route === "xhr_send" || route === "jsonp_send") {
      if (method !== "POST") return notAllowed("POST, OPTIONS");
      return this.#xhrSend(request, headers, id, route === "jsonp_send");
    }
    if (route === "xhr" || route === "xhr_streaming") {
      if (method !== "POST") return notAllowed("POST, OPTIONS");
      const transport = route === "xhr" ? "xhr-polling" : "xhr-streaming";
      return this.#xhrReceive(request, remote, headers, id, transport);
    }
    if (method !== "GET") {
      return notAllowed(route === "jsonp" ? "GET, OPTIONS" : "GET");
    }
    if (route === "eventsource") {
      return this.#xhrReceive(request, remote, headers, id, "eventsource");
    }
    // jsonp and htmlfile write the page's callback name into a script.
    const query = new URL(request.url).searchParams;
    const callback = query.get("c") ?? query.get("callback");
    if (!callback) {
      return textError(headers, 500, '"callback" parameter required');
    }
    if (callback.length > MAX_CALLBACK || !JSONP_CALLBACK.test(callback)) {
      return textError(
        headers,
        500,
        `invalid "callback" parameter: at most ${MAX_CALLBACK} characters of a-z A-Z 0-9 _ . -`,
      );
    }
    const transport = route === "jsonp" ? "jsonp-polling" : "htmlfile";
    return this.#xhrReceive(request, remote, headers, id, transport, callback);
  }

  /** Closes every live session (sending `c[3000,"Go away!"]`) and stops timers. */
  close(): void {
    this.#closed = true;
    for (const session of [...this.#live]) session.close();
    for (const session of this.#xhr.values()) session.dispose();
    this.#xhr.clear();
    this.#idle.clear();
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
    const session = new WebSocketSession(this.#host, upgrade.socket, {
      framed,
      batch: !framed && offersBatch(new URL(request.url)),
      id,
      remoteAddr: formatAddr(remote),
      peer,
      onSession: this.#onSession,
    });
    this.#live.add(session);
    this.#idle.watch(session);
    return upgrade.response;
  }

  /**
   * A receiving request: opens the session on first use (within every
   * session and connection limit), then attaches to it.
   */
  #xhrReceive(
    request: Request,
    remote: Deno.Addr | undefined,
    headers: Headers,
    id: string,
    transport: HttpTransport,
    callback?: string,
  ): Response | Promise<Response> {
    const polling = transport === "xhr-polling" ||
      transport === "jsonp-polling";
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
      this.#idle.watch(session);
      session.start(this.#onSession);
    }
    headers.set("Content-Type", CONTENT_TYPES[transport]);
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
      transport === "eventsource"
        ? EVENTSOURCE_FRAMING
        : transport === "htmlfile"
        ? htmlfileFraming(callback!)
        : XHR_STREAM_FRAMING,
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

  /**
   * `xhr_send`, `jsonp_send`: a body over the limit closes its session
   * (the client's next poll gets `c[4009,...]`) and is answered `413`.
   */
  async #xhrSend(
    request: Request,
    headers: Headers,
    id: string,
    jsonp: boolean,
  ): Promise<Response> {
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
