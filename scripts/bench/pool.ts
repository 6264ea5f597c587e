/**
 * Pool benchmarks, in one run: a pool's overhead over a direct client on
 * one instance (one call at a time and 100 in flight, rounds alternating
 * so both meet the same machine), calls and errors per 100 ms around the
 * SIGKILL of one of five instances, and p99 with one instance slowed to
 * 50 ms, power of two choices against round-robin (500 calls/s offered). Kontrol runs in this
 * process; the math instances are processes of their own.
 *
 * @module
 */
import type { Client, Kite, KitePool } from "../../mod.ts";
import {
  kontrolKite,
  startTestKontrol,
  type TestKontrol,
} from "../../tests/helpers/kontrol_harness.ts";
import {
  type Instance,
  spawnInstance,
} from "../../tests/helpers/pool_instances.ts";
import { median, quantile, round } from "./stats.ts";

const QUERY = { username: "alice", environment: "test", name: "math" };

/** Settings of {@linkcode benchPool}. */
export interface PoolBenchOptions {
  /** Alternating rounds of the overhead comparison. */
  rounds: number;
  /** Length of one round, ms. */
  ms: number;
  /** Failover run length, ms (the kill comes at a third of it). */
  failoverMs: number;
  /** Calls per balancer in the slow-instance run. */
  slowCalls: number;
}

/** What {@linkcode benchPool} measured. */
export interface PoolBenchResult {
  overhead: {
    case: string;
    "direct calls/s": number;
    "pool calls/s": number;
    "pool × direct": number;
  }[];
  failover: {
    /** Calls per 100 ms bucket, from the start; the kill is at `killBucket`. */
    ok: number[];
    errors: number[];
    killBucket: number;
    /** Buckets after the kill until one reaches 80 % of the median before it. */
    recoveredAfterMs: number;
    failed: number;
  };
  slow: {
    balancer: string;
    "p50 ms": number;
    "p99 ms": number;
    "slow share %": number;
  }[];
}

async function rate(
  call: () => Promise<unknown>,
  inFlight: number,
  ms: number,
): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      await call();
      n++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return n / ((performance.now() - start) / 1000);
}

interface World {
  tk: TestKontrol;
  home: string;
  caller: Kite;
  instances: Instance[];
  close(): Promise<void>;
}

async function world(delays: number[]): Promise<World> {
  const tk = await startTestKontrol();
  const home = await Deno.makeTempDir({ prefix: "pool_bench_" });
  await Deno.writeTextFile(`${home}/kite.key`, await tk.kiteKey("alice"));
  const instances = await Promise.all(
    delays.map((d) => spawnInstance(tk.url, home, d)),
  );
  const caller = await kontrolKite(tk, "caller", "bob", { logLevel: "FATAL" });
  return {
    tk,
    home,
    caller,
    instances,
    close: async () => {
      await caller.close();
      for (const i of instances) await i.kill();
      await tk.close();
      await Deno.remove(home, { recursive: true });
    },
  };
}

async function overhead(
  options: PoolBenchOptions,
): Promise<PoolBenchResult["overhead"]> {
  const w = await world([0]);
  try {
    const pool = w.caller.pool(QUERY);
    await pool.ready;
    const [found] = await w.caller.getKites(QUERY);
    const direct: Client = found.client;
    await direct.dial();
    await pool.tell("square", 1);
    const rows: PoolBenchResult["overhead"] = [];
    for (const inFlight of [1, 100]) {
      const d: number[] = [];
      const p: number[] = [];
      for (let r = 0; r < options.rounds; r++) {
        const runDirect = () =>
          rate(() => direct.tell("square", 4), inFlight, options.ms);
        const runPool = () =>
          rate(() => pool.tell("square", 4), inFlight, options.ms);
        if (r % 2 === 0) {
          d.push(await runDirect());
          p.push(await runPool());
        } else {
          p.push(await runPool());
          d.push(await runDirect());
        }
      }
      rows.push({
        case: inFlight === 1 ? "one at a time" : "100 in flight",
        "direct calls/s": round(median(d)),
        "pool calls/s": round(median(p)),
        "pool × direct": round(median(p.map((v, i) => v / d[i])), 3),
      });
    }
    direct.close();
    await pool.close();
    return rows;
  } finally {
    await w.close();
  }
}

