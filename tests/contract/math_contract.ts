/**
 * The contract the contract tests serve and call: plain values, an
 * object argument, an optional argument, a callback and a function result.
 *
 * @module
 */
import { z } from "zod";
import type { Kite } from "../../kite/kite.ts";
import { defineContract, fn, implement } from "../../kite/contract/mod.ts";

/** Builds the test contract at `version`. */
export function mathContract<V extends string>(version: V) {
  return defineContract({
    name: "math",
    version,
    methods: {
      square: {
        args: [z.number()],
        result: z.number(),
        idempotent: true,
        description: "n squared",
      },
      add: {
        args: [z.object({ a: z.number(), b: z.number() })],
        result: z.number(),
      },
      greet: {
        args: [z.string(), z.string().optional()],
        result: z.string(),
        authenticate: false,
      },
      countdown: {
        args: [z.number().int().min(0).max(10), fn([z.number()])],
        result: z.null(),
      },
      adder: {
        args: [z.number()],
        result: fn([z.number(), fn([z.number()])]),
      },
      broken: { args: [], result: z.number() },
    },
  });
}

/** Version 1.2.0 of the test contract. */
export const math = mathContract("1.2.0");

/** Serves version `version` of the test contract on `kite` with trivial handlers. */
export function serveMath(kite: Kite, version: string): void {
  implement(kite, mathContract(version), {
    square: (n) => n * n,
    add: ({ a, b }) => a + b,
    greet: (s) => s,
    countdown: () => null,
    adder: () => () => {},
    broken: () => 0,
  });
}
