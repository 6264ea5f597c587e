/**
 * The conformance suite every storage adapter runs: one behaviour, one
 * definition, whatever the engine (memory, Deno KV, etcd, PostgreSQL).
 *
 * Kite and key pair ids are UUIDs and every kite refers to a stored key pair,
 * so engines with PostgreSQL's schema (uuid columns, a foreign key from
 * `kite.key_id` to `key.id`, docs/protocol.md §8.8) run it unchanged.
 *
 * @example
 * ```ts
 * import { storageConformance } from "./conformance.ts";
 * import { MemoryStorage } from "./memory.ts";
 * import { ManualClock } from "../kite/clock.ts";
 *
 * Deno.test("MemoryStorage conforms", (t) =>
 *   storageConformance(t, () => {
 *     const clock = new ManualClock();
 *     const storage = new MemoryStorage({ clock });
 *     return Promise.resolve({ storage, clock, cleanup: () => storage.close() });
 *   }));
 * ```
 *
 * @module
 */
import type { ManualClock } from "../kite/clock.ts";
import {
  type KiteIdentity,
  type KontrolQuery,
  makeIdentity,
  makeQuery,
} from "../kite/protocol.ts";
import { QueryError } from "./query.ts";
import {
  assert,
  assertEquals,
  AssertionError,
  assertRejects,
  canonical,
} from "./conformance_assert.ts";
import { CODE_CASES } from "./conformance_codes.ts";
import type { KeyPair, Storage, StorageEvent, StoredKite } from "./storage.ts";

/** One fresh storage to run a conformance case against. */
export interface ConformanceTarget {
  /** The adapter under test, empty. */
  storage: Storage;
  /** Present when the adapter uses an injectable clock. */
  clock?: ManualClock;
  /** Opens a second handle on the same data (another "Kontrol"), if the engine supports it. */
  openPeer?: () => Promise<Storage>;
  /** Closes the storage (and peers' shared resources) and removes its data. */
  cleanup(): Promise<void>;
}

/**
 * Runs every conformance case as a `t.step`, each against a fresh target from
 * `open`. Steps that need `openPeer` are left out when the target has none.
 */
export async function storageConformance(
  t: Deno.TestContext,
  open: () => Promise<ConformanceTarget>,
): Promise<void> {
  const probe = await open();
  const hasPeer = probe.openPeer !== undefined;
  const { addCode, claimCode, deleteExpiredCodes } = probe.storage;
  const hasCodes = !!(addCode && claimCode && deleteExpiredCodes);
  await probe.cleanup();

  for (const c of CASES) {
    // Not applicable (no second writer, e.g. MemoryStorage; no code
    // methods, an adapter older than them), so not listed: an ignored step
    // in the summary would read as a skipped test.
    if (c.needsPeer === true && !hasPeer) continue;
    if (c.needsCodes === true && !hasCodes) continue;
    await t.step({
      name: c.name,
      fn: async () => {
        const target = await open();
        try {
          await c.fn(await Fixture.create(target));
        } finally {
          await target.cleanup();
        }
      },
    });
  }
}

// ---------------------------------------------------------------------------
// Fixture and helpers

/** Bound on how long to wait for an asynchronous watch event. */
const EVENT_WAIT_MS = 10_000;

class Fixture {
  readonly storage: Storage;
  readonly clock?: ManualClock;
  readonly target: ConformanceTarget;
  readonly keyId: string;

  private constructor(target: ConformanceTarget, keyId: string) {
    this.target = target;
    this.storage = target.storage;
    this.clock = target.clock;
    this.keyId = keyId;
  }

  /** Wraps a target, adding the key pair kites refer to. */
  static async create(target: ConformanceTarget): Promise<Fixture> {
    const pair = keyPair();
    await target.storage.addKey(pair);
    return new Fixture(target, pair.id);
  }

  /** A full identity with a fresh UUID; `fields` override the defaults. */
  kite(fields: Partial<KiteIdentity> = {}): KiteIdentity {
    return makeIdentity({
      username: "alice",
      environment: "prod",
      name: "math",
      version: "1.0.0",
      region: "eu",
      hostname: "h1",
      id: crypto.randomUUID(),
      ...fields,
    });
  }

  /** Adds a kite with this fixture's key pair; returns its identity. */
  async add(
    fields: Partial<KiteIdentity> = {},
    url = "http://h1:3636/kite",
  ): Promise<KiteIdentity> {
    const kite = this.kite(fields);
    await this.storage.add({ kite, url, keyId: this.keyId });
    return kite;
  }

  /** The single kite stored under `id`, or undefined. */
  async byId(id: string): Promise<StoredKite | undefined> {
    const found = await this.storage.get(makeQuery({ id }));
    assert(found.length <= 1, `id-only query returned ${found.length} kites`);
    return found[0];
  }

