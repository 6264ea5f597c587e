/**
 * Kontrol benchmark: registrations per second over the wire, and getKites
 * latency (one-kite and 100-kite results) with N kites registered, on the
 * memory and Deno KV stores, and on etcd and PostgreSQL when their binaries
 * are installed (started with the test helpers; skipped with a note
 * otherwise). Kontrol runs in this process.
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import { Kontrol } from "../../kontrol/kontrol.ts";
import { MemoryStorage } from "../../storage/memory.ts";
import { KvStorage } from "../../storage/kv.ts";
import { EtcdStorage } from "../../storage/etcd.ts";
import { PostgresStorage } from "../../storage/postgres.ts";
import type { Storage } from "../../storage/storage.ts";
import { makeIdentity } from "../../kite/protocol.ts";
import { findBinary, postgresBinDirs } from "../../tests/helpers/binaries.ts";
import { startEtcd } from "../../tests/helpers/etcd_server.ts";
import { startPostgres } from "../../tests/helpers/postgres_server.ts";
import { median, quantile, round } from "./stats.ts";

/** Figures for one storage engine. */
export interface KontrolResult {
  storage: string;
  kites: number;
  /** Median over bursts of registrations. */
  "register/s": number;
  /** Slowest and fastest burst, e.g. `"1,900–2,400"`. */
  "register/s range": string;
  "getKites 1 p50 ms": number;
  "getKites 1 p99 ms": number;
  "getKites 100 p50 ms": number;
  "getKites 100 p99 ms": number;
}

async function populate(
  storage: Storage,
  keyId: string,
  n: number,
): Promise<void> {
  const batch: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const kite = makeIdentity({
      name: i < 100 ? "hundred" : `svc${i}`,
      username: "bench",
      id: crypto.randomUUID(),
      environment: "prod",
      region: "eu",
      version: "1.0.0",
      hostname: "host",
    });
    batch.push(
      storage.upsert({
        kite,
        url: `http://10.0.0.1:${1000 + (i % 60000)}/kite`,
        keyId,
      }),
    );
    if (batch.length === 200) await Promise.all(batch.splice(0));
  }
  await Promise.all(batch);
}

async function timeGetKites(
  kite: Kite,
  name: string,
  times: number,
): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    await kite.kontrol.getKites({
      username: "bench",
      environment: "prod",
      name,
    });
    ms.push(performance.now() - t);
  }
  return ms;
}

/**
 * Registrations per second in each of `rounds` bursts of `count` new kites.
 * Every kite stays connected until the last burst is timed: kites leaving
 * make Kontrol delete their entries, which would load the next burst.
 */
async function registerRates(
  kontrol: Kontrol,
  key: string,
  count: number,
  rounds: number,
): Promise<number[]> {
  const rates: number[] = [];
  const all: Kite[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const kites = Array.from(
        { length: count },
        (_, i) =>
          new Kite(`reg${r}-${i}`, "1.0.0", {
            env: false,
            kiteKey: key,
            config: {
              logLevel: "ERROR",
              environment: "prod",
              region: "eu",
              hostname: "host",
              kontrolURL: kontrol.kite.url,
            },
          }),
      );
      all.push(...kites);
      await Promise.all(kites.map((k) => k.kontrol.connection()));
      const t = performance.now();
      await Promise.all(
        kites.map((k, i) => k.register(`http://10.0.0.2:${2000 + i}/kite`)),
      );
      rates.push(count / ((performance.now() - t) / 1000));
    }
  } finally {
    await Promise.all(all.map((k) => k.close()));
  }
  return rates;
}

async function benchOne(
  name: string,
  storage: Storage,
  n: number,
): Promise<KontrolResult> {
  const kontrol = new Kontrol({
    storage,
    // User `bench` owns every preloaded kite and every registering one.
    limits: { maxKitesPerUser: 2 * n + 10_000 },
    // Every registering kite dials from 127.0.0.1.
    kiteConfig: { logLevel: "ERROR", maxConnectionsPerAddress: 1_000_000 },
  });
  await kontrol.init();
  await kontrol.kite.serve({ port: 0, hostname: "127.0.0.1" });
  try {
    await populate(storage, kontrol.selfPair.id, n);
    const key = await kontrol.signKiteKey("bench");
    const caller = new Kite("caller", "1.0.0", {
      env: false,
      kiteKey: key,
      config: { logLevel: "ERROR", kontrolURL: kontrol.kite.url },
    });
    await timeGetKites(caller, "svc500", 50); // warm-up
    const one = await timeGetKites(caller, `svc${n - 1}`, 300);
    const hundred = await timeGetKites(caller, "hundred", 100);
    const rates = await registerRates(kontrol, key, 300, 5);
    await caller.close();
    const perSec = (v: number) => round(v).toLocaleString("en-US");
    return {
      storage: name,
      kites: n,
      "register/s": round(median(rates)),
      "register/s range": `${perSec(Math.min(...rates))}–${
        perSec(Math.max(...rates))
      }`,
      "getKites 1 p50 ms": round(quantile(one, 0.5), 2),
      "getKites 1 p99 ms": round(quantile(one, 0.99), 2),
      "getKites 100 p50 ms": round(quantile(hundred, 0.5), 2),
      "getKites 100 p99 ms": round(quantile(hundred, 0.99), 2),
    };
  } finally {
    await kontrol.kite.close();
    await storage.close();
  }
}

/** A server-backed engine: starts its server, opens a storage, cleans up. */
interface ServerEngine {
  name: string;
  binary: string;
  aptPackage: string;
  installed: boolean;
  run(n: number): Promise<KontrolResult>;
}

const SERVER_ENGINES: ServerEngine[] = [
  {
    name: "etcd",
    binary: "etcd",
    aptPackage: "etcd-server",
    installed: findBinary("etcd") !== undefined,
    async run(n) {
      const server = await startEtcd();
      try {
        return await benchOne(
          "etcd",
          await EtcdStorage.connect({ endpoints: server.endpoints }),
          n,
        );
      } finally {
        // A crash, not a graceful stop: etcd's HTTP/2 GOAWAY on shutdown can
        // abort a Deno 2.9 process (see storage/etcd.ts).
        await server.stop("SIGKILL");
        await server.close();
      }
    },
  },
  {
    name: "postgres",
    binary: "postgres",
    aptPackage: "postgresql",
    installed:
      findBinary("postgres", { extraDirs: postgresBinDirs() }) !== undefined,
    async run(n) {
      const server = await startPostgres();
      try {
        return await benchOne(
          "postgres",
          await PostgresStorage.connect(server.connection),
          n,
        );
      } finally {
        await server.close();
      }
    },
  },
];

/**
 * Runs the Kontrol benchmark with `n` registered kites on memory and KV,
 * then on etcd and PostgreSQL where installed.
 */
export async function benchKontrol(n = 10_000): Promise<KontrolResult[]> {
  const results = [await benchOne("memory", new MemoryStorage(), n)];
  const dir = await Deno.makeTempDir({ prefix: "kite-bench-kv-" });
  try {
    results.push(
      await benchOne("kv", await KvStorage.open(`${dir}/bench.kv`), n),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  for (const engine of SERVER_ENGINES) {
    if (!engine.installed) {
      console.log(
        `Kontrol on ${engine.name}: skipped, \`${engine.binary}\` not found (apt-get install ${engine.aptPackage})`,
      );
      continue;
    }
    results.push(await engine.run(n));
  }
  return results;
}
