/**
 * Connection lifecycle on real sockets: dialForever() across a server
 * restart on the same port, pending calls failing with `disconnect`,
 * `tellWithTimeout`, and calls after `close()`.
 */
import { KiteError, ManualClock } from "../mod.ts";
import type { CloseInfo } from "../kite/transport/session.ts";
import type { ClientTransport } from "../kite/transport/sockets/deno_dial.ts";
import type { Kite } from "../kite/kite.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  mathTestKite,
  settle,
  testKite,
  waitFor,
  within,
} from "./helpers/kite_harness.ts";

/** A math kite with `hang`, which answers only when the test says so. */
function hangingKite(): { kite: Kite; hung: (() => void)[] } {
  const kite = mathTestKite();
  const hung: (() => void)[] = [];
  kite.handle(
    "hang",
    () => new Promise<string>((resolve) => hung.push(() => resolve("late"))),
  );
  return { kite, hung };
}

function assertKiteError(
  outcome: { ok: boolean; error?: unknown },
  type: string,
  message: string,
): void {
  assert(!outcome.ok, `expected a ${type} error, the call succeeded`);
  const err = outcome.error;
  assert(err instanceof KiteError, `expected a KiteError, got ${err}`);
  assertEquals({ type: err.type, message: err.message }, { type, message });
}

const TRANSPORTS: ClientTransport[] = [
  "websocket",
  "raw-websocket",
  "xhr-polling",
];

for (const transport of TRANSPORTS) {
  Deno.test(`${transport}: dialForever() resumes after the server restarts on the same port`, async () => {
    const first = hangingKite();
    let second: ReturnType<typeof hangingKite> | undefined;
    const caller = testKite("caller");
    try {
      const { port, url } = await first.kite.serve();
      const client = caller.newClient(url, {
        transport,
        reconnect: { initialMs: 5, maxMs: 20 },
      });
      let connects = 0;
      const drops: CloseInfo[] = [];
      client.onConnect(() => connects++);
      client.onDisconnect((info) => drops.push(info));
      await within(client.dialForever(), "the first connection");
      assertEquals(connects, 1);
      assertEquals(await client.tell("square", 2), 4);

      // Calls in flight when the server goes away fail; none hangs.
      const pending = [
        settle(client.tell("hang")),
        settle(client.tellWithTimeout("hang", 60_000)),
      ];
      await waitFor(() => first.hung.length === 2, "both calls to arrive");
      await first.kite.close();
      for (const p of pending) {
        assertKiteError(
          await within(p, "the pending call to fail"),
          "disconnect",
          "Remote kite has disconnected",
        );
      }
      assertEquals(client.pendingCalls, 0);
      assertEquals(drops.length, 1);

      // While nobody listens, calls fail at once.
      assertEquals(client.connected, false);
      assertKiteError(
        await settle(client.tell("square", 3)),
        "sendError",
        "can't send, session is not established yet",
      );

      second = hangingKite();
      await second.kite.serve({ port });
      await waitFor(() => client.connected, "the client to reconnect");
      assertEquals(connects, 2);
      assertEquals(await client.tell("square", 3), 9);
      assertEquals(second.kite.connections.size, 1);

      // The server drops us again (not a restart): back again, on the same server.
      for (const c of second.kite.connections) c.close();
      await waitFor(() => connects === 3 && client.connected, "reconnect #2");
      assertEquals(await client.tell("square", 5), 25);

      client.close();
      assertKiteError(
        await settle(client.tell("square", 3)),
        "sendError",
        "can't send, client is closed",
      );
      // And it stays closed: no reconnect behind our back.
      const drops0 = drops.length;
      await waitFor(
        () => second!.kite.connections.size === 0,
        "server side close",
      );
      assertEquals(client.connected, false);
      assertEquals(drops.length, drops0);
      first.hung.forEach((fn) => fn());
    } finally {
      await caller.close();
      await first.kite.close();
      await second?.kite.close();
    }
  });
}

