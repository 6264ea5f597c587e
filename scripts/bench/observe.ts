/**
 * What observability costs: the math kite served four times side by side
 * in one run — plain, with metrics on, with metrics and tracing on (Deno's
 * OpenTelemetry, every span sampled, exported to a sink in this process
 * over OTLP/HTTP protobuf, Deno's default, and over OTLP/HTTP JSON) — each
 * in its own process on CPU 1, called from this process on CPU 0 over raw
 * websocket. Rounds alternate the order; figures are medians, and the
 * ratios to the plain kite are the result. The exporter runs on a thread
 * of the traced kite's process, so its encoding is part of the cost.
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import { type BenchServer, pinProcess, startServer } from "./process.ts";
import { round } from "./stats.ts";
import { sideBySide, type SideBySideResult } from "./side_by_side.ts";

/** One contender's medians. */
export type ObserveResult = SideBySideResult;

/** Settings of one run. */
export interface ObserveOptions {
  /** Counted rounds (one warm-up round more). @default {5} */
  rounds?: number;
  /** Length of each timed phase, ms. @default {1000} */
  ms?: number;
}

/** Runs the observability cost benchmark. */
export async function benchObserve(
  options: ObserveOptions = {},
): Promise<ObserveResult[]> {
  const rounds = options.rounds ?? 5;
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
  const contenders: [string, Record<string, string>][] = [
    ["kite", {}],
    ["kite, metrics on", { BENCH_METRICS: "1" }],
    ["kite, metrics + traces (100 %, OTLP protobuf)", {
      BENCH_METRICS: "1",
      BENCH_TRACING: "1",
      ...otel("http/protobuf"),
    }],
    ["kite, metrics + traces (100 %, OTLP JSON)", {
      BENCH_METRICS: "1",
      BENCH_TRACING: "1",
      ...otel("http/json"),
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
    const results = await sideBySide(
      contenders.map(([name], i) => [name, calls[i]]),
      rounds,
      ms,
    );
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

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const results = await benchObserve(
    quick ? { rounds: 3, ms: 500 } : undefined,
  );
  const base = results[0];
  console.table(results.map((r) => ({
    contender: r.name,
    "seq calls/s": r.sequentialPerSec,
    "100 in flight/s": r.inFlightPerSec,
    "seq × plain": round(r.sequentialPerSec / base.sequentialPerSec, 3),
    "flight × plain": round(r.inFlightPerSec / base.inFlightPerSec, 3),
  })));
}
