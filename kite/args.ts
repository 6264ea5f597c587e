/**
 * Typed access to the arguments of a call (Go `dnode.Partial`). Every
 * mismatch throws an `argumentError` that says what was expected.
 *
 * @module
 */
import { KiteError } from "./errors.ts";
import type { AnyFunction } from "./dnode/scrub.ts";

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * A received value with checked accessors, e.g.
 * `req.args.one().number()` or `req.args.at(1).func()`.
 */
export class Args {
  /** The raw decoded JSON value; functions are already callable. */
  readonly raw: unknown;
  readonly #where: string;

  /** Wraps a value; `where` names it in error messages. */
  constructor(raw: unknown, where = "arguments") {
    this.raw = raw;
    this.#where = where;
  }

  #fail(expected: string): never {
    throw new KiteError(
      "argumentError",
      `${this.#where}: expected ${expected}, got ${describe(this.raw)}`,
    );
  }

  /** The elements of an array value. */
  slice(): Args[] {
    if (!Array.isArray(this.raw)) this.#fail("an array");
    return this.raw.map((v, i) => new Args(v, `${this.#where}[${i}]`));
  }

  /** The elements of an array of exactly `n` elements. */
  sliceOfLength(n: number): Args[] {
    const items = this.slice();
    if (items.length !== n) {
      // The top level is the caller's argument list: say it in those words.
      const what = this.#where === "withArgs"
        ? `${n} argument${n === 1 ? "" : "s"}`
        : `an array of ${n} element${n === 1 ? "" : "s"}`;
      throw new KiteError(
        "argumentError",
        `${this.#where}: expected ${what}, got ${items.length}`,
      );
    }
    return items;
  }

  /** The single element of a one-element array. */
  one(): Args {
    return this.sliceOfLength(1)[0];
  }

  /** Element `i` of an array (missing elements are `undefined`). */
  at(i: number): Args {
    if (!Array.isArray(this.raw)) this.#fail("an array");
    return new Args(this.raw[i], `${this.#where}[${i}]`);
  }

  /** Property `key` of an object (missing is `undefined`). */
  get(key: string): Args {
    const obj = this.object();
    return new Args(
      Object.hasOwn(obj, key) ? obj[key] : undefined,
      `${this.#where}.${key}`,
    );
  }

  /** A finite number. */
  number(): number {
    if (typeof this.raw !== "number" || !Number.isFinite(this.raw)) {
      this.#fail("a number");
    }
    return this.raw;
  }

  /** A string. */
  string(): string {
    if (typeof this.raw !== "string") this.#fail("a string");
    return this.raw;
  }

  /** A boolean. */
  boolean(): boolean {
    if (typeof this.raw !== "boolean") this.#fail("a boolean");
    return this.raw;
  }

  /** A plain object (not null, not an array). */
  object<T = Record<string, unknown>>(): T {
    if (
      this.raw === null || typeof this.raw !== "object" ||
      Array.isArray(this.raw)
    ) {
      this.#fail("an object");
    }
    return this.raw as T;
  }

  /** A function sent by the caller; calling it calls back across the wire. */
  func(): AnyFunction {
    if (typeof this.raw !== "function") this.#fail("a function");
    return this.raw as AnyFunction;
  }

  /** True for `undefined` or `null`. */
  isNull(): boolean {
    return this.raw === undefined || this.raw === null;
  }
}
