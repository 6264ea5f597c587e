/**
 * The one seam between an accepted (or dialed) connection and its kite:
 * everything a connection may do to the kite that owns it. `Client`
 * depends on this interface, never on `Kite`, so the serving side has no
 * import cycle (kite → client → serve, never back).
 *
 * @module
 */
import type { KiteConfig } from "../config.ts";
import type { Clock } from "../clock.ts";
import type { Callbacks } from "../dnode/mod.ts";
import type { Logger } from "../log.ts";
import type { KiteMetrics } from "../observe/kite_metrics.ts";
import type { CallTracer } from "../observe/call_tracer.ts";
import type { TraceParent } from "../observe/trace_context.ts";
import type { Auth, KiteIdentity } from "../protocol.ts";
import type { Dial } from "../transport/client/dialer.ts";

/** What a served call answers through its response callback (docs/protocol.md §3.2). */
export interface CallReply {
  /** `null`, or the error as Go's JSON shape. */
  error: unknown;
  /** The handler's result; `null` on error. */
  result: unknown;
}

/** What else a connection read of an incoming call. */
export interface CallMeta {
  /** The caller's time left, ms, from the options field `timeout`. */
  timeoutMs?: number;
  /** The W3C `traceparent` the call carried, parsed (observe/trace_context.ts). */
  traceparent?: TraceParent;
  /** The W3C `tracestate` the call carried. */
  tracestate?: string;
  /** The id of the call's response callback (what `kite.cancel` names). */
  replyTo?: number;
}

/** Serves a connection's incoming calls (`Dispatcher`, serve/dispatch.ts). */
export interface CallServer<C> {
  /** Serves one decoded incoming call (docs/protocol.md §3.4). */
  serveRequest(
    conn: C,
    method: string,
    args: unknown[],
    callbacks: Callbacks,
    replyTo?: number,
  ): void;
  /** Serves a call whose options object is already read (see `CallTemplates`). */
  serveCall(
    conn: C,
    method: string,
    claimed: KiteIdentity,
    auth: Auth | null | undefined,
    withArgs: unknown,
    respond: ((reply: CallReply) => void) | undefined,
    meta?: CallMeta,
  ): void;
}

/**
 * What a connection sees of its kite. `C` is the connection type (`Client`);
 * a type parameter rather than an import keeps this file below `client.ts`.
 */
export interface ServingKite<C> {
  /** Limits and settings the connection enforces. */
  readonly config: KiteConfig;
  /** This kite's identity, sent with every call. */
  readonly identity: KiteIdentity;
  /** Time source for call timeouts and reconnect delays. */
  readonly clock: Clock;
  /** Where the connection logs. */
  readonly logger: Logger;
  /** What connections record, when metrics are on. */
  readonly metrics: KiteMetrics | undefined;
  /** @internal How the connection dials: the runtime's sockets (Deno's, or a browser's). */
  readonly dialer: Dial;
  /** Starts call spans, when tracing is on and loaded. */
  readonly tracer: CallTracer | undefined;
  /** The credentials dialed connections send by default. */
  defaultAuth(): Auth | null;
  /** Where the connection's incoming calls go (`serve/dispatch.ts`). */
  readonly calls: CallServer<C>;
  /** The connection's session opened. */
  notifyConnect(conn: C): void;
  /** The connection's session ended. */
  notifyDisconnect(conn: C): void;
  /** A dialed connection was closed by its user. */
  forgetClient(conn: C): void;
}
