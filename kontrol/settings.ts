/**
 * Kontrol's settings from `KONTROL_*` variables and flags (docs/protocol.md §8.1), read
 * in one place by both the launcher and `main.ts`.
 *
 * @module
 */
import { DEFAULT_CONFIG } from "../kite/config.ts";
import {
  DEFAULT_KONTROL_LIMITS,
  type KontrolLimits,
  kontrolLimits,
} from "./limits.ts";

/** Storage engines Kontrol can run on. */
export type StorageEngine = "kv" | "memory" | "etcd" | "postgres";

/** Everything `deno task kontrol` can be told. */
export interface KontrolSettings {
  /** Listen address. @default {"0.0.0.0"} */
  ip: string;
  /** Listen port. @default {4000} */
  port: number;
  /** URL advertised in kite keys. @default {http://127.0.0.1:<port>/kite} */
  kontrolURL: string;
  /**
   * Kontrol's username, the issuer (`iss`) of every token and kite key. With
   * `--initial`, the `--username` given (the kite.key then has `iss` = `sub`,
   * as Go's `-initial` writes). Otherwise `--username`/`KONTROL_USERNAME`
   * when set, else `""`: `startKontrol` then takes the `sub` of
   * `$KITE_HOME/kite.key`, as Go's Kontrol does, or `"kontrol"` without one.
   */
  username: string;
  /** Data directory (Deno KV file, generated keys). @default {".kontrol"} */
  data: string;
  /** @default {"kv"} */
  storage: StorageEngine;
  /** PEM public key file (PKIX). */
  publicKeyFile: string;
  /** PEM private key file (PKCS#1 or PKCS#8). */
  privateKeyFile: string;
  /** etcd endpoints. @default {["http://127.0.0.1:2379"]} */
  machines: string[];
  /** PostgreSQL host. @default {"localhost"} */
  postgresHost: string;
  /** @default {5432} */
  postgresPort: number;
  /** PostgreSQL user. */
  postgresUsername: string;
  /** PostgreSQL password. */
  postgresPassword: string;
  /** PostgreSQL database. */
  postgresDBName: string;
  /** Seconds. @default {20} */
  postgresConnectTimeout: number;
  /**
   * Prometheus metrics: `off`, `on` (at `/kite/metrics` on the Kontrol
   * port), or a private listener for them alone, e.g.
   * `{ hostname: "127.0.0.1", port: 9400 }` from `127.0.0.1:9400`.
   * @default {"off"}
   */
  metrics: "off" | "on" | { hostname: string; port: number };
  /**
   * The dashboard's page script, served at `/dashboard` with it; `""`
   * keeps the dashboard off. `--dashboard` alone (or
   * `KONTROL_DASHBOARD=1`) means {@linkcode DEFAULT_DASHBOARD_SCRIPT}.
   * @default {""}
   */
  dashboard: string;
  /** Write a kite.key for `initialUser` and exit. */
  initial: boolean;
  /** The user `--initial` writes a kite.key for. */
  initialUser: string;
  /** `$KITE_HOME` (where `--initial` writes kite.key). */
  kiteHome: string;
  /** `KITE_TLS_CERT` and `KITE_TLS_KEY` when set: Kontrol's kite serves HTTPS with them. */
  tlsFiles: string[];
  /** Shared secret for `registerMachine` (`kitectl register`); `""` refuses it. */
  machineSecret: string;
  /** One-time codes for `registerMachine` to print at start (valid a day). */
  machineCodes: number;
  /** `register` takes token auth (web pages through the tunnel proxy). */
  tokenRegister: boolean;
  /**
   * Connections Kontrol's kite accepts at once, and from one address (many
   * kites on one host or behind one NAT need more than the default).
   */
  connections: { maxConnections: number; maxConnectionsPerAddress: number };
  /** Print help and exit. */
  help: boolean;
  /** Per-user quotas and sizes (see `kontrol/limits.ts` for the defaults). */
  limits: KontrolLimits;
}

/** A flag: settings key, env suffix, description. */
type Option = [
  keyof KontrolSettings | LimitKey | ConnectionKey,
  string,
  string,
];

/** The caps of Kontrol's kite (`KontrolSettings.connections`). */
type ConnectionKey = keyof KontrolSettings["connections"];

