/**
 * Callback bookkeeping under load on one connection: response callbacks are
 * freed when answered, a function sent again keeps its id, and neither the
 * dialing nor the accepting side grows per call.
 */
import type { Client } from "../kite/client.ts";
import { assertEquals } from "./helpers/assert.ts";
import { mathTestKite, testKite } from "./helpers/kite_harness.ts";

const CALLS = 20_000;
const BATCH = 1_000;

/** Runs `CALLS` calls, `BATCH` at a time, checking every result. */
async function hammer(
  calls: number,
  call: (i: number) => Promise<unknown>,
  expected: (i: number) => unknown,
): Promise<void> {
  for (let start = 0; start < calls; start += BATCH) {
    const batch: Promise<void>[] = [];
    for (let i = start; i < Math.min(calls, start + BATCH); i++) {
      batch.push(call(i).then((r) => assertEquals(r, expected(i))));
    }
    await Promise.all(batch);
  }
}

function acceptedSide(kite: { connections: ReadonlySet<Client> }): Client {
  assertEquals(kite.connections.size, 1, "one accepted connection");
  return [...kite.connections][0];
}

Deno.test(`${CALLS} calls on one connection leave no callbacks behind on either side`, async () => {
  const server = mathTestKite();
  server.handle("askBack", (r) => r.client.tell("double", r.args.one().raw));
  const caller = testKite("caller");
  caller.handle("double", (r) => r.args.one().number() * 2);
  try {
    const { url } = await server.serve();
    const client = caller.newClient(url);
    await client.dial();

    // Every call registers a fresh response callback; each is freed on its reply.
    await hammer(CALLS, (i) => client.tell("square", i), (i) => i * i);
    assertEquals(client.callbackCount, 0);
    assertEquals(client.pendingCalls, 0);

    // The same function sent with every call keeps one id.
    let called = 0;
    const onSquare = () => void called++;
    await hammer(
      CALLS,
      (i) => client.tell("squareCb", i % 100, onSquare),
      (i) => (i % 100) ** 2,
    );
    assertEquals(called, CALLS);
    assertEquals(client.callbackCount, 1);
    assertEquals(client.releaseCallback(onSquare), true);
    assertEquals(client.callbackCount, 0);

    // Functions sent once each live until released (the remote may call
    // them again, docs/protocol.md §2.5); releasing them frees every entry.
    const fresh: (() => void)[] = [];
    await hammer(2_000, (i) => {
      const fn = () => void called++;
      fresh.push(fn);
      return client.tell("squareCb", i, fn);
    }, (i) => i * i);
    assertEquals(client.callbackCount, 2_000);
    for (const fn of fresh) client.releaseCallback(fn);
    assertEquals(client.callbackCount, 0);

    // The accepted side: remote functions hold no entries, and the calls it
    // makes back on the caller free their response callbacks too.
    const accepted = acceptedSide(server);
    assertEquals(accepted.callbackCount, 0);
    await hammer(5_000, (i) => client.tell("askBack", i), (i) => i * 2);
    assertEquals(accepted.callbackCount, 0);
    assertEquals(accepted.pendingCalls, 0);
    assertEquals(client.callbackCount, 0);
    assertEquals(acceptedSide(server), accepted);
  } finally {
    await caller.close();
    await server.close();
  }
});

Deno.test("a dropped connection drops its callbacks", async () => {
  const server = mathTestKite();
  const caller = testKite("caller");
  try {
    const { url } = await server.serve();
    const client = caller.newClient(url);
    await client.dial();
    for (let i = 0; i < 10; i++) {
      await client.tell("squareCb", i, () => {});
    }
    assertEquals(client.callbackCount, 10);
    client.close();
    assertEquals(client.callbackCount, 0);
  } finally {
    await caller.close();
    await server.close();
  }
});
