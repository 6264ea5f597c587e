/**
 * Calls that start as an earlier call did (docs/protocol.md §3.1): a caller sends the
 * same method, identity and credentials in every call on a connection, and
 * only `withArgs` and the response callback id change. Such a call is read
 * against a template — the start of an earlier call, compared, not parsed
 * again — and only its `withArgs` goes through `JSON.parse`.
 *
 * A call fits a template when its text is the template followed by
 * `W}],"callbacks":{"ID":[0,"responseCallback"]}}` or
 * `W,"timeout":N}],"callbacks":…` (the caller's time left, see
 * `serve/deadline.ts`), where `W` parses as JSON and `ID` is a callback id. The template is the canonical JSON of the
 * method, identity and credentials it was learned from, up to
 * `"withArgs":`; so a fitting text is valid JSON, and means exactly that
 * call with `W` and `ID` in place. Anything else is decoded in full.
 *
 * @module
 */
import { FUNCTION_PLACEHOLDER, isCallbackId } from "./dnode/mod.ts";
import { exceedsJsonDepth } from "./limits.ts";
import { TIMEOUT_FIELD, wireTimeout } from "./serve/deadline.ts";
import { utf8Length } from "./transport/sockjs_frames.ts";
import {
  parseTraceparent,
  type TraceParent,
  TRACEPARENT_FIELD,
  TRACEPARENT_LENGTH,
} from "./observe/trace_context.ts";
import {
  type Auth,
  identityFromJSON,
  type KiteIdentity,
  makeIdentity,
} from "./protocol.ts";

/** A call read from a template. */
export interface TemplateCall {
  /** The method called. */
  method: string;
  /** The identity the caller claims, a fresh object. */
  claimed: KiteIdentity;
  /** The credentials sent (a fresh copy when an object). */
  auth: Auth | null | undefined;
  /** `withArgs` as sent. */
  withArgs: unknown;
  /** The id of the response callback. */
  replyTo: number;
  /** The caller's time left, ms, when the call carried `"timeout"` after `withArgs`. */
  timeoutMs?: number;
  /** The W3C `traceparent` carried last, parsed (observe/trace_context.ts). */
  traceparent?: TraceParent;
  /** Length of the template the text starts with, UTF-16 code units. */
  startLength: number;
  /** The same start's UTF-8 bytes (metrics count only the rest per call). */
  startBytes: number;
}

interface Template {
  text: string;
  bytes: number;
  method: string;
  claimed: KiteIdentity;
  auth: Auth | null | undefined;
}

const BEFORE_ID = '}],"callbacks":{"';
const TIMEOUT_SUFFIX = ',"' + TIMEOUT_FIELD + '":';
const TRACEPARENT_SUFFIX = ',"' + TRACEPARENT_FIELD + '":"';
const AFTER_ID = '":[0,"responseCallback"]}}';
/** Brackets open around `withArgs`: the message, `arguments`, the options. */
const WITH_ARGS_DEPTH = 3;
/** Templates per connection: callers repeat a few methods. */
const MAX_TEMPLATES = 8;
/** Methods remembered when decoded in full: a template is made on the second. */
const MAX_RECENT = 8;
/** Calls that could not give a template before a connection stops trying. */
const MAX_MISSES = 8;

/** The templates of one connection. */
export class CallTemplates {
  // Made when needed, at their size: most connections call once or twice.
  #templates: Template[] | undefined;
  #recent: string[] | undefined;
  #misses = 0;

  /**
   * The call `text` holds when it fits a template, else `undefined` (then
   * decode it in full). `maxDepth` is the nesting limit of the whole text.
   */
  match(text: string, maxDepth: number): TemplateCall | undefined {
    const templates = this.#templates;
    if (templates === undefined) return undefined;
    for (let i = 0; i < templates.length; i++) {
      const start = templates[i].text;
      // What startsWith means; V8 compares equal strings several times
      // faster than it runs startsWith on a start this long.
      if (text.substring(0, start.length) === start) {
        return read(templates[i], text, maxDepth);
      }
    }
    return undefined;
  }

