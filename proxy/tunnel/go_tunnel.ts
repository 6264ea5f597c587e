/**
 * Go's tunnel protocol, for Go kites (`RegisterToTunnel`): the kite calls
 * the proxy's `register` over its ordinary kite connection; for every
 * caller the proxy then tells it `kite.tunnel({url})`, and the kite dials
 * that URL — a SockJS WebSocket — and serves it as an accepted
 * connection; the proxy joins the two sessions message for message.
 * Here the URL is `/gotunnel/0/<one-time token>/websocket`: the token,
 * random and good for one dial, is what lets the dial-back in (Go signs a
 * JWT for the same purpose). Deno kites use the multiplexed `/tunnel`
 * instead (tunnel.ts).
 *
 * @module
 */

import type { Client } from "../../kite/client.ts";
import type { KiteConfig } from "../../kite/config.ts";
import type { Logger } from "../../kite/log.ts";
import { SockJsServer } from "../../kite/transport/server/sockjs_server.ts";
import type {
  CloseInfo,
  Session,
  SessionHandler,
} from "../../kite/transport/session.ts";
import { TUNNEL_GONE } from "../../kite/transport/tunnel/mux.ts";

/** Where Go kites dial back. */
export const GO_TUNNEL_PREFIX = "/gotunnel";

/** What a Go-style tunnel needs of its proxy. */
export interface GoTunnelHost {
  readonly config: KiteConfig;
  readonly logger: Logger;
  /** Caller sessions one kite may have at once. */
  readonly maxStreams: number;
  /** `ws(s)://public-host` the kite dials back to. */
  dialBackBase(): string;
  /** The proxy-wide per-caller quota (see tunnel.ts). */
  admit(remoteAddr: string): string | undefined;
  release(remoteAddr: string): void;
}

interface Pending {
  caller: Session;
  /** Messages the caller sent before the kite dialed back. */
  early: string[];
  earlyChars: number;
  timer: ReturnType<typeof setTimeout>;
  /** Hands the caller's handler the kite's session once it dialed back. */
  joined?: (session: Session) => void;
}

const NOOP: SessionHandler = { onMessage: () => {}, onClose: () => {} };

/** Go kites registered with `register`, and their callers' dial-backs. */
export class GoTunnels {
  readonly #host: GoTunnelHost;
  readonly #kites = new Map<
    string,
    { client: Client; username: string; callers: SockJsServer }
  >();
  readonly #pending = new Map<string, Pending>();
  readonly #dialBacks: SockJsServer;

