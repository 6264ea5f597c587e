/**
 * Kontrol restarted under load on etcd and on PostgreSQL: while a caller
 * keeps asking for kites, Kontrol goes away and comes back on the same
 * URL; every `registerForever` kite registers with the new process within
 * 15 s and none is lost or duplicated (the KV case is in
 * kontrol_restart_test.ts).
 */
import { makeQuery } from "../kite/protocol.ts";
import type { Kite } from "../mod.ts";
import { assertEquals } from "./helpers/assert.ts";
import {
  clusterKite,
  type ClusterKontrol,
  SHARED_ENGINES,
  startBackend,
  startClusterKontrol,
} from "./helpers/kontrol_cluster.ts";
import { eventually, freePort } from "./helpers/kontrol_harness.ts";

const N = 20;

for (const engine of SHARED_ENGINES) {
  Deno.test({
    name:
      `${engine}: ${N} registerForever kites are back within 15 s of a Kontrol restart under load, 0 lost`,
    async fn() {
      const backend = await startBackend(engine);
      const port = freePort();
      const namespace = `/restart-${crypto.randomUUID()}`;
      const kites: Kite[] = [];
      let kontrol: ClusterKontrol | undefined;
      let loading = true;
      let answered = 0;
      let load: Promise<void> | undefined;
      try {
        kontrol = await startClusterKontrol(await backend.open({ namespace }), {
          port,
        });
        for (let i = 0; i < N; i++) {
          const kite = await clusterKite(`worker${i}`, "alice", [kontrol.url]);
          await kite.serve();
          kites.push(kite);
        }
        await Promise.all(kites.map((k) => k.registerForever()));
        const expected = kites.map((k) => k.url).sort();

        const caller = await clusterKite("caller", "bob", [kontrol.url]);
        kites.push(caller);
        load = (async () => {
          while (loading) {
            try {
              await caller.getKites({ username: "alice" });
              answered++;
            } catch {
              // Kontrol is away: try again shortly.
              await new Promise((r) => setTimeout(r, 20));
            }
          }
        })();
        await eventually(
          () => answered > 20,
          "load before the restart",
          10_000,
        );

        await kontrol.close();
        kontrol = await startClusterKontrol(await backend.open({ namespace }), {
          port,
        });
        const b = kontrol;
        await eventually(
          () =>
            kites.slice(0, N).every((k) =>
              b.kontrol.registry.has(k.identity.id)
            ),
          `all ${N} kites to register with the restarted Kontrol`,
          15_000,
        );
        const stored =
          (await b.kontrol.storage.get(makeQuery({ username: "alice" })))
            .map((k) => k.url).sort();
        assertEquals(stored, expected, "0 lost, no duplicates");
        const before = answered;
        await eventually(
          () => answered > before,
          "the caller to be answered again",
          15_000,
        );
      } finally {
        loading = false;
        await load;
        for (const k of kites) await k.close();
        await kontrol?.close();
        await backend.close();
      }
    },
  });
}
