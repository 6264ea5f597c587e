/**
 * Call spans through `@opentelemetry/api`, exported by Deno's built-in
 * OpenTelemetry (`OTEL_DENO=true`, OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`).
 * A served call continues the caller's trace from the envelope's
 * `traceparent`; calls a handler makes run in its span, so A → B → C is
 * one trace. Callbacks are spans on both sides: the side calling one
 * sends its span in the callback message, the side running it continues
 * it. Imported only when `config.tracing` is on.
 *
 * Every call pays for a span, so the hot path allocates little: no span
 * context is read unless needed (the trace id of a served call comes from
 * its caller when there is one), a span Deno does not record (sampled
 * out, or no `OTEL_DENO`) is neither entered nor carried, and contexts
 * hold the one span they need.
 *
 * @module
 */
import {
  type Context,
  context,
  createTraceState,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Tracer,
} from "@opentelemetry/api";
import type { KiteIdentity } from "../protocol.ts";
import type {
  CallbackSpan,
  CallTracer,
  ClientSpan,
  ServerSpan,
} from "./call_tracer.ts";
import {
  formatTraceparent,
  type TraceParent,
  TRACEPARENT_FIELD,
  TRACESTATE_FIELD,
} from "./trace_context.ts";

const CARRY = `,"${TRACEPARENT_FIELD}":"`;
const NO_CALLBACK_SPAN: CallbackSpan = { envelope: "", end() {} };

/** A {@linkcode CallTracer} for the kite `local`. */
export function otelCallTracer(local: KiteIdentity): CallTracer {
  const tracer: Tracer = trace.getTracer("kite");
  const name = local.name;
  const id = local.id;

  /** The `traceparent` field for `span`, `""` when it is not recorded. */
  const carry = (span: Span): string => {
    if (!span.isRecording()) return "";
    const sc = span.spanContext();
    return CARRY + formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags) +
      '"';
  };

  /** Work for a remote, `span` active while it runs. */
  const serving = (span: Span, traceId: string | undefined): ServerSpan => {
    if (!span.isRecording()) {
      return {
        traceId: traceId ?? "",
        run: (fn) => fn(),
        end: () => span.end(),
      };
    }
    const active = trace.setSpan(ROOT_CONTEXT, span);
    return {
      get traceId() {
        return traceId ??= span.spanContext().traceId;
      },
      run: (fn) => context.with(active, fn),
      end: (error) => finish(span, error),
    };
  };

  return {
    client(method, remote, transport) {
      const span = tracer.startSpan("kite/" + method, {
        kind: SpanKind.CLIENT,
        attributes: {
          "rpc.method": method,
          "kite.name": name,
          "kite.id": id,
          "network.transport.kite": transport,
          "kite.remote.name": remote?.name,
          "kite.remote.id": remote?.id,
        },
      });
      const envelope = carry(span);
      const state = envelope === ""
        ? undefined
        : span.spanContext().traceState?.serialize();
      return {
        envelope: state
          ? envelope + `,"${TRACESTATE_FIELD}":` + JSON.stringify(state)
          : envelope,
        origin: () => trace.setSpan(ROOT_CONTEXT, span),
        end: (error) => finish(span, error),
      } satisfies ClientSpan;
    },
    callback(transport, origin) {
      const active = context.active();
      const parent = trace.getSpan(active) === undefined &&
          origin !== undefined
        ? origin as Context
        : active;
      const span = tracer.startSpan("kite/callback", {
        kind: SpanKind.PRODUCER,
        attributes: {
          "kite.name": name,
          "kite.id": id,
          "network.transport.kite": transport,
        },
      }, parent);
      if (!span.isRecording()) {
        span.end();
        return NO_CALLBACK_SPAN;
      }
      return { envelope: carry(span), end: (error) => finish(span, error) };
    },
    called(transport, parent) {
      const span = tracer.startSpan("kite/callback", {
        kind: SpanKind.CONSUMER,
        attributes: {
          "kite.name": name,
          "kite.id": id,
          "network.transport.kite": transport,
        },
      }, parent ? remoteParent(parent, undefined) : ROOT_CONTEXT);
      return serving(span, parent?.traceId);
    },
    server(method, caller, transport, parent, tracestate) {
      // A call that carries no trace starts one: it is no child of
      // whatever happens to be active here.
      const span = tracer.startSpan("kite/" + method, {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.method": method,
          "kite.name": name,
          "kite.id": id,
          "network.transport.kite": transport,
          "kite.caller.name": caller.name,
          "kite.caller.id": caller.id,
        },
      }, parent ? remoteParent(parent, tracestate) : ROOT_CONTEXT);
      return serving(span, parent?.traceId);
    },
  };
}

/** A context whose span is the remote `parent`. */
function remoteParent(
  parent: TraceParent,
  tracestate: string | undefined,
): Context {
  const sc: SpanContext = {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: parent.flags & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (tracestate) sc.traceState = createTraceState(tracestate);
  return trace.setSpanContext(ROOT_CONTEXT, sc);
}

function finish(span: Span, error: unknown): void {
  if (error !== undefined && error !== null) {
    const type = (error as { type?: unknown }).type;
    span.setAttribute(
      "error.type",
      typeof type === "string" ? type : "genericError",
    );
    const message = (error as { message?: unknown }).message;
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: typeof message === "string" ? message : undefined,
    });
  }
  span.end();
}
