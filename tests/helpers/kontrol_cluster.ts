/**
 * Helpers for Kontrol clusters: etcd and PostgreSQL behind one interface
 * (started with the server helpers, stopped and started again for outages),
 * in-process Kontrols sharing the fixture key pair, kites whose kite.key
 * lists several Kontrol URLs, and `deno task kontrol` processes.
 *
 * @module
 */
import postgres from "postgres";
import { Kite } from "../../mod.ts";
import type { KiteConfig } from "../../kite/config.ts";
import { Kontrol } from "../../kontrol/kontrol.ts";
import type { RegistryTiming } from "../../kontrol/registry.ts";
import type { HealthTiming } from "../../kontrol/health.ts";
import type { Clock } from "../../kite/clock.ts";
import { signKiteKey } from "../../kontrol/tokens.ts";
import type { Storage } from "../../storage/storage.ts";
import { EtcdStorage } from "../../storage/etcd.ts";
import { PostgresStorage } from "../../storage/postgres.ts";
import { fixtureKey } from "../fixtures/jwt.ts";
import { type EtcdServer, startEtcd } from "./etcd_server.ts";
import { type PostgresServer, startPostgres } from "./postgres_server.ts";
import { MemoryLogger } from "./kite_harness.ts";
import { KONTROL_PUBLIC } from "./kontrol_harness.ts";
import { commandLine, descendants } from "./processes.ts";

/** Storage engines several Kontrols can share. */
export type SharedEngine = "etcd" | "postgres";

/** Both shared engines, for test tables. */
export const SHARED_ENGINES: readonly SharedEngine[] = ["etcd", "postgres"];

/** The fixture private key every cluster Kontrol signs with. */
export const KONTROL_PRIVATE: string = fixtureKey("kontrol_pkcs8.pem");
/** The fixture key files, for `deno task kontrol`. */
export const KONTROL_KEY_FILES = {
  KONTROL_PUBLICKEYFILE:
    new URL("../fixtures/keys/kontrol_public.pem", import.meta.url).pathname,
  KONTROL_PRIVATEKEYFILE:
    new URL("../fixtures/keys/kontrol_pkcs8.pem", import.meta.url).pathname,
};

/** Options for {@linkcode SharedBackend.open}. */
export interface OpenOptions {
  /** etcd key prefix (tests sharing a server keep apart); PostgreSQL ignores it. */
  namespace?: string;
  /** etcd lease TTL of this instance. @default {90} */
  leaseTtlSeconds?: number;
  /** Bound on each storage operation. @default {2_000} */
  timeoutMs?: number;
  /** Background failures (lost watch, lease, LISTEN). @default {dropped} */
  onError?: (error: Error) => void;
  /** `127.0.0.1:<port>` to connect to instead (a forwarder to the server). */
  via?: string;
}

