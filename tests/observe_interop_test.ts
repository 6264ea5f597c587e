/**
 * The trace context in the call envelope stays wire-compatible: a kite.js
 * server (the real peer, in Node) answers calls that carry `traceparent`
 * and `tracestate` after `withArgs` as it answers any other, callbacks
 * included; and our kite reads the same fields from a call (the span's
 * parent), with or without a template.
 */
import { assertEquals } from "./helpers/assert.ts";
import { startKitejsServer } from "./helpers/kitejs.ts";
import { testKite } from "./helpers/kite_harness.ts";
import type { CallTracer } from "../mod.ts";

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/** A tracer that stamps every call with one trace context and records spans. */
function stampingTracer(seen: string[]): CallTracer {
  return {
    client: (method) => ({
      envelope: `,"traceparent":"${TRACEPARENT}","tracestate":"vendor=1"`,
      end: (error) =>
        void seen.push(`client ${method} ${error ? "error" : "ok"}`),
    }),
    callback: () => ({ end: () => void seen.push("callback") }),
    server: (method, _caller, _transport, traceparent, tracestate) => ({
      traceId: traceparent?.slice(3, 35) ?? "",
      run: (fn) => fn(),
      end: () =>
        void seen.push(`server ${method} ${traceparent} ${tracestate}`),
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
      assertEquals(seen, [
        "client square ok",
        "client echo ok",
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
