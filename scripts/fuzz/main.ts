/**
 * `deno task fuzz`: sends malformed inputs at a math kite and a Kontrol on
 * 127.0.0.1 and checks that each gets a clear error or a closed
 * connection, while well-behaved clients keep getting right answers.
 *
 *     deno task fuzz                         # 100,000 inputs, seed 1
 *     deno task fuzz --count 5000 --seed 7   # fewer, another sequence
 *     deno task fuzz --time-limit 300        # stop generating after 300 s
 *     deno task fuzz --stateful 1000         # stateful attacks after (default 400)
 *
 * Exits 1 when any input was answered wrongly, a good call failed, the
 * process saw an uncaught error, or a server logged an error.
 *
 * @module
 */
import { runFuzz } from "./fuzz.ts";
import { runStateful } from "./stateful.ts";

function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const inline = Deno.args.find((a) => a.startsWith(`--${name}=`));
  const text = inline ? inline.split("=")[1] : i >= 0 ? Deno.args[i + 1] : "";
  if (!text) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number, got ${text}`);
    Deno.exit(2);
  }
  return n;
}

const count = flag("count", 100_000);
const seed = flag("seed", 1);
const timeLimitS = flag("time-limit", 900);
const statefulRounds = flag("stateful", 400);
console.log(
  `fuzzing a math kite and a Kontrol on 127.0.0.1: ${count} inputs, seed ${seed}, time limit ${timeLimitS} s`,
);
const summary = await runFuzz({
  count,
  seed,
  timeLimitMs: timeLimitS * 1000,
  progress: (line) => console.log(line),
});
const rss = Math.round(Deno.memoryUsage().rss / 2 ** 20);
console.log("\nInputs by category:");
console.table(summary.categories);
console.log("Expected answers:", summary.outcomes);
console.log("Inputs by server:", summary.targets);
console.log(JSON.stringify(
  {
    seed: summary.seed,
    planned: summary.planned,
    sent: summary.sent,
    failures: summary.failureCount,
    crashes: summary.crashes.length,
    serverErrors: summary.serverErrors.length,
    goodCalls: summary.goodCalls,
    goodWrong: summary.goodWrong,
    goodFailed: summary.goodFailed,
    leftoverConnections: summary.leftover,
    flood: summary.flood,
    stoppedByTime: summary.stoppedByTime,
    elapsedS: Math.round(summary.elapsedMs / 100) / 10,
    rssMiB: rss,
  },
  null,
  2,
));
for (const f of summary.failures) console.log("FAIL", f);
for (const c of summary.crashes) console.log("CRASH", c);
for (const e of summary.serverErrors.slice(0, 20)) {
  console.log("SERVER ERROR", e);
}
console.log(
  `\nstateful attacks (slow readers plus heartbeats, callbacks, watch events): ${statefulRounds}, seed ${seed}`,
);
const stateful = await runStateful({
  rounds: statefulRounds,
  seed,
  progress: (line) => console.log(line),
});
console.table(stateful.attacks);
console.log(JSON.stringify(
  {
    rounds: stateful.rounds,
    unexpected: stateful.failures.length,
    crashes: stateful.crashes.length,
    serverErrors: stateful.serverErrors.length,
    goodCalls: stateful.goodCalls,
    goodFailed: stateful.goodFailed,
    rssMiB: stateful.rssMiB,
    elapsedS: Math.round(stateful.elapsedMs / 100) / 10,
  },
  null,
  2,
));
for (const f of stateful.failures) console.log("FAIL", f);
for (const c of stateful.crashes) console.log("CRASH", c);
for (const e of stateful.serverErrors.slice(0, 20)) {
  console.log("SERVER ERROR", e);
}
const statefulOk = stateful.failures.length === 0 &&
  stateful.crashes.length === 0 && stateful.serverErrors.length === 0 &&
  stateful.goodFailed === 0;
const ok = statefulOk && summary.failureCount === 0 &&
  summary.crashes.length === 0 &&
  summary.serverErrors.length === 0 && summary.goodWrong === 0 &&
  summary.goodFailed === 0 && summary.leftover.kite === 0 &&
  summary.leftover.kontrol === 0;
console.log(ok ? "\nfuzz: OK" : "\nfuzz: FAILED");
Deno.exit(ok ? 0 : 1);
