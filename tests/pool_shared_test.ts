/**
 * Pools over a Kontrol on etcd and on PostgreSQL (the memory and KV cases
 * are in pool_test.ts): the pool finds the instances, follows the watch
 * as kites register and go, and keeps calling across a Kontrol restart on
 * the same storage, then sees kites that register with the new process.
 */
import type { Kite, PoolEvent } from "../mod.ts";
import { poolMathKite } from "../examples/pool/math.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { MemoryLogger } from "./helpers/kite_harness.ts";
import {
  clusterKite,
  type ClusterKontrol,
  KONTROL_PRIVATE,
  SHARED_ENGINES,
  startBackend,
  startClusterKontrol,
} from "./helpers/kontrol_cluster.ts";
import {
  eventually,
  freePort,
  KONTROL_PUBLIC,
} from "./helpers/kontrol_harness.ts";
import { signKiteKey } from "../kontrol/tokens.ts";

const QUERY = { username: "alice", environment: "test", name: "math" };

/** A math instance of alice's that stays registered with `url`. */
async function instance(url: string): Promise<Kite> {
  const kite = poolMathKite(0, {
    env: false,
    kiteKey: await signKiteKey({
      username: "alice",
      kontrolUser: "kontrol",
      kontrolURL: url,
      publicKeyPem: KONTROL_PUBLIC,
      privateKeyPem: KONTROL_PRIVATE,
    }),
    logger: new MemoryLogger(),
    config: { ip: "127.0.0.1", port: 0, environment: "test" },
  });
  await kite.serve();
  await kite.registerForever();
  return kite;
}

for (const engine of SHARED_ENGINES) {
  Deno.test(`${engine}: a pool finds instances, follows the watch, and survives a Kontrol restart`, async () => {
    const backend = await startBackend(engine);
    const port = freePort();
    const namespace = `/pool-${crypto.randomUUID()}`;
    const kites: Kite[] = [];
    let kontrol: ClusterKontrol | undefined;
    try {
      kontrol = await startClusterKontrol(await backend.open({ namespace }), {
        port,
      });
      const url = kontrol.url;
      const a = await instance(url);
      const b = await instance(url);
      kites.push(a, b);
      const caller = await clusterKite("caller", "bob", [url]);
      kites.push(caller);
      const pool = caller.pool(QUERY, { idempotent: ["square"] });
      const events: PoolEvent[] = [];
      pool.onEvent((e) => void events.push(e));
      await pool.ready;
      assertEquals(
        pool.instances.map((i) => i.id).sort(),
        [a.identity.id, b.identity.id].sort(),
      );
      assertEquals(await pool.tell("square", 4), 16);

      // Registered while the pool is in use: seen within 1 s, then called.
      const c = await instance(url);
      kites.push(c);
      await eventually(
        () => pool.instances.some((i) => i.id === c.identity.id),
        `the pool to see an instance registered on ${engine}`,
        1_000,
      );
      const answered = new Set<string>();
      for (let i = 0; i < 60; i++) {
        const r = await pool.call("square", [i]);
        assertEquals(r.result, i * i);
        answered.add(r.instance!.id);
      }
      assert(answered.has(c.identity.id), "the new instance got calls");

      // One that goes away is dropped through the watch.
      await a.close();
      await eventually(
        () => !pool.instances.some((i) => i.id === a.identity.id),
        `the pool to drop the instance deregistered on ${engine}`,
      );
      assert(
        events.some((e) => e.type === "remove" && e.reason === "deregister"),
        "dropped by a DEREGISTER event",
      );

      // Kontrol restarts on the same storage and URL.
      const syncs = events.filter((e) => e.type === "sync").length;
      await kontrol.close();
      kontrol = undefined;
      for (let i = 0; i < 10; i++) {
        assertEquals(await pool.tell("square", 3), 9, "calls go on meanwhile");
      }
      kontrol = await startClusterKontrol(await backend.open({ namespace }), {
        port,
      });
      await eventually(
        () => events.filter((e) => e.type === "sync").length > syncs,
        `the pool to watch the restarted Kontrol on ${engine}`,
        20_000,
      );
      const late = await instance(url);
      kites.push(late);
      await eventually(
        () => pool.instances.some((i) => i.id === late.identity.id),
        `the pool to see a kite registered after the restart on ${engine}`,
        10_000,
      );
      assertEquals(
        pool.instances.map((i) => i.id).sort(),
        [b.identity.id, c.identity.id, late.identity.id].sort(),
      );
      assertEquals(await pool.tell("square", 5), 25);
    } finally {
      for (const k of kites.reverse()) await k.close();
      await kontrol?.close();
      await backend.close();
    }
  });
}