async function failover(
  options: PoolBenchOptions,
): Promise<PoolBenchResult["failover"]> {
  const w = await world([0, 0, 0, 0, 0]);
  try {
    const pool = w.caller.pool(QUERY, { idempotent: ["square"] });
    await pool.ready;
    const buckets = Math.ceil(options.failoverMs / 100);
    const ok = new Array(buckets).fill(0);
    const errors = new Array(buckets).fill(0);
    const killBucket = Math.floor(buckets / 3);
    const start = performance.now();
    const end = start + options.failoverMs;
    let killed = false;
    const worker = async () => {
      while (performance.now() < end) {
        let good = true;
        try {
          await pool.tell("square", 3);
        } catch {
          good = false;
        }
        const b = Math.min(
          buckets - 1,
          Math.floor((performance.now() - start) / 100),
        );
        (good ? ok : errors)[b]++;
        if (!killed && b >= killBucket) {
          killed = true;
          void w.instances[0].kill();
        }
      }
    };
    await Promise.all(Array.from({ length: 100 }, worker));
    const before = median(ok.slice(1, killBucket));
    let recovered = killBucket;
    while (recovered < buckets && ok[recovered] < 0.8 * before) recovered++;
    await pool.close();
    return {
      ok,
      errors,
      killBucket,
      recoveredAfterMs: (recovered - killBucket) * 100,
      failed: errors.reduce((a, b) => a + b, 0),
    };
  } finally {
    await w.close();
  }
}

async function slow(
  options: PoolBenchOptions,
): Promise<PoolBenchResult["slow"]> {
  const w = await world([0, 0, 0, 0, 50]);
  const slowId = w.instances[4].id;
  try {
    const rows: PoolBenchResult["slow"] = [];
    const pools = new Map<string, KitePool>();
    for (const balancer of ["p2c", "round-robin"] as const) {
      const pool = w.caller.pool(QUERY, { balancer });
      await pool.ready;
      // Warm up: every connection dialed, every instance's code compiled.
      await Promise.all(
        Array.from({ length: 200 }, () => pool.tell("square", 1)),
      );
      pools.set(balancer, pool);
    }
    for (const [balancer, pool] of pools) {
      // Open loop: calls start at a steady pace whatever the answers do,
      // so a balancer that keeps callers off the slow instance is not
      // charged with the queue that a closed loop would pile elsewhere.
      const latencies: number[] = [];
      let slowCount = 0;
      const calls: Promise<void>[] = [];
      const one = async () => {
        const t = performance.now();
        const r = await pool.call("square", [2]);
        latencies.push(performance.now() - t);
        if (r.instance?.id === slowId) slowCount++;
      };
      while (calls.length < options.slowCalls) {
        for (let i = 0; i < 5; i++) calls.push(one());
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await Promise.all(calls);
      rows.push({
        balancer,
        "p50 ms": round(quantile(latencies, 0.5), 2),
        "p99 ms": round(quantile(latencies, 0.99), 2),
        "slow share %": round(100 * slowCount / latencies.length, 1),
      });
      await pool.close();
    }
    return rows;
  } finally {
    await w.close();
  }
}

/** Runs the three pool benchmarks one after the other. */
export async function benchPool(
  options: PoolBenchOptions,
): Promise<PoolBenchResult> {
  return {
    overhead: await overhead(options),
    failover: await failover(options),
    slow: await slow(options),
  };
}

if (import.meta.main) {
  const r = await benchPool({
    rounds: 3,
    ms: 300,
    failoverMs: 1_500,
    slowCalls: 2_000,
  });
  console.table(r.overhead);
  console.log(r.failover);
  console.table(r.slow);
}
