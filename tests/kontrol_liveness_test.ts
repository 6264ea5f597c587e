/**
 * Liveness of dnode registrations (docs/protocol.md §8.5) with a ManualClock: silence
 * for 30 s deregisters, a closed connection deregisters at once, and an old
 * connection's close does not undo a newer registration of the same id.
 */
import { ManualClock } from "../kite/clock.ts";
import { makeQuery } from "../kite/protocol.ts";
import type { Kite } from "../mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  ENGINES,
  eventually,
  kontrolKite,
  startTestKontrol,
  type TestKontrol,
} from "./helpers/kontrol_harness.ts";

const ALICE = makeQuery({ username: "alice" });

async function urlsOf(tk: TestKontrol): Promise<string[]> {
  return (await tk.storage.get(ALICE)).map((k) => k.url).sort();
}

/** A served kite registered with Kontrol whose first ping has arrived. */
async function registered(
  tk: TestKontrol,
  config: Parameters<typeof kontrolKite>[3] = {},
  clock?: ManualClock,
): Promise<Kite> {
  const kite = await kontrolKite(tk, "math", "alice", config, clock);
  const pinged: string[] = [];
  kite.preHandle((r) => void pinged.push(r.method));
  await kite.serve();
  await kite.register();
  await eventually(
    () => pinged.includes("kite.heartbeat"),
    "Kontrol's kite.heartbeat call",
  );
  return kite;
}

for (const engine of ENGINES) {
  Deno.test(`${engine}: a kite that stops pinging is deregistered after 30 s, one that pings stays`, async () => {
    const clock = new ManualClock(Date.now());
    const tk = await startTestKontrol({ engine, clock });
    // The silent kite's own clock never moves: it pings once, at heartbeat time.
    const silent = await registered(tk, {}, new ManualClock(Date.now()));
    // The live kite shares Kontrol's clock, so its 10 s ticker runs as time advances.
    const live = await registered(tk, {}, clock);
    // Moves Kontrol's (and the live kite's) clock, then makes a round trip on
    // the live kite's Kontrol connection, so a ping its ticker sent meanwhile
    // has been processed by Kontrol.
    const step = async (ms: number) => {
      await clock.advance(ms);
      await (await live.kontrol.connection()).tell("kite.ping");
    };
    try {
      const both = [live.url, silent.url].sort();
      assertEquals(await urlsOf(tk), both);
      await step(10_000);
      await step(10_000);
      await step(9_000);
      assertEquals(await urlsOf(tk), both, "both still registered at 29 s");
      assert(tk.kontrol.registry.has(silent.identity.id));
      await step(2_000);
      await eventually(
        async () => (await urlsOf(tk)).length === 1,
        "the silent kite to be deregistered",
      );
      assertEquals(await urlsOf(tk), [live.url]);
      assert(!tk.kontrol.registry.has(silent.identity.id));

      // Three minutes more: pings keep the live kite, and the storage
      // refreshes they cause keep Kontrol's 90 s stale-entry sweep off it.
      const [before] = await tk.storage.get(ALICE);
      for (let i = 0; i < 18; i++) await step(10_000);
      assertEquals(await urlsOf(tk), [live.url], "pings keep the live kite");
      assert(tk.kontrol.registry.has(live.identity.id));
      const [after] = await tk.storage.get(ALICE);
      assert(after.updatedAt > before.updatedAt, "storage was refreshed");
    } finally {
      await live.close();
      await silent.close();
      await tk.close();
    }
  });

  Deno.test(`${engine}: a kite whose connection closes is deregistered at once`, async () => {
    const clock = new ManualClock(Date.now());
    const tk = await startTestKontrol({ engine, clock });
    const kite = await registered(tk);
    const other = await registered(tk);
    try {
      assertEquals((await urlsOf(tk)).length, 2);
      await kite.close();
      await eventually(
        async () => (await urlsOf(tk)).length === 1,
        "the closed kite to be deregistered",
      );
      assertEquals(await urlsOf(tk), [other.url]);
      assert(!tk.kontrol.registry.has(kite.identity.id));
    } finally {
      await kite.close();
      await other.close();
      await tk.close();
    }
  });

  Deno.test(`${engine}: re-registering an id on a new connection survives the old connection's close`, async () => {
    const clock = new ManualClock(Date.now());
    const tk = await startTestKontrol({ engine, clock });
    const id = crypto.randomUUID();
    const first = await registered(tk, { id });
    const second = await registered(tk, { id });
    try {
      assertEquals(first.identity.id, second.identity.id);
      assertEquals(await urlsOf(tk), [second.url]);
      assertEquals(tk.kontrol.kite.connections.size, 2);

      await first.close();
      await eventually(
        () => tk.kontrol.kite.connections.size === 1,
        "Kontrol to see the first connection close",
      );
      // Let any deregistration the close might have started run to the end.
      await new Promise((r) => setTimeout(r, 50));
      assertEquals(await urlsOf(tk), [second.url]);
      assert(tk.kontrol.registry.has(id));

      // The registration still follows the second connection.
      await second.close();
      await eventually(
        async () => (await urlsOf(tk)).length === 0,
        "the second kite to be deregistered",
      );
    } finally {
      await first.close();
      await second.close();
      await tk.close();
    }
  });
}
