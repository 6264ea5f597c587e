/**
 * Minimal assertions (JSR's @std/assert is not reachable here).
 *
 * @module
 */

/** An assertion that failed. */
export class AssertionError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Throws unless `condition` is truthy. */
export function assert(
  condition: unknown,
  message = "assertion failed",
): asserts condition {
  if (!condition) throw new AssertionError(message);
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v instanceof Map) return { __map: [...v.entries()] };
    if (v instanceof Set) return { __set: [...v] };
    if (typeof v === "function") return `[fn ${v.name}]`;
    if (v === undefined) return "__undefined__";
    if (v && typeof v === "object" && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]));
    }
    return v;
  });
}

/** Deep equality by structure (key order ignored). */
export function assertEquals<T>(
  actual: T,
  expected: T,
  message?: string,
): void {
  if (Object.is(actual, expected)) return;
  const a = canonical(actual);
  const e = canonical(expected);
  if (a !== e) {
    throw new AssertionError(
      `${
        message ? message + ": " : ""
      }values differ\nactual:   ${a}\nexpected: ${e}`,
    );
  }
}

/** Throws when the values are deeply equal. */
export function assertNotEquals<T>(
  actual: T,
  expected: T,
  message?: string,
): void {
  if (canonical(actual) === canonical(expected)) {
    throw new AssertionError(
      message ?? `expected values to differ: ${canonical(actual)}`,
    );
  }
}

/** Strict string/regexp match. */
export function assertMatch(
  actual: string,
  re: RegExp,
  message?: string,
): void {
  if (!re.test(actual)) {
    throw new AssertionError(
      message ?? `${JSON.stringify(actual)} does not match ${re}`,
    );
  }
}

/** `actual` contains `expected`. */
export function assertStringIncludes(
  actual: string,
  expected: string,
  message?: string,
): void {
  if (!actual.includes(expected)) {
    throw new AssertionError(
      message ??
        `${JSON.stringify(actual)} does not contain ${
          JSON.stringify(expected)
        }`,
    );
  }
}

/** Asserts `fn` throws (optionally an instance of `type`); returns the error. */
export function assertThrows(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  type?: new (...args: any[]) => Error,
  includes?: string,
): Error {
  try {
    fn();
  } catch (err) {
    checkError(err, type, includes);
    return err as Error;
  }
  throw new AssertionError("expected the function to throw");
}

/** Asserts the promise rejects (optionally with `type`, message containing `includes`). */
export async function assertRejects(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  type?: new (...args: any[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    checkError(err, type, includes);
    return err as Error;
  }
  throw new AssertionError("expected the promise to reject");
}

function checkError(
  err: unknown,
  // deno-lint-ignore no-explicit-any
  type?: new (...args: any[]) => Error,
  includes?: string,
) {
  if (type && !(err instanceof type)) {
    throw new AssertionError(`expected ${type.name}, got ${err}`);
  }
  if (includes && !String((err as Error)?.message).includes(includes)) {
    throw new AssertionError(
      `expected message to include ${JSON.stringify(includes)}, got ${
        JSON.stringify((err as Error)?.message)
      }`,
    );
  }
}
