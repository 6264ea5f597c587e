/**
 * The kite of the tunnel benchmark, in its own process: `square` served
 * both directly (listening on 127.0.0.1) and through the tunnel proxy at
 * `TUNNEL_URL`, so both paths reach the same kite. Its kite.key comes
 * from `KITE_HOME`. Prints `ready <direct url> <tunnel url>`.
 *
 * @module
 */
import { Kite } from "../../mod.ts";

const kite = new Kite("math-bench", "1.0.0", {
  config: { disableAuthentication: true, logLevel: "ERROR" },
});
kite.handle("square", (r) => r.args.one().number() ** 2);
const { url } = await kite.serve({
  port: 0,
  hostname: "127.0.0.1",
  quiet: true,
});
const tunnel = await kite.registerToTunnel({
  url: Deno.env.get("TUNNEL_URL")!,
  register: false,
});
console.log(`ready ${url} ${tunnel.url}`);
