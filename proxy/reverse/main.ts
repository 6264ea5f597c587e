/**
 * `deno task proxy`: the reverse proxy kite as a process. Settings are a
 * kite's (`KITE_*`: `KITE_PORT`, `KITE_IP`, `KITE_TLS_CERT`/`KITE_TLS_KEY`,
 * `KITE_METRICS`, the kite.key in `$KITE_HOME`) plus the flags below. With
 * a Kontrol URL (`KITE_KONTROL_URL` or the kite.key's) it registers itself
 * there as `proxy`, so kites find it with `registerToProxy()`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ReverseProxy } from "./reverse_proxy.ts";
import { KITE_HOSTS_ENV, KiteHosts } from "./kite_hosts.ts";
import { dropStartupPermissions } from "../permissions.ts";

const USAGE =
  `usage: deno task proxy [--port N] [--ip ADDR] [--public-host HOST] [--public-port N]
                       [--kite-hosts LIST] [--no-kontrol]

  --port N           port to listen on (default KITE_PORT, else 3999)
  --ip ADDR          address to listen on (default KITE_IP, else 0.0.0.0)
  --public-host H    host in the public URLs kites get (default: the listen
                     address, 127.0.0.1 for 0.0.0.0); must match the TLS certificate
  --public-port N    port in the public URLs (default: the bound port)
  --max-connections-per-address N
                     callers' connections and requests open at once per
                     address (default 1000)
  --max-connections-per-kite N
                     callers' connections and requests open at once per
                     registered kite (default 1000)
  --kite-hosts LIST  where kites may register besides the address each
                     registers from: comma-separated IP addresses, CIDR
                     ranges (10.0.0.0/8), host names, or * for anywhere
                     (default KITE_PROXY_KITE_HOSTS, else none)
  --no-kontrol       do not register with Kontrol
  -h, --help         this text

TLS: KITE_TLS_CERT and KITE_TLS_KEY (PEM files). Metrics: KITE_METRICS=1
serves /kite/metrics. Kites register with the proxy's register method using
their kite.key, which the proxy checks against its own kite.key's Kontrol key.`;

/** Go's reverseproxy default port. */
const DEFAULT_PORT = 3999;

function fail(message: string): never {
  console.error(`proxy: ${message}`);
  Deno.exit(2);
}

function port(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    fail(`${flag} ${text} is not a port number`);
  }
  return n;
}

function count(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) fail(`${flag} ${text} is not a count`);
  return n;
}

if (import.meta.main) {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        port: { type: "string" },
        ip: { type: "string" },
        "public-host": { type: "string" },
        "public-port": { type: "string" },
        "max-connections-per-address": { type: "string" },
        "max-connections-per-kite": { type: "string" },
        "kite-hosts": { type: "string" },
        "no-kontrol": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  let proxy: ReverseProxy;
  try {
    const perAddress = count(
      values["max-connections-per-address"],
      "--max-connections-per-address",
    );
    proxy = new ReverseProxy({
      publicHost: values["public-host"],
      publicPort: port(values["public-port"], "--public-port"),
      maxConnectionsPerKite: count(
        values["max-connections-per-kite"],
        "--max-connections-per-kite",
      ),
      kiteHosts: KiteHosts.parse(
        values["kite-hosts"] ?? Deno.env.get(KITE_HOSTS_ENV),
      ),
      config: perAddress === undefined
        ? undefined
        : { maxConnectionsPerAddress: perAddress },
    });
  } catch (err) {
    fail((err as Error).message);
  }
  const config = proxy.kite.config;
  if (!config.kontrolKey) {
    proxy.kite.logger.warning(
      "no kite.key with a Kontrol key: no kite can register (their kite.keys cannot be checked); " +
        "run kitectl register for this proxy's KITE_HOME",
    );
  }
  let served: { port: number; url: string };
  try {
    served = await proxy.serve({
      port: port(values.port, "--port") ??
        (config.port || DEFAULT_PORT),
      hostname: values.ip ?? config.ip,
    });
  } catch (err) {
    fail((err as Error).message);
  }
  // Everything read from files, variables and the system is in hand.
  await dropStartupPermissions();
  proxy.kite.logger.info(
    "serving: file reads, environment variables and system information are revoked (only the network is left)",
  );
  console.log(
    `proxy listening on ${served.url}; kites get ${
      served.url.replace(/\/kite$/, "")
    }/proxy/<kite id>`,
  );
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      proxy.close().finally(() => Deno.exit(0));
    });
  }
  if (!values["no-kontrol"] && config.kontrolURL) {
    proxy.kite.registerForever(served.url).catch((err) =>
      proxy.kite.logger.error(
        `not registered with Kontrol ${config.kontrolURL}: ${
          (err as Error).message
        }`,
      )
    );
  }
}
