/**
 * A contract: a kite's methods as one value both sides import — name,
 * semver version, and per method its argument list and result as zod
 * schemas, which give the static types and the run-time checks.
 *
 * Why zod 4: it infers TypeScript types, reports each problem with its path
 * (needed for `withArgs[0].number: …` messages), and exports JSON Schema
 * draft 2020-12 itself (`z.toJSONSchema`), which `kite.describe` serves.
 * valibot is smaller but needs a second package for JSON Schema; the size
 * matters only to the browser build, and zod stays out of the core because
 * contracts live behind the `./contract` sub-path export.
 *
 * @module
 */
import { z } from "zod";
import { parseSemVer } from "../semver.ts";

/**
 * The part of a schema the contract types read, written out so the public
 * API names no zod type: every zod 4 schema is a `Schema` (`_zod` carries
 * its inferred types). `Out` is what a check yields, `In` what it accepts.
 */
export interface Schema<Out = unknown, In = unknown> {
  /** zod's internals, as far as types go. */
  readonly _zod: SchemaTypes<Out, In>;
}

/** The inferred types and optionality markers of a {@linkcode Schema}. */
export interface SchemaTypes<Out, In> {
  /** The type a successful check yields. */
  readonly output: Out;
  /** The type a check accepts. */
  readonly input: In;
  /** `"optional"`/`"defaulted"` when the value may be left out. */
  readonly optin?: "optional" | "defaulted";
  /** `"optional"` when the checked value may be missing. */
  readonly optout?: "optional";
}

/** What schema `S` yields (`z.output`). */
export type SchemaOutput<S> = S extends Schema<infer O, unknown> ? O : never;
/** What schema `S` accepts (`z.input`). */
export type SchemaInput<S> = S extends Schema<unknown, infer I> ? I : never;

/** The schemas of an argument list, in order. */
export type ArgSchemas = readonly [] | readonly [Schema, ...Schema[]];

/**
 * The values a handler receives for `A` (after validation): trailing
 * optional arguments may be left out, as zod's tuples infer them.
 */
export type ArgsOut<A extends ArgSchemas> = A extends
  readonly [...infer P extends ArgSchemas, infer T extends Schema]
  ? T["_zod"]["optout"] extends "optional" ? [...ArgsOut<P>, SchemaOutput<T>?]
  : { -readonly [K in keyof A]: SchemaOutput<A[K]> }
  : [];

/** The values a caller passes for `A`; trailing optional ones may be left out. */
export type ArgsIn<A extends ArgSchemas> = A extends
  readonly [...infer P extends ArgSchemas, infer T extends Schema]
  ? T["_zod"]["optin"] extends "optional" | "defaulted"
    ? [...ArgsIn<P>, SchemaInput<T>?]
  : { -readonly [K in keyof A]: SchemaInput<A[K]> }
  : [];

/** One method of a contract. */
export interface MethodSpec<
  A extends ArgSchemas = ArgSchemas,
  R extends Schema = Schema,
> {
  /** Schemas of the arguments, in order (the dnode `withArgs` list). */
  readonly args: A;
  /** Schema of the result. */
  readonly result: R;
  /** Safe to run twice: served with `.idempotent()`, so pools may retry it. @default {false} */
  readonly idempotent?: boolean;
  /** Callers must authenticate (when the kite has authentication on). @default {true} */
  readonly authenticate?: boolean;
  /** One line for `kite.describe`. */
  readonly description?: string;
}

/** Methods by name. */
export type MethodSpecs = Record<string, MethodSpec>;

/** A named, versioned set of methods. Create with {@linkcode defineContract}. */
export interface Contract<M extends MethodSpecs = MethodSpecs> {
  /** Contract name, e.g. `"math"`. */
  readonly name: string;
  /** Semver version, e.g. `"1.2.0"`. */
  readonly version: string;
  /** The methods. */
  readonly methods: M;
}

/** What {@linkcode defineContract} takes. */
export interface ContractInit<M extends MethodSpecs> {
  /** Contract name. */
  name: string;
  /** Semver version `x.y.z`. */
  version: string;
  /** The methods. */
  methods: M;
}

/**
 * Defines a contract.
 *
 * @example
 * ```ts ignore
 * import { z } from "zod";
 * import { defineContract, fn } from "jsr:@kite/core/contract";
 * export const math = defineContract({
 *   name: "math",
 *   version: "1.2.0",
 *   methods: {
 *     square: { args: [z.number()], result: z.number(), idempotent: true },
 *     countdown: { args: [z.number(), fn([z.number()])], result: z.null() },
 *   },
 * });
 * ```
 * @throws {TypeError} for an empty name, a version that is not semver, or a
 * method without `args`/`result` schemas.
 */
export function defineContract<const M extends MethodSpecs>(
  init: ContractInit<M>,
): Contract<M> {
  if (!init.name) throw new TypeError("contract name must not be empty");
  if (parseSemVer(init.version) === undefined) {
    throw new TypeError(
      `contract ${init.name}: version must be semver like "1.2.0", got ${
        JSON.stringify(init.version)
      }`,
    );
  }
  for (const [name, spec] of Object.entries(init.methods)) {
    if (
      !Array.isArray(spec?.args) || !(spec.result instanceof z.ZodType) ||
      !spec.args.every((a) => a instanceof z.ZodType)
    ) {
      throw new TypeError(
        `contract ${init.name}: method ${name} needs args (an array of zod schemas) and a result zod schema`,
      );
    }
  }
  return Object.freeze({
    name: init.name,
    version: init.version,
    methods: init.methods,
  });
}

/** A function passed across the wire: called with `A`, its result is not sent back (dnode). */
export type Callback<A extends ArgSchemas> = (...args: ArgsOut<A>) => unknown;

/** The schema {@linkcode fn} makes: a function called with arguments `A`. */
export interface CallbackSchema<A extends ArgSchemas>
  extends Schema<Callback<A>, Callback<A>> {
  /** The schemas of the arguments the function is called with. */
  readonly callbackArgs: A;
}

/** The argument schemas of the functions made by {@linkcode fn}. */
const callbackArgs = new WeakMap<object, ArgSchemas>();

/**
 * A function schema: a callback in an argument list or a result, with the
 * schemas of the arguments it is called with. The check of the value is
 * "is a function"; the values it is called with are checked when the call
 * arrives (by `typed()` for callbacks a client passes, by `implement()`
 * for functions a handler returns), and shown by `kite.describe`.
 * Use it at an argument or result position (or inside another `fn`), not
 * nested in a `z.object`.
 */
export function fn<const A extends ArgSchemas>(args: A): CallbackSchema<A> {
  const schema = z.custom<Callback<A>>(
    (v) => typeof v === "function",
    { error: "expected function" },
  );
  callbackArgs.set(schema, args);
  return Object.assign(schema, { callbackArgs: args });
}

/** The argument schemas of a {@linkcode fn} schema, or `undefined`. */
export function callbackArgsOf(schema: Schema): ArgSchemas | undefined {
  return callbackArgs.get(schema);
}

/** The zod schema behind a contract's {@linkcode Schema}. */
export function zodOf(schema: Schema): z.ZodType {
  return schema as unknown as z.ZodType;
}

/** The tuple schema checking a method's whole argument list. */
export function argsSchema(spec: MethodSpec): z.ZodType {
  return z.tuple(spec.args.map(zodOf) as [z.ZodType, ...z.ZodType[]]);
}
