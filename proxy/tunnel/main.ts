/**
 * `deno task tunnel`: runs a tunnel proxy kite. Settings are the kite's
 * `KITE_*` variables (`KITE_PORT`, default 3999; `KITE_IP`; `KITE_HOME`
 * for its kite.key and Kontrol; `KITE_TLS_CERT`/`KITE_TLS_KEY`;
 * `KITE_METRICS=1`) plus `KITE_TUNNEL_PUBLIC_URL`, the base of the URLs it
 * hands out when callers reach it under another name (a load balancer, a
 * DNS name). With a kite.key it registers with Kontrol, so kites find it
 * with `registerToTunnel()`. Prints `ready <its kite URL>` once serving,
 * by when it has revoked its read, environment and system permissions
 * (`../permissions.ts`).
 *
 * @module
 */

import { TunnelProxy } from "./tunnel_proxy.ts";
import { dropStartupPermissions } from "../permissions.ts";

const HELP =
  `deno task tunnel — a tunnel proxy for kites that cannot accept connections

Environment:
  KITE_PORT               port (default 3999)
  KITE_IP                 address to listen on (default 0.0.0.0)
  KITE_HOME               where kite.key is; with one, registers with Kontrol
  KITE_TUNNEL_PUBLIC_URL  base of public URLs, e.g. https://tunnel.example
  KITE_TLS_CERT/KEY       serve HTTPS/WSS
  KITE_METRICS=1          metrics at /kite/metrics
`;

/** The settings `main` reads from the environment. */
export function tunnelSettingsFromEnv(): { publicURL?: string } {
  const publicURL = Deno.env.get("KITE_TUNNEL_PUBLIC_URL");
  return publicURL ? { publicURL } : {};
}

async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(HELP);
    return 0;
  }
  if (args.length > 0) {
    console.error(`unknown argument ${args[0]}; see --help`);
    return 2;
  }
  const proxy = new TunnelProxy(tunnelSettingsFromEnv());
  const { url } = await proxy.serve();
  if (proxy.kite.config.kontrolURL && proxy.kite.config.kiteKey) {
    await proxy.register();
  } else {
    proxy.kite.logger.warning(
      "no kite.key with a Kontrol URL: not registering with Kontrol; kites must be given this proxy's URL (registerToTunnel({ url }))",
    );
  }
  // Everything read from files, variables and the system is in hand.
  await dropStartupPermissions();
  console.log(`ready ${url} public ${proxy.publicURL}`);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      proxy.close().then(() => Deno.exit(0));
    });
  }
  return await new Promise<number>(() => {});
}

if (import.meta.main) Deno.exit(await main(Deno.args));