type LimitKey =
  | "maxKitesPerUser"
  | "maxWatchersPerConnection"
  | "maxWatchersPerUser"
  | "maxFieldLength"
  | "maxUrlLength"
  | "idRetention"
  | "httpProof";

const D = DEFAULT_KONTROL_LIMITS;

/** The quota flags; the two durations are in seconds. */
const LIMIT_OPTIONS: [LimitKey, string, string][] = [
  [
    "maxKitesPerUser",
    "MAXKITESPERUSER",
    `kites one user may have registered at once (default ${D.maxKitesPerUser})`,
  ],
  [
    "maxWatchersPerConnection",
    "MAXWATCHERSPERCONNECTION",
    `watchers one connection may hold (default ${D.maxWatchersPerConnection})`,
  ],
  [
    "maxWatchersPerUser",
    "MAXWATCHERSPERUSER",
    `watchers one user may hold (default ${D.maxWatchersPerUser})`,
  ],
  [
    "maxFieldLength",
    "MAXFIELDLENGTH",
    `longest kite identity or query field (default ${D.maxFieldLength})`,
  ],
  [
    "maxUrlLength",
    "MAXURLLENGTH",
    `longest registered URL (default ${D.maxUrlLength})`,
  ],
  [
    "idRetention",
    "IDRETENTION",
    `seconds a kite id stays its user's after the kite left (default ${
      D.idRetentionMs / 1000
    })`,
  ],
  [
    "httpProof",
    "HTTPPROOF",
    `seconds an HTTP registration lives on /heartbeat alone before registeragain (default ${
      D.httpProofMs / 1000
    })`,
  ],
];

/** Flag name (lower-case, as Go's multiconfig) → env suffix and description. */
const OPTIONS: Option[] = [
  ["ip", "IP", "listen address (default 0.0.0.0)"],
  ["port", "PORT", "listen port (default 4000)"],
  [
    "kontrolURL",
    "KONTROLURL",
    "URL advertised in kite keys (default http://127.0.0.1:<port>/kite)",
  ],
  [
    "username",
    "USERNAME",
    "with --initial: the user the kite.key is for, also its issuer (as Go's -initial); " +
    "otherwise: Kontrol's own username, the issuer of tokens and kite keys " +
    "(default: the user of $KITE_HOME/kite.key, else kontrol)",
  ],
  [
    "data",
    "DATA",
    "data directory for the KV store and generated keys (default .kontrol)",
  ],
  ["storage", "STORAGE", "kv | memory | etcd | postgres (default kv)"],
  [
    "publicKeyFile",
    "PUBLICKEYFILE",
    "RSA public key PEM to sign with (default: generated in the data dir)",
  ],
  ["privateKeyFile", "PRIVATEKEYFILE", "RSA private key PEM, PKCS#1 or PKCS#8"],
  [
    "machines",
    "MACHINES",
    "etcd endpoints, comma separated (default http://127.0.0.1:2379)",
  ],
  ["postgresHost", "POSTGRES_HOST", "PostgreSQL host (default localhost)"],
  ["postgresPort", "POSTGRES_PORT", "PostgreSQL port (default 5432)"],
  ["postgresUsername", "POSTGRES_USERNAME", "PostgreSQL user"],
  ["postgresPassword", "POSTGRES_PASSWORD", "PostgreSQL password"],
  ["postgresDBName", "POSTGRES_DBNAME", "PostgreSQL database"],
  [
    "postgresConnectTimeout",
    "POSTGRES_CONNECTTIMEOUT",
    "PostgreSQL connect timeout, seconds (default 20)",
  ],
  [
    "metrics",
    "METRICS",
    "Prometheus metrics: off, on (GET /kite/metrics on --port), or [host:]port " +
    "to serve them only there, e.g. 127.0.0.1:9400 (default off)",
  ],
  [
    "machineSecret",
    "MACHINESECRET",
    "shared secret that lets `kitectl register` get a kite.key (default: registerMachine refused)",
  ],
  [
    "dashboard",
    "DASHBOARD",
    "serve the live dashboard at /dashboard (a token for Kontrol opens it); " +
    "--dashboard alone reads dist/dashboard.js from `deno task build:browser`, " +
    "--dashboard=FILE another build (default off)",
  ],
  [
    "tokenRegister",
    "TOKENREGISTER",
    "let register take a token for Kontrol (a web page registering through the tunnel proxy), under the token's user only (default off, as Go)",
  ],
  [
    "machineCodes",
    "MACHINECODES",
    "print N one-time codes at start, each good for one `kitectl register --code` within a day (default 0; the operator makes more with `kitectl codes create`)",
  ],
  [
    "maxConnections",
    "MAXCONNECTIONS",
    `connections Kontrol accepts at once (default ${DEFAULT_CONFIG.maxConnections})`,
  ],
  [
    "maxConnectionsPerAddress",
    "MAXCONNECTIONSPERADDRESS",
    `connections from one address, IPv6 per /64; raise it for many kites on one host or behind one NAT (default ${DEFAULT_CONFIG.maxConnectionsPerAddress})`,
  ],
  ["initial", "INITIAL", "write $KITE_HOME/kite.key for --username and exit"],
  ...LIMIT_OPTIONS.map(([key, env, text]): Option => [key, env, text]),
];

