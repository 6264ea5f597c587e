/**
 * What the method pipeline and the connections ask of tracing; the
 * OpenTelemetry implementation (`tracing.ts`) is loaded only when tracing
 * is on, so the core's import graph holds no tracing library.
 *
 * @module
 */
import type { KiteIdentity } from "../protocol.ts";

/** A span around one call this kite makes. */
export interface ClientSpan {
  /** Text to put after `withArgs` in the call's options object. */
  readonly envelope: string;
  /** Ends the span; `error` when the call failed. */
  end(error?: unknown): void;
}

/** A span around one call this kite serves. */
export interface ServerSpan {
  /** The trace the call belongs to. */
  readonly traceId: string;
  /** Runs `fn` with this span active (calls it makes continue the trace). */
  run<T>(fn: () => T): T;
  /** Ends the span; `error` is the reply's error, if any. */
  end(error?: unknown): void;
}

/** Starts the spans of calls (see `tracing.ts`). */
export interface CallTracer {
  /** A client span for a call of `method` to `remote`. */
  client(
    method: string,
    remote: KiteIdentity | undefined,
    transport: string,
  ): ClientSpan;
  /**
   * A span for calling back a function the remote passed (a callback):
   * the child of the span active then, so a handler's callbacks appear
   * under the call it serves. Callbacks have no reply: it ends at once.
   */
  callback(transport: string): { end(error?: unknown): void };
  /** A server span continuing the caller's trace, when it sent one. */
  server(
    method: string,
    caller: KiteIdentity,
    transport: string,
    traceparent: string | undefined,
    tracestate: string | undefined,
  ): ServerSpan;
}