Deno.test("close() fails the calls in flight with disconnect and later ones with sendError", async () => {
  const server = hangingKite();
  const caller = testKite("caller");
  try {
    const { url } = await server.kite.serve();
    const client = caller.newClient(url);
    await client.dial();
    const pending = settle(client.tell("hang"));
    await waitFor(() => server.hung.length === 1, "the call to arrive");
    client.close();
    assertKiteError(
      await within(pending, "the call to fail"),
      "disconnect",
      "Remote kite has disconnected",
    );
    assertKiteError(
      await settle(client.tell("square", 1)),
      "sendError",
      "can't send, client is closed",
    );
    // The server lets go of its side too.
    await waitFor(
      () => server.kite.connections.size === 0,
      "server side close",
    );
    // Its late answer goes nowhere and breaks nothing.
    server.hung.forEach((fn) => fn());
  } finally {
    await caller.close();
    await server.kite.close();
  }
});

Deno.test("a dialForever() client that cannot connect stops when its kite closes", async () => {
  // Find a port nobody listens on.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const clock = new ManualClock();
  const caller = testKite("caller", {}, { clock });
  const client = caller.newClient(`http://127.0.0.1:${port}/kite`, {
    reconnect: { initialMs: 1000, jitter: 0 },
  });
  const dialing = client.dialForever();
  // Each failed attempt schedules the next on the kite's clock.
  await waitFor(() => clock.pending === 1, "a retry to be scheduled");
  await clock.advance(1000);
  await waitFor(() => clock.pending === 1, "the second retry");
  await caller.close();
  assertEquals(clock.pending, 0);
  await within(dialing, "dialForever() to give up");
  assertEquals(client.connected, false);
});

Deno.test("tellWithTimeout() fails with timeout on the kite's clock; the late reply is ignored", async () => {
  const server = hangingKite();
  const clock = new ManualClock();
  const caller = testKite("caller", {}, { clock });
  try {
    const { url } = await server.kite.serve();
    const client = caller.newClient(url);
    await client.dial();

    // Answered in time: the timer is cleared.
    assertEquals(await client.tellWithTimeout("square", 1000, 7), 49);
    assertEquals(clock.pending, 0);

    let done = false;
    const call = settle(client.tellWithTimeout("hang", 1000)).finally(() =>
      done = true
    );
    await waitFor(() => server.hung.length === 1, "the call to arrive");
    await clock.advance(999);
    assertEquals(done, false);
    assertEquals(client.pendingCalls, 1);
    await clock.advance(1);
    assertKiteError(
      await within(call, "the timeout"),
      "timeout",
      'No response to "hang" method in 1000ms',
    );
    assertEquals(client.pendingCalls, 0);
    assertEquals(client.callbackCount, 0);

    // The answer arrives after all: nothing happens, the connection is fine.
    server.hung[0]();
    assertEquals(await client.tell("square", 8), 64);

    // 0 waits forever: no timer at all.
    const forever = settle(client.tellWithTimeout("hang", 0));
    await waitFor(() => server.hung.length === 2, "the second call");
    assertEquals(clock.pending, 0);
    server.hung[1]();
    const outcome = await within(forever, "the reply");
    assertEquals(outcome, { ok: true, value: "late" });
  } finally {
    await caller.close();
    await server.kite.close();
  }
});

for (const transport of TRANSPORTS) {
  Deno.test(`${transport}: concurrent dial() calls share one connection; a failed dial is a sendError`, async () => {
    const server = hangingKite();
    const caller = testKite("caller");
    try {
      const { url } = await server.kite.serve();
      const client = caller.newClient(url, { transport });
      let connects = 0;
      client.onConnect(() => connects++);
      await within(
        Promise.all([client.dial(), client.dial(), client.dial()]),
        "the dials",
      );
      assertEquals(await client.tell("square", 2), 4);
      assertEquals(await client.tell("square", 3), 9);
      assertEquals(connects, 1);
      assertEquals(server.kite.connections.size, 1);
      // Already connected: nothing new.
      await client.dial();
      assertEquals(connects, 1);

      const wrong = caller.newClient(url.replace(/\/kite$/, "/nope"), {
        transport,
      });
      const outcome = await settle(wrong.dial());
      assert(!outcome.ok, "dialing a path without a kite must fail");
      const err = (outcome as { error: unknown }).error;
      assert(err instanceof KiteError, String(err));
      assertEquals(err.type, "sendError");
      assertEquals(err.message.startsWith(`cannot dial ${wrong.url}: `), true);
      assertEquals(err.message.split("cannot dial").length, 2, err.message);
      assertEquals(wrong.connected, false);
    } finally {
      await caller.close();
      await server.kite.close();
    }
  });
}
