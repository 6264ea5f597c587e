/**
 * Kite configuration: defaults in one place, environment variables read in
 * one function (docs/protocol.md §7).
 *
 * @module
 */
import {
  type ClientTransport,
  parseTransport,
} from "./transport/client/transport_name.ts";

/** Log levels, most verbose first. */
export type LogLevel = "DEBUG" | "INFO" | "WARNING" | "ERROR" | "FATAL";

/** How log lines are written. */
export type LogFormat = "text" | "json";

/** Everything a kite can be configured with. */
export interface KiteConfig {
  /** Owner; from kite.key `sub` or `KITE_USERNAME`. @default {"unknown"} */
  username: string;
  /** Deployment environment; `KITE_ENVIRONMENT`. @default {"unknown"} */
  environment: string;
  /** Location; `KITE_REGION`. @default {"unknown"} */
  region: string;
  /** Host name reported in the identity. @default {Deno.hostname()} */
  hostname: string;
  /** Kite id; a fresh UUID when empty (docs/protocol.md §4.1). @default {""} */
  id: string;
  /** Listen address. @default {"0.0.0.0"} */
  ip: string;
  /** Listen port, 0 picks a free one. @default {0} */
  port: number;
  /**
   * PEM certificate (chain) file to serve HTTPS/WSS with; `KITE_TLS_CERT`.
   * Needs {@linkcode KiteConfig.tlsKey}; the kite's URLs are then `https:`.
   * @default {""}
   */
  tlsCert: string;
  /** PEM private key file of {@linkcode KiteConfig.tlsCert}; `KITE_TLS_KEY`. @default {""} */
  tlsKey: string;
  /** Kontrol URL, e.g. `http://127.0.0.1:4000/kite`. @default {""} */
  kontrolURL: string;
  /**
   * A proxy kite to register through (`KITE_PROXY_URL`, e.g.
   * `http://proxy.example:3999/kite`): `Kite.registerToProxy()`
   * dials it instead of looking one up in Kontrol. @default {""}
   */
  proxyURL: string;
  /** Trusted Kontrol public key (PEM). @default {""} */
  kontrolKey: string;
  /** Expected token issuer (the kite.key `iss`). @default {""} */
  kontrolUser: string;
  /** Raw kite.key JWT used for `kiteKey` auth. @default {""} */
  kiteKey: string;
  /** Client transport. @default {"websocket"} */
  transport: ClientTransport;
  /**
   * Timeout for Kontrol calls, XHR polls and handshakes, ms; `KITE_TIMEOUT`
   * (`10s`, `1m`). A Kontrol call waits at most this long for a connection
   * to Kontrol, then as long for the answer, and fails with an error naming
   * the URL. @default {15000}
   */
  timeoutMs: number;
  /** kiteKey trust cache TTL, ms. @default {300000} */
  verifyTtlMs: number;
  /** Default for methods registered afterwards. @default {false} */
  disableAuthentication: boolean;
  /** Least severe level logged; `KITE_LOG_LEVEL`. @default {"INFO"} */
  logLevel: LogLevel;
  /**
   * Log line format; `KITE_LOG_FORMAT`: `text` for a terminal, `json` for
   * one JSON object per line. @default {"text"}
   */
  logFormat: LogFormat;
  /**
   * Serve Prometheus metrics at `GET /kite/metrics` and record them;
   * `KITE_METRICS=1`. Off, calls do no metrics work at all. @default {false}
   */
  metrics: boolean;
  /**
   * Trace calls with OpenTelemetry (`KITE_TRACING=1`): spans for calls
   * served and made, the W3C trace context carried in the call envelope.
   * Deno exports them when run with `OTEL_DENO=true`. @default {false}
   */
  tracing: boolean;
  /**
   * Largest incoming message or `xhr_send` body, bytes; a bigger one closes
   * the session with code 4009. @default {1048576}
   */
  maxMessageBytes: number;
  /**
   * Largest incoming frame on a connection this kite dialed, bytes: what a
   * server sends in one message (a `getKites` answer listing thousands of
   * kites, a big result) can be larger than what a kite accepts from its
   * own callers. Still a bound: a bigger frame closes the connection with
   * 1009. @default {33554432}
   */
  maxDialedMessageBytes: number;
  /**
   * Deepest nesting of arrays/objects in an incoming dnode message; a deeper
   * one closes the connection with code 3400. @default {64}
   */
  maxJsonDepth: number;
  /**
   * Local callbacks per connection (response callbacks of pending calls
   * included); a call that would add more fails with `sendError`.
   * @default {100000}
   */
  maxCallbacks: number;
  /**
   * Calls per connection waiting for a reply; `tell` beyond it fails at
   * once with `sendError`. @default {10000}
   */
  maxPendingCalls: number;
  /**
   * Requests per connection served at the same time; more are answered
   * with `requestLimitError`. @default {1000}
   */
  maxConcurrentRequests: number;
  /**
   * Requests the kite serves at the same time over all connections; more
   * are answered at once with `requestLimitError` (load shedding: a pool
   * tries another instance). @default {100000}
   */
  maxKiteRequests: number;
  /**
   * Accepted sessions per kite over all transports; more are refused with
   * `503`. @default {10000}
   */
  maxConnections: number;
  /** XHR sessions per kite; more are refused with `503`. @default {10000} */
  maxXhrSessions: number;
  /**
   * Bytes waiting for a peer that does not read (WebSocket `bufferedAmount`
   * plus the session queue); past it the session closes with code 4008. A
   * burst of replies bigger than this, sent at once, counts too. Connections
   * this kite dials have the same limit on what they send.
   * @default {16777216}
   */
  maxBufferedBytes: number;
  /**
   * Connections one remote address may hold at once, over all transports
   * (IPv6 addresses count per /64); more get `503`. Raise it for many
   * clients behind one address (tests and benchmarks on 127.0.0.1).
   * @default {1000}
   */
  maxConnectionsPerAddress: number;
  /**
   * XHR sessions one remote address may hold at once (IPv6: per /64); more
   * get `503`. @default {100}
   */
  maxXhrSessionsPerAddress: number;
  /**
   * A session that sends no message within this many ms of opening is
   * closed with code 4001; 0 keeps silent sessions open. @default {300000}
   */
  idleSessionMs: number;
  /** SockJS `h` interval, ms. @default {10000} */
  sockjsHeartbeatMs: number;
  /** SockJS session GC delay, ms. @default {10000} */
  sockjsDisconnectDelayMs: number;
  /**
   * Serve the websocket transports (SockJS and raw); false answers them
   * `404` and tells SockJS clients `"websocket":false` in `/info`.
   * @default {true}
   */
  sockjsWebSocket: boolean;
  /**
   * Set a `JSESSIONID` cookie on the SockJS session routes, for load
   * balancers that stick sessions by it. @default {false}
   */
  sockjsCookie: boolean;
  /**
   * The sockjs-client that the SockJS `iframe.html` page loads, for the
   * `iframe-*` transports: the pages' own sockjs-client version, as an
   * `http(s)://` URL or a path.
   * @default {"https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"}
   */
  sockjsUrl: string;
}

