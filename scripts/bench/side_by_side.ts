/**
 * Contenders measured side by side in one run: each round calls every
 * contender sequentially and 100 in flight, alternating the order so
 * drift on a shared machine hits all alike; the first round warms up.
 * Ratios to the first contender are taken within each round (neighbours
 * in time, so slower stretches of a shared machine cancel), then the
 * median over rounds.
 *
 * @module
 */
import { median, round } from "./stats.ts";

/** Calls per second of `call`, `depth` at a time, for `ms`. */
export async function rate(
  call: () => Promise<unknown>,
  ms: number,
  depth: number,
): Promise<number> {
  let n = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(Array.from({ length: depth }, async () => {
    while (performance.now() < end) {
      await call();
      n++;
    }
  }));
  return n / ((performance.now() - start) / 1000);
}

/** One contender's medians. */
export interface SideBySideResult {
  /** The contender. */
  name: string;
  /** Median calls/s, one at a time. */
  sequentialPerSec: number;
  /** Median calls/s, 100 in flight. */
  inFlightPerSec: number;
  /** Median over rounds of this contender's calls/s ÷ the first's, one at a time. */
  sequentialRatio: number;
  /** The same, 100 in flight. */
  inFlightRatio: number;
}

/** Measures each named call for `rounds` counted rounds of `ms` per phase. */
export async function sideBySide(
  contenders: [string, () => Promise<unknown>][],
  rounds: number,
  ms: number,
): Promise<SideBySideResult[]> {
  const seq: number[][] = contenders.map(() => []);
  const fly: number[][] = contenders.map(() => []);
  for (let r = 0; r <= rounds; r++) {
    const order = contenders.map((_, i) => i);
    if (r % 2) order.reverse();
    for (const i of order) {
      const s = await rate(contenders[i][1], ms, 1);
      const f = await rate(contenders[i][1], ms, 100);
      if (r === 0) continue; // warm-up
      seq[i].push(s);
      fly[i].push(f);
    }
  }
  const ratio = (rates: number[][], i: number) =>
    round(median(rates[i].map((r, k) => r / rates[0][k])), 3);
  return contenders.map(([name], i) => ({
    name,
    sequentialPerSec: round(median(seq[i])),
    inFlightPerSec: round(median(fly[i])),
    sequentialRatio: ratio(seq, i),
    inFlightRatio: ratio(fly, i),
  }));
}
