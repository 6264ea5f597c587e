/**
 * The watch API (docs/protocol.md §8.6, ours only: Go's Kontrol dropped it):
 * `kite.watchKites` gets REGISTER (with url and token) and DEREGISTER
 * events, cancel stops them at Kontrol, and a watcher's subscriptions end
 * when its connection does.
 */
import type { KiteEvent } from "../kite/protocol.ts";
import type { KontrolQuery } from "../kite/protocol.ts";
import { MemoryStorage } from "../storage/memory.ts";
import type { StorageEvent, Unsubscribe } from "../storage/storage.ts";
import { Kontrol } from "../kontrol/kontrol.ts";
import type { Kite } from "../mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { fixtureKey } from "./fixtures/jwt.ts";
import {
  eventually,
  jwtParts,
  KONTROL_PUBLIC,
  kontrolKite,
  type TestKontrol,
  verifiesWith,
} from "./helpers/kontrol_harness.ts";
import { GUARD_MS } from "./helpers/kite_harness.ts";

/** Memory storage that counts live watch subscriptions. */
class CountingStorage extends MemoryStorage {
  active = 0;
  override watch(
    query: KontrolQuery,
    listener: (event: StorageEvent) => void,
  ): Unsubscribe {
    const off = super.watch(query, listener);
    this.active++;
    let done = false;
    return () => {
      if (!done) this.active--;
      done = true;
      off();
    };
  }
}

/** A Kontrol on counting storage, shaped like the harness's TestKontrol. */
async function countingKontrol(): Promise<
  { tk: TestKontrol; storage: CountingStorage }
> {
  const storage = new CountingStorage();
  const kontrol = new Kontrol({
    storage,
    kiteConfig: { ip: "127.0.0.1", logLevel: "FATAL" },
  });
  await kontrol.init({
    id: "",
    public: KONTROL_PUBLIC,
    private: fixtureKey("kontrol_pkcs8.pem"),
  });
  const { port, url } = await kontrol.kite.serve({
    port: 0,
    hostname: "127.0.0.1",
  });
  const tk: TestKontrol = {
    kontrol,
    storage,
    url,
    port,
    base: `http://127.0.0.1:${port}`,
    kiteKey: (u) => kontrol.signKiteKey(u),
    close: async () => {
      await kontrol.kite.close();
      await storage.close();
    },
  };
  return { tk, storage };
}

/** Collects events and lets a test wait for the n-th one. */
function recorder() {
  const events: KiteEvent[] = [];
  return {
    events,
    fn: (e: KiteEvent) => void events.push(e),
    until: (n: number, what: string) =>
      eventually(() => events.length >= n, what, GUARD_MS),
  };
}

async function served(tk: TestKontrol, name: string): Promise<Kite> {
  const kite = await kontrolKite(tk, name, "alice");
  await kite.serve();
  return kite;
}

Deno.test("watchKites: REGISTER with url and token, DEREGISTER, then cancel stops events", async () => {
  const { tk, storage } = await countingKontrol();
  const watcher = await kontrolKite(tk, "watcher", "bob");
  const witness = await kontrolKite(tk, "witness", "carol");
  const kites: Kite[] = [];
  try {
    const seen = recorder();
    const cancel = await watcher.watchKites(
      { username: "alice", environment: "test" },
      seen.fn,
    );
    assertEquals(storage.active, 1);

    const math = await served(tk, "math");
    kites.push(math);
    await math.register();
    await seen.until(1, "the REGISTER event");
    const reg = seen.events[0];
    assertEquals(reg.action, "REGISTER");
    assertEquals(reg.kite, { ...math.identity, username: "alice" });
    assertEquals(reg.url, math.url);
    assert(typeof reg.token === "string", "REGISTER carries a token");
    assert(await verifiesWith(reg.token!, KONTROL_PUBLIC));
    const claims = jwtParts(reg.token!).claims;
    assertEquals(
      [claims.aud, claims.sub],
      ["/alice/test/math", "bob"],
      "the audience names the kite, not the query",
    );
    // The token opens the kite it came with.
    const client = watcher.newClient(reg.url!, {
      auth: { type: "token", key: reg.token! },
    });
    await client.dial();
    const info = await client.tell("kite.systemInfo") as { state: string };
    assertEquals(info.state, "RUNNING");
    client.close();

    await math.close();
    await seen.until(2, "the DEREGISTER event");
    assertEquals(seen.events[1], {
      action: "DEREGISTER",
      kite: { ...math.identity, username: "alice" },
    });

    // A kite of another user is not reported.
    const other = await kontrolKite(tk, "math", "dave");
    kites.push(other);
    await other.serve();
    await other.register();

    await cancel();
    assertEquals(storage.active, 0, "cancel ends the subscription at Kontrol");

    // Another watcher proves an event went out after the cancel.
    const witnessed = recorder();
    const stopWitness = await witness.watchKites(
      { username: "alice" },
      witnessed.fn,
    );
    const late = await served(tk, "late");
    kites.push(late);
    await late.register();
    await witnessed.until(1, "the witness's REGISTER event");
    assertEquals(witnessed.events[0].kite.id, late.identity.id);
    assertEquals(seen.events.length, 2, "nothing after cancel");
    await stopWitness();
  } finally {
    for (const k of kites) await k.close();
    await witness.close();
    await watcher.close();
    await tk.close();
  }
});

Deno.test("watchKites: a watcher's subscriptions end when it disconnects", async () => {
  const { tk, storage } = await countingKontrol();
  const watcher = await kontrolKite(tk, "watcher", "bob");
  try {
    const seen = recorder();
    await watcher.watchKites({ username: "alice" }, seen.fn);
    await watcher.watchKites(
      { username: "alice", environment: "test" },
      seen.fn,
    );
    assertEquals(storage.active, 2);
    await watcher.close();
    await eventually(
      () => storage.active === 0,
      "Kontrol to drop the closed watcher's subscriptions",
    );
  } finally {
    await watcher.close();
    await tk.close();
  }
});

Deno.test("cancelWatcher refuses an unknown id and another connection's watcher", async () => {
  const { tk, storage } = await countingKontrol();
  const watcher = await kontrolKite(tk, "watcher", "bob");
  const intruder = await kontrolKite(tk, "intruder", "eve");
  try {
    const conn = await watcher.kontrol.connection();
    const reply = await conn.tell("getKites", {
      query: { username: "alice" },
      watchCallback: () => {},
    }) as { kites: unknown[]; watcherID: string };
    assertEquals(reply.kites, []);
    assert(typeof reply.watcherID === "string" && reply.watcherID !== "");

    const other = await intruder.kontrol.connection();
    let failed = await other.tell("cancelWatcher", reply.watcherID).then(
      () => "",
      (e) => e.message,
    );
    assertEquals(failed, `no watcher ${reply.watcherID}`);
    assertEquals(storage.active, 1, "still watching");

    assertEquals(await conn.tell("cancelWatcher", reply.watcherID), null);
    assertEquals(storage.active, 0);
    failed = await conn.tell("cancelWatcher", reply.watcherID).then(
      () => "",
      (e) => e.message,
    );
    assertEquals(failed, `no watcher ${reply.watcherID}`);
  } finally {
    await intruder.close();
    await watcher.close();
    await tk.close();
  }
});
