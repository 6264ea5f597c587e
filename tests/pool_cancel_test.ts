/**
 * Cancellation of pool calls, seen by real serving kites: the instance B
 * a pool calls relays to C with a plain `tell`; both record when their
 * `r.signal` aborts and why. A pool call given up by its caller, or still
 * in flight when the pool closes (its connection drops), aborts both —
 * with no timeout given.
 */
import { Kite, KiteError, type Request } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { MemoryLogger, testKite, waitFor } from "./helpers/kite_harness.ts";
import {
  kontrolKite,
  startTestKontrol,
  type TestKontrol,
} from "./helpers/kontrol_harness.ts";

const QUERY = { username: "alice", environment: "test", name: "relay" };

/** When a serving kite's signal aborted, and why. */
interface Seen {
  abortedAt?: number;
  reason?: unknown;
}

/** Resolves when `r.signal` aborts (or after 10 s), noting it in `s`. */
function watch(r: Request, s: Seen): Promise<string> {
  return new Promise((resolve) => {
    const guard = setTimeout(() => resolve("not aborted"), 10_000);
    r.signal.addEventListener("abort", () => {
      s.abortedAt = Date.now();
      s.reason = r.signal.reason;
      clearTimeout(guard);
      resolve("aborted");
    }, { once: true });
  });
}

interface Setup {
  tk: TestKontrol;
  caller: Kite;
  atB: Seen[];
  atC: Seen[];
  close(): Promise<void>;
}

async function setup(): Promise<Setup> {
  const tk = await startTestKontrol();
  const c = testKite("c", { disableAuthentication: true });
  const atC: Seen[] = [];
  c.handle("wait", (r: Request) => {
    const s: Seen = {};
    atC.push(s);
    return watch(r, s);
  });
  await c.serve();
  const b = new Kite("relay", "1.0.0", {
    env: false,
    kiteKey: await tk.kiteKey("alice"),
    logger: new MemoryLogger(),
    config: {
      ip: "127.0.0.1",
      port: 0,
      environment: "test",
      disableAuthentication: true,
    },
  });
  const bToC = b.newClient(c.url);
  await bToC.dial();
  const atB: Seen[] = [];
  b.handle("relay", async (r: Request) => {
    const s: Seen = {};
    atB.push(s);
    const [, fromC] = await Promise.all([watch(r, s), bToC.tell("wait")]);
    return fromC;
  });
  await b.serve();
  await b.register();
  const caller = await kontrolKite(tk, "caller", "bob");
  return {
    tk,
    caller,
    atB,
    atC,
    close: async () => {
      await caller.close();
      await b.close();
      await c.close();
      await tk.close();
    },
  };
}

Deno.test("a pool call without a timeout, given up by its caller's signal: B and B's callee C see r.signal abort (kite.cancel), the connection stays up", async () => {
  const h = await setup();
  try {
    const pool = h.caller.pool(QUERY);
    const controller = new AbortController();
    const call = pool.call("relay", [], { signal: controller.signal });
    await waitFor(() => h.atC.length === 1, "C to get the call");
    controller.abort();
    const err = await assertRejects(() => call, KiteError) as KiteError;
    assertEquals(err.type, "timeout");
    await waitFor(() => h.atB[0].abortedAt !== undefined, "B's signal");
    await waitFor(() => h.atC[0].abortedAt !== undefined, "C's signal");
    for (const s of [h.atB[0], h.atC[0]]) {
      assert(
        String((s.reason as Error).message).includes("cancelled"),
        `aborted by kite.cancel, not a drop: ${s.reason}`,
      );
    }
    assert(pool.instances[0].connected, "only the call was given up");
    await pool.close();
  } finally {
    await h.close();
  }
});

Deno.test("a pool call with no timeout and no signal: closing the pool cancels it at B and at B's callee C", async () => {
  const h = await setup();
  try {
    const pool = h.caller.pool(QUERY);
    const call = pool.tell("relay").catch((e) => e);
    await waitFor(() => h.atC.length === 1, "C to get the call");
    await pool.close();
    assertEquals((await call as KiteError).type, "disconnect");
    // B sees its caller's connection drop; B's plain tell to C runs in
    // that connection's scope, so B cancels it.
    await waitFor(() => h.atB[0].abortedAt !== undefined, "B's signal");
    await waitFor(() => h.atC[0].abortedAt !== undefined, "C's signal");
    assert(
      String((h.atC[0].reason as Error).message).includes("cancelled"),
      `C got kite.cancel from B: ${h.atC[0].reason}`,
    );
  } finally {
    await h.close();
  }
});
