import { ManualClock } from "../kite/clock.ts";
import { makeIdentity, makeQuery } from "../kite/protocol.ts";
import { assert, assertEquals } from "../tests/helpers/assert.ts";
import { storageConformance } from "./conformance.ts";
import { KvStorage } from "./kv.ts";
import type { StorageEvent } from "./storage.ts";

Deno.test("KvStorage passes the storage conformance suite", (t) =>
  storageConformance(t, async () => {
    const dir = await Deno.makeTempDir({ prefix: "kite-kv-" });
    const path = `${dir}/kites.db`;
    const clock = new ManualClock();
    const storage = await KvStorage.open(path, { clock });
    return {
      storage,
      clock,
      openPeer: () => KvStorage.open(path, { clock }),
      cleanup: async () => {
        await storage.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  }));

function kite(hostname: string) {
  return makeIdentity({
    username: "alice",
    environment: "prod",
    name: "math",
    version: "1.0.0",
    region: "eu",
    hostname,
    id: crypto.randomUUID(),
  });
}

Deno.test("KvStorage leaves no entries behind once kites are gone", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = new ManualClock();
  const storage = new KvStorage(kv, { clock });
  try {
    const a = kite("h1");
    const b = kite("h2");
    await storage.add({ kite: a, url: "http://a/kite", keyId: "k" });
    await storage.upsert({ kite: b, url: "http://b/kite", keyId: "k" });
    await clock.advance(1_000);
    await storage.update({ kite: a, url: "http://a2/kite", keyId: "k" });
    await storage.upsert({
      kite: { ...b, version: "2.0.0" },
      url: "http://b2/kite",
      keyId: "k",
    });

    const live = new Set<string>();
    for await (const e of kv.list({ prefix: [] })) live.add(String(e.key[0]));
    assertEquals([...live].sort(), [
      "eventBump",
      "events",
      "kiteIds",
      "kites",
      "kitesByTime",
    ]);
    let kiteEntries = 0;
    for await (const _ of kv.list({ prefix: ["kites"] })) kiteEntries++;
    let timeEntries = 0;
    for await (const _ of kv.list({ prefix: ["kitesByTime"] })) timeEntries++;
    assertEquals([kiteEntries, timeEntries], [2, 2], "one entry per kite");

    await storage.delete(a);
    assertEquals((await storage.deleteStale(clock.now() + 1)).length, 1);
    for await (const e of kv.list({ prefix: [] })) {
      assert(
        e.key[0] === "events" || e.key[0] === "eventBump",
        `left behind: ${JSON.stringify(e.key)}`,
      );
    }
  } finally {
    await storage.close();
    kv.close();
  }
});

Deno.test("KvStorage sees kites written by another process", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite-kv-" });
  const path = `${dir}/kites.db`;
  // kv.watch is not notified across processes; the poll must find it.
  const storage = await KvStorage.open(path, { pollInterval: 20 });
  const events: StorageEvent[] = [];
  const stop = storage.watch(
    makeQuery({ username: "alice" }),
    (e) => events.push(e),
  );
  try {
    const other = kite("other-process");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "--unstable-kv",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        `import { KvStorage } from ${
          JSON.stringify(import.meta.resolve("./kv.ts"))
        };
         const s = await KvStorage.open(${JSON.stringify(path)});
         await s.add({ kite: ${
          JSON.stringify(other)
        }, url: "http://o/kite", keyId: "k" });
         await s.close();`,
      ],
      stdout: "inherit",
      stderr: "inherit",
    });
    assertEquals((await child.output()).code, 0, "child process wrote");
    const deadline = Date.now() + 10_000;
    while (events.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(events.map((e) => [e.action, e.kite]), [["REGISTER", other]]);
    assertEquals(events[0].url, "http://o/kite");
    assertEquals(
      (await storage.get(makeQuery({ id: other.id })))[0]?.kite,
      other,
    );
  } finally {
    stop();
    await storage.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Counts the atomic commits made on `kv` from now on. */
function countCommits(kv: Deno.Kv): { readonly commits: number } {
  const counter = { commits: 0 };
  const atomic = kv.atomic.bind(kv);
  kv.atomic = () => {
    const op = atomic();
    const commit = op.commit.bind(op);
    op.commit = () => {
      counter.commits++;
      return commit();
    };
    return op;
  };
  return counter;
}

Deno.test("KvStorage removes a burst of kites together, each on its own merits", async () => {
  const kv = await Deno.openKv(":memory:");
  const storage = new KvStorage(kv);
  const events: StorageEvent[] = [];
  const stop = storage.watch(
    makeQuery({ username: "alice" }),
    (e) => events.push(e),
  );
  try {
    const burst = Array.from({ length: 100 }, (_, i) => kite(`d${i}`));
    const kept = kite("kept");
    for (const k of [...burst, kept]) {
      await storage.add({ kite: k, url: "u", keyId: "k" });
    }
    events.length = 0;
    const counter = countCommits(kv);
    const unknown = kite("never-stored");
    const again = kite("re-added");
    const results = await Promise.all([
      ...burst.map((k) => storage.delete(k)),
      storage.delete(burst[0]), // already being removed: nothing left to remove
      storage.delete(unknown),
      storage.add({ kite: again, url: "u", keyId: "k" }),
      storage.delete(again), // queued after its add: removes it
    ]);
    assertEquals(results, [
      ...burst.map(() => true),
      false,
      false,
      undefined,
      true,
    ]);
    assert(counter.commits < 20, `${counter.commits} commits for 102 writes`);
    assertEquals(
      events.filter((e) => e.action === "DEREGISTER").map((e) => e.kite.id)
        .sort(),
      [...burst, again].map((k) => k.id).sort(),
    );
    const left = await storage.get(makeQuery({ username: "alice" }));
    assertEquals(left.map((r) => r.kite), [kept]);
    for (const prefix of ["kites", "kitesByTime", "kiteIds"]) {
      const entries = await Array.fromAsync(kv.list({ prefix: [prefix] }));
      assertEquals(entries.length, 1, `${prefix}: only the kept kite's entry`);
    }
  } finally {
    stop();
    await storage.close();
    kv.close();
  }
});

Deno.test("KvStorage commits a burst of writes together, each on its own merits", async () => {
  const kv = await Deno.openKv(":memory:");
  const storage = new KvStorage(kv);
  try {
    const taken = kite("taken");
    await storage.add({ kite: taken, url: "http://t/kite", keyId: "k" });
    const burst = Array.from({ length: 100 }, (_, i) => kite(`b${i}`));
    // 40 kites with 10 KB urls: 32 of them exceed KV's per-commit size
    // limit, so their batch must fall back to one commit each.
    const long = Array.from({ length: 40 }, (_, i) => kite(`long${i}`));
    const longUrl = `http://${"x".repeat(10_000)}/kite`;
    // A key over KV's 2 KiB limit: only this write may fail.
    const tooLong = { ...kite("too-long"), name: "n".repeat(2_100) };
    const results = await Promise.allSettled([
      ...burst.map((k) =>
        storage.upsertOwned({ kite: k, url: "u", keyId: "k" })
      ),
      storage.add({ kite: taken, url: "http://again/kite", keyId: "k" }),
      storage.upsertOwned({
        kite: { ...taken, username: "mallory" },
        url: "http://m/kite",
        keyId: "k",
      }),
      ...long.map((k) => storage.upsert({ kite: k, url: longUrl, keyId: "k" })),
      storage.upsert({ kite: tooLong, url: "u", keyId: "k" }),
    ]);
    const outcome = (r: PromiseSettledResult<unknown>) =>
      r.status === "fulfilled" ? r.value : (r.reason as Error).message;
    assertEquals(results.slice(0, 100).map(outcome), burst.map(() => true));
    assertEquals(outcome(results[100]), `kite already exists: ${taken.id}`);
    assertEquals(outcome(results[101]), false, "another user's id refused");
    assertEquals(
      results.slice(102, 142).map(outcome),
      long.map(() => undefined),
    );
    assertEquals(
      outcome(results[142]),
      "Key too large for write (max 2048 bytes)",
    );

    const stamps = new Set<string>();
    for (const k of [...burst, ...long]) {
      const byId = await kv.get<{ url: string }>(["kiteIds", k.id]);
      assertEquals(byId.value?.url, burst.includes(k) ? "u" : longUrl);
      stamps.add(byId.versionstamp!);
    }
    assert(stamps.size < 60, `${stamps.size} commits for 140 writes`);
    const [stored] = await storage.get(makeQuery({ id: taken.id }));
    assertEquals([stored.kite.username, stored.url], [
      "alice",
      "http://t/kite",
    ]);
    const all = await storage.get(makeQuery({ username: "alice" }));
    assertEquals(all.length, 1 + burst.length + long.length);
  } finally {
    await storage.close();
    kv.close();
  }
});