  /**
   * Learns from a plain call decoded in full (its only callback is the
   * response callback): a method seen twice gets a template when `text`
   * starts as the canonical JSON of its method, identity and credentials.
   */
  learn(text: string, method: string, args: unknown[]): void {
    if (this.#misses >= MAX_MISSES) return;
    const templates = this.#templates;
    // Fits a template's start but not its end (e.g. it passes a function).
    if (templates?.some((t) => text.startsWith(t.text))) return;
    const recent = this.#recent;
    if (recent === undefined) {
      this.#recent = [method];
      return;
    }
    if (!recent.includes(method)) {
      if (recent.push(method) > MAX_RECENT) recent.shift();
      return;
    }
    const options = args.length === 1 ? args[0] : undefined;
    if (options === null || typeof options !== "object") return;
    const o = options as Record<string, unknown>;
    const start = '{"method":' + JSON.stringify(method) +
      ',"arguments":[{"kite":' + JSON.stringify(o.kite) +
      ',"authentication":' + JSON.stringify(o.authentication) +
      ',"responseCallback":"' + FUNCTION_PLACEHOLDER + '","withArgs":';
    if (!text.startsWith(start)) {
      this.#misses++;
      return;
    }
    const template = learned(start, method, o);
    if (templates === undefined) this.#templates = [template];
    else if (templates.push(template) > MAX_TEMPLATES) templates.shift();
  }
}

function learned(
  text: string,
  method: string,
  o: Record<string, unknown>,
): Template {
  return {
    text,
    bytes: utf8Length(text),
    method,
    claimed: identityFromJSON(o.kite) ?? makeIdentity({}),
    auth: o.authentication as Auth | null | undefined,
  };
}

function read(
  t: Template,
  text: string,
  maxDepth: number,
): TemplateCall | undefined {
  if (!text.endsWith(AFTER_ID)) return undefined;
  const idEnd = text.length - AFTER_ID.length;
  const argsEnd = text.lastIndexOf(BEFORE_ID, idEnd - BEFORE_ID.length);
  if (argsEnd < t.text.length) return undefined;
  const id = text.slice(argsEnd + BEFORE_ID.length, idEnd);
  if (!isCallbackId(id)) return undefined;
  let w = text.slice(t.text.length, argsEnd);
  // `W,"timeout":N,"traceparent":"…"`: the trace context goes last, fixed
  // length; a tracestate makes the call take the full decode.
  let traceparent: TraceParent | undefined;
  if (w.charCodeAt(w.length - 1) === 0x22) {
    const at = w.length - 1 - TRACEPARENT_LENGTH - TRACEPARENT_SUFFIX.length;
    if (at > 0 && w.startsWith(TRACEPARENT_SUFFIX, at)) {
      traceparent = parseTraceparent(
        w.slice(at + TRACEPARENT_SUFFIX.length, -1),
      );
      if (!traceparent) return undefined;
      w = w.slice(0, at);
    }
  }
  // `W,"timeout":N`: a value followed by more is never one JSON value, so
  // the split is unambiguous.
  let timeoutMs: number | undefined;
  const last = w.charCodeAt(w.length - 1);
  if (last >= 0x30 && last <= 0x39) {
    const at = w.lastIndexOf(TIMEOUT_SUFFIX);
    if (at > 0 && /^\d{1,12}$/.test(w.slice(at + TIMEOUT_SUFFIX.length))) {
      timeoutMs = wireTimeout(Number(w.slice(at + TIMEOUT_SUFFIX.length)));
      w = w.slice(0, at);
    }
  }
  if (exceedsJsonDepth(w, maxDepth - WITH_ARGS_DEPTH)) return undefined;
  let withArgs: unknown;
  try {
    withArgs = JSON.parse(w);
  } catch {
    return undefined;
  }
  const auth = t.auth;
  const call: TemplateCall = {
    method: t.method,
    claimed: { ...t.claimed },
    auth: auth !== null && typeof auth === "object" ? { ...auth } : auth,
    withArgs,
    replyTo: Number(id),
    startLength: t.text.length,
    startBytes: t.bytes,
  };
  if (timeoutMs !== undefined) call.timeoutMs = timeoutMs;
  if (traceparent !== undefined) call.traceparent = traceparent;
  return call;
}
