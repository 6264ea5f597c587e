/**
 * Deadlines and cancellation across hops, on real sockets: A → B → C,
 * where B's handler calls C with a plain `tell`. The time left at A rides
 * along; when A gives up (its timeout, its own cancel, its connection)
 * C's `r.signal` aborts. kite.js peers ignore the extra field and
 * `kite.cancel`.
 */
import { type Client, type Kite, KiteError, type Request } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { testKite, waitFor, within } from "./helpers/kite_harness.ts";
import { startKitejsServer } from "./helpers/kitejs.ts";

/** What C saw of one call. */
interface Seen {
  receivedAt: number;
  deadline: number | undefined;
  abortedAt?: number;
  reason?: unknown;
}

/** What B had left when it called C. */
interface Relayed {
  receivedAt: number;
  deadline: number | undefined;
  sentAt: number;
}

interface Hops {
  a: Kite;
  aToB: Client;
  seen: Seen[];
  relayed: Relayed[];
  close(): Promise<void>;
}

/** C waits for its signal; B works 5 ms, then calls C with a plain tell. */
async function hops(): Promise<Hops> {
  const c = testKite("c", { disableAuthentication: true });
  const seen: Seen[] = [];
  c.handle("wait", (r: Request) => {
    const s: Seen = { receivedAt: Date.now(), deadline: r.deadline };
    seen.push(s);
    return new Promise((resolve) => {
      const guard = setTimeout(() => resolve("not aborted"), 10_000);
      r.signal.addEventListener("abort", () => {
        s.abortedAt = Date.now();
        s.reason = r.signal.reason;
        clearTimeout(guard);
        resolve("aborted");
      }, { once: true });
    });
  });
  await c.serve();
  const b = testKite("b", { disableAuthentication: true });
  const bToC = b.newClient(c.url);
  await bToC.dial();
  const relayed: Relayed[] = [];
  b.handle("relay", async (r: Request) => {
    const receivedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 5));
    relayed.push({ receivedAt, deadline: r.deadline, sentAt: Date.now() });
    return await bToC.tell("wait");
  });
  await b.serve();
  const a = testKite("a");
  const aToB = a.newClient(b.url);
  await aToB.dial();
  return {
    a,
    aToB,
    seen,
    relayed,
    close: async () => {
      await a.close();
      await b.close();
      await c.close();
    },
  };
}

Deno.test("deadline A → B → C: C gets less than A's timeout and its signal aborts once A gave up", async () => {
  // Long enough that a loaded machine still gets the call to C in time;
  // the bounds below are on time left as each hop saw it, not on transit.
  const timeout = 2_000;
  const h = await hops();
  try {
    const err = await assertRejects(
      () => h.aToB.tellWithTimeout("relay", timeout),
      KiteError,
    ) as KiteError;
    const gaveUp = Date.now();
    assertEquals(err.type, "timeout");
    await waitFor(() => h.seen[0]?.abortedAt !== undefined, "C's signal");
    const [seen] = h.seen;
    const [b] = h.relayed;
    assert(b.deadline !== undefined, "B's request has a deadline");
    assert(b.deadline - b.receivedAt <= timeout, "B got no more than A's");
    assert(seen.deadline !== undefined, "C's request has a deadline");
    const carried = seen.deadline - seen.receivedAt;
    assert(carried > 0 && carried < timeout, `B passed on ${carried} ms`);
    // No more than B had left when it called (1 ms: whole ms on the wire).
    assert(
      carried <= b.deadline - b.sentAt + 1,
      `B passed on ${carried} ms with ${b.deadline - b.sentAt} ms left`,
    );
    assertEquals((seen.reason as KiteError).type, "timeout");
    // Generous bounds: the machine is shared.
    assert(seen.abortedAt! >= gaveUp - 30, "not long before A gave up");
    assert(seen.abortedAt! - gaveUp < 5_000, "soon after A gave up");
  } finally {
    await h.close();
  }
});

Deno.test("cancel A → B → C: A's AbortSignal aborts C's request through B (kite.cancel)", async () => {
  const h = await hops();
  try {
    const controller = new AbortController();
    const call = h.aToB.call("relay", [], { signal: controller.signal });
    await waitFor(() => h.seen.length === 1, "C to get the call");
    assertEquals(h.seen[0].deadline, undefined, "no timeout, no deadline");
    controller.abort();
    const err = await assertRejects(() => call, KiteError) as KiteError;
    assertEquals(err.type, "timeout");
    assert(err.message.includes("cancelled"), err.message);
    await waitFor(() => h.seen[0].abortedAt !== undefined, "C's signal");
    assert(
      String((h.seen[0].reason as Error).message).includes("cancelled"),
      String(h.seen[0].reason),
    );
  } finally {
    await h.close();
  }
});

Deno.test("a caller's connection drop aborts the callee's callee", async () => {
  const h = await hops();
  try {
    const call = h.aToB.tellWithTimeout("relay", 30_000).catch((e) => e);
    await waitFor(() => h.seen.length === 1, "C to get the call");
    h.aToB.close();
    assertEquals((await call as KiteError).type, "disconnect");
    await waitFor(() => h.seen[0].abortedAt !== undefined, "C's signal");
  } finally {
    await h.close();
  }
});

Deno.test("a plain tell (no timeout, no signal): the caller's connection drop still aborts the callee's callee", async () => {
  const h = await hops();
  try {
    const call = h.aToB.tell("relay").catch((e) => e);
    await waitFor(() => h.seen.length === 1, "C to get the call");
    assertEquals(h.seen[0].deadline, undefined, "no timeout, no deadline");
    h.aToB.close();
    assertEquals((await call as KiteError).type, "disconnect");
    await waitFor(() => h.seen[0].abortedAt !== undefined, "C's signal");
    assert(
      String((h.seen[0].reason as Error).message).includes("cancelled"),
      `B sent kite.cancel to C: ${h.seen[0].reason}`,
    );
  } finally {
    await h.close();
  }
});

Deno.test("kite.js ignores the time left and kite.cancel, and keeps serving", async () => {
  await using server = await startKitejsServer({ transport: "raw" });
  const me = testKite("deno-client", {}, {});
  try {
    const client = me.newClient(server.url, { transport: "raw-websocket" });
    await client.dial();
    assertEquals(await client.tellWithTimeout("square", 5_000, 4), 16);
    const controller = new AbortController();
    const cancelled = client.call("square", [5], { signal: controller.signal })
      .catch((e) => e);
    controller.abort();
    assertEquals((await cancelled as KiteError).type, "timeout");
    assertEquals(
      await within(client.tellWithTimeout("square", 5_000, 6), "kite.js"),
      36,
    );
    assertEquals(await client.tell("echo", "still here"), "still here");
    client.close();
  } finally {
    await me.close();
  }
});
