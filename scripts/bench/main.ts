/**
 * `deno task bench`: every benchmark in one run; prints tables and writes
 * `bench-results/latest.json` so results can be compared across commits.
 * `--quick` runs fewer, shorter rounds and smaller capacity tests.
 * Progress goes to stderr, tables to stdout.
 *
 * @module
 */
import { benchCallPath, type CallPathResult, progress } from "./call_path.ts";
import {
  benchIdleConnections,
  benchKontrolMemory,
  benchKontrolReady,
} from "./capacity.ts";
import { benchKontrol } from "./kontrol.ts";
import { benchPool } from "./pool.ts";
import { benchCluster } from "./cluster.ts";
import { benchBrowser } from "./browser.ts";
import { benchDashboard } from "./dashboard.ts";
import { benchObserve, observeTable } from "./observe.ts";
import { benchContract, contractRows } from "./contract.ts";
import { benchProxy } from "./proxy.ts";
import { benchTunnel } from "./tunnel.ts";
import { median, round } from "./stats.ts";

const quick = Deno.args.includes("--quick");
const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => ""))
  .match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown CPU";
const machine =
  `${Deno.build.os}/${Deno.build.arch}, ${cpu}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`;
console.log(`Kite benchmarks on ${machine}${quick ? " (quick)" : ""}\n`);

let t = performance.now();
const { calls, auth, pinned } = await benchCallPath(
  quick ? { rounds: 3, ms: 400 } : { rounds: 7, ms: 1000 },
);
progress("call path", t);
const by = (name: string) => calls.find((c) => c.name === name)!;
const floor = by("raw Deno WebSocket echo");
const kitejs = by("kite.js → kite.js (Node)");
const x = (a: number, b: number) => round(a / b, 2);
console.log(
  "Call path, square(4) (callbacks: squareCb(4, fn), fn called once):",
);
console.log(
  pinned
    ? "clients on CPU 0, servers on CPU 1"
    : "not pinned to CPUs (taskset missing or one CPU): rates move more",
);
console.table(calls.map((c) => ({
  contender: c.name,
  "seq calls/s": c.sequentialPerSec,
  "p50 µs": c.p50Us,
  "p99 µs": c.p99Us,
  "100 in flight/s": c.inFlightPerSec,
  "50 conns/s": c.connsPerSec,
  "callback calls/s": c.callbackPerSec ?? "",
  "seq × raw": x(c.sequentialPerSec, floor.sequentialPerSec),
  "flight × raw": x(c.inFlightPerSec, floor.inFlightPerSec),
  "seq × kite.js": x(c.sequentialPerSec, kitejs.sequentialPerSec),
  "flight × kite.js": x(c.inFlightPerSec, kitejs.inFlightPerSec),
})));

const plain = auth[0];
console.log("\nAuthentication, kite over raw websocket, square(4):");
console.table(auth.map((a) => ({
  case: a.name,
  "seq calls/s": a.sequentialPerSec,
  "p50 µs": a.p50Us,
  "p99 µs": a.p99Us,
  "100 in flight/s": a.inFlightPerSec,
  "seq × none": x(a.sequentialPerSec, plain.sequentialPerSec),
  "flight × none": x(a.inFlightPerSec, plain.inFlightPerSec),
})));

t = performance.now();
const idle = await benchIdleConnections(quick ? 2_000 : 10_000);
progress("idle connections", t);
t = performance.now();
const ready = await benchKontrolReady(quick ? 2 : 5);
progress("kontrol start", t);
t = performance.now();
const kontrolMemory = [
  await benchKontrolMemory(quick ? 300 : 2_000, "kv"),
  await benchKontrolMemory(quick ? 300 : 2_000, "memory"),
];
progress("kontrol memory", t);
console.log("\nCapacity:");
console.table({
  [`${idle.open} idle SockJS sessions on one kite`]: {
    "KiB per connection (RSS)": idle.rssKiBPerConn,
    "KiB per connection (V8 heap)": idle.heapKiBPerConn,
  },
  ...Object.fromEntries(kontrolMemory.map((m) => [
    `Kontrol (${m.storage}), ${m.kites} registered kites`,
    { "KiB per kite (RSS)": m.rssKiBPerKite },
  ])),
  "deno task kontrol → accepting": {
    "ms, first start (key pair made)": ready.firstStartMs,
    "ms, first start until signing": ready.firstSigningMs,
    "ms, restart": ready.restartMs,
  },
});

