/**
 * Kontrol's metrics: registered kites by environment, watchers, storage
 * latency per adapter and operation, and its kite's per-method counts
 * (`register`, `getKites`), served at `/kite/metrics`; promtool accepts it.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  type Engine,
  kontrolKite,
  startTestKontrol,
} from "./helpers/kontrol_harness.ts";
import { promtoolCheck, sample } from "./helpers/prometheus.ts";

for (const engine of ["memory", "kv"] as Engine[]) {
  Deno.test(`Kontrol /kite/metrics (${engine}): kites, watchers, storage latency, register and getKites`, async () => {
    const tk = await startTestKontrol({
      engine,
      kiteConfig: { metrics: true },
    });
    const math = await kontrolKite(tk, "math", "alice");
    const watcher = await kontrolKite(tk, "watcher", "alice");
    try {
      await math.serve({ quiet: true });
      await math.register();
      const cancel = await watcher.watchKites({
        username: "alice",
        environment: "test",
      }, () => {});
      assertEquals(
        (await watcher.getKites({
          username: "alice",
          environment: "test",
          name: "math",
        })).length,
        1,
      );
      const text = await (await fetch(tk.base + "/kite/metrics")).text();
      assertEquals(
        sample(text, 'kontrol_registered_kites{environment="test"}'),
        1,
      );
      assertEquals(sample(text, "kontrol_watchers"), 1);
      assertEquals(
        sample(
          text,
          'kite_server_requests_total{method="register",outcome="ok"}',
        ),
        1,
      );
      // watchKites is a getKites call with a watch callback.
      assertEquals(
        sample(
          text,
          'kite_server_requests_total{method="getKites",outcome="ok"}',
        ),
        2,
      );
      // The register's write: upsertOwned where the adapter has it.
      const adds = ["upsertOwned", "upsert", "add"].map((op) =>
        sample(
          text,
          `kontrol_storage_duration_seconds_count{adapter="${engine}",operation="${op}",outcome="ok"}`,
        ) ?? 0
      ).reduce((a, b) => a + b);
      assert((adds ?? 0) >= 1, text);
      assert(
        (sample(
          text,
          `kontrol_storage_duration_seconds_count{adapter="${engine}",operation="get",outcome="ok"}`,
        ) ?? 0) >= 2,
        text,
      );
      await promtoolCheck(text);
      cancel();
    } finally {
      await watcher.close();
      await math.close();
      await tk.close();
    }
  });
}
