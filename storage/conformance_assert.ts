/**
 * Assertions for the storage conformance suite, which runs in any
 * adapter's tests and so imports nothing from `tests/`.
 *
 * @module
 */

/** A conformance check that failed. */
export class AssertionError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

/** Throws unless `condition` holds. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** JSON with object keys sorted, for comparing values. */
export function canonical(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
        : v,
  );
}

/** Throws unless both have the same {@linkcode canonical} JSON. */
export function assertEquals(
  actual: unknown,
  expected: unknown,
  message: string,
): void {
  const a = canonical(actual);
  const e = canonical(expected);
  if (a !== e) {
    throw new AssertionError(`${message}\nactual:   ${a}\nexpected: ${e}`);
  }
}

/** Resolves the error `fn` rejects with; throws if it resolves. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  message: string,
): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new AssertionError(`expected a rejection: ${message}`);
}
