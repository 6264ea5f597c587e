/**
 * One instance of the math service behind a pool: `square` (idempotent)
 * and `tally` (not: it counts calls), each waiting `MATH_DELAY_MS` first
 * (default 0) so that a slow instance can be played. Registers with the
 * Kontrol of `$KITE_HOME/kite.key` (or `KITE_KONTROL_URL`) and stays
 * registered across Kontrol restarts. Prints `ready <id> <url>`.
 *
 *     deno task pool:math
 *
 * @module
 */
import { Kite, type KiteOptions } from "../../mod.ts";

/** Builds a math instance whose handlers wait `delayMs` before answering. */
export function poolMathKite(delayMs = 0, options: KiteOptions = {}): Kite {
  const kite = new Kite("math", "1.0.0", {
    ...options,
    config: { ...options.config, disableAuthentication: true },
  });
  const wait = () =>
    delayMs > 0
      ? new Promise((resolve) => setTimeout(resolve, delayMs))
      : undefined;
  kite.handle("square", async (r) => {
    const n = r.args.one().number();
    await wait();
    return n * n;
  });
  let tally = 0;
  kite.handle("tally", async () => {
    await wait();
    return ++tally;
  });
  return kite;
}

if (import.meta.main) {
  const kite = poolMathKite(Number(Deno.env.get("MATH_DELAY_MS") ?? "0"));
  await kite.serve({ port: kite.config.port, hostname: "127.0.0.1" });
  await kite.registerForever();
  console.log(`ready ${kite.identity.id} ${kite.url}`);
}
