// Contracts served and called over real sockets: typed calls, argument
// checks answered as argumentError with the path (from our client, a raw
// dnode peer speaking Go frames, and kite.js), kite.describe, versioning.
import { KiteError } from "../mod.ts";
import {
  DESCRIBE_METHOD,
  implement,
  type KiteDescription,
  typed,
} from "../kite/contract/mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
} from "./helpers/assert.ts";
import {
  goCall,
  type MemoryLogger,
  RawSocket,
  sockjsMessages,
  sockjsSend,
  testKite,
} from "./helpers/kite_harness.ts";
import { runKitejsClient } from "./helpers/kitejs.ts";
import { math } from "./contract/math_contract.ts";
import { serveContract, withClient } from "./contract/serve.ts";

async function argumentError(p: Promise<unknown>): Promise<string> {
  const err = await assertRejects(() => p, KiteError);
  assertEquals((err as KiteError).type, "argumentError");
  return (err as KiteError).message;
}

Deno.test("typed() calls a contract-served kite with typed values and callbacks", async () => {
  const server = await serveContract();
  await withClient(server, async (client) => {
    const m = typed(client, math);
    assertEquals(await m.square(4), 16);
    assertEquals(await m.add({ a: 2, b: 3 }), 5);
    assertEquals(await m.greet("ann"), "hello ann");
    assertEquals(await m.greet("ann", "hi"), "hi ann");
    const ticks: number[] = [];
    assertEquals(await m.countdown(2, (n) => void ticks.push(n)), null);
    assertEquals(ticks, [2, 1, 0]);
    const add = await m.adder(10);
    const sum = await new Promise<number>((resolve) => add(5, resolve));
    assertEquals(sum, 15);
  });
});

Deno.test("arguments are checked before the handler: argumentError names the path", async () => {
  const server = await serveContract();
  await withClient(server, async (client) => {
    assertEquals(
      await argumentError(client.tell("square", "4")),
      "withArgs[0]: expected number, got string",
    );
    assertEquals(
      await argumentError(client.tell("add", { a: 1, b: "2" })),
      "withArgs[0].b: expected number, got string",
    );
    assertMatch(
      await argumentError(client.tell("square")),
      /^withArgs: expected at least 1 arguments, got 0/,
    );
    assertMatch(
      await argumentError(client.tell("square", 1, 2)),
      /^withArgs: expected at most 1 arguments, got 2/,
    );
    assertEquals(
      await argumentError(client.tell("countdown", 3, 4)),
      "withArgs[1]: expected function, got number",
    );
    assertMatch(
      await argumentError(client.tell("countdown", 11, () => {})),
      /^withArgs\[0\]: /,
    );
  });
});

Deno.test("a result that breaks the contract is an error in development, sent as is otherwise", async () => {
  const server = await serveContract();
  await withClient(server, async (client) => {
    const err = await assertRejects(
      () => typed(client, math).broken(),
      KiteError,
    );
    assertEquals(
      err.message,
      "broken broke its contract: result: expected number, got string",
    );
  });
  assert(
    (server.logger as MemoryLogger).lines.includes(
      "ERROR broken broke its contract: result: expected number, got string",
    ),
    "the broken result is logged",
  );
  const prod = testKite("math", {
    disableAuthentication: true,
    environment: "production",
  });
  implement(prod, math, {
    square: (n) => n,
    add: () => 0,
    greet: (s) => s,
    countdown: () => null,
    adder: () => () => {},
    broken: () => "not a number" as unknown as number,
  });
  await prod.serve();
  await withClient(prod, async (client) => {
    assertEquals(await client.tell("broken"), "not a number");
  });
});

Deno.test("a raw dnode peer speaking Go frames calls a contract method, and gets argumentError with the path", async () => {
  const server = await serveContract();
  const raw = await RawSocket.sockjs(server.url);
  try {
    sockjsSend(raw, goCall("add", [{ a: 2, b: 40 }], 1));
    const [ok] = sockjsMessages(await raw.next("the add reply"));
    assertEquals(ok.method, 1);
    assertEquals((ok.arguments as unknown[])[0], { error: null, result: 42 });
    sockjsSend(raw, goCall("add", [{ a: 2, b: "x" }], 2));
    const [bad] = sockjsMessages(await raw.next("the error reply"));
    const { error: err } = (bad.arguments as { error: KiteError }[])[0];
    assertEquals(err.type, "argumentError");
    assertEquals(err.message, "withArgs[0].b: expected number, got string");
  } finally {
    await raw.close();
    await server.close();
  }
});

