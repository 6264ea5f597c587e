/**
 * The measurement the proxy and tunnel benchmarks share: clients each
 * calling `square(4)` one at a time for a while, with the rate, the median
 * latency and the CPU per call of the processes on the path.
 *
 * @module
 */
import type { Client } from "../../kite/client.ts";
import { cpuMicros } from "./process.ts";
import { median, quantile, round } from "./stats.ts";

/** One measurement. */
export interface Sample {
  /** Calls/s over all clients. */
  perSec: number;
  /** Median latency, µs. */
  p50Us: number;
  /** CPU µs per call of each of the given processes (NaN without `/proc`). */
  cpuUs: number[];
}

/**
 * Each client calls square(4) one at a time for `ms`; total rate, p50,
 * and the CPU (user + system) per call of the processes `pids`.
 */
export async function measureCalls(
  clients: Client[],
  ms: number,
  pids: number[],
): Promise<Sample> {
  const cpuBefore = pids.map(cpuMicros);
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + ms;
  await Promise.all(clients.map(async (c) => {
    while (performance.now() < end) {
      const t = performance.now();
      await c.tell("square", 4);
      latencies.push(performance.now() - t);
    }
  }));
  const elapsed = (performance.now() - start) / 1000;
  return {
    perSec: latencies.length / elapsed,
    p50Us: quantile(latencies, 0.5) * 1000,
    cpuUs: pids.map((pid, i) =>
      ((cpuMicros(pid) ?? NaN) - (cpuBefore[i] ?? NaN)) / latencies.length
    ),
  };
}

/** Median over samples of process `k`'s CPU µs per call; undefined without `/proc`. */
export function cpuMedian(samples: Sample[], k: number): number | undefined {
  const m = median(samples.map((s) => s.cpuUs[k]));
  return Number.isFinite(m) ? round(m) : undefined;
}