/** The defaults (Go `DefaultConfig`, docs/protocol.md §7.2). */
export const DEFAULT_CONFIG: Readonly<KiteConfig> = Object.freeze({
  username: "unknown",
  environment: "unknown",
  region: "unknown",
  hostname: "",
  id: "",
  ip: "0.0.0.0",
  port: 0,
  tlsCert: "",
  tlsKey: "",
  kontrolURL: "",
  proxyURL: "",
  kontrolKey: "",
  kontrolUser: "",
  kiteKey: "",
  transport: "websocket",
  timeoutMs: 15_000,
  verifyTtlMs: 5 * 60_000,
  disableAuthentication: false,
  logLevel: "INFO",
  logFormat: "text",
  metrics: false,
  tracing: false,
  maxMessageBytes: 1 << 20,
  maxDialedMessageBytes: 32 << 20,
  maxJsonDepth: 64,
  maxCallbacks: 100_000,
  maxPendingCalls: 10_000,
  maxConcurrentRequests: 1_000,
  maxKiteRequests: 100_000,
  maxConnections: 10_000,
  maxXhrSessions: 10_000,
  maxBufferedBytes: 16 << 20,
  maxConnectionsPerAddress: 1_000,
  maxXhrSessionsPerAddress: 100,
  idleSessionMs: 300_000,
  sockjsHeartbeatMs: 10_000,
  sockjsDisconnectDelayMs: 10_000,
  sockjsWebSocket: true,
  sockjsCookie: false,
  sockjsUrl: "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js",
});

/** The variables {@linkcode configFromEnv} reads, plus those that locate the kite.key. */
export const KITE_ENV_VARS: readonly string[] = [
  "KITE_HOME",
  "KITE_USERNAME",
  "KITE_ENVIRONMENT",
  "KITE_REGION",
  "KITE_IP",
  "KITE_PORT",
  "KITE_KONTROL_URL",
  "KITE_PROXY_URL",
  "KITE_TLS_CERT",
  "KITE_TLS_KEY",
  "KITE_TRANSPORT",
  "KITE_TIMEOUT",
  "KITE_VERIFY_TTL",
  "KITE_LOG_LEVEL",
  "KITE_LOG_FORMAT",
  "KITE_METRICS",
  "KITE_TRACING",
];

/**
 * Which of `names` Deno may not read (no `--allow-env` for them); such
 * variables count as unset, so a kite says so instead of ignoring them
 * silently.
 */
