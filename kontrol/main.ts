/**
 * `deno task kontrol`: runs Kontrol with no set-up at all (Deno KV and a
 * generated key pair in `.kontrol/`), or writes a kite.key with
 * `--initial --username <name>`. Started by `launch.ts` with narrowly
 * scoped permissions.
 *
 * @module
 */
import { readEnv } from "../kite/config.ts";
import { ListenError, listenError } from "../kite/listen.ts";
import { writeKiteKey } from "../kite/auth/kitekey.ts";
import type { Storage } from "../storage/storage.ts";
import { type DataLock, lockDataDir } from "./data_lock.ts";
import { kontrolIssuer } from "./issuer.ts";
import { Kontrol } from "./kontrol.ts";
import { loadKeyPair, needsNewKeyPair } from "./keys.ts";
import { secretAuthenticator } from "./machine_secret.ts";
import {
  addMachineCodeHandler,
  codeStorageOf,
  machineAuthenticator,
  MachineCodes,
} from "./machine_codes.ts";
import { helpText, type KontrolSettings, readSettings } from "./settings.ts";

/** What `openStorage` uses of a storage adapter module. */
interface Adapter<Options> {
  connect(options: Options): Promise<Storage>;
}

/**
 * Loads a storage adapter by path. The specifier is computed, not written
 * out, so Deno leaves the adapter out of Kontrol's module graph: a Kontrol
 * on Deno KV (the demo's) never downloads the etcd or PostgreSQL drivers.
 * `deno task compile:kontrol` `--include`s them instead.
 */
async function importAdapter<M>(name: "etcd" | "postgres"): Promise<M> {
  return await import(new URL(`../storage/${name}.ts`, import.meta.url).href);
}

/** Opens the configured storage engine; drivers load only when chosen. */
export async function openStorage(s: KontrolSettings): Promise<Storage> {
  switch (s.storage) {
    case "memory": {
      const { MemoryStorage } = await import("../storage/memory.ts");
      return new MemoryStorage();
    }
    case "kv": {
      const { KvStorage } = await import("../storage/kv.ts");
      await Deno.mkdir(s.data, { recursive: true });
      return await KvStorage.open(`${s.data}/kontrol.kv`);
    }
    case "etcd": {
      const { EtcdStorage } = await importAdapter<
        { EtcdStorage: Adapter<{ endpoints: string[] }> }
      >("etcd");
      return await EtcdStorage.connect({ endpoints: s.machines });
    }
    case "postgres": {
      const { PostgresStorage } = await importAdapter<
        { PostgresStorage: Adapter<PostgresOptions> }
      >("postgres");
      return await PostgresStorage.connect({
        host: s.postgresHost,
        port: s.postgresPort,
        username: s.postgresUsername,
        password: s.postgresPassword,
        database: s.postgresDBName,
        connectTimeoutSeconds: s.postgresConnectTimeout,
      });
    }
  }
}

/** The PostgreSQL settings Kontrol passes (checked against the adapter in tests). */
export interface PostgresOptions {
  /** Server host. */
  host: string;
  /** Server port. */
  port: number;
  /** User. */
  username: string;
  /** Password. */
  password: string;
  /** Database. */
  database: string;
  /** Connect timeout, seconds. */
  connectTimeoutSeconds: number;
}

/**
 * Starts Kontrol from settings; resolves once it accepts connections and has
 * its signing pair. A first start generates that pair (RSA, 70-350 ms) while
 * Kontrol already serves: only minting kite keys waits for it. Key files
 * that exist are loaded, and checked, before serving.
 */
