/**
 * Call spans through `@opentelemetry/api`, exported by Deno's built-in
 * OpenTelemetry (`OTEL_DENO=true`, OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`).
 * A served call continues the caller's trace from the envelope's
 * `traceparent`; calls a handler makes run in its span, so A → B → C is
 * one trace. Callbacks are spans on both sides: the side calling one
 * sends its span in the callback message, the side running it continues
 * it. Imported only when `config.tracing` is on.
 *
 * Every call pays for a span, so the hot path allocates little: span
 * options are filled in place (Deno copies them while starting the span),
 * contexts hold just the one span they need, no span context is read
 * unless needed (a served call's trace id comes from its caller when there
 * is one), and a span Deno does not record (sampled out, or no
 * `OTEL_DENO`) is neither entered nor carried.
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  context,
  createTraceState,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
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

/**
 * The key `@opentelemetry/api` keeps the active span under (every copy of
 * the API shares it; checked below before it is relied on).
 */
const SPAN_KEY = Symbol.for("OpenTelemetry Context Key SPAN");

/** A context holding one span and nothing else, made without copying a map. */
class OneSpan implements Context {
  readonly #span: Span;
  constructor(span: Span) {
    this.#span = span;
  }
  getValue(key: symbol): unknown {
    return key === SPAN_KEY ? this.#span : undefined;
  }
  setValue(key: symbol, value: unknown): Context {
    return trace.setSpan(ROOT_CONTEXT, this.#span).setValue(key, value);
  }
  deleteValue(key: symbol): Context {
    return key === SPAN_KEY ? ROOT_CONTEXT : this;
  }
}

/** A context whose only value is `span`. */
const withSpan: (span: Span) => Context = (() => {
  const probe = trace.wrapSpanContext({
    traceId: "1".repeat(32),
    spanId: "1".repeat(16),
    traceFlags: 0,
  });
  return trace.getSpan(new OneSpan(probe)) === probe
    ? (span: Span) => new OneSpan(span)
    : (span: Span) => trace.setSpan(ROOT_CONTEXT, span);
})();

/** Work for a remote (a served call, a callback run), its span active while it runs. */
class Serving implements ServerSpan {
  readonly #span: Span;
  readonly #active: Context;
  #traceId: string | undefined;
  constructor(span: Span, traceId: string | undefined) {
    this.#span = span;
    this.#active = withSpan(span);
    this.#traceId = traceId;
  }
  get traceId(): string {
    return this.#traceId ??= this.#span.spanContext().traceId;
  }
  run<T>(fn: () => T): T {
    return context.with(this.#active, fn);
  }
  end(error?: unknown): void {
    finish(this.#span, error);
  }
}

/** The same for a span Deno does not record: nothing to enter. */
class NotRecorded implements ServerSpan {
  readonly #span: Span;
  readonly traceId: string;
  constructor(span: Span, traceId: string | undefined) {
    this.#span = span;
    this.traceId = traceId ?? "";
  }
  run<T>(fn: () => T): T {
    return fn();
  }
  end(): void {
    this.#span.end();
  }
}

/** A {@linkcode CallTracer} for the kite `local`. */
export function otelCallTracer(local: KiteIdentity): CallTracer {
  const tracer: Tracer = trace.getTracer("kite");
  // Options filled in place per span: Deno reads them before startSpan
  // returns, so one object per kind serves every call.
  const clientAttrs: Attributes = {
    "rpc.method": "",
    "kite.name": local.name,
    "kite.id": local.id,
    "network.transport.kite": "",
    "kite.remote.name": undefined,
    "kite.remote.id": undefined,
  };
  const client: SpanOptions = {
    kind: SpanKind.CLIENT,
    attributes: clientAttrs,
  };
  const serverAttrs: Attributes = {
    "rpc.method": "",
    "kite.name": local.name,
    "kite.id": local.id,
    "network.transport.kite": "",
    "kite.caller.name": "",
    "kite.caller.id": "",
  };
  const server: SpanOptions = {
    kind: SpanKind.SERVER,
    attributes: serverAttrs,
  };
  const callbackAttrs: Attributes = {
    "kite.name": local.name,
    "kite.id": local.id,
    "network.transport.kite": "",
  };
  const producer: SpanOptions = {
    kind: SpanKind.PRODUCER,
    attributes: callbackAttrs,
  };
  const consumer: SpanOptions = {
    kind: SpanKind.CONSUMER,
    attributes: callbackAttrs,
  };

  return {
    client(method, remote, transport) {
      clientAttrs["rpc.method"] = method;
      clientAttrs["network.transport.kite"] = transport;
      clientAttrs["kite.remote.name"] = remote?.name;
      clientAttrs["kite.remote.id"] = remote?.id;
      const span = tracer.startSpan("kite/" + method, client);
      let envelope = carry(span);
      if (envelope !== "") {
        const state = span.spanContext().traceState?.serialize();
        if (state) {
          envelope += `,"${TRACESTATE_FIELD}":` + JSON.stringify(state);
        }
      }
      return {
        envelope,
        origin: () => withSpan(span),
        end: (error) => finish(span, error),
      } satisfies ClientSpan;
    },
    callback(transport, origin) {
      const active = context.active();
      const parent = trace.getSpan(active) === undefined &&
          origin !== undefined
        ? origin as Context
        : active;
      callbackAttrs["network.transport.kite"] = transport;
      const span = tracer.startSpan("kite/callback", producer, parent);
      if (!span.isRecording()) {
        span.end();
        return NO_CALLBACK_SPAN;
      }
      return { envelope: carry(span), end: (error) => finish(span, error) };
    },
    called(transport, parent, origin) {
      callbackAttrs["network.transport.kite"] = transport;
      const span = tracer.startSpan(
        "kite/callback",
        consumer,
        parent
          ? remoteParent(parent, undefined)
          : (origin as Context | undefined) ?? ROOT_CONTEXT,
      );
      return serving(span, parent?.traceId);
    },
    server(method, caller, transport, parent, tracestate) {
      serverAttrs["rpc.method"] = method;
      serverAttrs["network.transport.kite"] = transport;
      serverAttrs["kite.caller.name"] = caller.name;
      serverAttrs["kite.caller.id"] = caller.id;
      // A call that carries no trace starts one: it is no child of
      // whatever happens to be active here.
      const span = tracer.startSpan(
        "kite/" + method,
        server,
        parent ? remoteParent(parent, tracestate) : ROOT_CONTEXT,
      );
      return serving(span, parent?.traceId);
    },
  };
}

function serving(span: Span, traceId: string | undefined): ServerSpan {
  return span.isRecording()
    ? new Serving(span, traceId)
    : new NotRecorded(span, traceId);
}

/** The `traceparent` field for `span`, `""` when it is not recorded. */
function carry(span: Span): string {
  if (!span.isRecording()) return "";
  const sc = span.spanContext();
  return CARRY + formatTraceparent(sc.traceId, sc.spanId, sc.traceFlags) + '"';
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
  return withSpan(trace.wrapSpanContext(sc));
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
