/**
 * What kitectl does with a kite's `kite.describe` (README "Typed
 * contracts"): render its JSON Schemas as short type text for
 * `kitectl describe`, and check `kitectl tell`'s arguments against them
 * before the call is sent.
 *
 * @module
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ErrorObject } from "ajv";
import {
  CALLBACK_KEYWORD,
  type ContractDescription,
  DESCRIBE_METHOD,
  type KiteDescription,
  type MethodDescription,
} from "../kite/contract/mod.ts";
import { KiteError } from "../mod.ts";
import type { Tell } from "./target.ts";

/** The key that marks a callback in a JSON argument (see `tell`). */
export const CALLBACK_MARKER = "$fn";

type Json = Record<string, unknown>;

/** A JSON Schema as one line of TypeScript-like text: `{a: number, b?: string}`. */
export function schemaText(schema: unknown, depth = 0): string {
  if (schema === true || schema === undefined) return "any";
  if (schema === false) return "never";
  if (schema === null || typeof schema !== "object") return "?";
  if (depth > 8) return "…";
  const s = schema as Json;
  const inner = (x: unknown) => schemaText(x, depth + 1);
  const callback = s[CALLBACK_KEYWORD] as Json | undefined;
  if (callback) return `fn(${tupleText(callback, depth + 1)})`;
  if ("const" in s) return JSON.stringify(s.const);
  if (Array.isArray(s.enum)) {
    return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  }
  for (const key of ["anyOf", "oneOf"]) {
    if (Array.isArray(s[key])) {
      return (s[key] as unknown[]).map(inner).join(" | ");
    }
  }
  const type = s.type;
  if (Array.isArray(type)) return type.join(" | ");
  if (type === "array") {
    return Array.isArray(s.prefixItems) || s.items === false
      ? `[${tupleText(s, depth)}]`
      : `${inner(s.items)}[]`;
  }
  if (type === "object") {
    const props = (s.properties ?? {}) as Json;
    const required = new Set((s.required ?? []) as string[]);
    const fields = Object.entries(props).map(([k, v]) =>
      `${k}${required.has(k) ? "" : "?"}: ${inner(v)}`
    );
    return `{${fields.join(", ")}}`;
  }
  if (typeof type === "string") return type;
  return "any";
}

/** The items of an array schema as `a, b?` (optional past `minItems`). */
function tupleText(s: Json, depth: number): string {
  const items = Array.isArray(s.prefixItems) ? s.prefixItems : [];
  const min = typeof s.minItems === "number" ? s.minItems : items.length;
  return items.map((item, i) =>
    `${schemaText(item, depth + 1)}${i >= min ? "?" : ""}`
  ).join(", ");
}

/** `name(args) -> result`, for one method. */
export function methodText(name: string, m: MethodDescription): string {
  const flags = [
    m.idempotent ? "idempotent" : "",
    m.authentication ? "" : "no auth",
  ].filter(Boolean);
  return `${name}(${tupleText(m.args, 0)}) -> ${schemaText(m.result)}${
    flags.length ? `  [${flags.join(", ")}]` : ""
  }${m.description ? `  ${m.description}` : ""}`;
}

/** `instancePath` `/0/b` as `withArgs[0].b`. */
function pathText(instancePath: string): string {
  let s = "withArgs";
  for (const part of instancePath.split("/").slice(1)) {
    const key = part.replaceAll("~1", "/").replaceAll("~0", "~");
    s += /^\d+$/.test(key) ? `[${key}]` : `.${key}`;
  }
  return s;
}

function errorText(e: ErrorObject): string {
  if (e.keyword === CALLBACK_KEYWORD) {
    return `${
      pathText(e.instancePath)
    }: expected a function, written {"${CALLBACK_MARKER}":"label"}`;
  }
  return `${pathText(e.instancePath)}: ${e.message ?? e.keyword}`;
}

/**
 * Checks `args` (parsed JSON, callbacks still as `{"$fn": …}`) against the
 * method's argument schema.
 * @returns one line naming each problem, or `undefined` when they fit.
 */
export function argsProblem(
  method: MethodDescription,
  args: unknown[],
): string | undefined {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addKeyword({
    keyword: CALLBACK_KEYWORD,
    schemaType: "object",
    validate: (_: unknown, data: unknown) =>
      data !== null && typeof data === "object" &&
      Object.hasOwn(data, CALLBACK_MARKER),
  });
  const schema = { ...method.args };
  delete schema.$schema;
  let validate;
  try {
    validate = ajv.compile(schema);
  } catch {
    return undefined; // a schema we cannot read: the kite checks anyway
  }
  if (validate(args)) return undefined;
  const errors = validate.errors ?? [];
  return errors.slice(0, 3).map(errorText).join("; ") +
    (errors.length > 3 ? ` (and ${errors.length - 3} more)` : "");
}

/** The contract declaring `method` in `description`, if any. */
export function findMethod(
  description: KiteDescription,
  method: string,
): { contract: ContractDescription; spec: MethodDescription } | undefined {
  for (const contract of description.contracts ?? []) {
    const spec = contract.methods?.[method];
    if (spec) return { contract, spec };
  }
  return undefined;
}

/**
 * Asks the kite to describe itself; `undefined` when it cannot (a Go kite
 * or kite.js has no `kite.describe`), so the call goes unchecked.
 */
export async function describeOf(
  tell: Tell,
): Promise<KiteDescription | undefined> {
  try {
    const d = await tell(DESCRIBE_METHOD);
    return d && typeof d === "object" ? d as KiteDescription : undefined;
  } catch (err) {
    if (err instanceof KiteError && err.type === "methodNotFound") {
      return undefined;
    }
    throw err;
  }
}

/**
 * Checks `args` for `method` against the kite's contract, when it has one.
 * @throws {Error} one line naming the method, the contract and the bad
 * argument's path, before anything is sent.
 */
export async function checkTellArgs(
  tell: Tell,
  method: string,
  args: unknown[],
): Promise<void> {
  let description: KiteDescription | undefined;
  try {
    description = await describeOf(tell);
  } catch {
    // Whatever stops the kite describing itself (a peer that answers
    // unknown methods another way, a slow instance) leaves the call
    // unchecked; the call itself reports what is wrong with the kite.
    return;
  }
  const found = description && findMethod(description, method);
  if (!found) return;
  const problem = argsProblem(found.spec, args);
  if (problem) {
    throw new Error(
      `${method} (contract ${found.contract.name}@${found.contract.version}): ${problem}; nothing was sent`,
    );
  }
}