Deno.test("kite.js calling a contract-served kite gets results and argumentError with the path", async () => {
  const server = await serveContract();
  try {
    const results = await runKitejsClient({
      url: server.url.replace(/^http/, "ws"),
      transport: "raw",
      calls: [
        { method: "square", args: [5] },
        { method: "add", args: [{ a: 1, b: "two" }] },
      ],
    });
    assertEquals(results[0], { method: "square", ok: true, result: 25 });
    assert(!results[1].ok, JSON.stringify(results[1]));
    const err = results[1].error as Record<string, unknown>;
    assertEquals(err.type, "argumentError");
    assertEquals(err.message, "withArgs[0].b: expected number, got string");
  } finally {
    await server.close();
  }
});

Deno.test("kite.describe and GET /kite/describe tell the contract", async () => {
  const server = await serveContract();
  const res = await fetch(`${new URL(server.url).origin}/kite/describe`);
  const overHttp = await res.json() as KiteDescription;
  await withClient(server, async (client) => {
    const told = await client.tell(DESCRIBE_METHOD) as KiteDescription;
    assertEquals(told, overHttp);
    assertEquals(told.kite.name, "math");
    const [c] = told.contracts;
    assertEquals([c.name, c.version], ["math", "1.2.0"]);
    assertEquals(c.methods.square.idempotent, true);
    assertEquals(c.methods.add.idempotent, false);
    assertEquals(c.methods.square.description, "n squared");
    assertEquals(c.methods.square.result.type, "number");
    // The kite has authentication off: no method asks for it.
    assertEquals(c.methods.add.authentication, false);
    // kite.idempotent learns contract declarations as any other.
    assertEquals(
      await client.tell("kite.idempotent"),
      ["square", "kite.describe"],
    );
  });
});

Deno.test("a 1.2 client calls a 1.3 kite; a 2.0 or 1.1 kite fails the first call clearly", async () => {
  for (const version of ["1.3.0", "1.2.0"]) {
    const server = await serveContract(version);
    await withClient(server, async (client) => {
      assertEquals(await typed(client, math).square(3), 9);
    });
  }
  for (const version of ["2.0.0", "1.1.0"]) {
    const server = await serveContract(version);
    await withClient(server, async (client) => {
      const m = typed(client, math);
      const err = await assertRejects(() => m.square(3), KiteError);
      assertEquals(
        err.message,
        `contract mismatch: kite math serves contract math@${version}, which a client built against 1.2.0 cannot call (needs ^1.2.0)`,
      );
      // Every later call fails the same way, without asking again.
      await assertRejects(() => m.add({ a: 1, b: 1 }), KiteError, version);
      // Without the check, the call goes through.
      assertEquals(
        await typed(client, math, { checkVersion: false }).square(3),
        9,
      );
    });
  }
});

Deno.test("typed() against a kite without kite.describe says how to call it anyway", async () => {
  const server = testKite("plain", { disableAuthentication: true });
  server.handle("square", (r) => r.args.one().number() ** 2);
  await server.serve();
  await withClient(server, async (client) => {
    const err = await assertRejects(() => typed(client, math).square(2));
    assertMatch(String((err as Error).message), /checkVersion: false/);
    assertEquals(
      await typed(client, math, { checkVersion: false }).square(2),
      4,
    );
  });
});

Deno.test("implement() refuses a missing handler and a taken method name", () => {
  const kite = testKite("math");
  kite.handle("square", () => 0);
  let err: unknown;
  try {
    implement(kite, math, {} as never);
  } catch (e) {
    err = e;
  }
  assert(err instanceof TypeError, String(err));
  assertMatch(String(err), /no handler for method square/);
});
