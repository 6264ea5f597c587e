/**
 * Run-time checks of callbacks: the values the far side calls one of our
 * functions with are checked against the argument schemas of its
 * {@linkcode fn} schema before the function runs. A dnode callback has no
 * reply (docs/protocol.md §3.1), so a bad call cannot be answered: it is
 * dropped and reported.
 *
 * @module
 */
import { KiteError } from "../errors.ts";
import {
  type ArgSchemas,
  argsSchema,
  callbackArgsOf,
  type Schema,
} from "./contract.ts";
import { issuesText } from "./issues.ts";
import { z } from "zod";

/** Told about each callback call dropped for bad arguments. */
export type CallbackErrorHandler = (error: KiteError) => void;

type AnyFn = (...args: unknown[]) => unknown;

/** Tuple checkers per argument list, made once. */
const checkers = new WeakMap<ArgSchemas, z.ZodType>();

function checkerOf(args: ArgSchemas): z.ZodType {
  let c = checkers.get(args);
  if (!c) {
    c = argsSchema({ args, result: z.unknown() });
    checkers.set(args, c);
  }
  return c;
}

/**
 * Wraps `value`, a function of ours handed to the far side where `schema`
 * (a {@linkcode fn} schema) stands, so that each call it receives is
 * checked first; a bad call is dropped and given to `report` as an
 * `argumentError` naming `where` and the argument's path. Any other value
 * is returned as is.
 */
export function guardLocal(
  value: unknown,
  schema: Schema | undefined,
  where: string,
  report: CallbackErrorHandler,
): unknown {
  const args = schema && callbackArgsOf(schema);
  if (!args || typeof value !== "function") return value;
  const check = checkerOf(args);
  const local = value as AnyFn;
  return (...received: unknown[]) => {
    const parsed = check.safeParse(received);
    if (!parsed.success) {
      report(
        new KiteError(
          "argumentError",
          `callback ${where} called with bad arguments: ${
            issuesText("withArgs", received, parsed.error.issues)
          }`,
        ),
      );
      return undefined;
    }
    const values = (parsed.data as unknown[]).map((v, i) =>
      guardRemote(v, args[i], `${where}.withArgs[${i}]`, report)
    );
    return local(...values);
  };
}

/**
 * Wraps `value`, a function of the far side's where `schema` stands, so
 * that functions of ours passed to it are guarded ({@linkcode guardLocal}).
 */
export function guardRemote(
  value: unknown,
  schema: Schema | undefined,
  where: string,
  report: CallbackErrorHandler,
): unknown {
  const args = schema && callbackArgsOf(schema);
  if (!args || typeof value !== "function") return value;
  const remote = value as AnyFn;
  return (...sent: unknown[]) =>
    remote(
      ...sent.map((v, i) =>
        guardLocal(v, args[i], `${where}.withArgs[${i}]`, report)
      ),
    );
}

/** True when some schema of `args` is a {@linkcode fn} schema. */
export function hasCallbacks(args: ArgSchemas): boolean {
  return args.some((a) => callbackArgsOf(a) !== undefined);
}
