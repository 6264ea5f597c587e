/**
 * The math kite: `square`, `squareCb` and `echo`, authentication disabled.
 *
 *     deno task math:server          # listens on KITE_PORT, default 3636
 *
 * @module
 */
import { Kite, type KiteOptions, type Request } from "../../mod.ts";

/** Reads the number from `4` or `{number: 4}`. */
function numberArg(r: Request): number {
  const arg = r.args.at(0);
  return typeof arg.raw === "object" && arg.raw !== null
    ? arg.get("number").number()
    : arg.number();
}

/** Builds the math kite (tests reuse it, passing quiet options). */
export function mathKite(options: KiteOptions = {}): Kite {
  const kite = new Kite("math", "1.0.0", {
    ...options,
    config: { ...options.config, disableAuthentication: true },
  });
  kite.handle("square", (r) => numberArg(r) ** 2);
  kite.handle("squareCb", (r) => {
    const first = r.args.at(0);
    const fn = typeof first.raw === "object" && first.raw !== null
      ? first.get("callback").func()
      : r.args.at(1).func();
    const result = numberArg(r) ** 2;
    fn(result);
    return result;
  });
  kite.handle("echo", (r) => r.args.one().raw);
  return kite;
}

if (import.meta.main) {
  const kite = mathKite();
  const port = kite.config.port || 3636;
  await kite.serve({ port });
  console.log(`math kite listening on ${kite.url}`);
}
