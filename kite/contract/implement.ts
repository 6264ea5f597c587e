/**
 * Serving a contract: each method becomes a kite method whose arguments
 * are checked before its handler runs.
 *
 * @module
 */
import { KiteError } from "../errors.ts";
import type { Kite } from "../kite.ts";
import type { Logger } from "../log.ts";
import type { Request } from "../request.ts";
import {
  type ArgSchemas,
  type ArgsOut,
  argsSchema,
  callbackArgsOf,
  type Contract,
  type MethodSpec,
  type MethodSpecs,
  type SchemaInput,
  zodOf,
} from "./contract.ts";
import { issuesText } from "./issues.ts";
import { guardLocal, guardRemote, hasCallbacks } from "./callbacks.ts";
import { serveDescribe } from "./describe.ts";

/** A handler of method `S`: its checked arguments, then the request. */
export type ContractHandler<S extends MethodSpec> = S extends
  MethodSpec<infer A extends ArgSchemas, infer R> ? (
    ...args: [...ArgsOut<A>, Request]
  ) => SchemaInput<R> | Promise<SchemaInput<R>>
  : never;

/** One handler per method of the contract, nothing else. */
export type ContractHandlers<M extends MethodSpecs> = {
  [K in keyof M]: ContractHandler<M[K]>;
};

/** Options of {@linkcode implement}. */
export interface ImplementOptions {
  /**
   * Check each result against the contract before sending it; a mismatch
   * answers `genericError` and is logged (a bug of this kite, never
   * "fixed" by coercion). On unless the kite's environment is `production`.
   * @default {kite.config.environment !== "production"}
   */
  validateResults?: boolean;
}

/**
 * Serves `contract` on `kite` with `handlers`: registers one kite method
 * per contract method (same names, same wire format, so Go kites and
 * kite.js call them as any other), validates arguments before the handler
 * runs (a mismatch answers `argumentError` naming the path) and makes the
 * kite answer `kite.describe` and `GET /kite/describe`.
 *
 * @example
 * ```ts ignore
 * implement(kite, math, { square: (n) => n * n });
 * ```
 * @throws {TypeError} when a handler is missing or a method name is
 * already taken on the kite.
 */
export function implement<M extends MethodSpecs>(
  kite: Kite,
  contract: Contract<M>,
  handlers: ContractHandlers<M>,
  options: ImplementOptions = {},
): void {
  const validateResults = options.validateResults ??
    kite.config.environment !== "production";
  const names = Object.keys(contract.methods);
  for (const name of names) {
    if (typeof (handlers as Record<string, unknown>)[name] !== "function") {
      throw new TypeError(
        `contract ${contract.name}: no handler for method ${name}`,
      );
    }
    if (kite.method(name)) {
      throw new TypeError(
        `contract ${contract.name}: method ${name} is already handled by kite ${kite.name}`,
      );
    }
  }
  for (const name of names) {
    const spec = contract.methods[name];
    const handler = (handlers as Record<string, (...a: unknown[]) => unknown>)[
      name
    ];
    const method = kite.handle(
      name,
      checked(
        name,
        spec,
        guarded(name, spec, handler, kite),
        validateResults ? kite.logger : undefined,
      ),
    );
    if (spec.idempotent) method.idempotent();
    if (spec.authenticate === false) method.disableAuthentication();
  }
  serveDescribe(kite, contract);
}

/**
 * `handler` with the functions it meets guarded (./callbacks.ts): the
 * far side's callbacks among its arguments, so the functions it passes
 * them are checked when called, and a function it returns, whose calls
 * are checked before it runs. Bad calls are logged: they have no reply.
 */
function guarded(
  name: string,
  spec: MethodSpec,
  handler: (...a: unknown[]) => unknown,
  kite: Kite,
): (...a: unknown[]) => unknown {
  const guardArgs = hasCallbacks(spec.args);
  const guardResult = callbackArgsOf(spec.result) !== undefined;
  if (!guardArgs && !guardResult) return handler;
  const report = (err: KiteError) => kite.logger.error(err.message);
  const wrap = (result: unknown) =>
    guardLocal(result, spec.result, `${name}.result`, report);
  return (...a) => {
    const args = guardArgs
      ? a.map((v, i) =>
        i < spec.args.length
          ? guardRemote(v, spec.args[i], `${name}.withArgs[${i}]`, report)
          : v
      )
      : a;
    const result = handler(...args);
    if (!guardResult) return result;
    return result instanceof Promise ? result.then(wrap) : wrap(result);
  };
}

function checked(
  name: string,
  spec: MethodSpec,
  handler: (...a: unknown[]) => unknown,
  /** Where broken results are told; `undefined`: results are not checked. */
  logger: Logger | undefined,
): (req: Request) => unknown {
  const args = argsSchema(spec);
  const arity = spec.args.length;
  const run = (req: Request): unknown => {
    const raw = req.args.raw;
    const parsed = args.safeParse(raw);
    if (!parsed.success) {
      throw new KiteError(
        "argumentError",
        issuesText("withArgs", raw, parsed.error.issues),
      );
    }
    const values = parsed.data as unknown[];
    // Missing optional arguments still leave the request at its place.
    const padded = values.length === arity
      ? values
      : [...values, ...Array(arity - values.length)];
    return handler(...padded, req);
  };
  if (!logger) return run;
  const check = (result: unknown): unknown => {
    const ok = zodOf(spec.result).safeParse(result);
    if (ok.success) return result; // the handler's value, never the parsed one
    const err = new KiteError(
      "genericError",
      `${name} broke its contract: ${
        issuesText("result", result, ok.error.issues)
      }`,
    );
    logger.error(err.message);
    throw err;
  };
  return (req) => {
    const result = run(req);
    return result instanceof Promise ? result.then(check) : check(result);
  };
}
