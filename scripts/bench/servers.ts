/**
 * Benchmark servers, one per process so client and server each get a core:
 *
 * - `raw`: a plain `Deno.serve` WebSocket JSON echo (the floor);
 * - `proxy`: the reverse proxy kite (authentication off, so the bench can
 *   register a kite's URL with it without a Kontrol);
 * - `kite`: the math kite, plus `squareAuth` (the same handler with
 *   authentication on), trusting the Kontrol public key in
 *   `BENCH_KONTROL_KEY` with issuer `kontrol`; `BENCH_MAX_CONNECTIONS`
 *   raises its connection limit; `BENCH_METRICS=1` / `BENCH_TRACING=1`
 *   turn metrics / tracing on; `BENCH_TRACING=floor` serves each call
 *   under one bare span instead (see {@linkcode floorTracer}).
 *
 * Prints `{"port":N}` once listening. Then every `mem` line on stdin is
 * answered with `{"rss":…,"heapUsed":…,"external":…}` after a full GC when
 * the process runs with `--v8-flags=--expose-gc`.
 *
 * @module
 */
import { mathKite } from "../../examples/math/server.ts";
import type { CallTracer } from "../../kite/observe/call_tracer.ts";
import { ReverseProxy } from "../../proxy/reverse/reverse_proxy.ts";
import { lines } from "../../tests/helpers/processes.ts";

const mode = Deno.args[0];
let port: number;
if (mode === "raw") {
  const server = Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen: () => {},
  }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      socket.send(JSON.stringify({ id: msg.id, result: msg.n * msg.n }));
    };
    return response;
  });
  port = server.addr.port;
} else if (mode === "kite") {
  const kontrolKey = Deno.env.get("BENCH_KONTROL_KEY") ?? "";
  const kite = mathKite({
    env: false,
    kiteKey: false,
    config: {
      logLevel: "ERROR",
      username: "bench",
      kontrolKey,
      kontrolUser: kontrolKey ? "kontrol" : "",
      maxConnections: Number(Deno.env.get("BENCH_MAX_CONNECTIONS") ?? 10_000),
      // Every bench client dials from 127.0.0.1 and idles between rounds.
      maxConnectionsPerAddress: 1_000_000,
      idleSessionMs: 0,
      // The observability bench's contenders (scripts/bench/observe.ts).
      metrics: Deno.env.get("BENCH_METRICS") === "1",
      tracing: ["1", "floor"].includes(Deno.env.get("BENCH_TRACING") ?? ""),
    },
  });
  const square = kite.method("square")!.handler;
  kite.handle("squareAuth", square).authenticate = true;
  if (Deno.env.get("BENCH_TRACING") === "floor") {
    await kite.tracing;
    kite.tracer = await floorTracer(kite.tracer!);
  }
  await kite.serve({ port: 0, hostname: "127.0.0.1" });
  port = kite.port;
} else if (mode === "proxy") {
  const proxy = new ReverseProxy({
    env: false,
    kiteKey: false,
    config: {
      logLevel: "ERROR",
      disableAuthentication: true,
      maxConnectionsPerAddress: 1_000_000,
    },
  });
  ({ port } = await proxy.serve({ port: 0, hostname: "127.0.0.1" }));
} else {
  console.error("usage: servers.ts raw|kite|proxy");
  Deno.exit(2);
}
console.log(JSON.stringify({ port }));

/**
 * The least a traced call can cost with Deno's OpenTelemetry: `tracing`,
 * except that a served call gets one span started and ended through the
 * API with no attributes, no parent and no active context.
 */
async function floorTracer(tracing: CallTracer): Promise<CallTracer> {
  // Loaded here: the other kites' processes keep it out of their graph.
  const { trace } = await import("@opentelemetry/api");
  const tracer = trace.getTracer("kite");
  return {
    ...tracing,
    server() {
      const span = tracer.startSpan("kite/floor");
      return { traceId: "", run: (fn) => fn(), end: () => span.end() };
    },
  };
}

const gc = (globalThis as { gc?: () => void }).gc;
for await (const command of lines(Deno.stdin.readable)) {
  if (command.trim() !== "mem") continue;
  gc?.();
  const { rss, heapUsed, external } = Deno.memoryUsage();
  console.log(JSON.stringify({ rss, heapUsed, external }));
}
// stdin closed: the parent is gone.
Deno.exit(0);
