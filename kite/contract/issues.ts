/**
 * Turns zod's issues into the messages kites already send for bad
 * arguments (`withArgs[0].number: expected number, got string`), the shape
 * `Args` uses (kite/args.ts).
 *
 * @module
 */
import type { z } from "zod";

/** At most this many problems are named in one message. */
const MAX_ISSUES = 3;

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function pathText(root: string, path: readonly PropertyKey[]): string {
  let s = root;
  for (const key of path) {
    s += typeof key === "number" ? `[${key}]` : `.${String(key)}`;
  }
  return s;
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const key of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = Object.hasOwn(v, key)
      ? (v as Record<PropertyKey, unknown>)[key]
      : undefined;
  }
  return v;
}

/** One line naming each problem's path under `root` (at most three). */
export function issuesText(
  root: string,
  value: unknown,
  issues: readonly z.core.$ZodIssue[],
): string {
  const parts = issues.slice(0, MAX_ISSUES).map((issue) => {
    const where = pathText(root, issue.path);
    if (
      issue.code === "invalid_type" ||
      (issue.code === "custom" && issue.message === "expected function")
    ) {
      const expected = issue.code === "invalid_type"
        ? issue.expected
        : "function";
      const got = typeName(valueAt(value, issue.path));
      return `${where}: expected ${expected}, got ${got}`;
    }
    if (
      (issue.code === "too_big" || issue.code === "too_small") &&
      issue.origin === "array" && issue.path.length === 0 && root === "withArgs"
    ) {
      const n = Array.isArray(value) ? value.length : 0;
      return `${where}: expected ${
        issue.code === "too_big" ? "at most" : "at least"
      } ${
        issue.code === "too_big" ? issue.maximum : issue.minimum
      } arguments, got ${n}`;
    }
    return `${where}: ${issue.message}`;
  });
  const more = issues.length - parts.length;
  return parts.join("; ") + (more > 0 ? ` (and ${more} more)` : "");
}