export function unreadableEnv(
  names: readonly string[] = KITE_ENV_VARS,
): string[] {
  return names.filter((name) => {
    try {
      Deno.env.get(name);
      return false;
    } catch (err) {
      return typeof Deno !== "undefined" &&
        err instanceof Deno.errors.NotCapable;
    }
  });
}

/** Reads one variable; `undefined` when unset or not permitted. */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined; // no --allow-env for it: behave as unset
  }
}

/**
 * Parses a Go duration (`300ms`, `10s`, `5m`, `1h30m`, `1.5h`) into ms.
 * @throws {RangeError} for anything else.
 */
export function parseGoDuration(text: string): number {
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    "\u00b5s": 1e-3,
    "\u03bcs": 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  // Go accepts "5.s" and ".5s", and both micro signs (U+00B5, U+03BC).
  const re = /([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  const sign = text.startsWith("-") ? -1 : 1;
  const body = text.replace(/^[-+]/, "");
  if (body === "0") return 0;
  for (let m = re.exec(body); m; m = re.exec(body)) {
    total += Number(m[1]) * units[m[2]];
    pos = re.lastIndex;
  }
  if (body === "" || pos !== body.length) {
    throw new RangeError(
      `invalid duration ${
        JSON.stringify(text)
      }; expected e.g. "10s", "5m", "1h30m"`,
    );
  }
  return sign * total;
}

/**
 * Reads `KITE_*` variables (docs/protocol.md §7.1) into a partial config. Only set
 * variables appear in the result. Invalid values throw a RangeError that
 * names the variable.
 */
export function configFromEnv(
  getEnv: (name: string) => string | undefined = readEnv,
): Partial<KiteConfig> {
  // Go skips empty variables (`if v := os.Getenv(...); v != ""`).
  const get = (name: string) => getEnv(name) || undefined;
  const out: Partial<KiteConfig> = {};
  const str = (
    name: string,
    key:
      | "username"
      | "environment"
      | "region"
      | "ip"
      | "kontrolURL"
      | "proxyURL"
      | "tlsCert"
      | "tlsKey",
  ) => {
    const v = get(name);
    if (v !== undefined) out[key] = v;
  };
  str("KITE_USERNAME", "username");
  str("KITE_ENVIRONMENT", "environment");
  str("KITE_REGION", "region");
  str("KITE_IP", "ip");
  str("KITE_KONTROL_URL", "kontrolURL");
  str("KITE_PROXY_URL", "proxyURL");
  str("KITE_TLS_CERT", "tlsCert");
  str("KITE_TLS_KEY", "tlsKey");
  const port = get("KITE_PORT");
  if (port !== undefined) {
    // Decimal digits only, as Go's strconv.Atoi (no "0x10", "1e3", " 80").
    const n = /^[0-9]{1,5}$/.test(port) ? Number(port) : NaN;
    if (!(n >= 0 && n <= 65535)) {
      throw new RangeError(`KITE_PORT=${port} is not a port number`);
    }
    out.port = n;
  }
  const transport = get("KITE_TRANSPORT");
  if (transport !== undefined) {
    try {
      out.transport = parseTransport(transport);
    } catch (err) {
      throw new RangeError(`KITE_TRANSPORT: ${(err as Error).message}`);
    }
  }
  const durations: [string, "timeoutMs" | "verifyTtlMs"][] = [
    ["KITE_TIMEOUT", "timeoutMs"],
    ["KITE_VERIFY_TTL", "verifyTtlMs"],
  ];
  for (const [name, key] of durations) {
    const v = get(name);
    if (v === undefined) continue;
    try {
      out[key] = parseGoDuration(v);
    } catch (err) {
      throw new RangeError(`${name}: ${(err as Error).message}`);
    }
  }
  const level = get("KITE_LOG_LEVEL");
  if (level !== undefined) {
    const l = level.toUpperCase();
    out.logLevel = (["DEBUG", "WARNING", "ERROR", "FATAL"].includes(l)
      ? l
      : "INFO") as LogLevel;
  }
  const format = get("KITE_LOG_FORMAT");
  if (format !== undefined) {
    if (format !== "text" && format !== "json") {
      throw new RangeError(
        `KITE_LOG_FORMAT=${format}: expected "text" or "json"`,
      );
    }
    out.logFormat = format;
  }
  const flags = [["KITE_METRICS", "metrics"], ["KITE_TRACING", "tracing"]];
  for (const [name, key] of flags as [string, "metrics" | "tracing"][]) {
    const v = get(name);
    if (v === undefined) continue;
    if (!/^(1|0|true|false)$/.test(v)) {
      throw new RangeError(`${name}=${v}: expected 1 or 0`);
    }
    out[key] = v === "1" || v === "true";
  }
  return out;
}

/** Deno.hostname(), or `"localhost"` without `--allow-sys`. */
export function defaultHostname(): string {
  try {
    return Deno.hostname();
  } catch {
    return "localhost";
  }
}
