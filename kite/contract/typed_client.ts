/**
 * Calling a contract: an object whose methods are the contract's, typed
 * from its schemas, sending plain `tell` calls over the usual wire format.
 *
 * @module
 */
import semver from "semver";
import { KiteError } from "../errors.ts";
import type {
  ArgSchemas,
  ArgsIn,
  Contract,
  MethodSpec,
  MethodSpecs,
  SchemaOutput,
} from "./contract.ts";
import { DESCRIBE_METHOD, type KiteDescription } from "./describe.ts";

/** Anything that calls methods by name: a `Client` or a `KitePool`. */
export interface Teller {
  /** Calls `method` with `args`; resolves with the result. */
  tell(method: string, ...args: unknown[]): Promise<unknown>;
}

/** The typed method of spec `S`. */
export type TypedMethod<S extends MethodSpec> = S extends
  MethodSpec<infer A extends ArgSchemas, infer R>
  ? (...args: ArgsIn<A>) => Promise<SchemaOutput<R>>
  : never;

/** The contract's methods, typed. */
export type Typed<M extends MethodSpecs> = {
  readonly [K in keyof M]: TypedMethod<M[K]>;
};

/** Options of {@linkcode typed}. */
export interface TypedOptions {
  /**
   * Before the first call, ask the kite (`kite.describe`) which version of
   * the contract it serves and fail every call with a clear error when it
   * is not compatible (other major version, or older than this client's).
   * Turn off to call kites that cannot describe themselves (Go, kite.js).
   * @default {true}
   */
  checkVersion?: boolean;
}

/**
 * Why `description` cannot serve `contract` to a client built against it,
 * or `undefined` when it can: same major version (same minor for 0.x), not older.
 */
export function incompatibility(
  contract: Contract,
  description: KiteDescription,
): string | undefined {
  const found = description.contracts?.find?.((c) => c.name === contract.name);
  const who = `kite ${description.kite?.name}`;
  if (!found) {
    return `${who} does not serve contract ${contract.name} (it serves: ${
      description.contracts?.map((c) => `${c.name}@${c.version}`).join(", ") ||
      "none"
    })`;
  }
  const range = `^${contract.version}`;
  if (!semver.valid(found.version) || !semver.satisfies(found.version, range)) {
    return `${who} serves contract ${contract.name}@${found.version}, which a client built against ${contract.version} cannot call (needs ${range})`;
  }
  return undefined;
}

/**
 * Checks once that `target` serves a version of `contract` this client can
 * call, by asking `kite.describe`.
 * @throws {KiteError} `genericError` naming both versions, or why the
 * kite could not tell.
 */
export async function checkContract(
  target: Teller,
  contract: Contract,
): Promise<void> {
  let description: KiteDescription;
  try {
    description = await target.tell(DESCRIBE_METHOD) as KiteDescription;
  } catch (err) {
    if (err instanceof KiteError && err.type === "methodNotFound") {
      throw new KiteError(
        "genericError",
        `contract ${contract.name}: the kite does not answer ${DESCRIBE_METHOD}, so its version cannot be checked; pass { checkVersion: false } to call it anyway`,
        { cause: err },
      );
    }
    throw err;
  }
  const problem = description && typeof description === "object"
    ? incompatibility(contract, description)
    : `${DESCRIBE_METHOD} answered ${typeof description}, not a description`;
  if (problem) {
    throw new KiteError("genericError", `contract mismatch: ${problem}`);
  }
}

/**
 * The contract's methods on `target` (a dialed `Client` or a `KitePool`):
 * `await typed(client, math).square(4)` is a `number`.
 *
 * @example
 * ```ts ignore
 * const m = typed(client, math);
 * const n: number = await m.square(4);
 * ```
 */
export function typed<M extends MethodSpecs>(
  target: Teller,
  contract: Contract<M>,
  options: TypedOptions = {},
): Typed<M> {
  let checked: Promise<void> | undefined;
  const check = options.checkVersion === false
    ? () => Promise.resolve()
    : () => {
      // A failed check (say, a lost connection) is asked again next call;
      // a mismatch fails every call the same way.
      checked ??= checkContract(target, contract).catch((err) => {
        if (!(err instanceof KiteError && err.type === "genericError")) {
          checked = undefined;
        }
        throw err;
      });
      return checked;
    };
  const out: Record<string, (...a: unknown[]) => Promise<unknown>> = {};
  for (const name of Object.keys(contract.methods)) {
    out[name] = async (...args) => {
      await check();
      return target.tell(name, ...args);
    };
  }
  return Object.freeze(out) as Typed<M>;
}
