/**
 * The one error class that crosses the wire (docs/protocol.md §3.3).
 *
 * @module
 */

/** The closed set of error types a kite produces or receives. */
export type KiteErrorType =
  | "methodNotFound"
  | "authenticationError"
  | "argumentError"
  | "genericError"
  | "requestLimitError"
  | "timeout"
  | "disconnect"
  | "sendError"
  | "invalidResponse";

const TYPES: ReadonlySet<string> = new Set<KiteErrorType>([
  "methodNotFound",
  "authenticationError",
  "argumentError",
  "genericError",
  "requestLimitError",
  "timeout",
  "disconnect",
  "sendError",
  "invalidResponse",
]);

/** JSON form of a kite error, in Go field order (docs/protocol.md §3.3). */
export interface KiteErrorJSON {
  /** Error category. */
  type: string;
  /** Human text. */
  message: string;
  /** Application code, `""` when none. */
  code: string;
  /** Request id (16 hex chars), `""` before a request exists. */
  id: string;
}

/** Options for {@linkcode KiteError}. */
export interface KiteErrorOptions {
  /** Application code. @default {""} */
  code?: string;
  /** Request id. @default {""} */
  id?: string;
  /** The underlying error. */
  cause?: unknown;
}

/**
 * An error with a kite error `type`. Its JSON form is exactly the Go wire
 * shape `{type, message, code, id}`.
 *
 * @example
 * ```ts
 * import { KiteError } from "./errors.ts";
 * throw new KiteError("argumentError", "square expects a number");
 * ```
 */
export class KiteError extends Error {
  /** Error category; one of {@linkcode KiteErrorType} for our own errors. */
  readonly type: KiteErrorType | string;
  /** Application code. */
  code: string;
  /** Request id. */
  id: string;

  /** Creates an error of the given type. */
  constructor(
    type: KiteErrorType | string,
    message: string,
    options: KiteErrorOptions = {},
  ) {
    super(
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "KiteError";
    this.type = type;
    this.code = options.code ?? "";
    this.id = options.id ?? "";
  }

  /** Go's `Error()` rendering: `<type>: <message> (<id>)` (docs/protocol.md §3.3). */
  override toString(): string {
    const prefix = this.type === "genericError" ? "" : `${this.type}: `;
    const suffix = this.id ? ` (${this.id})` : "";
    return `${prefix}${this.message}${suffix}`;
  }

  /** The wire form `{type, message, code, id}`. */
  toJSON(): KiteErrorJSON {
    return {
      type: this.type,
      message: this.message,
      code: this.code,
      id: this.id,
    };
  }

  /**
   * Turns anything thrown by a handler, or any `error` value received from a
   * peer, into a KiteError. Objects without a known type become
   * `genericError`; a kite.js error without `code`/`id` gets empty ones.
   */
  static from(
    value: unknown,
    fallback: KiteErrorType = "genericError",
  ): KiteError {
    if (value instanceof KiteError) return value;
    if (value instanceof Error) {
      return new KiteError(fallback, value.message, { cause: value });
    }
    if (value !== null && typeof value === "object") {
      const v = value as Record<string, unknown>;
      const type = typeof v.type === "string" && v.type !== ""
        ? v.type
        : fallback;
      const message = typeof v.message === "string"
        ? v.message
        : JSON.stringify(value);
      return new KiteError(type, message, {
        code: typeof v.code === "string"
          ? v.code
          : v.code == null
          ? ""
          : String(v.code),
        id: typeof v.id === "string" ? v.id : "",
      });
    }
    return new KiteError(fallback, String(value));
  }

  /** True when `type` is one of the built-in error types. */
  static isKnownType(type: string): type is KiteErrorType {
    return TYPES.has(type);
  }
}
