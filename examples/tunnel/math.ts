/**
 * A math kite that accepts no connections at all: it never listens, and
 * callers reach it through a tunnel proxy (`deno task tunnel`) found
 * through the Kontrol of `$KITE_HOME/kite.key`. Methods: `square`,
 * `whoami` (the caller's authenticated username) and `wait` (answers after
 * the given ms). `MATH_KITE_ID` fixes the kite id, so a restarted process
 * gets its old public URL back; `TUNNEL_URL` skips the Kontrol lookup.
 * Prints `ready <id> <public url>`.
 *
 *     deno task tunnel &
 *     deno task tunnel:math
 *
 * @module
 */
import { Kite, type KiteOptions } from "../../mod.ts";

/** The math kite behind the tunnel. */
export function tunnelMathKite(options: KiteOptions = {}): Kite {
  const kite = new Kite("math-tunnel", "1.0.0", options);
  kite.handle("square", (r) => r.args.one().number() ** 2);
  kite.handle("whoami", (r) => r.username);
  kite.handle("wait", async (r) => {
    const ms = Math.min(r.args.one().number(), 60_000);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return ms;
  });
  return kite;
}

if (import.meta.main) {
  const id = Deno.env.get("MATH_KITE_ID");
  const kite = tunnelMathKite({ config: id ? { id } : {} });
  const tunnel = await kite.registerToTunnel({
    url: Deno.env.get("TUNNEL_URL") || undefined,
  });
  console.log(`ready ${kite.identity.id} ${tunnel.url}`);
}
