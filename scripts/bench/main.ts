/**
 * `deno task bench`: every benchmark in one run; prints tables and writes
 * `bench-results/latest.json` so results can be compared across commits.
 * `--quick` runs fewer, shorter rounds.
 *
 * @module
 */
import { benchCallPath } from "./call_path.ts";
import { benchKontrol } from "./kontrol.ts";
import { round } from "./stats.ts";

const quick = Deno.args.includes("--quick");
const machine =
  `${Deno.build.os}/${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`;
console.log(`Kite benchmarks on ${machine}${quick ? " (quick)" : ""}\n`);

const calls = await benchCallPath(quick ? 2 : 5, quick ? 500 : 1000);
const floor = calls[0];
console.log("Call path, one connection, square(4):");
console.table(calls.map((c) => ({
  contender: c.name,
  "seq calls/s": c.sequentialPerSec,
  "p50 µs": c.p50Us,
  "p99 µs": c.p99Us,
  "100 in flight calls/s": c.inFlightPerSec,
  "seq × raw": round(c.sequentialPerSec / floor.sequentialPerSec, 2),
  "in flight × raw": round(c.inFlightPerSec / floor.inFlightPerSec, 2),
})));

const kontrol = await benchKontrol(quick ? 1_000 : 10_000);
console.log("\nKontrol:");
console.table(kontrol);

await Deno.mkdir("bench-results", { recursive: true });
const out = { date: new Date().toISOString(), machine, quick, calls, kontrol };
await Deno.writeTextFile(
  "bench-results/latest.json",
  JSON.stringify(out, null, 2) + "\n",
);
console.log("\nwritten bench-results/latest.json");
