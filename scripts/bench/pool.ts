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
import process from "node:process";
import { pinProcess } from "./process.ts";
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
    /** A second direct client against the first: the method's own spread. */
    "direct′ × direct (A/A)": number;
    /** Same-round ratio of the caller's CPU time per call (median). */
    "caller CPU/call, pool × direct": number;
    "caller CPU/call, A/A": number;
    "caller CPU µs/call, direct": number;
    "caller CPU µs/call, pool": number;
    "instance CPU µs/call, direct": number;
    "instance CPU µs/call, pool": number;
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

/** One round of one path: its rate, and CPU time per call on each side. */
interface Round {
  perSec: number;
  calls: number;
  /** CPU time of this process (the caller), µs. */
  callerUs: number;
  /** CPU time of the instance's process, µs (10 ms ticks). */
  serverUs: number;
}

/** User + system CPU time of process `pid`, µs (from /proc, 10 ms ticks). */
function processCpuUs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks * 10_000;
}

/** Calls `call` with `inFlight` workers for `ms`, counting CPU on both sides. */
async function measure(
  call: () => Promise<unknown>,
  inFlight: number,
  ms: number,
  serverPid: number,
): Promise<Round> {
  let calls = 0;
  const server0 = processCpuUs(serverPid);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + ms;
  const worker = async () => {
    while (performance.now() < end) {
      await call();
      calls++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return {
    perSec: calls / (elapsed / 1000),
    calls,
    callerUs: cpu.user + cpu.system,
    serverUs: processCpuUs(serverPid) - server0,
  };
}

/**
 * Runs `paths` one after the other `rounds` times, each round in another
 * order (a rotation, so each path runs first, middle and last as often),
 * after one discarded warm-up round; returns each path's rounds.
 */
async function interleaved(
  paths: (() => Promise<unknown>)[],
  inFlight: number,
  rounds: number,
  ms: number,
  serverPid: number,
): Promise<Round[][]> {
  const out: Round[][] = paths.map(() => []);
  for (let r = -1; r < rounds; r++) {
    for (let k = 0; k < paths.length; k++) {
      const i = (Math.max(r, 0) + k) % paths.length;
      const v = await measure(paths[i], inFlight, ms, serverPid);
      if (r >= 0) out[i].push(v);
    }
  }
  return out;
}

/** CPU µs per call over all rounds: the caller's and the instance's. */
function cpuPerCall(rounds: Round[]): { caller: number; server: number } {
  const calls = rounds.reduce((a, r) => a + r.calls, 0);
  return {
    caller: rounds.reduce((a, r) => a + r.callerUs, 0) / calls,
    server: rounds.reduce((a, r) => a + r.serverUs, 0) / calls,
  };
}

/**
 * A pool against a direct client on one instance, over the same kind of
 * client (found through the same Kontrol: same transport, token and
 * instance), warmed the same, in interleaved rounds. A second direct
 * client, run the same way, is the A/A control: its ratio to the first
 * shows how far two equal paths drift apart in one run on this machine.
 * CPU time per call (this process, the caller; and the instance's) is
 * what the pool adds whatever else the machine runs.
 */
async function overhead(
  options: PoolBenchOptions,
): Promise<PoolBenchResult["overhead"]> {
  const w = await world([0]);
  try {
    const pool = w.caller.pool(QUERY);
    await pool.ready;
    const [first, second] = [
      ...await w.caller.getKites(QUERY),
      ...await w.caller.getKites(QUERY),
    ];
    const direct: Client = first.client;
    const twin: Client = second.client;
    await direct.dial();
    await twin.dial();
    await pool.tell("square", 1);
    const transports = new Set([
      direct.session?.transport,
      twin.session?.transport,
      ...pool.instances.map((i) => i.transport),
    ]);
    if (transports.size !== 1) {
      throw new Error(`paths on different transports: ${[...transports]}`);
    }
    // As the call-path bench: the instance on CPU 1, this process on 0.
    const pinned = navigator.hardwareConcurrency >= 2 &&
      await pinProcess(w.instances[0].child.pid, "1") &&
      await pinProcess(Deno.pid, "0");
    const paths = [
      () => direct.tell("square", 4),
      () => pool.tell("square", 4),
      () => twin.tell("square", 4),
    ];
    const rows: PoolBenchResult["overhead"] = [];
    for (const inFlight of [1, 100]) {
      const [d, p, t] = await interleaved(
        paths,
        inFlight,
        options.rounds,
        options.ms,
        w.instances[0].child.pid,
      );
      const ratio = (a: Round[], b: Round[]) =>
        round(median(a.map((v, i) => v.perSec / b[i].perSec)), 3);
      // Caller CPU per call, as a same-round ratio (median over rounds).
      const cpuRatio = (a: Round[], b: Round[]) =>
        round(
          median(a.map((v, i) =>
            (v.callerUs / v.calls) / (b[i].callerUs / b[i].calls)
          )),
          3,
        );
      const cd = cpuPerCall(d);
      const cp = cpuPerCall(p);
      rows.push({
        case: inFlight === 1 ? "one at a time" : "100 in flight",
        "direct calls/s": round(median(d.map((r) => r.perSec))),
        "pool calls/s": round(median(p.map((r) => r.perSec))),
        "pool × direct": ratio(p, d),
        "direct′ × direct (A/A)": ratio(t, d),
        "caller CPU/call, pool × direct": cpuRatio(p, d),
        "caller CPU/call, A/A": cpuRatio(t, d),
        "caller CPU µs/call, direct": round(cd.caller, 1),
        "caller CPU µs/call, pool": round(cp.caller, 1),
        "instance CPU µs/call, direct": round(cd.server, 1),
        "instance CPU µs/call, pool": round(cp.server, 1),
      });
    }
    if (pinned) {
      await pinProcess(Deno.pid, `0-${navigator.hardwareConcurrency - 1}`);
    }
    direct.close();
    twin.close();
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

if (import.meta.main && Deno.args[0] === "overhead") {
  console.table(
    await overhead({
      rounds: Number(Deno.args[1] ?? 9),
      ms: Number(Deno.args[2] ?? 300),
      failoverMs: 0,
      slowCalls: 0,
    }),
  );
} else if (import.meta.main) {
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
