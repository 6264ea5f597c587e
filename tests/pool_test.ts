/**
 * Pools against a real Kontrol and real kites on 127.0.0.1 (in this
 * process): discovery through the watch, balancing by counts, breakers,
 * fallbacks, and instances that come and go.
 */
import { type Kite, KiteError, type PoolEvent, type Request } from "../mod.ts";
import { poolMathKite } from "../examples/pool/math.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { MemoryLogger } from "./helpers/kite_harness.ts";
import {
  ENGINES,
  eventually,
  kontrolKite,
  type TestKontrol,
  withKontrol,
} from "./helpers/kontrol_harness.ts";
import { makeIdentity, makeQuery } from "../kite/protocol.ts";

const QUERY = { username: "alice", environment: "test", name: "math" };

/** A registered math instance that waits `delayMs` in its handlers. */
async function instance(tk: TestKontrol, delayMs = 0): Promise<Kite> {
  const kite = poolMathKite(delayMs, {
    env: false,
    kiteKey: await tk.kiteKey("alice"),
    logger: new MemoryLogger(),
    config: { ip: "127.0.0.1", port: 0, environment: "test" },
  });
  await kite.serve();
  await kite.register();
  return kite;
}

/** Counts which instance answered `n` calls, `inFlight` at a time. */
async function spread(
  pool: ReturnType<Kite["pool"]>,
  n: number,
  inFlight: number,
): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      const r = await pool.call("square", [3]);
      assertEquals(r.result, 9);
      const id = r.instance!.id;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return counts;
}

for (const engine of ENGINES) {
  Deno.test(`${engine}: a pool finds instances, follows the watch, and spreads calls`, () =>
    withKontrol(engine, async (tk, own) => {
      const a = own(await instance(tk));
      const b = own(await instance(tk));
      const caller = own(await kontrolKite(tk, "caller", "bob"));
      const pool = caller.pool(QUERY);
      const events: PoolEvent[] = [];
      pool.onEvent((e) => void events.push(e));
      await pool.ready;
      assertEquals(
        pool.instances.map((i) => i.id).sort(),
        [a.identity.id, b.identity.id].sort(),
      );
      assert(pool.instances.every((i) => !i.connected), "dials lazily");
      assertEquals(await pool.tell("square", 4), 16);
      const counts = await spread(pool, 200, 10);
      assertEquals(counts.size, 2, "both instances get calls");

      // A new instance gets traffic soon after it registers.
      const c = own(await instance(tk));
      await eventually(
        () => pool.instances.some((i) => i.id === c.identity.id),
        "the pool to see the new instance",
        1_000,
      );
      const after = await spread(pool, 300, 10);
      assert((after.get(c.identity.id) ?? 0) > 0, "the new instance got calls");

      // One that goes away is dropped.
      await a.close();
      await eventually(
        () => !pool.instances.some((i) => i.id === a.identity.id),
        "the pool to drop the closed instance",
      );
      assert(
        events.some((e) => e.type === "remove" && e.reason === "deregister"),
      );
      await pool.close();
      await assertRejects(() => pool.tell("square", 2), KiteError, "closed");
    }));
}

Deno.test("p2c sends a slow instance few calls; round-robin gives it its share", () =>
  withKontrol("memory", async (tk, own) => {
    for (let i = 0; i < 4; i++) own(await instance(tk));
    const slow = own(await instance(tk, 50));
    const caller = own(await kontrolKite(tk, "caller", "bob"));
    const p2c = caller.pool(QUERY);
    const rr = caller.pool(QUERY, { balancer: "round-robin" });
    await p2c.ready;
    await rr.ready;
    const byP2c = await spread(p2c, 1000, 20);
    const byRr = await spread(rr, 500, 20);
    const slowP2c = byP2c.get(slow.identity.id) ?? 0;
    const slowRr = byRr.get(slow.identity.id) ?? 0;
    assert(slowP2c < 100, `p2c sent the slow instance ${slowP2c} of 1000`);
    assertEquals(slowRr, 100, "round-robin: one call in five");
  }));