/** A running etcd or PostgreSQL server. */
export interface SharedBackend {
  /** Which engine. */
  engine: SharedEngine;
  /** `127.0.0.1:<port>` of the server. */
  hostPort: string;
  /** Opens a storage on the server. */
  open(options?: OpenOptions): Promise<Storage>;
  /**
   * `KONTROL_*` variables pointing `deno task kontrol` at the server, or at
   * `via` (`host:port` of a proxy in front of it).
   */
  kontrolEnv(via?: string): Record<string, string>;
  /**
   * Takes the server down, keeping its data. etcd is killed (SIGKILL): a
   * graceful stop sends HTTP/2 GOAWAY, which can abort a Deno 2.9 process.
   * PostgreSQL shuts down cleanly, or with `crash` stops at once and on
   * restart empties its UNLOGGED tables (`kite.kite`).
   */
  stop(crash?: boolean): Promise<void>;
  /**
   * Makes every commit so far survive a crash: the test PostgreSQL runs
   * with `synchronous_commit=off`, so a crash would also lose recent logged
   * writes (key pairs), which a production server keeps.
   */
  flush(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

/** Starts a throwaway server for `engine`. */
export async function startBackend(
  engine: SharedEngine,
): Promise<SharedBackend> {
  if (engine === "etcd") {
    const server: EtcdServer = await startEtcd();
    return {
      engine,
      hostPort: new URL(server.endpoints[0]).host,
      open: (o = {}) =>
        EtcdStorage.connect({
          endpoints: o.via ? [`http://${o.via}`] : server.endpoints,
          prefix: o.namespace,
          leaseTtlSeconds: o.leaseTtlSeconds,
          timeoutMs: o.timeoutMs ?? 2_000,
          onError: o.onError ?? (() => {}),
        }),
      kontrolEnv: (via) => ({
        KONTROL_STORAGE: "etcd",
        KONTROL_MACHINES: via ? `http://${via}` : server.endpoints.join(","),
      }),
      stop: () => server.stop("SIGKILL"),
      flush: () => Promise.resolve(),
      start: () => server.start(),
      close: () => server.close(),
    };
  }
  const server: PostgresServer = await startPostgres();
  return {
    engine,
    hostPort: `${server.host}:${server.port}`,
    open: (o = {}) =>
      PostgresStorage.connect({
        ...server.connection,
        ...(o.via
          ? {
            host: o.via.split(":")[0],
            port: Number(o.via.split(":")[1]),
          }
          : {}),
        connectTimeoutSeconds: 2,
        timeoutMs: o.timeoutMs ?? 2_000,
        onError: o.onError ?? (() => {}),
      }),
    kontrolEnv: (via) => ({
      KONTROL_STORAGE: "postgres",
      KONTROL_POSTGRES_HOST: via
        ? via.slice(0, via.lastIndexOf(":"))
        : server.host,
      KONTROL_POSTGRES_PORT: via
        ? via.slice(via.lastIndexOf(":") + 1)
        : String(server.port),
      KONTROL_POSTGRES_USERNAME: server.username,
      KONTROL_POSTGRES_PASSWORD: server.password ?? "",
      KONTROL_POSTGRES_DBNAME: server.database,
    }),
    stop: (crash) => server.stop(crash ? "immediate" : "fast"),
    flush: async () => {
      const admin = postgres({
        ...server.connection,
        max: 1,
        onnotice: () => {},
      });
      try {
        await admin`CHECKPOINT`;
      } finally {
        await admin.end();
      }
    },
    start: () => server.start(),
    close: () => server.close(),
  };
}

/** An in-process Kontrol of a cluster. */
export interface ClusterKontrol {
  /** The Kontrol. */
  kontrol: Kontrol;
  /** `http://127.0.0.1:<port>/kite`. */
  url: string;
  /** Closes Kontrol's kite, then its storage (idempotent). */
  close(): Promise<void>;
}

/** Options for {@linkcode startClusterKontrol}. */
export interface ClusterKontrolOptions {
  /** Registry timing overrides. */
  timing?: Partial<RegistryTiming>;
  /** Entries not refreshed for this long are swept. @default {90_000} */
  staleAfterMs?: number;
  /** Port to listen on (a restarted Kontrol keeps its URL). @default {0} */
  port?: number;
  /** Kontrol's clock (e.g. a skewed one). @default {systemClock} */
  clock?: Clock;
  /** Storage probe timing. */
  health?: Partial<HealthTiming>;
}

/**
 * Starts a Kontrol on `storage` with the fixture key pair (stored by
 * whichever Kontrol comes first) on 127.0.0.1; it owns the storage.
 */
export async function startClusterKontrol(
  storage: Storage,
  options: ClusterKontrolOptions = {},
): Promise<ClusterKontrol> {
  const kontrol = new Kontrol({
    storage,
    timing: options.timing,
    staleAfterMs: options.staleAfterMs,
    clock: options.clock,
    health: options.health,
    kiteConfig: {
      ip: "127.0.0.1",
      logLevel: "FATAL",
    },
  });
  let closed: Promise<void> | undefined;
  const close = () =>
    closed ??= (async () => {
      try {
        await kontrol.kite.close();
      } finally {
        await storage.close();
      }
    })();
  try {
    await kontrol.init({
      id: "",
      public: KONTROL_PUBLIC,
      private: KONTROL_PRIVATE,
    });
    const { url } = await kontrol.kite.serve({
      port: options.port ?? 0,
      hostname: "127.0.0.1",
    });
    return { kontrol, url, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * A Kontrol on `storage` with the fixture key pair, serving on 127.0.0.1,
 * that does not own the storage: several share one (e.g. a MemoryStorage,
 * for client-side cluster tests without a database). Close its kite.
 */
export async function startSharingKontrol(
  storage: Storage,
): Promise<{ kontrol: Kontrol; url: string }> {
  const kontrol = new Kontrol({
    storage,
    kiteConfig: { ip: "127.0.0.1", logLevel: "FATAL" },
  });
  await kontrol.init({
    id: "",
    public: KONTROL_PUBLIC,
    private: KONTROL_PRIVATE,
  });
  const { url } = await kontrol.kite.serve({
    port: 0,
    hostname: "127.0.0.1",
  });
  return { kontrol, url };
}

/**
 * A quiet kite (environment `test`) with a kite.key for `username` signed
 * by the cluster's key pair, whose Kontrol URL lists `urls` (tried in turn).
 */
export async function clusterKite(
  name: string,
  username: string,
  urls: string[],
  config: Partial<KiteConfig> = {},
): Promise<Kite> {
  const kiteKey = await signKiteKey({
    username,
    kontrolUser: "kontrol",
    kontrolURL: urls.join(","),
    publicKeyPem: KONTROL_PUBLIC,
    privateKeyPem: KONTROL_PRIVATE,
  });
  return new Kite(name, "1.0.0", {
    env: false,
    kiteKey,
    logger: new MemoryLogger(),
    config: { ip: "127.0.0.1", port: 0, environment: "test", ...config },
  });
}

const ROOT = new URL("../../", import.meta.url).pathname;

/** A `deno task kontrol` process. */
export interface KontrolProcess {
  /** The URL it printed. */
  url: string;
  /** The command line of its `kontrol/main.ts` process (the permission flags). */
  mainArgv: string[];
  /** Everything it printed so far. */
  output(): string;
  /** True once the task has exited (by itself or killed). */
  readonly exited: boolean;
  /**
   * Sends `signal` to `kontrol/main.ts` (by pid) and waits until the task
   * exits; resolves with its exit code.
   */
  kill(signal?: Deno.Signal): Promise<number>;
}

/** Parent pid of every process, from /proc. */
function signalAll(pids: number[], signal: Deno.Signal): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Runs `deno task kontrol` with a clean environment plus `env`, and waits
 * (at most `startMs`) until it prints that it listens.
 */
export async function startKontrolProcess(
  env: Record<string, string>,
  startMs = 60_000,
): Promise<KontrolProcess> {
  const base: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const v = Deno.env.get(name);
    if (v) base[name] = v;
  }
  const child = new Deno.Command("deno", {
    args: ["task", "--quiet", "kontrol"],
    cwd: ROOT,
    env: { ...base, ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const drain = (stream: ReadableStream<Uint8Array>) =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (chunk) => void (text += chunk) }),
    );
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  let exited = false;
  child.status.then(() => exited = true);
  let mainPid = 0;
  let exitCode: Promise<number> | undefined;
  const kill = (signal: Deno.Signal = "SIGTERM") =>
    exitCode ??= (async () => {
      signalAll(mainPid ? [mainPid] : descendants(child.pid), signal);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const status = await Promise.race([
        child.status,
        new Promise<null>((r) => timer = setTimeout(() => r(null), 15_000)),
      ]);
      clearTimeout(timer);
      if (status === null) {
        signalAll([...descendants(child.pid), child.pid], "SIGKILL");
        await child.status;
        await drained;
        throw new Error(`kontrol did not exit on ${signal}:\n${text}`);
      }
      await drained;
      return status.code;
    })();
  const deadline = Date.now() + startMs;
  let match: RegExpMatchArray | null;
  while (!(match = text.match(/Kontrol listening on (\S+)/))) {
    if (Date.now() > deadline) {
      await kill("SIGKILL").catch(() => {});
      throw new Error(`kontrol did not start within ${startMs} ms:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  mainPid =
    descendants(child.pid).find((pid) =>
      commandLine(pid).some((a) => a.endsWith("kontrol/main.ts"))
    ) ?? 0;
  if (!mainPid) {
    await kill("SIGKILL").catch(() => {});
    throw new Error("no kontrol/main.ts process under deno task");
  }
  return {
    url: match[1],
    mainArgv: commandLine(mainPid),
    output: () => text,
    get exited() {
      return exited;
    },
    kill,
  };
}
