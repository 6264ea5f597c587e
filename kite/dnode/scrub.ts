/**
 * Sending functions: replace them by `"[Function]"` and record their paths
 * (docs/protocol.md §2.2). Receiving them: put callables at the recorded paths (§2.4).
 *
 * @module
 */
import type { CallbackPath, Callbacks } from "./message.ts";

/** Any function that can travel as a dnode callback. */
// deno-lint-ignore no-explicit-any
export type AnyFunction = (...args: any[]) => unknown;

/** The placeholder a function becomes on the wire. */
export const FUNCTION_PLACEHOLDER = "[Function]";

/** Registers a local function and returns its callback id. */
export type RegisterFunction = (fn: AnyFunction, fresh?: boolean) => number;

/**
 * Returns `value` with every function (at any depth of arrays and plain
 * objects) replaced by `"[Function]"`, adding `id → path` entries to
 * `callbacks`. Containers without functions are returned as they are, so
 * the common case copies nothing. Array indexes are numbers, as Go sends.
 */
export function scrub(
  value: unknown,
  path: CallbackPath,
  callbacks: Callbacks,
  register: RegisterFunction,
): unknown {
  if (typeof value === "function") {
    let id = register(value as AnyFunction);
    // One id names one path: the same function twice in a message needs a
    // second id, or its first place would arrive as a bare placeholder.
    if (callbacks[id] !== undefined) id = register(value as AnyFunction, true);
    callbacks[id] = path.slice();
    return FUNCTION_PLACEHOLDER;
  }
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (
        item === null ||
        (typeof item !== "object" && typeof item !== "function")
      ) continue;
      path.push(i);
      const scrubbed = scrub(item, path, callbacks, register);
      path.pop();
      if (scrubbed !== item) {
        out ??= value.slice();
        out[i] = scrubbed;
      }
    }
    return out ?? value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value; // Date, Uint8Array, class instances: JSON decides
  let out: Record<string, unknown> | undefined;
  const obj = value as Record<string, unknown>;
  for (const key in obj) {
    const item = obj[key];
    if (
      item === null || (typeof item !== "object" && typeof item !== "function")
    ) continue;
    path.push(key);
    const scrubbed = scrub(item, path, callbacks, register);
    path.pop();
    if (scrubbed !== item) {
      out ??= { ...obj };
      out[key] = scrubbed;
    }
  }
  return out ?? value;
}

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

/**
 * Places `makeFunction(id)` at each callback path inside `args` (mutating
 * it). Array positions accept numbers or decimal strings (kite.js sends
 * strings). Paths that lead nowhere are ignored, as Go does; paths through
 * `__proto__`/`constructor`/`prototype` are refused.
 */
export function unscrub(
  args: unknown[],
  callbacks: Callbacks,
  makeFunction: (id: number) => AnyFunction,
): void {
  const ids = Object.keys(callbacks);
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k];
    const path = callbacks[id];
    // deno-lint-ignore no-explicit-any
    let parent: any = args;
    let ok = true;
    for (let i = 0; i < path.length - 1; i++) {
      parent = step(parent, path[i]);
      if (parent === undefined) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    const last = path[path.length - 1];
    if (Array.isArray(parent)) {
      const index = toIndex(last);
      if (index === undefined || index >= parent.length) continue;
      parent[index] = makeFunction(Number(id));
    } else if (parent !== null && typeof parent === "object") {
      const key = String(last);
      if (FORBIDDEN_KEYS.has(key)) continue;
      parent[key] = makeFunction(Number(id));
    }
  }
}

function step(container: unknown, key: string | number): unknown {
  if (Array.isArray(container)) {
    const index = toIndex(key);
    return index === undefined ? undefined : container[index];
  }
  if (container === null || typeof container !== "object") return undefined;
  const k = String(key);
  if (FORBIDDEN_KEYS.has(k) || !Object.hasOwn(container, k)) return undefined;
  return (container as Record<string, unknown>)[k];
}

function toIndex(key: string | number): number | undefined {
  if (typeof key === "number") {
    return Number.isInteger(key) && key >= 0 ? key : undefined;
  }
  return /^(0|[1-9][0-9]*)$/.test(key) ? Number(key) : undefined;
}