/** `--help` text. */
export function helpText(): string {
  const lines = OPTIONS.map(([key, env, text]) =>
    `  --${flagName(key).padEnd(24)} KONTROL_${env.padEnd(24)} ${text}`
  );
  return [
    "Kontrol: the kite registry and auth service.",
    "",
    "Usage: deno task kontrol [flags]",
    "       deno task kontrol --initial --username <name>   write $KITE_HOME/kite.key and exit",
    "",
    "Flags and environment variables (flags win):",
    ...lines,
    "  --help",
  ].join("\n");
}

function flagName(key: string): string {
  return key.replace(
    /[A-Z]/g,
    (c) => (key.startsWith("postgres") && c === c.toUpperCase() &&
        key.indexOf(c) === "postgres".length
      ? "-" + c.toLowerCase()
      : c.toLowerCase()),
  );
}

/**
 * Reads settings: defaults, then `KONTROL_*` variables, then flags
 * (`--port 4001`, `--port=4001`, `-port 4001`).
 * @throws {RangeError} for unknown flags or bad values, naming them.
 */
export function readSettings(
  args: string[],
  env: (name: string) => string | undefined,
): KontrolSettings {
  const raw = new Map<Option[0], string>();
  for (const [key, suffix] of OPTIONS) {
    const v = env(`KONTROL_${suffix}`);
    if (v !== undefined && v !== "") raw.set(key, v);
  }
  const byFlag = new Map(OPTIONS.map(([key]) => [flagName(key), key]));
  let help = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("-")) {
      throw new RangeError(
        `unexpected argument ${JSON.stringify(arg)}; see --help`,
      );
    }
    const [name, inline] = arg.replace(/^--?/, "").split(/=(.*)/s, 2);
    if (name === "help" || name === "h") {
      help = true;
      continue;
    }
    const key = byFlag.get(name.toLowerCase());
    if (!key) throw new RangeError(`unknown flag ${arg}; see --help`);
    if (
      (key === "initial" || key === "dashboard" || key === "tokenRegister") &&
      inline === undefined
    ) {
      raw.set(key, "true");
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined) throw new RangeError(`flag ${arg} needs a value`);
    raw.set(key, value);
  }
  const num = (key: Option[0], fallback: number): number => {
    const v = raw.get(key);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) {
      throw new RangeError(`${key} must be a whole number, got ${v}`);
    }
    return n;
  };
  const storage = (raw.get("storage") ?? "kv") as StorageEngine;
  if (!["kv", "memory", "etcd", "postgres"].includes(storage)) {
    throw new RangeError(
      `storage must be kv, memory, etcd or postgres, got ${storage}`,
    );
  }
  const port = num("port", 4000) || 4000;
  const initial = ["1", "true", "yes"].includes(
    (raw.get("initial") ?? "").toLowerCase(),
  );
  const home = env("KITE_HOME") || `${env("HOME") ?? "."}/.kite`;
  return {
    ip: raw.get("ip") ?? "0.0.0.0",
    port,
    // With KITE_TLS_CERT, Kontrol's kite serves HTTPS (kite/listen.ts readTls).
    kontrolURL: raw.get("kontrolURL") ??
      `${env("KITE_TLS_CERT") ? "https" : "http"}://127.0.0.1:${port}/kite`,
    // Go's -initial writes iss = sub = the username; a serving Kontrol
    // with no username takes it from its kite.key (startKontrol).
    username: raw.get("username") ?? "",
    data: raw.get("data") ?? ".kontrol",
    storage,
    publicKeyFile: raw.get("publicKeyFile") ?? "",
    privateKeyFile: raw.get("privateKeyFile") ?? "",
    machines: (raw.get("machines") ?? "http://127.0.0.1:2379").split(",").map((
      s,
    ) => s.trim()).filter(Boolean),
    postgresHost: raw.get("postgresHost") ?? "localhost",
    postgresPort: num("postgresPort", 5432),
    postgresUsername: raw.get("postgresUsername") ?? "",
    postgresPassword: raw.get("postgresPassword") ?? "",
    postgresDBName: raw.get("postgresDBName") ?? "",
    postgresConnectTimeout: num("postgresConnectTimeout", 20),
    metrics: parseMetrics(raw.get("metrics") ?? "off"),
    machineSecret: raw.get("machineSecret") ?? "",
    dashboard: dashboardScript(raw.get("dashboard") ?? ""),
    machineCodes: num("machineCodes", 0),
    tokenRegister: ["1", "true", "yes"].includes(
      (raw.get("tokenRegister") ?? "").toLowerCase(),
    ),
    connections: {
      maxConnections: atLeastOne(
        "maxConnections",
        num("maxConnections", DEFAULT_CONFIG.maxConnections),
      ),
      maxConnectionsPerAddress: atLeastOne(
        "maxConnectionsPerAddress",
        num(
          "maxConnectionsPerAddress",
          DEFAULT_CONFIG.maxConnectionsPerAddress,
        ),
      ),
    },
    tlsFiles: [env("KITE_TLS_CERT"), env("KITE_TLS_KEY")].filter((
      f,
    ): f is string => !!f),
    initial,
    initialUser: initial ? raw.get("username") ?? "" : "",
    kiteHome: home,
    help,
    limits: kontrolLimits({
      maxKitesPerUser: num("maxKitesPerUser", D.maxKitesPerUser),
      maxWatchersPerConnection: num(
        "maxWatchersPerConnection",
        D.maxWatchersPerConnection,
      ),
      maxWatchersPerUser: num("maxWatchersPerUser", D.maxWatchersPerUser),
      maxFieldLength: num("maxFieldLength", D.maxFieldLength),
      maxUrlLength: num("maxUrlLength", D.maxUrlLength),
      idRetentionMs: num("idRetention", D.idRetentionMs / 1000) * 1000,
      httpProofMs: num("httpProof", D.httpProofMs / 1000) * 1000,
    }),
  };
}

