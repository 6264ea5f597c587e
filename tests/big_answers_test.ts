/**
 * Answers bigger than one incoming message limit (issue #15 finding 10): a
 * `getKites` listing thousands of kites, and one registration fanned out to
 * a connection holding thousands of watches. What a server sends, a kite
 * that dialed it must read.
 *
 * @module
 */
import type { KiteEvent } from "../mod.ts";
import { assertEquals } from "./helpers/assert.ts";
import { waitFor, within } from "./helpers/kite_harness.ts";
import { kontrolKite, startTestKontrol } from "./helpers/kontrol_harness.ts";

const SLOW_MS = 30_000;

Deno.test("getKites returns 3,000 kites (one answer of several MiB)", async () => {
  const tk = await startTestKontrol();
  const caller = await kontrolKite(tk, "caller", "alice");
  try {
    const { id: keyId } = await tk.kontrol.currentPair();
    for (let i = 0; i < 3_000; i++) {
      await tk.storage.add({
        kite: {
          username: "alice",
          environment: "test",
          name: "many",
          version: "1.0.0",
          region: "r",
          hostname: "h",
          id: `kite-${i}`,
        },
        url: `http://127.0.0.1:1/kite/${i}`,
        keyId,
      });
    }
    const found = await within(
      caller.getKites({ username: "alice", environment: "test", name: "many" }),
      "getKites",
      SLOW_MS,
    );
    assertEquals(found.length, 3_000);
    assertEquals(new Set(found.map((f) => f.kite.id)).size, 3_000);
    assertEquals(typeof found[0].token, "string");
  } finally {
    await caller.close();
    await tk.close();
  }
});

Deno.test("a connection holding 1,500 watches gets every event of one registration, in frames it accepts", async () => {
  const tk = await startTestKontrol({
    limits: { maxWatchersPerConnection: 1_500, maxWatchersPerUser: 1_500 },
  });
  // Frames from Kontrol must fit the default 1 MiB even when the tick's
  // events together are bigger.
  const watcher = await kontrolKite(tk, "watcher", "alice", {
    maxDialedMessageBytes: 1 << 20,
  });
  const newcomer = await kontrolKite(tk, "newcomer", "alice");
  try {
    const events: KiteEvent[] = [];
    const query = { username: "alice", environment: "test", name: "newcomer" };
    for (let i = 0; i < 1_500; i++) {
      await watcher.watchKites(query, (e) => events.push(e));
    }
    const connection = await watcher.kontrol.connection();
    await within(newcomer.register("http://127.0.0.1:1/kite"), "register");
    await waitFor(
      () => events.length === 1_500 || !connection.connected,
      "1,500 events",
      SLOW_MS,
    );
    assertEquals(connection.connected, true, "the watcher kept its connection");
    assertEquals(events.length, 1_500);
    assertEquals(events.every((e) => e.action === "REGISTER"), true);
  } finally {
    await newcomer.close();
    await watcher.close();
    await tk.close();
  }
});
