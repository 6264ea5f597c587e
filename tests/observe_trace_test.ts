/**
 * Traces across processes: three kites A → B → C (examples/observability)
 * with Deno's OpenTelemetry exporting OTLP/HTTP JSON to a receiver in this
 * test. Their `relay` spans share one trace id, and each server span's
 * parent is the client span of the kite that called it.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { type DenoChild, spawnDeno } from "./helpers/processes.ts";
import { testKite } from "./helpers/kite_harness.ts";
import { eventually } from "./helpers/wait.ts";
import { startKitejsServer } from "./helpers/kitejs.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string } }[];
}

const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

/** How the traced processes run. */
const RUN = [
  "run",
  "--allow-net=127.0.0.1",
  "--allow-env",
  "--allow-sys",
  "--allow-read",
];

/** An OTLP/HTTP JSON receiver collecting every span it is sent. */
function otlpReceiver() {
  const spans: OtlpSpan[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      if (req.method !== "POST" || new URL(req.url).pathname !== "/v1/traces") {
        await req.body?.cancel();
        return new Response("not found", { status: 404 });
      }
      const body = await req.json();
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
      }
      return Response.json({});
    },
  );
  return {
    spans,
    server,
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${server.addr.port}`,
      OTEL_BSP_SCHEDULE_DELAY: "200",
      KITE_LOG_LEVEL: "ERROR",
    },
  };
}

async function stop(kids: DenoChild[]): Promise<void> {
  for (const kid of kids.reverse()) {
    kid.child.kill("SIGTERM");
    await kid.child.status;
    await kid.drained;
  }
}

function attr(span: OtlpSpan, key: string): string | undefined {
  return span.attributes.find((a) => a.key === key)?.value.stringValue;
}

Deno.test("a call through A → B → C is one trace, exported over OTLP from three processes", async () => {
  const { spans, server: receiver, env } = otlpReceiver();
  const kids: DenoChild[] = [];
  const hop = async (name: string, next?: string) => {
    const kid = await spawnDeno(
      [...RUN, "examples/observability/hop.ts", name, ...(next ? [next] : [])],
      { ...env, OTEL_SERVICE_NAME: name },
      { ready: /serving (\S+)/, what: `kite ${name}` },
    );
    kids.push(kid);
    return kid.ready[1];
  };
  const caller = testKite("caller", { disableAuthentication: true });
  try {
    const c = await hop("C");
    const b = await hop("B", c);
    const a = await hop("A", b);
    const client = caller.newClient(a);
    await client.dial();
    const heard: unknown[] = [];
    assertEquals(
      await client.tell("relay", (hop: unknown) => heard.push(hop)),
      ["A", "B", "C"],
    );
    await eventually(() => heard.length === 1, "A's callback");
    const relay = () => spans.filter((s) => s.name === "kite/relay");
    await eventually(
      () => spans.some((s) => s.name === "kite/callback"),
      "the callback span exported",
      20_000,
    );
    await eventually(
      () => relay().length >= 5,
      "five relay spans exported",
      20_000,
    );
    const all = relay();
    const server = (n: string) =>
      all.find((s) => s.kind === SERVER && attr(s, "kite.name") === n)!;
    const clientOf = (n: string) =>
      all.find((s) => s.kind === CLIENT && attr(s, "kite.name") === n)!;
    for (
      const s of [
        server("A"),
        server("B"),
        server("C"),
        clientOf("A"),
        clientOf("B"),
      ]
    ) {
      assert(s, JSON.stringify(all));
    }
    assertEquals(
      new Set(all.map((s) => s.traceId)).size,
      1,
      JSON.stringify(all),
    );
    assertEquals(clientOf("A").parentSpanId, server("A").spanId);
    assertEquals(server("B").parentSpanId, clientOf("A").spanId);
    assertEquals(clientOf("B").parentSpanId, server("B").spanId);
    assertEquals(server("C").parentSpanId, clientOf("B").spanId);
    assertEquals(attr(server("B"), "kite.caller.name"), "A");
    // A's call back to its caller sits under the call it served.
    const callback = spans.find((s) => s.name === "kite/callback")!;
    assertEquals(callback.parentSpanId, server("A").spanId);
    assertEquals(callback.traceId, server("A").traceId);
    assertEquals(attr(server("B"), "network.transport.kite"), "websocket");
  } finally {
    await caller.close();
    await stop(kids);
    await receiver.shutdown();
  }
});

Deno.test("callbacks are spans on both sides, linked into the call's trace, from two processes", async () => {
  const { spans, server: receiver, env } = otlpReceiver();
  const kids: DenoChild[] = [];
  const run = async (args: string[], ready: RegExp, what: string) => {
    const kid = await spawnDeno(
      [...RUN, "tests/fixtures/traced_callbacks.ts", ...args],
      { ...env, OTEL_SERVICE_NAME: args[0] },
      { ready, what },
    );
    kids.push(kid);
    return kid.ready;
  };
  try {
    const [, url] = await run(["server"], /serving (\S+)/, "the server");
    await run(["client", url], /acked/, "the client");
    const of = (name: string, kind: number, kite: string) =>
      spans.find((s) =>
        s.name === name && s.kind === kind && attr(s, "kite.name") === kite
      );
    const want = () => [
      of("kite/subscribe", CLIENT, "client"),
      of("kite/subscribe", SERVER, "server"),
      // The server calls back the function the client passed ...
      of("kite/callback", PRODUCER, "server"),
      of("kite/callback", CONSUMER, "client"),
      // ... and the client calls the function the server's reply passed.
      of("kite/callback", PRODUCER, "client"),
      of("kite/callback", CONSUMER, "server"),
    ];
    await eventually(
      () => want().every((s) => s !== undefined),
      "six spans exported",
      20_000,
    );
    const [call, served, tick, ticked, ack, acked] = want() as OtlpSpan[];
    const all = [call, served, tick, ticked, ack, acked];
    assertEquals(
      new Set(all.map((s) => s.traceId)).size,
      1,
      JSON.stringify(all),
    );
    assertEquals(call.parentSpanId ?? "", "");
    assertEquals(served.parentSpanId, call.spanId);
    assertEquals(tick.parentSpanId, served.spanId);
    assertEquals(ticked.parentSpanId, tick.spanId);
    // Called outside any served call: under the call whose reply brought it.
    assertEquals(ack.parentSpanId, call.spanId);
    assertEquals(acked.parentSpanId, ack.spanId);
  } finally {
    await stop(kids);
    await receiver.shutdown();
  }
});

Deno.test("a callback from a peer that sends no trace context lands under the call that passed it (kite.js)", async () => {
  const { spans, server: receiver, env } = otlpReceiver();
  const peer = await startKitejsServer({ transport: "sockjs" });
  const kids: DenoChild[] = [];
  try {
    kids.push(
      await spawnDeno(
        [...RUN, "tests/fixtures/traced_callbacks.ts", "squarer", peer.url],
        { ...env, OTEL_SERVICE_NAME: "squarer" },
        { ready: /squared/, what: "the squarer" },
      ),
    );
    await kids[0].ready;
    const want = () => [
      spans.find((s) => s.name === "kite/squareCb" && s.kind === CLIENT),
      spans.find((s) => s.name === "kite/callback" && s.kind === CONSUMER),
    ];
    await eventually(
      () => want().every((s) => s !== undefined),
      "the call's and the callback's spans exported",
      20_000,
    );
    const [call, called] = want() as OtlpSpan[];
    assertEquals(called.traceId, call.traceId, JSON.stringify([call, called]));
    assertEquals(called.parentSpanId, call.spanId);
  } finally {
    await stop(kids);
    await peer.close();
    await receiver.shutdown();
  }
});
