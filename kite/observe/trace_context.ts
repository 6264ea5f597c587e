/**
 * W3C Trace Context in the call envelope: `traceparent` (and `tracestate`
 * when there is one) ride in a call's options object after `withArgs`,
 * where Go kites and kite.js ignore unknown fields (docs/protocol.md §3.1).
 * Read strictly: a malformed value from the wire is dropped, never thrown.
 *
 * @module
 */

/** The options-object field carrying the W3C `traceparent`. */
export const TRACEPARENT_FIELD = "traceparent";
/** The options-object field carrying the W3C `tracestate`. */
export const TRACESTATE_FIELD = "tracestate";
/** Length of a version-00 `traceparent`. */
export const TRACEPARENT_LENGTH = 55;
/** Longest `tracestate` accepted from the wire (W3C allows 32 × 256). */
export const MAX_TRACESTATE = 512;

/** A parsed `traceparent`. */
export interface TraceParent {
  /** 32 lower-case hex digits. */
  traceId: string;
  /** The caller's span, 16 lower-case hex digits. */
  spanId: string;
  /** Trace flags (bit 0: sampled). */
  flags: number;
}

const INVALID_TRACE_ID = "0".repeat(32);
const INVALID_SPAN_ID = "0".repeat(16);
const FORMAT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The trace context in `value`, or `undefined` for anything malformed. */
export function parseTraceparent(value: unknown): TraceParent | undefined {
  if (typeof value !== "string" || value.length !== TRACEPARENT_LENGTH) {
    return undefined;
  }
  const m = FORMAT.exec(value);
  if (!m || m[1] === INVALID_TRACE_ID || m[2] === INVALID_SPAN_ID) {
    return undefined;
  }
  return { traceId: m[1], spanId: m[2], flags: parseInt(m[3], 16) };
}

/** A `tracestate` from the wire, or `undefined` when absent or unreasonable. */
export function wireTracestate(value: unknown): string | undefined {
  return typeof value === "string" && value.length > 0 &&
      value.length <= MAX_TRACESTATE && /^[\x20-\x7e]*$/.test(value)
    ? value
    : undefined;
}

/**
 * The `traceparent` text for a span. Only the sampled bit is defined by
 * version 00, so the flags are `01` or `00`.
 */
export function formatTraceparent(
  traceId: string,
  spanId: string,
  flags: number,
): string {
  return "00-" + traceId + "-" + spanId +
    ((flags & 1) === 1 ? "-01" : "-00");
}
