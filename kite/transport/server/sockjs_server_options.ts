/**
 * The options of `SockJsServer`, their defaults and their checks.
 *
 * @module
 */

import type { Clock } from "../../clock.ts";
import type { Session, SessionHandler } from "../session.ts";

/** Options for `SockJsServer`. */
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
  /**
   * Serve the websocket transports (SockJS and raw); false answers their
   * routes `404` and `/info` says `"websocket":false`, so that clients
   * behind a proxy that breaks WebSockets go straight to the others.
   * @default {true}
   */
  websocket?: boolean;
  /**
   * Set a `JSESSIONID` cookie on the session routes, for load balancers
   * that stick sessions by it (`/info` then says `"cookie_needed":true`).
   * @default {false}
   */
  jsessionid?: boolean;
  /**
   * The sockjs-client the `iframe.html` page loads (an `http(s)://` URL or
   * a path); it must be the page's own sockjs-client version.
   * @default {"https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"}
   */
  sockjsUrl?: string;
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
export type NumericOption = Exclude<
  keyof typeof SOCKJS_SERVER_DEFAULTS,
  "prefix"
>;

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

/** The prefix without trailing slashes. @throws {TypeError} when it is not a path. */
export function checkPrefix(prefix: string): string {
  if (typeof prefix !== "string" || (prefix !== "" && prefix[0] !== "/")) {
    throw new TypeError(
      `SockJsServer: prefix must be "" or start with "/", got ${
        JSON.stringify(prefix)
      }`,
    );
  }
  return prefix.replace(/\/+$/, "");
}

/** `value` when finite and at least `min`. @throws {RangeError} otherwise. */
export function checkNumber(name: string, value: number, min: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new RangeError(
      `SockJsServer: ${name} must be a finite number >= ${min}, got ${value}`,
    );
  }
  return value;
}