t = performance.now();
const kontrol = await benchKontrol(quick ? 1_000 : 10_000);
progress("kontrol", t);
console.log("\nKontrol:");
console.table(kontrol);

t = performance.now();
const pool = await benchPool(
  quick
    ? { rounds: 5, ms: 200, failoverMs: 1_500, slowCalls: 1_000 }
    : { rounds: 15, ms: 300, failoverMs: 3_000, slowCalls: 5_000 },
);
progress("pool", t);
console.log("\nPool (kite.pool) against a direct client, one instance:");
console.table(pool.overhead);
console.log(
  `\nPool failover, 5 instances, 100 in flight, one SIGKILLed at ${
    pool.failover.killBucket * 100
  } ms (calls per 100 ms):`,
);
console.table({
  ok: pool.failover.ok,
  errors: pool.failover.errors,
});
console.log(
  `throughput back to 80 % after ${pool.failover.recoveredAfterMs} ms; ${pool.failover.failed} failed calls`,
);
console.log("\nPool with one of 5 instances slowed to 50 ms, 500 calls/s:");
console.table(pool.slow);

t = performance.now();
const cores = Math.max(2, navigator.hardwareConcurrency);
const cluster = await benchCluster(cores, quick ? 2 : 5, quick ? 400 : 1_000);
progress("cluster", t);
console.log(
  `\nOne kite on 1 process vs ${cores} processes behind one port (reusePort + cluster), 100 in flight:`,
);
console.table(cluster);
if (navigator.hardwareConcurrency <= 2) {
  console.log(
    "(2 cores: the clients share them with the servers, so the client is the limit here)",
  );
}

t = performance.now();
const observe = await benchObserve(
  quick
    ? { rounds: 3, ms: 500, cpuCalls: 5_000, cpuRuns: 3 }
    : { rounds: 9, ms: 1_000 },
);
progress("observability", t);
const observeRows = observeTable(observe);
console.log(
  "\nObservability cost, square(4) over raw websocket, side by side" +
    ` (load average ${Deno.loadavg().join(", ")}):`,
);
console.table(observeRows);

t = performance.now();
const contract = await benchContract(
  quick ? { rounds: 3, ms: 500 } : { rounds: 7, ms: 1_000 },
);
progress("contracts", t);
console.log(
  "\nContract cost, square(4) over raw websocket, zod checks vs plain handler:",
);
console.table(contractRows(contract));

t = performance.now();
const proxyBench = await benchProxy(
  quick ? { rounds: 3, ms: 400 } : { rounds: 7, ms: 1_000 },
);
progress("reverse proxy", t);
console.log(
  "\nReverse proxy kite vs direct, square(4) over SockJS websocket, one call at a time per connection:",
);
console.table(proxyBench.paths.map((p) => ({
  path: p.path,
  "1 conn calls/s": p.oneConnPerSec,
  "1 conn p50 µs": p.oneConnP50Us,
  "50 conns calls/s": p.fiftyConnsPerSec,
  "50 conns p50 µs": p.fiftyConnsP50Us,
  "1 conn kite CPU µs/call": p.oneConnCpuUs.kite,
  "1 conn proxy CPU µs/call": p.oneConnCpuUs.proxy,
})));
console.log(
  `proxy ÷ direct, median of same-round ratios: 1 connection ${proxyBench.ratios.oneConn}×, 50 connections ${proxyBench.ratios.fiftyConns}×`,
);

t = performance.now();
const tunnel = await benchTunnel(
  quick ? { rounds: 3, ms: 500 } : { rounds: 7, ms: 1_000 },
);
progress("tunnel", t);
console.log(
  "\nTunnel proxy vs direct, same kite, square(4), one call at a time per connection:",
);
console.table(tunnel);

interface Goal {
  target: string;
  measured: string;
  met: boolean;
}

/** The ratio of `a` to `b` in each round. */
function roundRatios(a: number[], b: number[]): number[] {
  return a.map((v, i) => v / b[i]);
}

