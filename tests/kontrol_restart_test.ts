/**
 * `registerForever` across a Kontrol restart on Deno KV: 20 kites
 * registered with Kontrol A come back to Kontrol B (same KV file, same
 * port) on their own, and none is lost (docs/protocol.md §8.5 step 6).
 */
import { makeQuery } from "../kite/protocol.ts";
import type { Kite } from "../mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  eventually,
  freePort,
  kontrolKite,
  startTestKontrol,
  type TestKontrol,
} from "./helpers/kontrol_harness.ts";

const N = 20;

Deno.test(`registerForever: ${N} kites re-register after a Kontrol restart on KV, 0 lost`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "kontrol_restart_" });
  const kvPath = `${dir}/kontrol.kv`;
  const port = freePort();
  const kites: Kite[] = [];
  let tk: TestKontrol | undefined;
  try {
    tk = await startTestKontrol({ engine: "kv", kvPath, port });
    for (let i = 0; i < N; i++) {
      const kite = await kontrolKite(tk, `worker${i}`, "alice");
      await kite.serve();
      kites.push(kite);
    }
    const results = await Promise.all(kites.map((k) => k.registerForever()));
    assertEquals(
      results.map((r) => r.url),
      kites.map((k) => k.url),
    );
    const expected = kites.map((k) => k.url).sort();
    const urls = async (t: TestKontrol) =>
      (await t.storage.get(makeQuery({ username: "alice" })))
        .map((k) => k.url).sort();
    assertEquals(await urls(tk), expected);
    assertEquals(tk.kontrol.registry.size, N);

    await tk.close();
    tk = undefined;

    tk = await startTestKontrol({ engine: "kv", kvPath, port });
    const b = tk;
    // The KV file still lists them; what matters is that each kite
    // registered again with this process, which then supervises it.
    await eventually(
      () => kites.every((k) => b.kontrol.registry.has(k.identity.id)),
      `all ${N} kites to register with the new Kontrol`,
      20_000,
    );
    assertEquals(b.kontrol.registry.size, N);
    assertEquals(await urls(b), expected, "0 lost, no duplicates");

    // And getKites through the new Kontrol finds them all.
    const [client] = kites;
    const found = await client.getKites({ username: "alice" });
    assertEquals(found.map((f) => f.url).sort(), expected);
    assert(found.every((f) => f.keyId === b.kontrol.selfPair.id));
  } finally {
    for (const k of kites) await k.close();
    await tk?.close();
    await Deno.remove(dir, { recursive: true });
  }
});
