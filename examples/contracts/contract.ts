/**
 * The contract both sides import: the kite that serves it
 * (`server.ts`) and the kites that call it (`client.ts`). One value gives
 * the types, the run-time checks and what `kite.describe` tells.
 *
 * @module
 */
import { z } from "zod";
import { defineContract, fn } from "../../kite/contract/mod.ts";

/** A calculator: plain values, an object, a callback. */
export const calculator = defineContract({
  name: "calculator",
  version: "1.0.0",
  methods: {
    square: {
      args: [z.number()],
      result: z.number(),
      idempotent: true,
      description: "n squared",
    },
    divide: {
      args: [z.object({ dividend: z.number(), divisor: z.number() })],
      result: z.object({ quotient: z.number(), remainder: z.number() }),
    },
    countdown: {
      args: [z.number().int().min(0).max(100), fn([z.number()])],
      result: z.literal("liftoff"),
      description: "calls back with each number from n down to 0",
    },
  },
});
