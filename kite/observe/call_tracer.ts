/**
 * What the method pipeline and the connections ask of tracing; the
 * OpenTelemetry implementation (`tracing.ts`) is loaded only when tracing
 * is on, so the core's import graph holds no tracing library.
 *
 * @module
 */
import type { KiteIdentity } from "../protocol.ts";
import type { TraceParent } from "./trace_context.ts";

/** A span around one call this kite makes. */
export interface ClientSpan {
  /** Text to put after `withArgs` in the call's options object. */
  readonly envelope: string;
  /**
   * Where the spans of functions that came back with the reply hang:
   * an opaque trace context, for {@linkcode CallTracer.callback}.
   */
  origin(): unknown;
  /** Ends the span; `error` when the call failed. */
  end(error?: unknown): void;
}

/** A span around work this kite does for a remote: a served call or callback. */
export interface ServerSpan {
  /** The trace the work belongs to. */
  readonly traceId: string;
  /** Runs `fn` with this span active (calls it makes continue the trace). */
  run<T>(fn: () => T): T;
  /** Ends the span; `error` is the reply's error, if any. */
  end(error?: unknown): void;
}

/** A span around calling a function the remote passed (a callback). */
export interface CallbackSpan {
  /**
   * Text to put after the callback message's `callbacks` (the
   * `traceparent` field), `""` when the span carries no trace.
   */
  readonly envelope: string;
  /** Ends the span; `error` when the message could not be sent. */
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
   * A span for calling back a function the remote passed: the child of
   * the span active then (a handler's callbacks appear under the call it
   * serves), else of `origin` (the call whose reply brought the function,
   * {@linkcode ClientSpan.origin}). Callbacks have no reply: it ends once
   * sent.
   */
  callback(transport: string, origin?: unknown): CallbackSpan;
  /**
   * A span for running a local function the remote called back: the child
   * of the remote's callback span when its message carried one, else of
   * `origin` (the {@linkcode ClientSpan.origin} of the call that passed
   * the function), else the root of a new trace.
   */
  called(
    transport: string,
    parent: TraceParent | undefined,
    origin?: unknown,
  ): ServerSpan;
  /** A server span continuing the caller's trace, when it sent one. */
  server(
    method: string,
    caller: KiteIdentity,
    transport: string,
    parent: TraceParent | undefined,
    tracestate: string | undefined,
  ): ServerSpan;
}
