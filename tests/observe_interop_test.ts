/**
 * The trace context in the call envelope stays wire-compatible: a kite.js
 * server (the real peer, in Node) answers calls that carry `traceparent`
 * and `tracestate` after `withArgs` as it answers any other, callbacks
 * included; and our kite reads the same fields from a call (the span's
 * parent), with or without a template.
 */
import { assertEquals } from "./helpers/assert.ts";
import { runKitejsClient, startKitejsServer } from "./helpers/kitejs.ts";
import { testKite } from "./helpers/kite_harness.ts";
import type { CallTracer } from "../mod.ts";
import {
  formatTraceparent,
  type TraceParent,
} from "../kite/observe/trace_context.ts";

const text = (p: TraceParent | undefined) =>
  p ? formatTraceparent(p.traceId, p.spanId, p.flags) : "none";

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/** A tracer that stamps every call with one trace context and records spans. */
function stampingTracer(seen: string[]): CallTracer {
  return {
    client: (method) => ({
      envelope: `,"traceparent":"${TRACEPARENT}","tracestate":"vendor=1"`,
      origin: () => `call ${method}`,
      end: (error) =>
        void seen.push(`client ${method} ${error ? "error" : "ok"}`),
    }),
    callback: () => ({
      envelope: `,"traceparent":"${TRACEPARENT}"`,
      end: () => void seen.push("callback"),
    }),
    called: (_transport, parent, origin) => ({
      traceId: parent?.traceId ?? "",
      run: (fn) => fn(),
      end: () => void seen.push(`called ${text(parent)} under ${origin}`),
    }),
    server: (method, _caller, _transport, parent, tracestate) => ({
      traceId: parent?.traceId ?? "",
      run: (fn) => fn(),
      end: () =>
        void seen.push(`server ${method} ${text(parent)} ${tracestate}`),
    }),
  };
}

for (
  const c of [
    { server: "raw", transport: "raw-websocket" },
    { server: "sockjs", transport: "websocket" },
  ] as const
) {
  Deno.test(`a kite.js server (${c.server}) answers calls that carry a trace context`, async () => {
    const server = await startKitejsServer({ transport: c.server });
    const me = testKite("traced", { disableAuthentication: true });
    const seen: string[] = [];
    me.tracer = stampingTracer(seen);
    try {
      const client = me.newClient(server.url, { transport: c.transport });
      await client.dial();
      assertEquals(await client.tell("square", 4), 16);
      assertEquals(await client.tell("echo", { a: [1, "x"] }), { a: [1, "x"] });
      const back: unknown[] = [];
      assertEquals(
        await client.tell("squareCb", 3, (...a: unknown[]) => back.push(a)),
        9,
      );
      assertEquals(back, [[{ error: null, result: 9 }]]);
      // kite.js sends no trace context with the callback: its span hangs
      // under the call that passed the function.
      assertEquals(seen, [
        "client square ok",
        "client echo ok",
        "called none under call squareCb",
        "client squareCb ok",
      ]);
      client.close();
    } finally {
      await me.close();
      await server.close();
    }
  });
}

Deno.test("our kite continues the trace context a call carries, on the template path too", async () => {
  const server = testKite("callee", { disableAuthentication: true });
  server.handle("square", (r) => r.args.one().number() ** 2);
  const seen: string[] = [];
  server.tracer = stampingTracer(seen);
  const caller = testKite("caller");
  caller.tracer = stampingTracer([]);
  try {
    await server.serve({ quiet: true });
    const client = caller.newClient(server.url);
    await client.dial();
    // The third call of a method is read from a template.
    for (let i = 0; i < 4; i++) {
      assertEquals(await client.tell("square", i), i * i);
    }
    assertEquals(seen, Array(4).fill(`server square ${TRACEPARENT} vendor=1`));
  } finally {
    await caller.close();
    await server.close();
  }
});

Deno.test("a kite.js client takes our calls of its callbacks that carry a trace context", async () => {
  const server = testKite("callee", { disableAuthentication: true });
  server.handle("squareCb", (r) => {
    const [n, fn] = r.args.raw as [number, (x: number) => void];
    fn(n * n);
    return n * n;
  });
  const seen: string[] = [];
  server.tracer = stampingTracer(seen);
  try {
    await server.serve({ quiet: true });
    const results = await runKitejsClient({
      url: server.url.replace(/^http/, "ws"),
      transport: "raw",
      calls: [{ method: "squareCb", args: [5, "$callback"] }],
    });
    assertEquals(results.length, 1);
    assertEquals(results[0].ok, true, JSON.stringify(results));
    assertEquals(results[0].result, 25);
    assertEquals(results[0].callbackArgs, [25]);
    assertEquals(seen, ["callback", "server squareCb none undefined"]);
  } finally {
    await server.close();
  }
});
