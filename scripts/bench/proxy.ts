/**
 * The reverse proxy's cost: square(4) over SockJS WebSocket to the math
 * kite directly and through the proxy kite (each in its own process), one
 * connection and 50, side by side in every round (order alternating, the
 * first round a warm-up). Ratios are taken within each round, then the
 * median; the target is ≥ 0.6× direct calls/s.
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import { startServer } from "./process.ts";
import { cpuMedian, measureCalls, type Sample } from "./one_at_a_time.ts";
import { median, round } from "./stats.ts";

/** Options for {@linkcode benchProxy}. */
export interface ProxyBenchOptions {
  /** Counted rounds (plus one warm-up). */
  rounds: number;
  /** Length of each measurement, ms. */
  ms: number;
}

/** One path's medians. */
export interface ProxyPathResult {
  /** `direct` or `through the proxy`. */
  path: string;
  /** Calls/s, one connection, one call at a time. */
  oneConnPerSec: number;
  /** Median latency, one connection, µs. */
  oneConnP50Us: number;
  /** Calls/s over 50 connections, one call at a time on each. */
  fiftyConnsPerSec: number;
  /** Median latency over 50 connections, µs. */
  fiftyConnsP50Us: number;
  /**
   * CPU (user + system) per call, one connection, µs: the kite's, and the
   * proxy's on the proxied path; `undefined` without `/proc`.
   */
  oneConnCpuUs: { kite?: number; proxy?: number };
}

/** What {@linkcode benchProxy} measured. */
export interface ProxyBenchResult {
  /** Direct, then through the proxy. */
  paths: ProxyPathResult[];
  /** Medians of the per-round ratios, proxy ÷ direct. */
  ratios: { oneConn: number; fiftyConns: number };
}

/** Measures direct and proxied calls; see the module doc. */
export async function benchProxy(
  options: ProxyBenchOptions,
): Promise<ProxyBenchResult> {
  const kite = await startServer("kite");
  const proxy = await startServer("proxy");
  const caller = new Kite("bench", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { logLevel: "ERROR" },
  });
  try {
    // The bench registers the kite's URL itself (authentication is off):
    // the registration lives as long as this connection.
    const registrar = caller.newClient(`http://127.0.0.1:${proxy.port}/kite`);
    await registrar.dial();
    const publicURL = await registrar.tell(
      "register",
      `http://127.0.0.1:${kite.port}/kite`,
    ) as string;
    const urls = [`http://127.0.0.1:${kite.port}/kite`, publicURL];
    const open = async (url: string, n: number) => {
      const clients = Array.from({ length: n }, () => caller.newClient(url));
      await Promise.all(clients.map((c) => c.dial()));
      return clients;
    };
    const one = await Promise.all(urls.map((u) => open(u, 1)));
    const fifty = await Promise.all(urls.map((u) => open(u, 50)));
    const samples = urls.map(() => ({
      one: [] as Sample[],
      fifty: [] as Sample[],
    }));
    // Direct: the kite's CPU; proxied: the kite's, then the proxy's.
    const pids = [[kite.pid], [kite.pid, proxy.pid]];
    for (let r = 0; r <= options.rounds; r++) {
      const order = r % 2 ? [1, 0] : [0, 1];
      for (const i of order) {
        const a = await measureCalls(one[i], options.ms, pids[i]);
        const b = await measureCalls(fifty[i], options.ms, pids[i]);
        if (r === 0) continue; // warm-up
        samples[i].one.push(a);
        samples[i].fifty.push(b);
      }
    }
    for (const c of [...one.flat(), ...fifty.flat(), registrar]) c.close();
    const paths = ["direct", "through the proxy"].map((path, i) => ({
      path,
      oneConnPerSec: round(median(samples[i].one.map((s) => s.perSec))),
      oneConnP50Us: round(median(samples[i].one.map((s) => s.p50Us))),
      fiftyConnsPerSec: round(median(samples[i].fifty.map((s) => s.perSec))),
      fiftyConnsP50Us: round(median(samples[i].fifty.map((s) => s.p50Us))),
      oneConnCpuUs: {
        kite: cpuMedian(samples[i].one, 0),
        proxy: i === 1 ? cpuMedian(samples[i].one, 1) : undefined,
      },
    }));
    const ratio = (key: "one" | "fifty") =>
      round(
        median(
          samples[1][key].map((s, k) => s.perSec / samples[0][key][k].perSec),
        ),
        2,
      );
    return {
      paths,
      ratios: { oneConn: ratio("one"), fiftyConns: ratio("fifty") },
    };
  } finally {
    await caller.close();
    await proxy.stop();
    await kite.stop();
  }
}

if (import.meta.main) {
  const result = await benchProxy({ rounds: 7, ms: 1_000 });
  console.table(result.paths);
  console.log(result.ratios);
}
