// Callbacks are checked at run time (the values the far side calls them
// with), and a typed client learns the kite's contract version when it
// connects, so an incompatible kite fails at dial time.
import { KiteError } from "../mod.ts";
import { dialTyped, typed } from "../kite/contract/mod.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { type MemoryLogger, testKite } from "./helpers/kite_harness.ts";
import { math } from "./contract/math_contract.ts";
import { serveContract, withClient } from "./contract/serve.ts";

Deno.test("a callback the far side calls with bad values is not run, and the error names the method and path", async () => {
  // A kite that breaks the contract it is called under: tick gets a string.
  const server = testKite("math", { disableAuthentication: true });
  server.handle("countdown", (r) => {
    const tick = (r.args.raw as unknown[])[1] as (n: unknown) => void;
    tick("three");
    tick(2);
    return null;
  });
  await server.serve();
  await withClient(server, async (client) => {
    const errors: KiteError[] = [];
    const m = typed(client, math, {
      checkVersion: false,
      onCallbackError: (err) => errors.push(err),
    });
    const ticks: number[] = [];
    let two!: () => void;
    const gotTwo = new Promise<void>((resolve) => two = resolve);
    await m.countdown(3, (n) => {
      ticks.push(n);
      if (n === 2) two();
    });
    await gotTwo;
    assertEquals(ticks, [2]);
    assertEquals(errors.length, 1);
    assertEquals(errors[0].type, "argumentError");
    assertEquals(
      errors[0].message,
      "callback countdown.withArgs[1] called with bad arguments: withArgs[0]: expected number, got string",
    );
  });
});

Deno.test("a function a handler returns checks the values it is called with; bad calls are logged, not run", async () => {
  const server = await serveContract();
  await withClient(server, async (client) => {
    // Untyped, as a Go kite or kite.js would call: nothing checks locally.
    const add = await client.tell("adder", 10) as (
      n: unknown,
      answer: (sum: number) => void,
    ) => void;
    const sums: number[] = [];
    let done!: () => void;
    const answered = new Promise<void>((resolve) => done = resolve);
    add("five", (s) => sums.push(s));
    add(5, (s) => (sums.push(s), done()));
    await answered;
    assertEquals(sums, [15]);
    const lines = (server.logger as MemoryLogger).lines;
    assert(
      lines.includes(
        "ERROR callback adder.result called with bad arguments: withArgs[0]: expected number, got string",
      ),
      lines.join("\n"),
    );
  });
});

Deno.test("a callback passed to a returned function is checked too (nested fn schemas)", async () => {
  const server = testKite("math", { disableAuthentication: true });
  // adder's function answers with a string where the contract says number.
  server.handle("adder", () => (_n: number, answer: (s: unknown) => void) => {
    answer("many");
    answer(7);
  });
  await server.serve();
  await withClient(server, async (client) => {
    const errors: string[] = [];
    const m = typed(client, math, {
      checkVersion: false,
      onCallbackError: (err) => errors.push(err.message),
    });
    const add = await m.adder(1);
    const sum = await new Promise<number>((resolve) => add(2, resolve));
    assertEquals(sum, 7);
    assertEquals(errors, [
      "callback adder.result.withArgs[1] called with bad arguments: withArgs[0]: expected number, got string",
    ]);
  });
});

Deno.test("dialTyped() fails at dial time on an incompatible version, before any call", async () => {
  for (const version of ["2.0.0", "1.1.0"]) {
    const server = await serveContract(version);
    const caller = testKite("caller");
    const client = caller.newClient(server.url);
    try {
      const err = await assertRejects(
        () => dialTyped(client, math),
        KiteError,
        `math@${version}, which a client built against 1.2.0 cannot call`,
      );
      assertEquals((err as KiteError).type, "genericError");
    } finally {
      client.close();
      await caller.close();
      await server.close();
    }
  }
  const server = await serveContract("1.3.0");
  const caller = testKite("caller");
  const client = caller.newClient(server.url);
  try {
    const m = await dialTyped(client, math);
    assertEquals(await m.square(3), 9);
  } finally {
    client.close();
    await caller.close();
    await server.close();
  }
});

Deno.test("typed() on a connection asks for the version when it connects, and again after a reconnection", async () => {
  const server = await serveContract("1.4.0");
  await withClient(server, async (client) => {
    let asked = 0;
    server.handle("kite.describe", () => {
      asked++;
      return { kite: { name: "math", version: "1.0.0" }, contracts: [] };
    });
    const m = typed(client, math);
    // Asked at once, with no call made.
    await waitFor(() => asked === 1, "kite.describe when typed() is made");
    await assertRejects(() => m.square(2), KiteError, "does not serve");
    assertEquals(asked, 1);
    // Another connection may reach a redeployed kite: asked again at once.
    client.close();
    await client.dial();
    await waitFor(() => asked === 2, "kite.describe after reconnecting");
  });
});

async function waitFor(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert(done(), `timed out waiting for ${what}`);
}