  /** Moves the clock when there is one; otherwise lets a little real time pass. */
  async tick(ms: number): Promise<void> {
    if (this.clock) await this.clock.advance(ms);
    else await new Promise((r) => setTimeout(r, Math.min(ms, 20)));
  }
}

/** A unique fake PEM pair (storage does not parse PEMs). */
function keyPair(id: string = crypto.randomUUID()): KeyPair {
  const tag = crypto.randomUUID();
  return {
    id,
    public: `-----BEGIN PUBLIC KEY-----\n${tag}\n-----END PUBLIC KEY-----`,
    private: `-----BEGIN PRIVATE KEY-----\n${tag}\n-----END PRIVATE KEY-----`,
  };
}

/** Collects watch events and waits for them. */
class Events {
  readonly list: StorageEvent[] = [];
  readonly listener = (event: StorageEvent): void => {
    this.list.push(event);
  };

  /** Waits until `done(list)` holds; fails after {@linkcode EVENT_WAIT_MS}. */
  async until(
    done: (list: StorageEvent[]) => boolean,
    what: string,
  ): Promise<void> {
    const deadline = Date.now() + EVENT_WAIT_MS;
    while (!done(this.list)) {
      if (Date.now() > deadline) {
        throw new AssertionError(
          `no ${what} event; got ${JSON.stringify(summary(this.list))}`,
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Waits for an event about `kite` with `action`. */
  waitFor(action: StorageEvent["action"], kite: KiteIdentity): Promise<void> {
    return this.until(
      (list) => list.some((e) => e.action === action && e.kite.id === kite.id),
      `${action} ${kite.id}`,
    );
  }
}

function summary(events: StorageEvent[]): string[] {
  return events.map((e) => `${e.action} ${e.kite.id}`);
}

/** Sorted ids of the kites, for set comparison. */
function ids(kites: { kite: KiteIdentity }[] | KiteIdentity[]): string[] {
  return kites.map((k) => "kite" in k ? k.kite.id : k.id).sort();
}

function sortedIds(kites: KiteIdentity[]): string[] {
  return kites.map((k) => k.id).sort();
}

// ---------------------------------------------------------------------------
// Cases

interface Case {
  name: string;
  needsPeer?: boolean;
  /** Runs only on storage with the optional `CodeStorage` methods. */
  needsCodes?: boolean;
  fn: (f: Fixture) => Promise<void>;
}

const CASES: Case[] = [
  {
    name:
      "contracts round-trip through add/update/upsert; a kite without stays without",
    fn: async (f) => {
      const math = [{ name: "math", version: "1.2.0" }];
      const both = [...math, { name: "stats", version: "0.3.1" }];
      const a = f.kite();
      const plain = await f.add();
      await f.storage.add({
        kite: a,
        url: "http://a/kite",
        keyId: f.keyId,
        contracts: math,
      });
      assertEquals((await f.byId(a.id))?.contracts, math, "add keeps them");
      const none = await f.byId(plain.id);
      assert(
        none !== undefined && !("contracts" in none),
        `a kite registered without contracts has none: ${canonical(none)}`,
      );
      await f.storage.update({
        kite: a,
        url: "http://a/kite",
        keyId: f.keyId,
        contracts: both,
      });
      assertEquals((await f.byId(a.id))?.contracts, both, "update writes them");
      const all = await f.storage.get(makeQuery({ username: "alice" }));
      assertEquals(
        all.find((k) => k.kite.id === a.id)?.contracts,
        both,
        "a prefix query returns them too",
      );
      await f.storage.upsert({ kite: a, url: "http://a/kite", keyId: f.keyId });
      const cleared = await f.byId(a.id);
      assert(
        cleared !== undefined && !("contracts" in cleared),
        `registering again without contracts drops them: ${canonical(cleared)}`,
      );
    },
  },
  {
    name: "add() stores a kite that get() returns with url, keyId, updatedAt",
    fn: async (f) => {
      const kite = f.kite();
      const before = Date.now();
      await f.storage.add({ kite, url: "http://a/kite", keyId: f.keyId });
      const found = await f.storage.get(makeQuery(kite));
      assertEquals(found.length, 1, "full query finds the kite once");
      const stored = found[0];
      assertEquals(stored.kite, kite, "identity round-trips");
      assertEquals(stored.url, "http://a/kite", "url round-trips");
      assertEquals(stored.keyId, f.keyId, "keyId round-trips");
      if (f.clock) {
        assertEquals(stored.updatedAt, f.clock.now(), "updatedAt is clock");
      } else {
        // A loose bound: catches seconds-vs-milliseconds, not latency.
        assert(
          Math.abs(stored.updatedAt - before) < 3_600_000,
          `updatedAt ${stored.updatedAt} is not ms since the epoch`,
        );
      }
      assertEquals(await f.byId(kite.id), stored, "id-only query agrees");
    },
  },
  {
    name: "add() of an existing id throws and leaves the stored kite alone",
    fn: async (f) => {
      const kite = await f.add({}, "http://first/kite");
      await assertRejects(
        () =>
          f.storage.add({ kite, url: "http://second/kite", keyId: f.keyId }),
        "same identity",
      );
      await assertRejects(
        () =>
          f.storage.add({
            kite: { ...kite, version: "9.9.9" },
            url: "http://third/kite",
            keyId: f.keyId,
          }),
        "same id, other identity",
      );
      const all = await f.storage.get(makeQuery({ username: "alice" }));
      assertEquals(ids(all), [kite.id], "still exactly one kite");
      assertEquals(all[0].url, "http://first/kite", "url unchanged");
      assertEquals(all[0].kite, kite, "identity unchanged");
    },
  },
  {
    name: "update() refreshes url and updatedAt, and inserts when missing",
    fn: async (f) => {
      const kite = await f.add({}, "http://old/kite");
      const old = (await f.byId(kite.id))!;
      await f.tick(5_000);
      await f.storage.update({ kite, url: "http://new/kite", keyId: f.keyId });
      const fresh = (await f.byId(kite.id))!;
      assertEquals(fresh.url, "http://new/kite", "url refreshed");
      if (f.clock) {
        assertEquals(fresh.updatedAt, old.updatedAt + 5_000, "updatedAt");
      } else {
        assert(fresh.updatedAt >= old.updatedAt, "updatedAt went backwards");
      }
      const listed = await f.storage.get(makeQuery({ username: "alice" }));
      assertEquals(ids(listed), [kite.id], "no second entry");
      assertEquals(listed[0].url, "http://new/kite", "query sees new url");

      const missing = f.kite({ hostname: "h2" });
      await f.storage.update({
        kite: missing,
        url: "http://h2/kite",
        keyId: f.keyId,
      });
      const inserted = await f.byId(missing.id);
      assertEquals(inserted?.kite, missing, "update inserted missing kite");
      assertEquals(inserted?.url, "http://h2/kite", "inserted url");
      assertEquals(inserted?.keyId, f.keyId, "inserted keyId");
    },
  },
  {
    name: "upsert() inserts, then replaces url, keyId and identity",
    fn: async (f) => {
      const kite = f.kite();
      await f.storage.upsert({ kite, url: "http://a/kite", keyId: f.keyId });
      assertEquals((await f.byId(kite.id))?.url, "http://a/kite", "inserted");

      const other = keyPair();
      await f.storage.addKey(other);
      await f.tick(1_000);
      const moved = { ...kite, version: "2.0.0", hostname: "h9" };
      await f.storage.upsert({
        kite: moved,
        url: "http://b/kite",
        keyId: other.id,
      });
      const stored = (await f.byId(kite.id))!;
      assertEquals(stored.kite, moved, "identity replaced");
      assertEquals(stored.url, "http://b/kite", "url replaced");
      assertEquals(stored.keyId, other.id, "keyId replaced");
      if (f.clock) {
        assertEquals(stored.updatedAt, f.clock.now(), "updatedAt refreshed");
      }
      const all = await f.storage.get(makeQuery({ username: "alice" }));
      assertEquals(ids(all), [kite.id], "one entry for the id");
      assertEquals(all[0].kite, moved, "prefix query sees the new identity");
      assertEquals(
        await f.storage.get(makeQuery(kite)),
        [],
        "old identity is gone",
      );
      assertEquals(
        ids(await f.storage.get(makeQuery(moved))),
        [kite.id],
        "new identity is found",
      );
    },
  },
  {
    name: "delete() removes a kite and resolves true once, then false",
    fn: async (f) => {
      const kite = await f.add();
      const keep = await f.add({ hostname: "h2" });
      assertEquals(await f.storage.delete(kite), true, "first delete");
      assertEquals(await f.byId(kite.id), undefined, "id-only finds nothing");
      assertEquals(
        await f.storage.get(makeQuery(kite)),
        [],
        "full query finds nothing",
      );
      assertEquals(
        ids(await f.storage.get(makeQuery({ username: "alice" }))),
        [keep.id],
        "the other kite stays",
      );
      assertEquals(await f.storage.delete(kite), false, "second delete");
      assertEquals(
        await f.storage.delete(f.kite()),
        false,
        "delete of an unknown id",
      );
    },
  },
  {
    name: "get() implements every query form of docs/protocol.md §8.4",
    fn: queryForms,
  },
  {
    name: "get() over 300 kites returns exactly each prefix's kites",
    fn: manyKites,
  },
  {
    name: "addKey() pairs are found by id and by (trimmed) public key",
    fn: async (f) => {
      const pair = keyPair();
      await f.storage.addKey(pair);
      const expected = { ...pair, deleted: false };
      assertEquals(await f.storage.getKeyFromId(pair.id), expected, "by id");
      assertEquals(
        await f.storage.getKeyFromPublic(pair.public),
        expected,
        "by public",
      );
      assertEquals(
        await f.storage.getKeyFromPublic(`\n${pair.public}\n  `),
        expected,
        "by public with surrounding whitespace",
      );
      assertEquals(
        await f.storage.getKeyFromId(crypto.randomUUID()),
        undefined,
        "unknown id",
      );
      assertEquals(
        await f.storage.getKeyFromPublic(keyPair().public),
        undefined,
        "unknown public key",
      );
    },
  },
  {
    name: "listKeys() returns pairs in insertion order",
    fn: async (f) => {
      // Ids in descending order, so an id-ordered listing fails.
      const pairIds = Array.from({ length: 5 }, () => crypto.randomUUID())
        .sort().reverse();
      for (const id of pairIds) await f.storage.addKey(keyPair(id));
      const listed = (await f.storage.listKeys()).map((p) => p.id);
      assertEquals(listed, [f.keyId, ...pairIds], "insertion order");
    },
  },
  {
    name: "deleteKey() is a soft delete: the pair stays readable",
    fn: async (f) => {
      const pair = keyPair();
      await f.storage.addKey(pair);
      await f.storage.deleteKey(pair.id);
      const deleted = { ...pair, deleted: true };
      assertEquals(await f.storage.getKeyFromId(pair.id), deleted, "by id");
      assertEquals(
        await f.storage.getKeyFromPublic(pair.public),
        deleted,
        "by public",
      );
      const listed = await f.storage.listKeys();
      assertEquals(
        listed.map((p) => [p.id, p.deleted]),
        [[f.keyId, false], [pair.id, true]],
        "listed with its flag",
      );
    },
  },
  {
    name: "addKey() rejects a duplicate id or public key",
    fn: async (f) => {
      const pair = keyPair();
      await f.storage.addKey(pair);
      await assertRejects(
        () => f.storage.addKey({ ...keyPair(), id: pair.id }),
        "duplicate id",
      );
      await assertRejects(
        () => f.storage.addKey({ ...keyPair(), public: `  ${pair.public}\n` }),
        "duplicate public key",
      );
      assertEquals(
        (await f.storage.listKeys()).map((p) => p.id),
        [f.keyId, pair.id],
        "nothing added",
      );
      assertEquals(
        await f.storage.getKeyFromId(pair.id),
        { ...pair, deleted: false },
        "original unchanged",
      );
    },
  },
  {
    name: "deleteStale() removes only kites not written since `before`",
    fn: async (f) => {
      const events = new Events();
      const stop = f.storage.watch(
        makeQuery({ username: "alice" }),
        events.listener,
      );
      try {
        const old = await f.add({ hostname: "old" });
        const oldAt = (await f.byId(old.id))!.updatedAt;
        let fresh: KiteIdentity;
        let before: number;
        if (f.clock) {
          await f.clock.advance(60_000);
          fresh = await f.add({ hostname: "fresh" });
          await f.clock.advance(40_000);
          before = f.clock.now() - 90_000; // docs/protocol.md §8.5 KeyTTL
        } else {
          assertEquals(
            await f.storage.deleteStale(oldAt - 1),
            [],
            "nothing is older than the oldest kite",
          );
          await f.tick(5);
          fresh = await f.add({ hostname: "fresh" });
          before = oldAt + 1;
          const freshAt = (await f.byId(fresh.id))!.updatedAt;
          assert(freshAt >= before, "setup: fresh kite written later");
        }
        const removed = await f.storage.deleteStale(before);
        assertEquals(sortedIds(removed), [old.id], "returns the stale kite");
        assertEquals(removed[0], old, "with its identity");
        assertEquals(
          ids(await f.storage.get(makeQuery({ username: "alice" }))),
          [fresh.id],
          "only the fresh kite is left",
        );
        assertEquals(await f.byId(old.id), undefined, "id entry gone too");
        await events.waitFor("DEREGISTER", old);
        assertEquals(
          await f.storage.deleteStale(before),
          [],
          "second run removes nothing",
        );
        const future = f.clock ? f.clock.now() + 1 : Date.now() + 3_600_000;
        assertEquals(
          sortedIds(await f.storage.deleteStale(future)),
          [fresh.id],
          "a future `before` removes the rest",
        );
      } finally {
        stop();
      }
    },
  },
  {
    name: "deleteOlderThan() removes only kites not written for maxAgeMs",
    fn: async (f) => {
      const storage = f.storage;
      if (!storage.deleteOlderThan) return;
      const old = await f.add({ hostname: "old" });
      if (f.clock) {
        await f.clock.advance(60_000);
        const fresh = await f.add({ hostname: "fresh" });
        await f.clock.advance(40_000);
        assertEquals(
          sortedIds(await storage.deleteOlderThan(90_000)),
          [old.id],
          "the kite written 100 s ago is stale, the one 40 s ago is not",
        );
        assertEquals(await f.byId(old.id), undefined, "old kite gone");
        assert(await f.byId(fresh.id), "fresh kite kept");
        return;
      }
      assertEquals(
        await storage.deleteOlderThan(3_600_000),
        [],
        "nothing is an hour old",
      );
      await f.tick(20);
      assertEquals(
        sortedIds(await storage.deleteOlderThan(0)),
        [old.id],
        "everything written before now is older than 0 ms",
      );
    },
  },
  {
    name: "deleteOwn() removes a kite until another writer rewrites it",
    needsPeer: true,
    fn: async (f) => {
      const storage = f.storage;
      if (!storage.deleteOwn) return;
      const peer = await f.target.openPeer!();
      try {
        const mine = await f.add({ hostname: "mine" });
        assertEquals(await storage.deleteOwn(mine), true, "own kite removed");
        assertEquals(await f.byId(mine.id), undefined, "and gone");

        const moved = f.kite({ hostname: "moved" });
        const record = { kite: moved, url: "http://m/kite", keyId: f.keyId };
        await storage.upsert(record);
        await f.tick(1_000);
        await peer.upsert(record); // it registered again through the peer
        assertEquals(
          await storage.deleteOwn(moved),
          false,
          "a kite the peer wrote since is not ours to delete",
        );
        assert(await f.byId(moved.id), "the peer's entry stays");
        assertEquals(await peer.deleteOwn!(moved), true, "the peer may");
        assertEquals(
          await storage.deleteOwn(f.kite()),
          false,
          "a kite never written here is not removed",
        );
      } finally {
        await peer.close();
      }
    },
  },
  {
    name: "watch() delivers REGISTER/DEREGISTER for matching kites only",
    fn: async (f) => {
      const events = new Events();
      const stop = f.storage.watch(
        makeQuery({ username: "alice", environment: "prod" }),
        events.listener,
      );
      try {
        const a = await f.add({}, "http://a/kite");
        await f.add({ username: "bob" }); // other user: not delivered
        await f.add({ environment: "dev" }); // other environment
        await f.storage.update({
          kite: a,
          url: "http://a2/kite",
          keyId: f.keyId,
        });
        await f.storage.upsert({
          kite: a,
          url: "http://a3/kite",
          keyId: f.keyId,
        });
        assertEquals(await f.storage.delete(a), true, "delete a");
        // A matching sentinel: everything before it has been delivered.
        const last = await f.add({ hostname: "last" }, "http://last/kite");
        await events.waitFor("REGISTER", last);
        assertEquals(
          summary(events.list),
          summary([
            { action: "REGISTER", kite: a },
            { action: "DEREGISTER", kite: a },
            { action: "REGISTER", kite: last },
          ]),
          "only matching kites; no event for refreshes",
        );
        const [reg, dereg, sentinel] = events.list;
        assertEquals(reg.kite, a, "REGISTER identity");
        assertEquals(reg.url, "http://a/kite", "REGISTER url");
        assertEquals(reg.keyId, f.keyId, "REGISTER keyId");
        assertEquals(dereg.kite, a, "DEREGISTER identity");
        assertEquals(sentinel.url, "http://last/kite", "sentinel url");
      } finally {
        stop();
      }
    },
  },
  {
    name: "watch() with a version range filters by version",
    fn: async (f) => {
      const events = new Events();
      const stop = f.storage.watch(
        makeQuery({
          username: "alice",
          environment: "prod",
          name: "math",
          version: "^1.0.0",
        }),
        events.listener,
      );
      try {
        await f.add({ version: "2.0.0" });
        const one = await f.add({ version: "1.4.0" });
        await events.waitFor("REGISTER", one);
        assertEquals(summary(events.list), [`REGISTER ${one.id}`], "1.x only");
      } finally {
        stop();
      }
    },
  },
  {
    name: "watch() stops delivering after unsubscribe",
    fn: async (f) => {
      const gone = new Events();
      const kept = new Events();
      const query = makeQuery({ username: "alice" });
      const stopGone = f.storage.watch(query, gone.listener);
      const stopKept = f.storage.watch(query, kept.listener);
      try {
        const a = await f.add();
        await gone.waitFor("REGISTER", a);
        stopGone();
        stopGone(); // a second call is harmless
        const b = await f.add({ hostname: "h2" });
        await f.storage.delete(a);
        await kept.waitFor("DEREGISTER", a);
        assertEquals(summary(gone.list), [`REGISTER ${a.id}`], "nothing after");
        assertEquals(
          summary(kept.list),
          [`REGISTER ${a.id}`, `REGISTER ${b.id}`, `DEREGISTER ${a.id}`],
          "the other listener still runs",
        );
      } finally {
        stopKept();
      }
    },
  },
  {
    name: "watch() rejects an invalid query with QueryError",
    fn: (f) => {
      let error: unknown;
      try {
        f.storage.watch(makeQuery({ name: "math" }), () => {})();
      } catch (e) {
        error = e;
      }
      assert(error instanceof QueryError, `got ${error}`);
      assertEquals(error.message, "Empty username field", "message");
      return Promise.resolve();
    },
  },
  {
    name: "watch() sees changes made through a peer, each event once",
    needsPeer: true,
    fn: async (f) => {
      const peer = await f.target.openPeer!();
      const local = new Events();
      const remote = new Events();
      const query = makeQuery({ username: "alice" });
      const stopLocal = f.storage.watch(query, local.listener);
      const stopRemote = peer.watch(query, remote.listener);
      try {
        const x = await f.add({}, "http://x/kite");
        await remote.waitFor("REGISTER", x);
        const seen = remote.list.find((e) => e.kite.id === x.id)!;
        assertEquals(seen.kite, x, "peer event identity");
        assertEquals(seen.url, "http://x/kite", "peer event url");
        assertEquals(seen.keyId, f.keyId, "peer event keyId");
        assertEquals(
          ids(await peer.get(query)),
          [x.id],
          "peer reads the same data",
        );

        const y = f.kite({ hostname: "h2" });
        await peer.add({ kite: y, url: "http://y/kite", keyId: f.keyId });
        await local.waitFor("REGISTER", y);
        await f.storage.delete(x);
        await remote.waitFor("DEREGISTER", x);
        // Sentinel from the peer: the local listener has seen everything
        // before it, so duplicates of x's events would show up here.
        const z = f.kite({ hostname: "h3" });
        await peer.add({ kite: z, url: "http://z/kite", keyId: f.keyId });
        await local.waitFor("REGISTER", z);
        assertEquals(
          summary(local.list),
          [
            `REGISTER ${x.id}`,
            `REGISTER ${y.id}`,
            `DEREGISTER ${x.id}`,
            `REGISTER ${z.id}`,
          ],
          "local listener: each event once",
        );
        assertEquals(
          summary(remote.list),
          [
            `REGISTER ${x.id}`,
            `REGISTER ${y.id}`,
            `DEREGISTER ${x.id}`,
            `REGISTER ${z.id}`,
          ],
          "peer listener: each event once",
        );
      } finally {
        stopLocal();
        stopRemote();
        await peer.close();
      }
    },
  },
  {
    name: "concurrent writers leave both index entries consistent",
    fn: concurrentWriters,
  },
  ...CODE_CASES.map((c): Case => ({
    name: `one-time codes: ${c.name}`,
    needsPeer: c.needsPeer,
    needsCodes: true,
    fn: (f) => c.fn(f.target),
  })),
];

// ---------------------------------------------------------------------------
// Query forms (docs/protocol.md §8.4)

async function queryForms(f: Fixture): Promise<void> {
  const k = {
    a: await f.add({ version: "1.0.0", region: "eu", hostname: "h1" }),
    b: await f.add({ version: "1.1.0", region: "eu-west", hostname: "h2" }),
    c: await f.add({ version: "2.0.0", region: "us", hostname: "h1" }),
    d: await f.add({ name: "fs" }),
    e: await f.add({ environment: "dev" }),
    // Prefix traps: `al` vs `alice`, `mathx` vs `math`.
    f: await f.add({ username: "al" }),
    g: await f.add({ version: "1.0", hostname: "h3" }),
    h: await f.add({ name: "mathx" }),
    i: await f.add({ version: "1.2.0-beta.1", hostname: "h4" }),
  };
  const alice = { username: "alice" };
  const prodMath = { ...alice, environment: "prod", name: "math" };
  const cases: [string, Partial<KontrolQuery>, (keyof typeof k)[]][] = [
    ["username", alice, ["a", "b", "c", "d", "e", "g", "h", "i"]],
    ["username is not a string prefix", { username: "al" }, ["f"]],
    ["environment", { ...alice, environment: "prod" }, [
      "a",
      "b",
      "c",
      "d",
      "g",
      "h",
      "i",
    ]],
    ["name", prodMath, ["a", "b", "c", "g", "i"]],
    ["version literal", { ...prodMath, version: "1.0.0" }, ["a"]],
    ["version 1.0 is a literal, not 1.0.0", { ...prodMath, version: "1.0" }, [
      "g",
    ]],
    ["region exact, not prefix", {
      ...prodMath,
      version: "1.0.0",
      region: "eu",
    }, ["a"]],
    ["hostname", {
      ...prodMath,
      version: "1.0.0",
      region: "eu",
      hostname: "h1",
    }, ["a"]],
    ["all seven fields", k.a, ["a"]],
    ["all seven, unknown id", { ...k.a, id: crypto.randomUUID() }, []],
    ["id only", { id: k.c.id }, ["c"]],
    ["id only, unknown", { id: crypto.randomUUID() }, []],
    ["Go range", { ...prodMath, version: ">= 1.0, < 2.0" }, ["a", "b", "g"]],
    ["Go pessimistic", { ...prodMath, version: "~> 1.1" }, ["b"]],
    ["Go != with >", { ...prodMath, version: "> 1.0.0, != 2.0.0" }, ["b"]],
    ["Go single bound", { ...prodMath, version: ">= 2.0" }, ["c"]],
    ["npm caret", { ...prodMath, version: "^1.0.0" }, ["a", "b", "g"]],
    ["npm x-range", { ...prodMath, version: "1.x" }, ["a", "b", "g"]],
    ["npm space AND", { ...prodMath, version: ">=1 <2" }, ["a", "b", "g"]],
    ["range then exact region", {
      ...prodMath,
      version: ">=1.0",
      region: "eu",
    }, ["a", "g"]],
    ["range matching nothing", { ...prodMath, version: "> 5" }, []],
    ["unknown name", { ...alice, environment: "prod", name: "nope" }, []],
    ["unknown user", { username: "nobody" }, []],
  ];
  for (const [what, query, expected] of cases) {
    const found = await f.storage.get(makeQuery(query));
    assertEquals(ids(found), ids(expected.map((x) => k[x])), what);
    for (const stored of found) {
      assertEquals(stored.keyId, f.keyId, `${what}: keyId`);
    }
  }

  const errors: [Partial<KontrolQuery>, string][] = [
    [{}, "Empty username field"],
    [{ name: "math" }, "Empty username field"],
    [{ environment: "prod", id: k.a.id }, "Empty username field"],
    [
      { ...alice, name: "math" },
      "Invalid query. Query option is not set: environment",
    ],
    [
      { ...alice, environment: "prod", version: "1.0.0" },
      "Invalid query. Query option is not set: name",
    ],
    // Go names the empty field just before the offending one.
    [
      { ...alice, region: "eu" },
      "Invalid query. Query option is not set: version",
    ],
    [
      { ...prodMath, hostname: "h1" },
      "Invalid query. Query option is not set: region",
    ],
    [
      { ...prodMath, version: "1.0.0", region: "eu", id: k.a.id },
      "Invalid query. Query option is not set: hostname",
    ],
    [{ ...prodMath, version: "latest" }, "Malformed constraint: latest"],
    [{ ...prodMath, version: ">>1" }, "Malformed constraint: >>1"],
  ];
  for (const [query, message] of errors) {
    const error = await assertRejects(
      () => f.storage.get(makeQuery(query)),
      JSON.stringify(query),
    );
    assert(
      error instanceof QueryError,
      `${JSON.stringify(query)}: expected QueryError, got ${error}`,
    );
    assertEquals(error.message, message, JSON.stringify(query));
  }
}

// ---------------------------------------------------------------------------
// Many kites

async function manyKites(f: Fixture): Promise<void> {
  const users = ["u1", "u10", "u2"]; // u1 is a string prefix of u10
  const envs = ["prod", "production"];
  const names = ["math", "mathx"];
  const versions = ["1.0.0", "1.1.0", "2.0.0"];
  const regions = ["eu", "eu-west"];
  const kites: KiteIdentity[] = [];
  for (let i = 0; i < 300; i++) {
    kites.push(f.kite({
      username: users[i % 3],
      environment: envs[Math.floor(i / 3) % 2],
      name: names[Math.floor(i / 6) % 2],
      version: versions[Math.floor(i / 12) % 3],
      region: regions[i % 2],
      hostname: `h${i % 5}`,
    }));
  }
  for (let i = 0; i < kites.length; i += 25) {
    await Promise.all(
      kites.slice(i, i + 25).map((kite) =>
        f.storage.add({ kite, url: `http://${kite.id}/kite`, keyId: f.keyId })
      ),
    );
  }

  const check = async (query: Partial<KontrolQuery>, versionsIn?: string[]) => {
    const exact = Object.entries(query).filter(([field]) =>
      !(versionsIn && field === "version")
    ) as [keyof KiteIdentity, string][];
    const expected = kites.filter((k) =>
      exact.every(([field, value]) => k[field] === value) &&
      (!versionsIn || versionsIn.includes(k.version))
    );
    const found = await f.storage.get(makeQuery(query));
    const what = JSON.stringify(query);
    assertEquals(ids(found), sortedIds(expected), what);
    for (const stored of found) {
      assertEquals(stored.url, `http://${stored.kite.id}/kite`, `${what} url`);
    }
    return expected.length;
  };

  let total = 0;
  for (const username of users) {
    total += await check({ username });
    for (const environment of envs) {
      await check({ username, environment });
      for (const name of names) {
        await check({ username, environment, name });
        await check({ username, environment, name, version: "1.1.0" });
        await check({ username, environment, name, version: "<2.0.0" }, [
          "1.0.0",
          "1.1.0",
        ]);
      }
    }
  }
  assertEquals(total, 300, "the user queries partition all kites");
  await check({
    username: "u10",
    environment: "production",
    name: "mathx",
    version: "2.0.0",
    region: "eu",
  });
  await check({
    username: "u2",
    environment: "prod",
    name: "math",
    version: "1.0.0",
    region: "eu-west",
    hostname: "h3",
  });
  await check({
    username: "u1",
    environment: "prod",
    name: "math",
    version: "~> 1.0",
    region: "eu-west",
  }, ["1.0.0", "1.1.0"]);
  for (const kite of [kites[0], kites[157], kites[299]]) {
    assertEquals(ids(await f.storage.get(makeQuery(kite))), [kite.id], "full");
    assertEquals((await f.byId(kite.id))?.kite, kite, "id-only");
  }
}

// ---------------------------------------------------------------------------
// Concurrency

async function concurrentWriters(f: Fixture): Promise<void> {
  const base = Array.from(
    { length: 20 },
    (_, i) => f.kite({ hostname: `b${i}` }),
  );
  await Promise.all(
    base.map((kite) =>
      f.storage.add({ kite, url: "http://v1/kite", keyId: f.keyId })
    ),
  );
  const fresh = Array.from(
    { length: 10 },
    (_, i) => f.kite({ hostname: `n${i}` }),
  );
  const shared = f.kite({ hostname: "shared" });
  const raced = f.kite({ hostname: "raced" });

  const ops: Promise<unknown>[] = [
    // Upserts of every base kite, racing with deletes of the first ten.
    ...base.map((kite) =>
      f.storage.upsert({ kite, url: "http://v2/kite", keyId: f.keyId })
    ),
    ...base.slice(0, 10).map((kite) => f.storage.delete(kite)),
    ...fresh.map((kite) =>
      f.storage.add({ kite, url: "http://n/kite", keyId: f.keyId })
    ),
    // One id written with ten different versions at once.
    ...Array.from({ length: 10 }, (_, i) =>
      f.storage.upsert({
        kite: { ...shared, version: `1.${i}.0` },
        url: `http://s${i}/kite`,
        keyId: f.keyId,
      })),
  ];
  // Started together with the others; settled so no rejection dangles.
  const adds = Promise.allSettled(
    Array.from(
      { length: 5 },
      () =>
        f.storage.add({ kite: raced, url: "http://r/kite", keyId: f.keyId }),
    ),
  );
  await Promise.all(ops);
  const results = await adds;
  assertEquals(
    results.filter((r) => r.status === "fulfilled").length,
    1,
    "exactly one of five concurrent add()s of an id succeeds",
  );

  const all = await f.storage.get(makeQuery({ username: "alice" }));
  const listed = all.map((s) => s.kite.id);
  assertEquals(new Set(listed).size, listed.length, "no duplicate entries");
  for (const stored of all) {
    assertEquals(await f.byId(stored.kite.id), stored, "id entry agrees");
  }
  for (const kite of [...base, ...fresh, shared, raced]) {
    const byId = await f.byId(kite.id);
    assertEquals(
      byId !== undefined,
      listed.includes(kite.id),
      `both entries agree on ${kite.hostname}`,
    );
  }
  for (const kite of [...base.slice(10), ...fresh, shared, raced]) {
    assert(listed.includes(kite.id), `${kite.hostname} present`);
  }
  for (const kite of base.slice(10)) {
    assertEquals((await f.byId(kite.id))?.url, "http://v2/kite", "upserted");
  }
  const s = (await f.byId(shared.id))!;
  const i = Number(s.kite.version.split(".")[1]);
  assertEquals(s.url, `http://s${i}/kite`, "shared: url matches its version");
  assertEquals(
    ids(await f.storage.get(makeQuery({ ...prodMath(shared) }))),
    [...listed].sort(),
    "the name-level query agrees with the username listing",
  );
  assertEquals(
    ids(await f.storage.get(makeQuery(s.kite))),
    [shared.id],
    "shared: its full identity resolves",
  );
}

function prodMath(kite: KiteIdentity): Partial<KontrolQuery> {
  return {
    username: kite.username,
    environment: kite.environment,
    name: kite.name,
  };
}
