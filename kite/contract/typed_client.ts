/**
 * Calling a contract: an object whose methods are the contract's, typed
 * from its schemas, sending plain `tell` calls over the usual wire format.
 *
 * @module
 */
import { satisfiesRange } from "../semver.ts";
import { KiteError } from "../errors.ts";
import type { Logger } from "../log.ts";
import {
  type ArgSchemas,
  type ArgsIn,
  callbackArgsOf,
  type Contract,
  type MethodSpec,
  type MethodSpecs,
  type SchemaOutput,
} from "./contract.ts";
import {
  type CallbackErrorHandler,
  guardLocal,
  guardRemote,
  hasCallbacks,
} from "./callbacks.ts";
import { DESCRIBE_METHOD, type KiteDescription } from "./describe.ts";

/** Anything that calls methods by name: a `Client` or a `KitePool`. */
export interface Teller {
  /** Calls `method` with `args`; resolves with the result. */
  tell(method: string, ...args: unknown[]): Promise<unknown>;
}

/** A connection (a `Client`): the version is checked on each (re)connection. */
export interface DialingTeller extends Teller {
  /** True while connected. */
  readonly connected: boolean;
  /** Opens the connection. */
  dial(): Promise<void>;
  /** Calls `fn` on every (re)connection; returns an unsubscribe function. */
  onConnect(fn: () => void): () => void;
  /** The local kite, whose logger is told about dropped callback calls. */
  readonly localKite?: { readonly logger: Logger };
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
   * Ask the kite (`kite.describe`) which version of the contract it serves
   * and fail every call with a clear error when it is not compatible
   * (other major version, or older than this client's). On a connection
   * (`Client`) the question is asked as soon as it connects, and again
   * after each reconnection; on a pool, before the first call.
   * Turn off to call kites that cannot describe themselves (Go, kite.js).
   * @default {true}
   */
  checkVersion?: boolean;
  /**
   * Told about each call of one of our callbacks that the far side made
   * with arguments its {@linkcode fn} schema refuses (the call is dropped:
   * a dnode callback has no reply to carry an error).
   * @default {logs the error with the local kite's logger, else console.error}
   */
  onCallbackError?: CallbackErrorHandler;
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
  if (!satisfiesRange(found.version, range)) {
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

/** Version checks per connection and contract: one per pair, redone on reconnect. */
const checks = new WeakMap<DialingTeller, Map<Contract, () => Promise<void>>>();

function isDialing(target: Teller): target is DialingTeller {
  const t = target as Partial<DialingTeller>;
  return typeof t.onConnect === "function" && typeof t.connected === "boolean";
}

/**
 * The version check of `contract` on `target`, shared by every typed view
 * of that pair. A failed check (say, a lost connection) is asked again on
 * the next call; a mismatch fails every call the same way until the next
 * connection.
 */
function versionCheck(
  target: Teller,
  contract: Contract,
): () => Promise<void> {
  const byContract = isDialing(target) ? checks.get(target) : undefined;
  const known = byContract?.get(contract);
  if (known) return known;
  let checked: Promise<void> | undefined;
  const start = (): Promise<void> => {
    const p: Promise<void> = checkContract(target, contract).catch((err) => {
      const mismatch = err instanceof KiteError && err.type === "genericError";
      if (!mismatch && checked === p) checked = undefined;
      throw err;
    });
    // Calls await it and see its error; a check no call awaits is not an
    // unhandled rejection.
    p.catch(() => {});
    return checked = p;
  };
  const check = () => checked ?? start();
  if (isDialing(target)) {
    let map = checks.get(target);
    if (!map) checks.set(target, map = new Map());
    map.set(contract, check);
    // A reconnection may reach a redeployed kite: ask again, at once.
    target.onConnect(() => void start());
    if (target.connected) start();
  }
  return check;
}

function defaultReport(target: Teller): CallbackErrorHandler {
  const logger = isDialing(target) ? target.localKite?.logger : undefined;
  return (err) =>
    logger ? logger.error(err.message) : console.error(err.message);
}

/**
 * Dials `client`, then checks at once that it serves a version of
 * `contract` this client can call, and returns the typed methods: an
 * incompatible kite (say, 2.0 for a client built against 1.2) fails here,
 * at dial time, not at the first call.
 * @throws {KiteError} `sendError` when the dial fails; `genericError`
 * `contract mismatch: …` naming both versions.
 */
export async function dialTyped<M extends MethodSpecs>(
  client: DialingTeller,
  contract: Contract<M>,
  options: TypedOptions = {},
): Promise<Typed<M>> {
  await client.dial();
  const methods = typed(client, contract, options);
  if (options.checkVersion !== false) {
    await versionCheck(client, contract)();
  }
  return methods;
}

/**
 * The contract's methods on `target` (a dialed `Client` or a `KitePool`):
 * `await typed(client, math).square(4)` is a `number`. Functions passed
 * where the contract has a {@linkcode fn} schema are guarded: the values
 * the far side calls them with are checked first (see `onCallbackError`).
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
  const check = options.checkVersion === false
    ? () => Promise.resolve()
    : versionCheck(target, contract);
  const report = options.onCallbackError ?? defaultReport(target);
  const out: Record<string, (...a: unknown[]) => Promise<unknown>> = {};
  for (const [name, spec] of Object.entries(contract.methods)) {
    const guardArgs = hasCallbacks(spec.args);
    const guardResult = callbackArgsOf(spec.result) !== undefined;
    out[name] = async (...args) => {
      await check();
      const sent = guardArgs
        ? args.map((a, i) =>
          guardLocal(a, spec.args[i], `${name}.withArgs[${i}]`, report)
        )
        : args;
      const result = await target.tell(name, ...sent);
      return guardResult
        ? guardRemote(result, spec.result, `${name}.result`, report)
        : result;
    };
  }
  return Object.freeze(out) as Typed<M>;
}
