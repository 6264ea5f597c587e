// Interop with a real kite.js 1.0.13 peer (Node.js, tests/kitejs/): a kite.js
// client calling our kite over every transport it has, and our client calling
// a kite.js server, including the kite.js quirks of docs/protocol.md §3.4 / §12.
import { mathKite } from "../examples/math/server.ts";
import { type Client, Kite, KiteError, type Request } from "../mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
} from "./helpers/assert.ts";
import { TRUSTED_KITE_KEY } from "./fixtures/go_kite_auth.ts";
import {
  type KitejsCall,
  type KitejsCallResult,
  type KitejsTransport,
  runKitejsClient,
  runKitejsClientDetailed,
  type SockjsClientTransport,
  startKitejsServer,
} from "./helpers/kitejs.ts";

const ECHO_VALUE = { s: "héllo ✓ <&>", n: -1.5, a: [1, "two", null, true] };

/** Our math kite plus `whoami`, which reports how the caller's envelope arrived. */
async function serveMath(): Promise<Kite> {
  const kite = mathKite();
  kite.handle("whoami", (r) => ({
    kite: r.remoteKite,
    auth: r.auth,
    withArgs: r.args.raw,
  }));
  await kite.serve({ port: 0, hostname: "127.0.0.1" });
  return kite;
}

const MATH_CALLS: KitejsCall[] = [
  { method: "square", args: [4] },
  { method: "square", args: [{ number: 4 }] },
  { method: "squareCb", args: [4, "$callback"], waitForCallback: true },
  {
    method: "squareCb",
    args: [{ number: 4, callback: "$callback" }],
    waitForCallback: true,
  },
  { method: "echo", args: [ECHO_VALUE] },
  { method: "kite.ping", args: [] },
  { method: "square", args: ["four"] },
  { method: "no.such.method", args: [] },
  { method: "whoami", args: [7] },
];

function assertMathResults(results: KitejsCallResult[], how: string): void {
  assertEquals(
    results.map((r) => r.method),
    MATH_CALLS.map((c) => c.method),
    how,
  );
  const [sq, sqObj, cb, cbObj, echo, ping, bad, unknown, who] = results;
  assertEquals(sq, { method: "square", ok: true, result: 16 }, how);
  assertEquals(sqObj, { method: "square", ok: true, result: 16 }, how);
  // Our kite calls the callback Go-style, fn(16): kite.js sees one argument,
  // not a wrapped {error, result} as from a kite.js server.
  for (const r of [cb, cbObj]) {
    assertEquals(r.ok, true, how);
    assertEquals(r.result, 16, how);
    assertEquals(r.callbackCalls, [[16]], how);
  }
  assertEquals(echo.result, ECHO_VALUE, how);
  assertEquals(ping, { method: "kite.ping", ok: true, result: "pong" }, how);
  // Errors arrive in the Go shape: type, message, code "", 16-hex request id.
  assertEquals(bad.ok, false, how);
  const badErr = bad.error as Record<string, unknown>;
  assertEquals(Object.keys(badErr), ["type", "message", "code", "id"], how);
  assertEquals(badErr.type, "argumentError", how);
  assertMatch(String(badErr.message), /number/, how);
  assertEquals(badErr.code, "", how);
  assertMatch(String(badErr.id), /^[0-9a-f]{16}$/, how);
  assertEquals(unknown, {
    method: "no.such.method",
    ok: false,
    error: {
      type: "methodNotFound",
      message: "Method not found: no.such.method",
      code: "",
      id: "",
    },
  }, how);
  // kite.js leaves `authentication` out (no auth configured); that is "none".
  const whoResult = who.result as Record<string, unknown>;
  assertEquals(whoResult.auth, null, how);
  assertEquals(whoResult.withArgs, [7], how);
  const caller = whoResult.kite as Record<string, unknown>;
  assertEquals(caller.name, "kitejs-client", how);
  assertEquals(caller.username, "interop-user", how);
  assertEquals(caller.environment, "interop-env", how);
  assertMatch(String(caller.id), /^[0-9a-f-]{36}$/, how);
}

const KITEJS_IDENTITY = {
  username: "interop-user",
  environment: "interop-env",
};

