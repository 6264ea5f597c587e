// Proves the kite.js harness (tests/helpers/kitejs.ts + tests/kitejs/*.cjs)
// by running the real kite.js client against the real kite.js server.
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  type KitejsCall,
  type KitejsCallResult,
  kitejsGetKites,
  runKitejsClient,
  runKitejsClientDetailed,
  startKitejsServer,
} from "./helpers/kitejs.ts";

const BASIC_CALLS: KitejsCall[] = [
  { method: "square", args: [4] },
  { method: "squareCb", args: [4, "$callback"] },
  { method: "echo", args: [{ s: "héllo ✓", a: [1, "two", null] }] },
  { method: "fail", args: [] },
  { method: "square", args: ["four"] },
  { method: "kite.ping", args: [] },
];

function assertBasicResults(results: KitejsCallResult[]): void {
  assertEquals(results.map((r) => r.method), BASIC_CALLS.map((c) => c.method));
  const [square, squareCb, echo, fail, badSquare, ping] = results;
  assertEquals(square, { method: "square", ok: true, result: 16 });
  assertEquals(squareCb.ok, true);
  assertEquals(squareCb.result, 16);
  // kite.js servers rewrite every outgoing call's (err, result) into one object (docs/protocol.md §3.4).
  assertEquals(squareCb.callbackArgs, [{ error: null, result: 16 }]);
  assertEquals(echo.result, { s: "héllo ✓", a: [1, "two", null] });
  assertEquals(fail, {
    method: "fail",
    ok: false,
    error: { type: "genericError", message: "fail always fails" },
  });
  // A kite.js method error has no `result` key and only the fields the handler set.
  assertEquals(badSquare, {
    method: "square",
    ok: false,
    error: {
      type: "argumentError",
      message: "square expects a number, got string",
    },
  });
  assertEquals(ping.result, "pong");
}

for (const transport of ["raw", "sockjs"] as const) {
  Deno.test(`kite.js client calls a kite.js server over ${transport}`, async () => {
    await using server = await startKitejsServer({ transport });
    assert(server.port > 0, "server reports its port");
    assert(server.url.endsWith(`:${server.port}/kite`), `url ${server.url}`);
    assertBasicResults(
      await runKitejsClient({ url: server.url, transport, calls: BASIC_CALLS }),
    );
  });
}

Deno.test("kite.js client pinned to each sockjs-client transport", async () => {
  await using server = await startKitejsServer({ transport: "sockjs" });
  const runs = await Promise.all(
    (["websocket", "xhr-streaming", "xhr-polling"] as const).map((
      sockjsTransport,
    ) =>
      runKitejsClient({
        url: server.url,
        transport: "sockjs",
        sockjsTransport,
        calls: [{ method: "squareCb", args: [3, "$callback"] }],
      })
    ),
  );
  for (const [r] of runs) {
    assertEquals(r.result, 9);
    assertEquals(r.callbackArgs, [{ error: null, result: 9 }]);
  }
});

Deno.test("kite.js quirks: unknown method times out, throw and auth failure look like success", async () => {
  await using server = await startKitejsServer({ transport: "raw" });
  const [unknown, thrown] = await runKitejsClient({
    url: server.url,
    transport: "raw",
    calls: [
      { method: "noSuchMethod", args: [1], timeoutMs: 300 },
      { method: "throws", args: ["boom"] },
    ],
  });
  assertEquals(unknown.ok, false);
  assertEquals(unknown.timeout, true);
  assertEquals(thrown, {
    method: "throws",
    ok: true,
    result: { error: { message: "boom" } },
  });

  const [rejected] = await runKitejsClient({
    url: server.url,
    transport: "raw",
    auth: { type: "kiteKey", key: "dummy-key" },
    calls: [{ method: "square", args: [2] }],
  });
  assertEquals(rejected.result, {
    error: { message: "Unknown auth type: kiteKey" },
  });
});

Deno.test("kite.js server calls back into a kite.js client that serves an api", async () => {
  await using server = await startKitejsServer({ transport: "sockjs" });
  const run = await runKitejsClientDetailed({
    url: server.url,
    transport: "sockjs",
    serve: { clientMethod: { result: "from client" } },
    calls: [
      { method: "callClient", args: ["clientMethod", 5] },
      { method: "callMeBack", args: ["called back: 42", "$callback"] },
    ],
  });
  assertEquals(run.calls[0], {
    method: "callClient",
    ok: true,
    result: "from client",
  });
  assertEquals(run.calls[1].callbackArgs, [{
    error: null,
    result: "called back: 42",
  }]);
  assertEquals(run.served.length, 1);
  assertEquals(run.served[0].method, "clientMethod");
  assertEquals(run.served[0].withArgs, [5]);
  // kite.js omits `authentication` altogether when it has none (docs/protocol.md §12 #7).
  assert(!("authentication" in run.served[0]), "no authentication key");
});

Deno.test("kite.js Kontrol client getKites (against the server's getKites stub)", async () => {
  await using server = await startKitejsServer({ transport: "sockjs" });
  const found = await kitejsGetKites({
    kontrolUrl: server.url,
    kiteKey: "",
    query: { username: "alice", name: "math" },
  });
  assertEquals(found.ok, true);
  const raw = found.result as {
    kites: { kite: { id: string } }[];
    received: unknown;
  };
  // kite.js sends the query as given: no watchCallback/who, no filled-in fields.
  assertEquals(raw.received, { query: { username: "alice", name: "math" } });
  assertEquals(found.kites?.length, 1);
  const [k] = found.kites!;
  assertEquals(k.url, server.url);
  assertEquals(k.token, "stub-token");
  assertEquals([k.kite.username, k.kite.name], ["alice", "math"]);
  // kite.js' Kite objects get a fresh id instead of the registered one.
  assert(k.kite.id !== raw.kites[0].kite.id, "kite.js replaced the kite id");

  // The kite.js server rejects kiteKey auth with a success-shaped reply that
  // has no `kites`, which kite.js' fetchKites cannot handle.
  const rejected = await kitejsGetKites({
    kontrolUrl: server.url,
    kiteKey: "dummy",
    query: { name: "math" },
  });
  assertEquals(rejected.ok, false);
  assertEquals((rejected.error as { type: string }).type, "kitejsThrew");
  assertEquals(rejected.result, {
    error: { message: "Unknown auth type: kiteKey" },
  });
});