/** `n`, or a RangeError naming the flag when it is 0. */
function atLeastOne(key: string, n: number): number {
  if (n < 1) {
    throw new RangeError(`${key} must be a whole number >= 1, got ${n}`);
  }
  return n;
}

/** Where `--dashboard` (no file named) finds the page script. */
export const DEFAULT_DASHBOARD_SCRIPT = "dist/dashboard.js";

/** The dashboard script for a `--dashboard` value: off, on (the default build) or a file. */
function dashboardScript(v: string): string {
  const lower = v.toLowerCase();
  if (["", "0", "false", "no", "off"].includes(lower)) return "";
  if (["1", "true", "yes", "on"].includes(lower)) {
    return DEFAULT_DASHBOARD_SCRIPT;
  }
  return v;
}

/** `off`, `on`, `port` or `host:port` (see {@linkcode KontrolSettings.metrics}). */
function parseMetrics(v: string): KontrolSettings["metrics"] {
  if (v === "off" || v === "0" || v === "false") return "off";
  if (v === "on" || v === "1" || v === "true") return "on";
  const m = /^(?:(.+):)?([0-9]{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port > 0 && port <= 65535)) {
    throw new RangeError(
      `metrics must be off, on, a port or host:port (e.g. 127.0.0.1:9400), got ${v}`,
    );
  }
  return { hostname: m[1] ?? "127.0.0.1", port };
}
