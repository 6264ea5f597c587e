/**
 * Serves the calculator contract: the handlers are typed from it, and
 * arguments are checked before they run.
 *
 *     deno task contracts:server [port]
 *
 * @module
 */
import { Kite, KiteError, type KiteOptions } from "../../mod.ts";
import { implement } from "../../kite/contract/mod.ts";
import { calculator } from "./contract.ts";

/** The calculator kite, not yet serving. */
export function calculatorKite(options: KiteOptions = {}): Kite {
  const kite = new Kite("calculator", "1.0.0", {
    ...options,
    config: { disableAuthentication: true, ...options.config },
  });
  implement(kite, calculator, {
    square: (n) => n * n,
    divide: ({ dividend, divisor }) => {
      if (divisor === 0) throw new KiteError("argumentError", "divisor is 0");
      return {
        quotient: Math.trunc(dividend / divisor),
        remainder: dividend % divisor,
      };
    },
    countdown: (from, tick) => {
      for (let n = from; n >= 0; n--) tick(n);
      return "liftoff" as const;
    },
  });
  return kite;
}

if (import.meta.main) {
  const kite = calculatorKite();
  const { url } = await kite.serve({ port: Number(Deno.args[0] ?? 3637) });
  console.log(
    `calculator serving at ${url}; describe: ${new URL("/kite/describe", url)}`,
  );
}
