/**
 * Pools against math instances in their own processes, and across a
 * Kontrol restart: a SIGKILLed instance costs no idempotent call, and a
 * pool re-watches the Kontrol that comes back.
 */
import { KiteError, type PoolEvent } from "../mod.ts";
import type { Kite } from "../mod.ts";
import { poolMathKite } from "../examples/pool/math.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { MemoryLogger, within } from "./helpers/kite_harness.ts";
import {
  eventually,
  freePort,
  kontrolKite,
  startTestKontrol,
  type TestKontrol,
} from "./helpers/kontrol_harness.ts";
import { type Instance, spawnInstance } from "./helpers/pool_instances.ts";

const QUERY = { username: "alice", environment: "test", name: "math" };

Deno.test("5 instances, 200 in flight, one SIGKILLed: 0 failed idempotent calls; non-idempotent ones fail with disconnect, unretried", async () => {
  const tk = await startTestKontrol();
  const home = await Deno.makeTempDir({ prefix: "pool_home_" });
  const instances: Instance[] = [];
  let caller: Kite | undefined;
  try {
    await Deno.writeTextFile(`${home}/kite.key`, await tk.kiteKey("alice"));
    instances.push(
      ...await Promise.all(
        Array.from({ length: 5 }, () => spawnInstance(tk.url, home, 5)),
      ),
    );
    caller = await kontrolKite(tk, "caller", "bob");
    const pool = caller.pool(QUERY, { idempotent: ["square"] });
    const events: PoolEvent[] = [];
    pool.onEvent((e) => void events.push(e));
    await pool.ready;
    assertEquals(pool.instances.length, 5);

    const victim = instances[2];
    const TOTAL = 4000;
    let started = 0;
    let done = 0;
    let killing: Promise<void> | undefined;
    const squareFailures: unknown[] = [];
    const tallyFailures: unknown[] = [];
    let victimAnswered = 0;
    const worker = async () => {
      while (started < TOTAL) {
        const n = started++;
        const method = n % 2 === 0 ? "square" : "tally";
        try {
          const r = await pool.call(method, method === "square" ? [n] : []);
          if (method === "square") assertEquals(r.result, n * n);
          if (r.instance?.id === victim.id) victimAnswered++;
        } catch (err) {
          (method === "square" ? squareFailures : tallyFailures).push(err);
        }
        if (++done === TOTAL / 4) killing = victim.kill();
      }
    };
    await within(
      Promise.all(Array.from({ length: 200 }, worker)),
      `${TOTAL} calls through the pool`,
      60_000,
    );
    await killing;
    assert(victimAnswered > 0, "the victim served calls before the kill");
    assertEquals(squareFailures, [], "no idempotent call failed");
    assert(tallyFailures.length > 0, "the kill caught tally calls in flight");
    for (const err of tallyFailures) {
      assert(err instanceof KiteError, String(err));
      assertEquals(err.type, "disconnect", err.message);
    }
    const retries = events.filter((e) => e.type === "retry");
    assert(
      retries.some((e) =>
        e.method === "square" && e.error.type === "disconnect"
      ),
      "square calls lost in flight were retried",
    );
    assert(
      !retries.some((e) =>
        e.method === "tally" && e.error.type === "disconnect"
      ),
      "a tally call that was sent is never retried",
    );
    await eventually(
      () => !pool.instances.some((i) => i.id === victim.id),
      "the pool to drop the killed instance",
    );
  } finally {
    await caller?.close();
    for (const i of instances) await i.kill();
    await tk.close();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("a pool survives a Kontrol restart: calls go on, and it sees kites that register after", async () => {
  const port = freePort();
  let tk: TestKontrol | undefined = await startTestKontrol({ port });
  const kites: Kite[] = [];
  const logger = new MemoryLogger();
  const instance = async (t: TestKontrol) => {
    const kite = poolMathKite(0, {
      env: false,
      kiteKey: await t.kiteKey("alice"),
      logger,
      config: { ip: "127.0.0.1", port: 0, environment: "test" },
    });
    kites.push(kite);
    await kite.serve();
    await kite.registerForever();
    return kite;
  };
  try {
    await instance(tk);
    await instance(tk);
    const caller = await kontrolKite(tk, "caller", "bob");
    kites.push(caller);
    const pool = caller.pool(QUERY);
    const syncs: number[] = [];
    pool.onEvent((e) => {
      if (e.type === "sync") syncs.push(e.instances);
    });
    await pool.ready;
    assertEquals(pool.instances.length, 2);

    await tk.close();
    tk = undefined;
    // Kontrol is away: the instances still answer.
    for (let i = 0; i < 10; i++) assertEquals(await pool.tell("square", 3), 9);

    tk = await startTestKontrol({ port });
    const b = tk;
    await eventually(
      () => syncs.length >= 2,
      "the pool to watch the restarted Kontrol",
      20_000,
    );
    const late = await instance(b);
    await eventually(
      () => pool.instances.some((i) => i.id === late.identity.id),
      "the pool to see a kite registered after the restart",
      10_000,
    );
    assertEquals(await pool.tell("square", 5), 25);
    assertEquals(pool.instances.length, 3);
  } finally {
    for (const k of kites.reverse()) await k.close();
    await tk?.close();
  }
});