export async function startKontrol(s: KontrolSettings): Promise<Kontrol> {
  const started = performance.now();
  const keyOptions = {
    publicKeyFile: s.publicKeyFile,
    privateKeyFile: s.privateKeyFile,
    dataDir: s.data,
  };
  const issuer = await kontrolIssuer(s);
  const dashboard = await readDashboard(s.dashboard);
  let lock: DataLock | undefined;
  if (s.storage === "kv") {
    await Deno.mkdir(s.data, { recursive: true });
    lock = await lockDataDir(s.data);
  }
  const generating = await needsNewKeyPair(keyOptions);
  const pair = loadKeyPair(keyOptions);
  let storage: Storage;
  try {
    storage = await openStorage(s);
  } catch (err) {
    pair.catch(() => {}); // the storage error is the one to report
    lock?.release();
    throw err;
  }
  // In the storage: any Kontrol on it takes a code once, across restarts.
  const codes = new MachineCodes({ storage: codeStorageOf(storage) });
  const kontrol = new Kontrol({
    storage,
    kontrolURL: s.kontrolURL,
    username: issuer.username,
    limits: s.limits,
    kiteConfig: s.connections,
    dashboard: dashboard ? { script: dashboard } : undefined,
    tokenRegister: s.tokenRegister,
    metrics: s.metrics === "off" ? undefined : { route: s.metrics === "on" },
    machineAuthenticate: machineAuthenticator({
      secret: s.machineSecret
        ? secretAuthenticator(s.machineSecret, () => issuer.username)
        : undefined,
      codes,
      kontrolUser: () => issuer.username,
    }),
  });
  addMachineCodeHandler(kontrol.kite, codes, () => issuer.username);
  if (lock) kontrol.kite.addCloser(() => lock.release());
  const since = () => Math.round(performance.now() - started);
  const initialized = kontrol.init(pair);
  try {
    if (!generating) await initialized;
    await kontrol.kite.serve({ port: s.port, hostname: s.ip, quiet: true })
      .catch((err) => {
        throw err instanceof ListenError
          ? listenError(err.cause, s.ip, s.port, "--port or KONTROL_PORT")
          : err;
      });
    if (typeof s.metrics === "object") serveMetrics(kontrol, s.metrics);
    if (dashboard) {
      console.log(
        `Kontrol dashboard at ${new URL("/dashboard", s.kontrolURL).href} ` +
          "(open it with the address `deno task kitectl dashboard` prints)",
      );
    }
    console.log(
      `Kontrol listening on ${s.kontrolURL} (storage: ${storage.engine}, ` +
        `issuer: ${issuer.username} from ${issuer.source}, ready in ${since()} ms)`,
    );
    for (let i = 0; i < s.machineCodes; i++) {
      console.log(
        `One-time code for \`kitectl register --code\` (valid 24 h): ${await codes
          .create()}`,
      );
    }
    await initialized;
  } catch (err) {
    initialized.catch(() => {}); // e.g. the port was taken: report that
    await kontrol.kite.close();
    await storage.close();
    throw err;
  }
  console.log(
    `Kontrol signing with key pair ${kontrol.selfPair.id} (${since()} ms)`,
  );
  return kontrol;
}

async function main(): Promise<number> {
  let settings: KontrolSettings;
  try {
    settings = readSettings(Deno.args, readEnv);
  } catch (err) {
    console.error(`kontrol: ${(err as Error).message}`);
    return 2;
  }
  if (settings.help) {
    console.log(helpText());
    return 0;
  }
  if (settings.initial) {
    if (!settings.initialUser) {
      console.error("kontrol: --initial needs --username <name>");
      return 2;
    }
    const storage = await openStorage(settings);
    try {
      const pair = await loadKeyPair({
        publicKeyFile: settings.publicKeyFile,
        privateKeyFile: settings.privateKeyFile,
        dataDir: settings.data,
      });
      // Go's -initial: the key's issuer is its user (iss = sub).
      const kontrol = new Kontrol({
        storage,
        kontrolURL: settings.kontrolURL,
        username: (await kontrolIssuer(settings)).username,
      });
      await kontrol.init(pair);
      const key = await kontrol.signKiteKey(settings.initialUser);
      const path = await writeKiteKey(key, settings.kiteHome);
      await kontrol.kite.close();
      console.log(
        `wrote ${path} for user ${settings.initialUser} (Kontrol ${settings.kontrolURL})`,
      );
    } finally {
      await storage.close();
    }
    return 0;
  }
  let kontrol: Kontrol;
  try {
    kontrol = await startKontrol(settings);
  } catch (err) {
    // Bad key files, an unreachable storage, a port in use: one clear line.
    console.error(`kontrol: ${(err as Error).message}`);
    return 1;
  }
  console.log(
    `Write a kite.key for your kites with:  deno task kontrol --initial --username <you>`,
  );
  const stop = async () => {
    await kontrol.kite.close();
    await kontrol.storage.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await new Promise(() => {});
  return 0;
}

if (import.meta.main) Deno.exit(await main());

/**
 * The dashboard's page script, read before anything starts.
 * @throws {Error} naming the file and how to build it.
 */
async function readDashboard(path: string): Promise<string | undefined> {
  if (!path) return undefined;
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    throw new Error(
      `--dashboard: cannot read ${path} (${(err as Error).message}): ` +
        "run `deno task build:browser` first, or name a build with --dashboard=FILE",
    );
  }
}

/** Serves Kontrol's metrics alone on a private address (`--metrics host:port`). */
function serveMetrics(
  kontrol: Kontrol,
  at: { hostname: string; port: number },
): void {
  const handle = kontrol.kite.metrics!.registry.handle;
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({ ...at, onListen: () => {} }, handle);
  } catch (cause) {
    throw listenError(
      cause,
      at.hostname,
      at.port,
      "--metrics or KONTROL_METRICS",
    );
  }
  kontrol.kite.addCloser(() => server.shutdown());
}