  constructor(host: GoTunnelHost) {
    this.#host = host;
    const c = host.config;
    this.#dialBacks = new SockJsServer({
      prefix: GO_TUNNEL_PREFIX,
      heartbeatMs: c.sockjsHeartbeatMs,
      disconnectDelayMs: c.sockjsDisconnectDelayMs,
      maxMessageBytes: c.maxDialedMessageBytes,
      maxConnections: c.maxConnections,
      // Every dial-back of a kite comes from its one address.
      maxConnectionsPerAddress: c.maxConnections,
      maxBufferedBytes: c.maxBufferedBytes,
      idleSessionMs: 0,
      onSession: (session) => this.#dialedBack(session),
      onError: (err) => host.logger.error(`Go tunnel dial-back: ${err}`),
    });
  }

  /** True when kite `id` registered Go's way. */
  has(id: string): boolean {
    return this.#kites.has(id);
  }

  /** The user whose Go kite holds id `id`, if one does. */
  ownerOf(id: string): string | undefined {
    return this.#kites.get(id)?.username;
  }

  /** Go kites registered now. */
  get size(): number {
    return this.#kites.size;
  }

  /** Remembers a Go kite's connection; its callers are served until it drops. */
  add(id: string, username: string, client: Client): void {
    this.#kites.get(id)?.callers.close();
    const c = this.#host.config;
    const callers = new SockJsServer({
      prefix: `/${id}/kite`,
      heartbeatMs: c.sockjsHeartbeatMs,
      disconnectDelayMs: c.sockjsDisconnectDelayMs,
      maxMessageBytes: c.maxMessageBytes,
      maxSessions: Math.min(c.maxXhrSessions, this.#host.maxStreams),
      maxConnections: this.#host.maxStreams,
      maxBufferedBytes: c.maxBufferedBytes,
      maxConnectionsPerAddress: c.maxConnectionsPerAddress,
      maxXhrSessionsPerAddress: c.maxXhrSessionsPerAddress,
      idleSessionMs: c.idleSessionMs,
      bodyTimeoutMs: c.timeoutMs,
      onSession: (session) => this.#caller(client, session),
      onError: (err) => this.#host.logger.error(`Go tunnel ${id}: ${err}`),
    });
    this.#kites.set(id, { client, username, callers });
  }

  /** Forgets kite `id` (its connection dropped); its callers' sessions close. */
  remove(id: string, client: Client): void {
    const entry = this.#kites.get(id);
    if (entry?.client !== client) return;
    this.#kites.delete(id);
    entry.callers.close();
  }

  /** A caller's request under `/<id>/kite`, when kite `id` is a Go kite. */
  handle(
    id: string,
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> | Response | undefined {
    return this.#kites.get(id)?.callers.handle(request, info);
  }

  /** A Go kite dialing back under {@linkcode GO_TUNNEL_PREFIX}. */
  handleDialBack(
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> | Response | undefined {
    return this.#dialBacks.handle(request, info);
  }

  /** Closes every kite's callers and every dial-back. */
  close(): void {
    for (const { callers } of this.#kites.values()) callers.close();
    this.#kites.clear();
    this.#dialBacks.close();
  }

  #caller(kite: Client, caller: Session): SessionHandler {
    const refused = this.#host.admit(caller.remoteAddr);
    if (refused) {
      queueMicrotask(() => caller.close(4503, refused));
      return NOOP;
    }
    const token = randomToken();
    const { timeoutMs, maxMessageBytes } = this.#host.config;
    const pending: Pending = {
      caller,
      early: [],
      earlyChars: 0,
      timer: setTimeout(() => {
        if (this.#pending.delete(token)) {
          caller.close(
            TUNNEL_GONE,
            `the kite did not dial back within ${timeoutMs} ms`,
          );
        }
      }, timeoutMs),
    };
    this.#pending.set(token, pending);
    const url =
      `${this.#host.dialBackBase()}${GO_TUNNEL_PREFIX}/0/${token}/websocket`;
    kite.tellWithTimeout("kite.tunnel", timeoutMs, { url }).catch((err) => {
      if (this.#pending.delete(token)) {
        clearTimeout(pending.timer);
        caller.close(
          TUNNEL_GONE,
          `the kite did not open a tunnel: ${(err as Error).message}`,
        );
      }
    });
    let joined: Session | undefined;
    pending.joined = (session) => joined = session;
    return {
      onMessage: (message) => {
        if (joined) return void joined.send(message);
        // Go clients call before the kite has dialed back: keep a little.
        pending.earlyChars += message.length;
        if (pending.earlyChars > maxMessageBytes) {
          caller.close(
            4008,
            `over ${maxMessageBytes} characters sent before the kite's tunnel opened`,
          );
          return;
        }
        pending.early.push(message);
      },
      onClose: (info: CloseInfo) => {
        this.#host.release(caller.remoteAddr);
        if (this.#pending.delete(token)) clearTimeout(pending.timer);
        joined?.close(info.code === 1000 ? 3000 : info.code, info.reason);
      },
    };
  }

  #dialedBack(session: Session): SessionHandler {
    const pending = this.#pending.get(session.id);
    if (!pending || pending.caller.closed) {
      queueMicrotask(() => session.close(4003, "unknown or used tunnel token"));
      return NOOP;
    }
    this.#pending.delete(session.id);
    clearTimeout(pending.timer);
    const { caller } = pending;
    pending.joined?.(session);
    for (const m of pending.early.splice(0)) session.send(m);
    return {
      onMessage: (message) => void caller.send(message),
      onClose: (info) => caller.close(info.code, info.reason),
    };
  }
}

function randomToken(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}
