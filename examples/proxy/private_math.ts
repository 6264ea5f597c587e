/**
 * The math kite on a private address, reachable only through a reverse
 * proxy kite (`deno task proxy`): it listens on 127.0.0.1 on a port it
 * tells nobody but the proxy, and registers the proxy's public URL with
 * Kontrol. The proxy is `KITE_PROXY_URL`, else a `proxy` kite found
 * through Kontrol.
 *
 *     deno task proxy &
 *     KITE_PROXY_URL=http://127.0.0.1:3999/kite deno task proxy:math
 *
 * @module
 */
import { mathKite } from "../math/server.ts";

if (import.meta.main) {
  const kite = mathKite();
  await kite.serve({ hostname: "127.0.0.1", port: 0, quiet: true });
  const url = await kite.registerToProxy({ localURL: kite.url });
  console.log(`math kite reachable at ${url}`);
}
