/**
 * Kontrol during a storage outage: etcd killed, or PostgreSQL shut down,
 * for `KITE_TEST_OUTAGE_MS` (default 3 s; the scenario is 10 s)
 * while kites are registered. getKites and register fail with a clear
 * error instead of hanging, `kite.ping` keeps working, nobody is
 * deregistered, and once the server is back Kontrol serves every kite
 * again — plus the one that kept trying to register meanwhile.
 */
import { makeIdentity } from "../kite/protocol.ts";
import type { Kite } from "../mod.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { within } from "./helpers/kite_harness.ts";
import {
  clusterKite,
  SHARED_ENGINES,
  startBackend,
  startClusterKontrol,
} from "./helpers/kontrol_cluster.ts";
import { eventually } from "./helpers/kontrol_harness.ts";

const OUTAGE_MS = Number(Deno.env.get("KITE_TEST_OUTAGE_MS") || 3_000);
const N = 10;
/** Bound for a call that must fail rather than hang (storage timeout is 2 s). */
const FAIL_FAST_MS = 15_000;

for (const engine of SHARED_ENGINES) {
  Deno.test({
    name: `${engine}: Kontrol rides out a ${
      OUTAGE_MS / 1000
    } s storage outage, 0 registrations lost`,
    async fn() {
      const backend = await startBackend(engine);
      const kites: Kite[] = [];
      const node = await startClusterKontrol(
        await backend.open(),
      );
      try {
        const user = "outage";
        for (let i = 0; i < N; i++) {
          const kite = await clusterKite(`worker${i}`, user, [node.url]);
          kites.push(kite);
          await kite.serve();
        }
        await Promise.all(kites.map((k) => k.registerForever()));
        const caller = await clusterKite("caller", "bob", [node.url]);
        kites.push(caller);
        const everyone = async () =>
          (await caller.getKites({ username: user }))
            .map((k) => `${k.kite.id} ${k.url}`).sort();
        const expected = kites.slice(0, N)
          .map((k) => `${k.identity.id} ${k.url}`);
        assertEquals(await everyone(), [...expected].sort());
        const kontrolConnection = await caller.kontrol.connection();

        const down = Date.now();
        await backend.stop();

        const getErr = await within(
          assertRejects(() => caller.getKites({ username: user })),
          "getKites to fail during the outage",
          FAIL_FAST_MS,
        );
        assert(
          /^(etcd|PostgreSQL) get\b/.test(getErr.message),
          `the error names the storage: ${getErr.message}`,
        );

        // A newcomer is refused too, with the same kind of error.
        const late = await clusterKite("late", user, [node.url]);
        kites.push(late);
        await late.serve();
        const regErr = await within(
          assertRejects(() => late.register()),
          "register to fail during the outage",
          FAIL_FAST_MS,
        );
        assert(
          /^(etcd|PostgreSQL) \w+/.test(regErr.message),
          `the error names the storage: ${regErr.message}`,
        );
        // ...and keeps trying on its own.
        const lateRegistered = late.registerForever();

        assertEquals(await kontrolConnection.tell("kite.ping"), "pong");
        const left = OUTAGE_MS - (Date.now() - down);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
        assertEquals(await kontrolConnection.tell("kite.ping"), "pong");
        assert(kontrolConnection.connected, "Kontrol kept the connection");
        assert(
          kites.slice(0, N).every((k) =>
            node.kontrol.registry.has(k.identity.id)
          ),
          "no kite was deregistered because storage was away",
        );

        await backend.start();
        await eventually(
          async () => {
            try {
              return (await everyone()).length === N + 1;
            } catch {
              return false; // storage still reconnecting
            }
          },
          "Kontrol to find every kite again",
          60_000,
        );
        assertEquals(
          await everyone(),
          [...expected, `${late.identity.id} ${late.url}`].sort(),
          "0 lost, no duplicates",
        );
        assertEquals(
          (await within(lateRegistered, "late registerForever", 30_000)).url,
          late.url,
        );
        assertEquals(late.kontrol.registeredWith, node.url);
      } finally {
        for (const k of kites) await k.close();
        await node.close();
        await backend.close();
      }
    },
  });
}

Deno.test({
  name:
    "postgres: after a crash empties the UNLOGGED kite table, Kontrol writes its kites back",
  async fn() {
    const backend = await startBackend("postgres");
    const kites: Kite[] = [];
    // Kites ping every second and each ping may refresh storage, so the
    // refresh that puts them back is due within a couple of seconds.
    const node = await startClusterKontrol(await backend.open(), {
      timing: {
        heartbeatIntervalMs: 1_000,
        heartbeatGraceMs: 20_000,
        updateIntervalMs: 1_000,
      },
    });
    try {
      const user = "crash";
      for (let i = 0; i < N; i++) {
        const kite = await clusterKite(`worker${i}`, user, [node.url]);
        kites.push(kite);
        await kite.serve();
      }
      await Promise.all(kites.map((k) => k.registerForever()));
      // Written straight to storage: nobody supervises it, so nobody writes it back.
      const orphan = makeIdentity({
        name: "orphan",
        username: user,
        id: crypto.randomUUID(),
        environment: "test",
        region: "r",
        version: "1.0.0",
        hostname: "h",
      });
      await node.kontrol.storage.upsert({
        kite: orphan,
        url: "http://127.0.0.1:1/kite",
        keyId: node.kontrol.selfPair.id,
      });
      const caller = await clusterKite("caller", "bob", [node.url]);
      kites.push(caller);
      const everyone = async () =>
        (await caller.getKites({ username: user })).map((k) => k.kite.id)
          .sort();
      const supervised = kites.slice(0, N).map((k) => k.identity.id);
      assertEquals(await everyone(), [...supervised, orphan.id].sort());

      await backend.flush();
      await backend.stop(true);
      await backend.start();
      await eventually(
        async () => {
          try {
            return (await everyone()).length === N;
          } catch {
            return false; // storage still reconnecting
          }
        },
        "Kontrol to write its kites back",
        60_000,
      );
      // The crash did empty the table (the orphan is gone); Kontrol's own
      // kites are all back.
      assertEquals(await everyone(), [...supervised].sort());
    } finally {
      for (const k of kites) await k.close();
      await node.close();
      await backend.close();
    }
  },
});