Deno.test("a breaker opens on a dead instance, is probed back, and all-open fails fast", () =>
  withKontrol("memory", async (tk, own) => {
    // Registered straight in storage: Kontrol keeps listing it while it is
    // down, as when Kontrol has not noticed yet.
    const flappy = own(await instance(tk));
    const steady = own(await instance(tk));
    const port = flappy.port;
    await tk.storage.upsert({
      kite: makeIdentity({
        ...flappy.identity,
        username: "alice",
        id: "flappy",
      }),
      url: flappy.url,
      keyId: tk.kontrol.selfPair.id,
    });
    await flappy.close();
    await eventually(
      async () =>
        !(await tk.storage.get(makeQuery(QUERY))).some((k) =>
          k.kite.id === flappy.identity.id
        ),
      "Kontrol to forget the closed kite",
    );
    const caller = own(await kontrolKite(tk, "caller", "bob"));
    const pool = caller.pool(QUERY, {
      breaker: { consecutiveFailures: 2, openMs: 200 },
    });
    const states: string[] = [];
    pool.onEvent((e) => {
      if (e.type === "breaker" && e.instance.id === "flappy") {
        states.push(e.state);
      }
    });
    await pool.ready;
    assertEquals(pool.instances.length, 2);
    // Every call succeeds: dial failures go to the other instance.
    for (let i = 0; i < 20; i++) assertEquals(await pool.tell("square", 2), 4);
    assertEquals(states, ["open"]);
    assertEquals(
      pool.instances.find((i) => i.id === "flappy")!.breaker,
      "open",
    );

    // Back up on the same port: the next probe closes the breaker.
    const back = own(poolMathKite(0, {
      env: false,
      kiteKey: false,
      logger: new MemoryLogger(),
      config: { ip: "127.0.0.1", port, environment: "test" },
    }));
    await back.serve();
    await eventually(async () => {
      await pool.tell("square", 2);
      return states.at(-1) === "closed";
    }, "the breaker to close after a probe");
    assertEquals(states, ["open", "half-open", "closed"]);

    // All down: a clear, fast error, or the fallback's answer.
    await back.close();
    await steady.close();
    await tk.storage.upsert({
      kite: makeIdentity({ ...steady.identity, username: "alice" }),
      url: steady.url,
      keyId: tk.kontrol.selfPair.id,
    });
    await eventually(() => pool.instances.length === 2, "both listed again");
    const failures: unknown[] = [];
    for (let i = 0; i < 10; i++) {
      try {
        await pool.tell("square", 2);
      } catch (err) {
        failures.push(err);
      }
    }
    const last = failures.at(-1) as KiteError;
    assert(last instanceof KiteError);
    assertEquals(last.type, "sendError");
    assert(last.message.includes("circuit breaker"), last.message);
    const degraded = caller.pool(QUERY, {
      breaker: { consecutiveFailures: 1, openMs: 60_000 },
      fallbacks: { square: ([n]) => -1 * (n as number) },
    });
    const results = [];
    for (let i = 0; i < 3; i++) {
      results.push(await degraded.call("square", [5]));
    }
    assert(results.every((r) => r.degraded && r.result === -5));
  }));

Deno.test("a kite over maxKiteRequests sheds at once; the pool takes the call elsewhere, even one not idempotent", () =>
  withKontrol("memory", async (tk, own) => {
    const busy = own(poolMathKite(100, {
      env: false,
      kiteKey: await tk.kiteKey("alice"),
      logger: new MemoryLogger(),
      config: {
        ip: "127.0.0.1",
        port: 0,
        environment: "test",
        maxKiteRequests: 1,
      },
    }));
    await busy.serve();
    await busy.register();
    const other = own(await instance(tk));
    const caller = own(await kontrolKite(tk, "caller", "bob"));
    const pool = caller.pool(QUERY, { balancer: "round-robin" });
    const shed: PoolEvent[] = [];
    pool.onEvent((e) => {
      if (e.type === "retry" && e.error.type === "requestLimitError") {
        shed.push(e);
      }
    });
    await pool.ready;
    const results = await Promise.all(
      Array.from({ length: 20 }, () => pool.call("tally")),
    );
    assertEquals(results.length, 20);
    assert(shed.length > 0, "the busy kite shed calls");
    assert(
      shed.every((e) =>
        e.type === "retry" && e.instance.id === busy.identity.id &&
        e.error.message.includes("maxKiteRequests")
      ),
    );
    const byOther = results.filter((r) => r.instance!.id === other.identity.id);
    assert(byOther.length >= 18, `${byOther.length} of 20 went elsewhere`);

    // tell on the open connections (its first attempt takes the pool's
    // short path): shed calls are taken elsewhere the same way.
    const before = shed.length;
    const told = await Promise.all(
      Array.from({ length: 20 }, () => pool.tell("tally")),
    );
    assert(told.every((n) => typeof n === "number"), String(told));
    assert(shed.length > before, "tell retried calls the busy kite shed");
  }));

Deno.test("a method the serving kite declares idempotent is retried after a drop; one it does not, is not", () =>
  withKontrol("memory", async (tk, own) => {
    // The first call of each method, wherever it lands, loses its connection.
    const dropped = new Set<string>();
    const dropper = async () => {
      const kite = own(poolMathKite(0, {
        env: false,
        kiteKey: await tk.kiteKey("alice"),
        logger: new MemoryLogger(),
        config: { ip: "127.0.0.1", port: 0, environment: "test" },
      }));
      const drop = (r: Request) => {
        if (!dropped.has(r.method)) {
          dropped.add(r.method);
          r.client.close();
          return new Promise(() => {}); // never answers
        }
        return "ok";
      };
      kite.handle("declared", drop).idempotent();
      kite.handle("undeclared", drop);
      await kite.serve();
      await kite.register();
      return kite;
    };
    await dropper();
    await dropper();
    const caller = own(await kontrolKite(tk, "caller", "bob"));
    const pool = caller.pool(QUERY);
    await pool.ready;
    const declared = await pool.call("declared");
    assertEquals(declared.result, "ok");
    assertEquals(declared.attempts, 2, "retried on the other instance");
    const err = await assertRejects(
      () => pool.tell("undeclared"),
      KiteError,
    ) as KiteError;
    assertEquals(err.type, "disconnect");
  }));