Deno.test("kite.js client calls our math kite over raw WebSocket on /kite", async () => {
  await using kite = disposable(await serveMath());
  const url = kite.value.url.replace(/^http/, "ws");
  assert(url.endsWith("/kite"), url);
  const results = await runKitejsClient({
    url,
    transport: "raw",
    kite: KITEJS_IDENTITY,
    calls: MATH_CALLS,
  });
  assertMathResults(results, "raw");
});

for (
  const sockjsTransport of [
    "websocket",
    "xhr-streaming",
    "xhr-polling",
  ] as SockjsClientTransport[]
) {
  Deno.test(`kite.js client calls our math kite over SockJS ${sockjsTransport}`, async () => {
    await using kite = disposable(await serveMath());
    const results = await runKitejsClient({
      url: kite.value.url,
      transport: "sockjs",
      sockjsTransport,
      kite: KITEJS_IDENTITY,
      calls: MATH_CALLS,
    });
    assertMathResults(results, sockjsTransport);
  });
}

Deno.test("our kite calls back a method a kite.js client serves, without credentials", async () => {
  // A kite.key makes our *dialing* clients send kiteKey auth; a call back over
  // an accepted connection must still carry none (Go sends null, docs/protocol.md §6.9), or
  // kite.js rejects it ("Unknown auth type: kiteKey").
  const kite = new Kite("caller-back", "1.0.0", {
    config: { disableAuthentication: true, logLevel: "ERROR" },
    kiteKey: TRUSTED_KITE_KEY,
    env: false,
  });
  const ask = (timeoutMs: number) => async (r: Request) => {
    const [method, ...args] = r.args.raw as [string, ...unknown[]];
    try {
      return {
        ok: true,
        value: await r.client.tellWithTimeout(method, timeoutMs, ...args),
      };
    } catch (err) {
      const e = err as KiteError;
      return { ok: false, type: e.type, message: e.message };
    }
  };
  kite.handle("askClient", ask(10_000));
  // kite.js stays silent when told not to answer: only a timeout ends it.
  kite.handle("askClientBriefly", ask(300));
  kite.handle("callMeBack", (r) => {
    const fn = r.args.at(0).func();
    fn("from our kite", 42);
    return "called";
  });
  await kite.serve({ port: 0, hostname: "127.0.0.1" });
  await using _k = disposable(kite);
  const run = await runKitejsClientDetailed({
    url: kite.url,
    transport: "sockjs",
    serve: {
      api: { result: { answer: 42 } },
      apiEcho: "echo",
      apiFails: { error: { type: "genericError", message: "client says no" } },
      apiThrows: { throw: "client blew up" },
      apiSilent: { noReply: true },
    },
    calls: [
      { method: "askClient", args: ["api", 1, "two"] },
      { method: "askClient", args: ["apiEcho", { deep: [1, 2] }] },
      { method: "askClient", args: ["apiFails"] },
      { method: "askClient", args: ["apiThrows"] },
      { method: "askClientBriefly", args: ["apiSilent"] },
      { method: "callMeBack", args: ["$callback"], waitForCallback: true },
    ],
  });
  const [api, echo, fails, throws, silent, cb] = run.calls;
  // kite.js answers positionally, [err, result]; our client takes that too.
  assertEquals(api.result, { ok: true, value: { answer: 42 } });
  assertEquals(echo.result, { ok: true, value: { deep: [1, 2] } });
  assertEquals(fails.result, {
    ok: false,
    type: "genericError",
    message: "client says no",
  });
  // A kite.js client whose method throws answers through its own kite.echo,
  // positionally (null, {error}): it looks like a success (docs/protocol.md §12 #26).
  assertEquals(throws.result, {
    ok: true,
    value: { error: { message: "client blew up" } },
  });
  assertEquals(silent.result, {
    ok: false,
    type: "timeout",
    message: 'No response to "apiSilent" method in 300ms',
  });
  assertEquals(cb.result, "called");
  assertEquals(cb.callbackCalls, [["from our kite", 42]]);
  const served = run.served.filter((s) => s.method.startsWith("api"));
  assertEquals(served.map((s) => s.method), [
    "api",
    "apiEcho",
    "apiFails",
    "apiThrows",
    "apiSilent",
  ]);
  assertEquals(served[0].withArgs, [1, "two"]);
  for (const s of served) {
    assertEquals(s.authentication, null, `${s.method} authentication`);
    assertEquals(s.kite?.name, "caller-back");
    assertEquals(s.kite?.username, "testuser");
  }
});

