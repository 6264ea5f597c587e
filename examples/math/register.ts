/**
 * The math kite, registered with Kontrol (URL and kite key from
 * `$KITE_HOME/kite.key`). Stays registered across Kontrol restarts.
 *
 *     deno task math:register
 *
 * @module
 */
import { mathKite } from "./server.ts";

const kite = mathKite();
await kite.serve({ port: kite.config.port, hostname: "127.0.0.1" });
await kite.registerForever();
console.log(
  `math kite ${kite.identity.id} registered at ${kite.url} with ${kite.config.kontrolURL}`,
);