/**
 * The call-path targets of the issue for one kite contender. Each is judged
 * two ways, and met only when both reach it: the ratio of the two medians,
 * and the median of the ratios within each round (where the contenders ran
 * side by side); the spread of those shows how far one round can stray.
 */
function callGoals(k: CallPathResult): Goal[] {
  const rows: [string, number, number, number[]][] = [
    [
      "seq ≥ 0.85× raw",
      k.sequentialPerSec / floor.sequentialPerSec,
      0.85,
      roundRatios(k.sequentialRounds, floor.sequentialRounds),
    ],
    [
      "100 in flight ≥ 0.6× raw",
      k.inFlightPerSec / floor.inFlightPerSec,
      0.6,
      roundRatios(k.inFlightRounds, floor.inFlightRounds),
    ],
    [
      "seq ≥ 2× kite.js",
      k.sequentialPerSec / kitejs.sequentialPerSec,
      2,
      roundRatios(k.sequentialRounds, kitejs.sequentialRounds),
    ],
    [
      "100 in flight ≥ 2× kite.js",
      k.inFlightPerSec / kitejs.inFlightPerSec,
      2,
      roundRatios(k.inFlightRounds, kitejs.inFlightRounds),
    ],
  ];
  return rows.map(([what, got, want, rounds]) => {
    const paired = median(rounds);
    return {
      target: `${k.name}: ${what}`,
      // Three decimals, and the comparison on the exact ratio: 0.846 is
      // not 0.85.
      measured: `${got.toFixed(3)}× (round ratios: median ${
        paired.toFixed(3)
      }, ${Math.min(...rounds).toFixed(2)}–${Math.max(...rounds).toFixed(2)})`,
      met: got >= want && paired >= want,
    };
  });
}

/** The Kontrol targets of the issue, from the registry benchmark. */
function kontrolGoals(): Goal[] {
  const kv = kontrol.find((k) => k.storage === "kv");
  const goals: Goal[] = [];
  if (kv) {
    goals.push({
      target: `getKites one-kite p50 ≤ 0.5 ms on KV (${kv.kites} kites)`,
      measured: `${kv["getKites 1 p50 ms"]} ms`,
      met: kv["getKites 1 p50 ms"] <= 0.5,
    }, {
      target: "register ≥ 2,000/s on KV",
      measured: `${kv["register/s"]}/s (bursts ${kv["register/s range"]})`,
      met: kv["register/s"] >= 2_000,
    });
  }
  for (const k of kontrol) {
    goals.push({
      target: `getKites 100-kite p50 ≤ 5 ms on ${k.storage}`,
      measured: `${k["getKites 100 p50 ms"]} ms`,
      met: k["getKites 100 p50 ms"] <= 5,
    });
  }
  return goals;
}

const kontrolKiB = Math.max(...kontrolMemory.map((m) => m.rssKiBPerKite));
t = performance.now();
const browserBench = await benchBrowser(
  quick ? { rounds: 2, ms: 500 } : { rounds: 5, ms: 1_000 },
);
progress("browser", t);
console.log("\nBrowser build beside kite.js 1.0.13, same Chromium:");
console.table(browserBench.sizes);
console.log(
  `page → Deno kite, raw WebSocket, square(4), 50 in flight: ${browserBench.calls.ours} calls/s (batch frames) vs kite.js ${browserBench.calls.kitejs} calls/s (median ratio ${browserBench.calls.ratio}×); one message per frame: ${browserBench.calls.unbatched} calls/s (${browserBench.calls.unbatchedRatio}×)`,
);
console.log("CPU µs per call, by process (deno: the kite and the driver):");
console.table(browserBench.cpu);

t = performance.now();
const dashboard = await benchDashboard(
  quick
    ? { kites: 10_000, burst: 1_000, rounds: 1 }
    : { kites: 10_000, burst: 5_000, rounds: 3 },
);
progress("dashboard", t);
console.log("\nKontrol dashboard in Chromium:");
console.table([{
  "kites": dashboard.kites,
  "first render ms": dashboard.firstRenderMs,
  "empty ms": dashboard.emptyRenderMs,
  "× empty": round(dashboard.firstRenderMs / dashboard.emptyRenderMs, 2),
  "burst events": dashboard.burst,
  "page events/s": dashboard.pageEventsPerSec,
  "Deno watcher events/s": dashboard.denoEventsPerSec,
  "page × Deno": dashboard.ratio,
  "longest frame ms": dashboard.longestFrameMs,
  "busiest frame work ms": dashboard.busiestFrameMs,
}]);

