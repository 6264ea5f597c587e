/**
 * Introspection: the contracts a kite serves, as JSON Schema draft
 * 2020-12, answered by the `kite.describe` method and `GET /kite/describe`.
 *
 * @module
 */
import { z } from "zod";
import type { Kite } from "../kite.ts";
import {
  type ArgSchemas,
  argsSchema,
  callbackArgsOf,
  type Contract,
  type Schema,
  zodOf,
} from "./contract.ts";

/** The method a contract-serving kite answers with {@linkcode KiteDescription}. */
export const DESCRIBE_METHOD = "kite.describe";
/** The HTTP path answering the same document. */
export const DESCRIBE_PATH = "/kite/describe";
/** Marks a callback in a schema; its value lists the callback's argument schemas. */
export const CALLBACK_KEYWORD = "x-kite-callback";

/** One method as `kite.describe` tells it. */
export interface MethodDescription {
  /** JSON Schema of the argument list (an array). */
  args: Record<string, unknown>;
  /** JSON Schema of the result. */
  result: Record<string, unknown>;
  /** Safe to retry (served with `.idempotent()`). */
  idempotent: boolean;
  /** Calls must carry credentials the kite accepts. */
  authentication: boolean;
  /** The contract's one-line description, if any. */
  description?: string;
}

/** One served contract. */
export interface ContractDescription {
  /** Contract name. */
  name: string;
  /** Contract version (semver). */
  version: string;
  /** Methods by name. */
  methods: Record<string, MethodDescription>;
}

/** What `kite.describe` answers. */
export interface KiteDescription {
  /** The kite's name and version. */
  kite: { name: string; version: string };
  /** The contracts it serves. */
  contracts: ContractDescription[];
}

const served = new WeakMap<Kite, Contract[]>();

/** JSON Schema of one zod schema; callbacks carry their argument schemas. */
export function jsonSchema(schema: Schema): Record<string, unknown> {
  return z.toJSONSchema(zodOf(schema), {
    target: "draft-2020-12",
    unrepresentable: "any",
    override: (ctx) => {
      const json = ctx.jsonSchema as Record<string, unknown>;
      // zod writes `prefixItems: []` for an empty tuple, which draft
      // 2020-12 forbids (minItems 1); `items: false` already says it all.
      if (Array.isArray(json.prefixItems) && json.prefixItems.length === 0) {
        delete json.prefixItems;
      }
      const args = callbackArgsOf(ctx.zodSchema as unknown as Schema);
      if (!args) return;
      json[CALLBACK_KEYWORD] = callbackArgsJson(args);
    },
  }) as Record<string, unknown>;
}

function callbackArgsJson(args: ArgSchemas): Record<string, unknown> {
  const json = jsonSchema(argsSchema({ args, result: z.unknown() }));
  delete json.$schema;
  return json;
}

/** Describes the contracts served by `kite`. */
export function describeKite(kite: Kite): KiteDescription {
  const contracts = (served.get(kite) ?? []).map((c) =>
    describeContract(kite, c)
  );
  return { kite: { name: kite.name, version: kite.version }, contracts };
}

/** JSON Schemas by contract and method: made once, since any caller may ask. */
const schemas = new WeakMap<
  Contract,
  Map<
    string,
    { args: Record<string, unknown>; result: Record<string, unknown> }
  >
>();

function schemasOf(c: Contract) {
  let known = schemas.get(c);
  if (!known) {
    known = new Map();
    for (const [name, spec] of Object.entries(c.methods)) {
      known.set(name, {
        args: jsonSchema(argsSchema(spec)),
        result: jsonSchema(spec.result),
      });
    }
    schemas.set(c, known);
  }
  return known;
}

function describeContract(kite: Kite, c: Contract): ContractDescription {
  const methods: Record<string, MethodDescription> = {};
  const known = schemasOf(c);
  for (const [name, spec] of Object.entries(c.methods)) {
    const m = kite.method(name);
    // Copies: a caller in this process may change what it was given.
    const { args, result } = structuredClone(known.get(name)!);
    methods[name] = {
      args,
      result,
      idempotent: m?.isIdempotent ?? false,
      authentication: (m?.authenticate ?? true) &&
        !kite.config.disableAuthentication,
      ...(spec.description ? { description: spec.description } : {}),
    };
  }
  return { name: c.name, version: c.version, methods };
}

/** Records `contract` as served; the first one mounts the describe method and route. */
export function serveDescribe(kite: Kite, contract: Contract): void {
  // Sent with each registration, so getKites can filter on it.
  kite.contracts.push({ name: contract.name, version: contract.version });
  const list = served.get(kite);
  if (list) {
    list.push(contract);
    return;
  }
  served.set(kite, [contract]);
  // Unauthenticated like kite.idempotent: callers read it before they can
  // know which credentials a method wants.
  kite.handle(DESCRIBE_METHOD, () => describeKite(kite)).idempotent()
    .disableAuthentication();
  kite.handleHTTP(DESCRIBE_PATH, (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("use GET\n", {
        status: 405,
        headers: { allow: "GET, HEAD" },
      });
    }
    return Response.json(describeKite(kite));
  });
}
