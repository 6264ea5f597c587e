/**
 * What observability costs: the math kite served five times side by side
 * in one run — plain, with metrics on, with metrics and tracing on (Deno's
 * OpenTelemetry, every span sampled, exported to a sink in this process
 * over OTLP/HTTP protobuf, Deno's default, and over OTLP/HTTP JSON), and
 * the floor of tracing: metrics and one bare span per served call (no
 * attributes, no parent, no active context; protobuf) — each in its own
 * process on CPU 1, called from this process on CPU 0 over raw websocket.
 * Rounds alternate the order; the ratios to the plain kite are taken
 * within each round, then the median. The exporter runs on threads of the
 * traced kite's process, so its work is part of the cost.
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import {
  type BenchServer,
  pinProcess,
  startServer,
  threadCpuMicros,
} from "./process.ts";
import { median, round } from "./stats.ts";
import { sideBySide, type SideBySideResult } from "./side_by_side.ts";

/** One contender's medians. */
export interface ObserveResult extends SideBySideResult {
  /**
   * The most calls/s this contender may lose against the plain kite (100
   * in flight), as a fraction: 0.05 for metrics, 0.15 for tracing every
   * call (docs/benchmarks.md); `undefined` for the plain kite and the floor.
   */
  target?: number;
  /**
   * CPU time the serving process spent per call, µs (all its threads, the
   * OTLP exporter's included; 100 calls in flight), median of the CPU
   * runs; `undefined` without `/proc`. Less moved by other work on the
   * machine than calls/s.
   */
  cpuMicrosPerCall?: number;
  /** The same for its main (JavaScript) thread alone. */
  mainThreadMicrosPerCall?: number;
}

/** Settings of one run. */
export interface ObserveOptions {
  /** Counted rounds (one warm-up round more). @default {9} */
  rounds?: number;
  /** Length of each timed phase, ms. @default {1000} */
  ms?: number;
  /** Calls per CPU-time run. @default {20_000} */
  cpuCalls?: number;
  /** CPU-time runs per contender, alternating the order. @default {5} */
  cpuRuns?: number;
}

/** The serving process's CPU µs per call over `n` calls, 100 in flight. */
async function cpuPerCall(
  pid: number,
  call: () => Promise<unknown>,
  n: number,
): Promise<{ main: number; all: number } | undefined> {
  const before = threadCpuMicros(pid);
  let left = n;
  await Promise.all(Array.from({ length: 100 }, async () => {
    while (left-- > 0) await call();
  }));
  // Spans still queued are exported within the exporter's batch delay.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = threadCpuMicros(pid);
  return before === undefined || after === undefined ? undefined : {
    main: (after.main - before.main) / n,
    all: (after.all - before.all) / n,
  };
}

/** Runs the observability cost benchmark. */
export async function benchObserve(
  options: ObserveOptions = {},
): Promise<ObserveResult[]> {
  const rounds = options.rounds ?? 9;
  const ms = options.ms ?? 1000;
  const exported = { json: 0, protobuf: 0 };
  const sink = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const json = req.headers.get("content-type")?.includes("json");
      exported[json ? "json" : "protobuf"] +=
        (await req.arrayBuffer()).byteLength;
      return Response.json({});
    },
  );
  const otel = (protocol: string) => ({
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.addr.port}`,
    OTEL_TRACES_SAMPLER: "always_on",
  });
  const contenders: [string, Record<string, string>, number?][] = [
    ["kite", {}],
    ["kite, metrics on", { BENCH_METRICS: "1" }, 0.05],
    ["kite, metrics + traces (100 %, OTLP protobuf)", {
      BENCH_METRICS: "1",
      BENCH_TRACING: "1",
      ...otel("http/protobuf"),
    }, 0.15],
    ["kite, metrics + traces (100 %, OTLP JSON)", {
      BENCH_METRICS: "1",
      BENCH_TRACING: "1",
      ...otel("http/json"),
    }, 0.15],
    ["floor: metrics + one bare span per call (protobuf)", {
      BENCH_METRICS: "1",
      BENCH_TRACING: "floor",
      ...otel("http/protobuf"),
    }],
  ];
  const servers: BenchServer[] = [];
  const client = new Kite("bench", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { logLevel: "ERROR" },
  });
  let pinned = false;
  try {
    const calls: (() => Promise<unknown>)[] = [];
    for (const [, env] of contenders) {
      const server = await startServer("kite", { env });
      servers.push(server);
      const c = client.newClient(`http://127.0.0.1:${server.port}/kite`, {
        transport: "raw-websocket",
      });
      await c.dial();
      calls.push(() => c.tell("square", 4));
    }
    pinned = navigator.hardwareConcurrency >= 2 &&
      (await Promise.all(servers.map((s) => pinProcess(s.pid, "1"))))
        .every(Boolean) &&
      await pinProcess(Deno.pid, "0");
    const results: ObserveResult[] = await sideBySide(
      contenders.map(([name], i) => [name, calls[i]]),
      rounds,
      ms,
    );
    contenders.forEach(([, , target], i) => {
      if (target !== undefined) results[i].target = target;
    });
    const cpu = contenders.map(() => ({
      main: [] as number[],
      all: [] as number[],
    }));
    for (let r = 0; r < (options.cpuRuns ?? 5); r++) {
      const order = contenders.map((_, i) => i);
      if (r % 2) order.reverse();
      for (const i of order) {
        const us = await cpuPerCall(
          servers[i].pid,
          calls[i],
          options.cpuCalls ?? 20_000,
        );
        if (us === undefined) continue;
        cpu[i].main.push(us.main);
        cpu[i].all.push(us.all);
      }
    }
    cpu.forEach((runs, i) => {
      if (runs.all.length === 0) return;
      results[i].cpuMicrosPerCall = round(median(runs.all), 2);
      results[i].mainThreadMicrosPerCall = round(median(runs.main), 2);
    });
    for (const [protocol, bytes] of Object.entries(exported)) {
      if (bytes === 0) {
        console.error(
          `  observe: the ${protocol} traced kite exported no spans`,
        );
      }
    }
    return results;
  } finally {
    if (pinned) {
      await pinProcess(Deno.pid, `0-${navigator.hardwareConcurrency - 1}`);
    }
    await client.close();
    for (const s of servers) await s.stop();
    await sink.shutdown();
  }
}

/** The table `deno task bench` prints for `results`. */
export function observeTable(
  results: ObserveResult[],
): Record<string, string | number | undefined>[] {
  return results.map((r) => ({
    contender: r.name,
    "seq calls/s": r.sequentialPerSec,
    "100 in flight/s": r.inFlightPerSec,
    "seq × plain": r.sequentialRatio,
    "flight × plain": r.inFlightRatio,
    "server CPU µs/call": r.cpuMicrosPerCall,
    "main thread µs/call": r.mainThreadMicrosPerCall,
  }));
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const results = await benchObserve(
    quick ? { rounds: 3, ms: 500, cpuCalls: 5_000, cpuRuns: 3 } : undefined,
  );
  console.log(`load average: ${Deno.loadavg().join(", ")}`);
  console.table(observeTable(results));
}