const goals: Goal[] = [
  ...callGoals(by("kite (SockJS websocket)")),
  ...callGoals(by("kite (raw websocket)")),
  {
    target: "≤ 30 KiB per idle connection",
    measured: `${idle.rssKiBPerConn} KiB`,
    met: idle.rssKiBPerConn <= 30,
  },
  {
    target: "deno task kontrol ready ≤ 300 ms (restart / first start)",
    measured:
      `${ready.restartMs} / ${ready.firstStartMs} ms (first start signing after ${ready.firstSigningMs} ms)`,
    met: ready.restartMs <= 300 && ready.firstStartMs <= 300,
  },
  {
    target: "≤ 30 KiB Kontrol memory per registered kite",
    measured: `${kontrolKiB} KiB`,
    met: kontrolKiB <= 30,
  },
  ...kontrolGoals(),
  {
    target: "browser bundle ≤ 40 KiB min+gzip",
    measured: `${browserBench.sizes["@kite/core/browser"]["KiB min+gzip"]} KiB`,
    met: browserBench.sizes["@kite/core/browser"]["KiB min+gzip"] <= 40,
  },
  {
    target: "page → Deno calls/s ≥ 2× kite.js 1.0.13",
    measured: `${browserBench.calls.ratio}×`,
    met: browserBench.calls.ratio >= 2,
  },
  ...observe.filter((o) => o.target !== undefined).map((o) => ({
    target: `${o.name}: ≤ ${
      round(o.target! * 100)
    } % fewer calls/s (100 in flight)`,
    measured: `${o.inFlightRatio}× (seq ${o.sequentialRatio}×)`,
    met: o.inFlightRatio >= 1 - o.target!,
  })),
  {
    target: "through the reverse proxy ≥ 0.6× direct calls/s (1 connection)",
    measured: `${proxyBench.ratios.oneConn}×`,
    met: proxyBench.ratios.oneConn >= 0.6,
  },
  {
    target: "through the reverse proxy ≥ 0.6× direct calls/s (50 connections)",
    measured: `${proxyBench.ratios.fiftyConns}×`,
    met: proxyBench.ratios.fiftyConns >= 0.6,
  },
  ...tunnel.map((r) => ({
    target: `tunnel ≥ 0.4× direct (${r.case})`,
    measured: `${r["tunnel × direct"]}× (${r["tunnel calls/s"]} vs ${
      r["direct calls/s"]
    } calls/s, p50 ${r["tunnel p50 µs"]} vs ${r["direct p50 µs"]} µs)`,
    met: r["tunnel × direct"] >= 0.4,
  })),
  ...pool.overhead.map((o) => ({
    target: `pool ≤ 5 % slower than a direct client (${o.case})`,
    // The A/A figures (a second direct client) show this run's own spread.
    measured: `${o["pool × direct"]}× calls/s (A/A ${
      o["direct′ × direct (A/A)"]
    }×), caller CPU/call ${o["caller CPU/call, pool × direct"]}× (A/A ${
      o["caller CPU/call, A/A"]
    }×)`,
    met: o["pool × direct"] >= 0.95 &&
      o["caller CPU/call, pool × direct"] <= 1.05,
  })),
];
console.log("\nTargets:");
console.table(goals);

await Deno.mkdir("bench-results", { recursive: true });
const out = {
  date: new Date().toISOString(),
  machine,
  quick,
  pinned,
  calls,
  auth,
  idle,
  kontrolReady: ready,
  kontrolMemory,
  kontrol,
  pool,
  cluster,
  browser: browserBench,
  dashboard,
  observe,
  contract,
  proxy: proxyBench,
  tunnel,
  targets: goals,
};
await Deno.writeTextFile(
  "bench-results/latest.json",
  JSON.stringify(out, null, 2) + "\n",
);
console.log("\nwritten bench-results/latest.json");
