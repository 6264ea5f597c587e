/**
 * Call spans through `@opentelemetry/api`, exported by Deno's built-in
 * OpenTelemetry (`OTEL_DENO=true`, OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`).
 * A served call continues the caller's trace from the envelope's
 * `traceparent`; calls a handler makes run in its span, so A → B → C is
 * one trace. Imported only when `config.tracing` is on.
 *
 * @module
 */
import {
  type Context,
  context,
  createTraceState,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Tracer,
} from "@opentelemetry/api";
import type { KiteIdentity } from "../protocol.ts";
import type { CallTracer, ClientSpan, ServerSpan } from "./call_tracer.ts";
import {
  formatTraceparent,
  parseTraceparent,
  TRACEPARENT_FIELD,
  TRACESTATE_FIELD,
} from "./trace_context.ts";

/** A {@linkcode CallTracer} for the kite `local`. */
export function otelCallTracer(local: KiteIdentity): CallTracer {
  const tracer: Tracer = trace.getTracer("kite");
  // Few attributes: each costs about half a microsecond per span.
  const name = local.name;
  const id = local.id;
  return {
    client(method, remote, transport) {
      const span = tracer.startSpan(`kite/${method}`, {
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
      const sc = span.spanContext();
      const state = sc.traceState?.serialize();
      return {
        // No exporter (OTEL_DENO unset): a no-op span, nothing to carry.
        envelope: !trace.isSpanContextValid(sc)
          ? ""
          : `,"${TRACEPARENT_FIELD}":"${
            formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags)
          }"` +
            (state ? `,"${TRACESTATE_FIELD}":${JSON.stringify(state)}` : ""),
        end: (error) => finish(span, error),
      } satisfies ClientSpan;
    },
    callback(transport) {
      const span = tracer.startSpan("kite/callback", {
        kind: SpanKind.PRODUCER,
        attributes: {
          "kite.name": name,
          "kite.id": id,
          "network.transport.kite": transport,
        },
      });
      return { end: (error) => finish(span, error) };
    },
    server(method, caller, transport, traceparent, tracestate) {
      const parent = parseTraceparent(traceparent);
      // A call that carries no trace starts one: it is no child of
      // whatever happens to be active here.
      let ctx: Context = ROOT_CONTEXT;
      if (parent) {
        ctx = trace.setSpanContext(ROOT_CONTEXT, {
          traceId: parent.traceId,
          spanId: parent.spanId,
          traceFlags: parent.flags & TraceFlags.SAMPLED,
          isRemote: true,
          traceState: tracestate ? createTraceState(tracestate) : undefined,
        });
      }
      const span = tracer.startSpan(`kite/${method}`, {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.method": method,
          "kite.name": name,
          "kite.id": id,
          "network.transport.kite": transport,
          "kite.caller.name": caller.name,
          "kite.caller.id": caller.id,
        },
      }, ctx);
      const active = trace.setSpan(ctx, span);
      return {
        traceId: span.spanContext().traceId,
        run: (fn) => context.with(active, fn),
        end: (error) => finish(span, error),
      } satisfies ServerSpan;
    },
  };
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
