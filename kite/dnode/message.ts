/**
 * dnode messages: `{method, arguments, callbacks, links}` (docs/protocol.md §2.1, §2.3).
 *
 * @module
 */

/** Where a function sits inside `arguments`: numbers index arrays (Go), strings name keys. */
export type CallbackPath = (string | number)[];

/** Callback id (decimal string) → path. */
export type Callbacks = Record<string, CallbackPath>;

/** A decoded dnode message. */
export interface DnodeMessage {
  /** A method name, or the id of a callback the receiver sent earlier. */
  method: string | number;
  /** The arguments, with functions still as `"[Function]"` placeholders. */
  arguments: unknown[];
  /** Functions inside `arguments`. */
  callbacks: Callbacks;
  /**
   * The W3C `traceparent` of the caller's span, sent with a call of a
   * callback by a tracing kite (others ignore the field).
   */
  traceparent?: string;
}

/** Limits applied while decoding untrusted messages. */
export interface DecodeLimits {
  /** Most callbacks one message may carry. @default {1000} */
  maxCallbacks?: number;
  /** Longest callback path. @default {64} */
  maxPathLength?: number;
}

/** A message that is not valid dnode; the text says what was wrong. */
export class DnodeError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "DnodeError";
  }
}

const DEFAULT_MAX_CALLBACKS = 1000;
const DEFAULT_MAX_PATH = 64;

/**
 * Parses and validates one dnode message. `method` must be a string or a
 * non-negative integer (a numeric *string* stays a method name, docs/protocol.md §2.3);
 * missing `arguments`/`callbacks` are accepted as empty; `links` is ignored.
 * @throws {DnodeError} with a description of the problem.
 */
export function decodeMessage(
  text: string,
  limits: DecodeLimits = {},
): DnodeMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DnodeError(
      `message is not valid JSON: ${(err as Error).message}`,
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new DnodeError("message is not a JSON object");
  }
  const msg = value as Record<string, unknown>;
  const method = msg.method;
  if (typeof method !== "string") {
    if (
      typeof method !== "number" || !Number.isSafeInteger(method) || method < 0
    ) {
      throw new DnodeError(
        `message "method" must be a string or a callback id, got ${
          JSON.stringify(method) ?? "nothing"
        }`,
      );
    }
  }
  let args = msg.arguments;
  if (args === undefined || args === null) args = [];
  else if (!Array.isArray(args)) {
    throw new DnodeError('message "arguments" must be an array');
  }
  const decoded: DnodeMessage = {
    method,
    arguments: args as unknown[],
    callbacks: checkCallbacks(msg.callbacks, limits),
  };
  if (typeof msg.traceparent === "string") {
    decoded.traceparent = msg.traceparent;
  }
  return decoded;
}

function checkCallbacks(value: unknown, limits: DecodeLimits): Callbacks {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new DnodeError('message "callbacks" must be an object');
  }
  const maxCallbacks = limits.maxCallbacks ?? DEFAULT_MAX_CALLBACKS;
  const maxPath = limits.maxPathLength ?? DEFAULT_MAX_PATH;
  const callbacks = value as Record<string, unknown>;
  // Object.keys, not for-in: integer-like keys make for-in slow.
  const ids = Object.keys(callbacks);
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k];
    if (k >= maxCallbacks) {
      throw new DnodeError(`message has more than ${maxCallbacks} callbacks`);
    }
    if (!isCallbackId(id)) {
      throw new DnodeError(
        `callback id ${JSON.stringify(id)} is not a decimal number`,
      );
    }
    const path = callbacks[id];
    if (!Array.isArray(path) || path.length === 0 || path.length > maxPath) {
      throw new DnodeError(`callback ${id} has an invalid path`);
    }
    for (const p of path) {
      if (typeof p !== "string" && typeof p !== "number") {
        throw new DnodeError(`callback ${id} path holds ${JSON.stringify(p)}`);
      }
    }
  }
  return callbacks as Callbacks;
}

const ZERO = 0x30;
const NINE = 0x39;

/**
 * Whether `id` is a callback id as dnode writes it: `/^(0|[1-9][0-9]{0,15})$/`,
 * tested without a regular expression (it runs for every call).
 */
export function isCallbackId(id: string): boolean {
  const n = id.length;
  if (n === 0 || n > 16) return false;
  const first = id.charCodeAt(0);
  if (first === ZERO) return n === 1;
  if (first < ZERO || first > NINE) return false;
  for (let i = 1; i < n; i++) {
    const c = id.charCodeAt(i);
    if (c < ZERO || c > NINE) return false;
  }
  return true;
}

/**
 * Encodes a message with Go's field order `method, arguments, callbacks`
 * (docs/protocol.md §2.1). `args` must already be scrubbed.
 */
export function encodeMessage(
  method: string | number,
  args: unknown[],
  callbacks: Callbacks,
): string {
  // Same text as JSON.stringify({method, arguments: args, callbacks}), but
  // `callbacks` apart: its integer-like keys would send V8's stringifier off
  // its fast path for the whole message (2× slower for a typical call).
  return '{"method":' + JSON.stringify(method) + ',"arguments":' +
    JSON.stringify(args) + ',"callbacks":' + JSON.stringify(callbacks) + "}";
}

/**
 * Encodes a successful reply to response callback `id` whose result holds
 * no function: the same text as
 * `encodeMessage(id, [{error: null, result}], {})`, built without
 * stringifying the envelope (it runs once per served call).
 */
export function encodeResultMessage(id: number, result: unknown): string {
  return '{"method":' + id + ',"arguments":[{"error":null,"result":' +
    JSON.stringify(result) + '}],"callbacks":{}}';
}
