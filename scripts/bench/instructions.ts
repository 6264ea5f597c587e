/**
 * What observability costs in instructions, which other work on a shared
 * machine does not move: each contender of `observe.ts` serves `square(4)`
 * under valgrind's callgrind, counting off while it warms up (5,000
 * calls), on for `--calls` calls one at a time over raw websocket, and on
 * for the OTLP exporter's next batch after them (it runs on threads of the
 * same process, and callgrind counts every thread). Not part of `deno task
 * bench` (minutes under valgrind); run it with
 * `deno run --allow-all scripts/bench/instructions.ts`.
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import { startServer } from "./process.ts";
import { round } from "./stats.ts";

/** One contender's count. */
export interface InstructionsResult {
  /** The contender. */
  name: string;
  /** Instructions the serving process ran per call, all threads. */
  perCall: number;
}

/** The contenders: name and environment (see `observe.ts`). */
const CONTENDERS: [string, Record<string, string>][] = [
  ["kite", {}],
  ["kite, metrics on", { BENCH_METRICS: "1" }],
  ["kite, metrics on, OTEL_DENO=true, no spans", {
    BENCH_METRICS: "1",
    OTEL_DENO: "true",
  }],
  ["kite, metrics + traces (100 %, OTLP protobuf)", {
    BENCH_METRICS: "1",
    BENCH_TRACING: "1",
    OTEL_DENO: "true",
  }],
  ["floor: metrics + one bare span per call (protobuf)", {
    BENCH_METRICS: "1",
    BENCH_TRACING: "floor",
    OTEL_DENO: "true",
  }],
];

/** Deno's span processor exports a batch at least this often, ms (OTEL_BSP_SCHEDULE_DELAY). */
const EXPORT_DELAY_MS = 1_000;

/** Counts instructions per served call for each contender. */
export async function benchInstructions(
  calls = 5_000,
  warmUp = 5_000,
): Promise<InstructionsResult[]> {
  const dir = await Deno.makeTempDir({ prefix: "kite-callgrind-" });
  const sink = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      await req.arrayBuffer();
      return Response.json({});
    },
  );
  const client = new Kite("bench", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { logLevel: "ERROR" },
  });
  const results: InstructionsResult[] = [];
  try {
    for (const [i, [name, env]] of CONTENDERS.entries()) {
      const out = `${dir}/${i}.out`;
      const server = await startServer("kite", {
        env: {
          ...env,
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.addr.port}`,
          OTEL_TRACES_SAMPLER: "always_on",
          OTEL_BSP_SCHEDULE_DELAY: String(EXPORT_DELAY_MS),
        },
        wrapper: [
          "valgrind",
          "--quiet",
          "--tool=callgrind",
          "--instr-atstart=no",
          "--smc-check=all-non-file",
          `--callgrind-out-file=${out}`,
        ],
      });
      const control = (...args: string[]) =>
        new Deno.Command("callgrind_control", {
          args: [...args, String(server.pid)],
          stdout: "null",
          stderr: "null",
        }).output();
      try {
        const c = client.newClient(`http://127.0.0.1:${server.port}/kite`, {
          transport: "raw-websocket",
        });
        await c.dial();
        for (let n = 0; n < warmUp; n++) await c.tell("square", 4);
        // Let the warm-up's spans go out before counting starts.
        await new Promise((r) => setTimeout(r, 2 * EXPORT_DELAY_MS));
        await control("--instr=on");
        for (let n = 0; n < calls; n++) await c.tell("square", 4);
        await new Promise((r) => setTimeout(r, 2 * EXPORT_DELAY_MS));
        await control("--instr=off");
        await control("--dump");
        c.close();
      } finally {
        await server.stop();
      }
      let total = 0;
      for await (const f of Deno.readDir(dir)) {
        if (!f.name.startsWith(`${i}.out`)) continue;
        const text = await Deno.readTextFile(`${dir}/${f.name}`);
        total += Number(/^totals:\s+(\d+)/m.exec(text)?.[1] ?? 0);
      }
      results.push({ name, perCall: Math.round(total / calls) });
    }
    return results;
  } finally {
    await client.close();
    await sink.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const calls = Number(
    Deno.args.find((a) => a.startsWith("--calls="))?.slice(8) ?? 5_000,
  );
  const results = await benchInstructions(calls);
  console.table(results.map((r) => ({
    contender: r.name,
    "instructions/call": r.perCall,
    "× plain": round(r.perCall / results[0].perCall, 3),
  })));
}
