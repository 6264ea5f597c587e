/**
 * Typed contracts: a kite's methods as one TypeScript value, written once
 * and imported by the kite that serves it and the kites that call it.
 * Types are inferred from zod schemas, arguments are checked at run time,
 * and a serving kite describes its contracts as JSON Schema
 * (`kite.describe`, `GET /kite/describe`). No code generation; the wire
 * format is unchanged, so Go kites and kite.js call contract methods as any
 * other.
 *
 * @example
 * ```ts ignore
 * import { z } from "zod";
 * import { Kite } from "jsr:@kite/core";
 * import { defineContract, implement, typed } from "jsr:@kite/core/contract";
 *
 * const math = defineContract({
 *   name: "math",
 *   version: "1.0.0",
 *   methods: { square: { args: [z.number()], result: z.number() } },
 * });
 * const server = new Kite("math", "1.0.0");
 * implement(server, math, { square: (n) => n * n });
 *
 * const client = new Kite("caller", "1.0.0").newClient(server.url);
 * await client.dial();
 * const n: number = await typed(client, math).square(4);
 * ```
 *
 * @module
 */
export { callbackArgsOf, defineContract, fn } from "./contract.ts";
export { implement } from "./implement.ts";
export {
  checkContract,
  dialTyped,
  incompatibility,
  typed,
} from "./typed_client.ts";
export {
  CALLBACK_KEYWORD,
  DESCRIBE_METHOD,
  DESCRIBE_PATH,
  describeKite,
  jsonSchema,
} from "./describe.ts";

export type {
  ArgSchemas,
  ArgsIn,
  ArgsOut,
  Callback,
  CallbackSchema,
  Contract,
  ContractInit,
  MethodSpec,
  MethodSpecs,
  Schema,
  SchemaInput,
  SchemaOutput,
  SchemaTypes,
} from "./contract.ts";
export type {
  ContractHandler,
  ContractHandlers,
  ImplementOptions,
} from "./implement.ts";
export type { CallbackErrorHandler } from "./callbacks.ts";
export type {
  DialingTeller,
  Teller,
  Typed,
  TypedMethod,
  TypedOptions,
} from "./typed_client.ts";
export type {
  ContractDescription,
  KiteDescription,
  MethodDescription,
} from "./describe.ts";
