/**
 * Kontrol benchmark: registrations per second over the wire, and getKites
 * latency (one-kite and 100-kite results) with N kites registered, on the
 * memory and Deno KV stores. Kontrol runs in this process.
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import { Kontrol } from "../../kontrol/kontrol.ts";
import { MemoryStorage } from "../../storage/memory.ts";
import { KvStorage } from "../../storage/kv.ts";
import type { Storage } from "../../storage/storage.ts";
import { makeIdentity } from "../../kite/protocol.ts";
import { quantile, round } from "./stats.ts";

/** Figures for one storage engine. */
export interface KontrolResult {
  storage: string;
  kites: number;
  "register/s": number;
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

async function registerRate(
  kontrol: Kontrol,
  key: string,
  count: number,
): Promise<number> {
  const kites = Array.from(
    { length: count },
    (_, i) =>
      new Kite(`reg${i}`, "1.0.0", {
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
  await Promise.all(kites.map((k) => k.kontrol.connection()));
  const t = performance.now();
  await Promise.all(
    kites.map((k, i) => k.register(`http://10.0.0.2:${2000 + i}/kite`)),
  );
  const perSec = count / ((performance.now() - t) / 1000);
  await Promise.all(kites.map((k) => k.close()));
  return perSec;
}

async function benchOne(
  name: string,
  storage: Storage,
  n: number,
): Promise<KontrolResult> {
  const kontrol = new Kontrol({ storage, kiteConfig: { logLevel: "ERROR" } });
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
    const rate = await registerRate(kontrol, key, 300);
    await caller.close();
    return {
      storage: name,
      kites: n,
      "register/s": round(rate),
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

/** Runs the Kontrol benchmark on memory and KV with `n` registered kites. */
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
  return results;
}