// ---- our client -> kite.js server -------------------------------------------

interface ServerCase {
  name: string;
  server: KitejsTransport;
  transport: "raw-websocket" | "websocket" | "xhr-polling";
}

const SERVER_CASES: ServerCase[] = [
  { name: "raw WebSocket", server: "raw", transport: "raw-websocket" },
  { name: "SockJS websocket", server: "sockjs", transport: "websocket" },
  { name: "SockJS xhr-polling", server: "sockjs", transport: "xhr-polling" },
];

for (const c of SERVER_CASES) {
  Deno.test(`our client calls a kite.js server over ${c.name}`, async () => {
    await using server = await startKitejsServer({ transport: c.server });
    const me = new Kite("deno-client", "1.0.0", {
      env: false,
      kiteKey: false,
      config: { logLevel: "ERROR" },
    });
    await using _me = disposable(me);
    const served: unknown[] = [];
    me.handle("clientMethod", (r) => {
      served.push(r.args.raw);
      return { from: "deno", got: r.args.raw };
    });
    const client = me.newClient(server.url, { transport: c.transport });
    await client.dial();
    try {
      await callKitejsServer(client, served);
    } finally {
      client.close();
    }
  });
}

async function callKitejsServer(
  client: Client,
  served: unknown[],
): Promise<void> {
  assertEquals(await client.tell("square", 4), 16);
  assertEquals(await client.tell("kite.ping"), "pong");
  assertEquals(await client.tell("echo", ECHO_VALUE), ECHO_VALUE);

  // kite.js servers wrap calls to our callbacks in one {error, result}.
  const cbArgs: unknown[][] = [];
  assertEquals(
    await client.tell("squareCb", 4, (...a: unknown[]) => cbArgs.push(a)),
    16,
  );
  assertEquals(cbArgs, [[{ error: null, result: 16 }]]);
  const backArgs: unknown[][] = [];
  assertEquals(
    await client.tell("callMeBack", "v", (...a: unknown[]) => backArgs.push(a)),
    true,
  );
  assertEquals(backArgs, [[{ error: null, result: "v" }]]);

  // Method errors come without `result`, `code` or `id`.
  const failed = await assertRejects(
    () => client.tell("fail"),
    KiteError,
  ) as KiteError;
  assertEquals(failed.type, "genericError");
  assertEquals(failed.message, "fail always fails");
  assertEquals([failed.code, failed.id], ["", ""]);
  const badArg = await assertRejects(
    () => client.tell("square", "four"),
    KiteError,
  ) as KiteError;
  assertEquals(badArg.type, "argumentError");
  assertEquals(badArg.message, "square expects a number, got string");

  // kite.js never answers an unknown method: only a timeout ends the call.
  const before = client.callbackCount;
  const silent = await assertRejects(
    () => client.tellWithTimeout("noSuchMethod", 300, 1),
    KiteError,
  ) as KiteError;
  assertEquals(silent.type, "timeout");
  assertEquals(
    client.callbackCount,
    before,
    "timed-out response callback released",
  );

  // A kite.js handler that throws answers with a "success" holding the error.
  assertEquals(await client.tell("throws", "boom"), {
    error: { message: "boom" },
  });

  // The kite.js server calls a method of ours on this connection.
  assertEquals(await client.tell("callClient", "clientMethod", 5, "x"), {
    from: "deno",
    got: [5, "x"],
  });
  assertEquals(served, [[5, "x"]]);

  // The connection is still usable after all of the above.
  assertEquals(await client.tell("square", 3), 9);
  assertEquals(client.pendingCalls, 0);
}

/** `await using` for a kite. */
function disposable(kite: Kite): { value: Kite } & AsyncDisposable {
  return { value: kite, [Symbol.asyncDispose]: () => kite.close() };
}
