/**
 * A {@linkcode Storage} over Deno KV (engine `kv`). Several Kontrols (in one
 * process or several) can share one KV database: reads and writes are
 * transactional, and watches see each other's changes.
 *
 * Key layout:
 *
 * | Key | Value |
 * |---|---|
 * | `["kites", username, environment, name, version, region, hostname, id]` | `{url, keyId, updatedAt}` |
 * | `["kiteIds", id]` | the whole {@linkcode StoredKite} (id lookups, deletes) |
 * | `["kitesByTime", updatedAt, id]` | `null` (index for `deleteStale`) |
 * | `["keys", id]` | {@linkcode StoredKeyPair} plus `seq` (insertion order) |
 * | `["keysByPublic", sha256hex(public)]` | key pair id |
 * | `["keySeq"]` | last key pair `seq` |
 * | `["events", ms, instanceId, n]` | a {@linkcode StorageEvent}, kept 60 s |
 * | `["eventBump"]` | `Deno.KvU64` counter, bumped with every event |
 * | `["codes", …]`, `["codesByExpiry", …]`, `["codeCount"]` | one-time codes (`storage/kv_codes.ts`) |
 *
 * The three kite entries are written in one atomic operation guarded by the
 * versionstamp of `["kiteIds", id]`, so they never diverge; a lost race is
 * retried. Writes and deletes that arrive while a commit is in flight share
 * the next commit (up to 32 kites), since every commit waits for the disk.
 * Queries list the exact-field prefix of `["kites", …]`.
 *
 * Liveness is `updatedAt` plus {@linkcode KvStorage.deleteStale}, never
 * `expireIn`: expired KV entries stay readable for a while after they expire
 * (docs/protocol.md §8.5 wants a kite gone 90 s after its last refresh, exactly).
 *
 * Watches: listeners of this instance are called straight after a write
 * commits. Every write also appends its events to the `["events", …]` log
 * (with `expireIn`, which is harmless for a log) and bumps `["eventBump"]`.
 * While an instance has listeners it follows the log: `kv.watch` on
 * `["eventBump"]` wakes it at once for handles in the same process, and a poll
 * of that key (`pollInterval`) covers other processes, which `kv.watch` on a
 * local database does not notify. Events from its own instance id are
 * skipped, so nothing is delivered twice; a listener only gets events written
 * after it subscribed.
 *
 * @example
 * ```ts
 * import { KvStorage } from "./kv.ts";
 * import { makeQuery } from "../kite/protocol.ts";
 *
 * const storage = await KvStorage.open("/var/lib/kontrol/kites.db");
 * const kites = await storage.get(makeQuery({ username: "alice", environment: "prod" }));
 * await storage.close();
 * ```
 *
 * @module
 */
import { contractsPart } from "./record.ts";
import { type Clock, systemClock } from "../kite/clock.ts";
import type { KiteIdentity, KontrolQuery } from "../kite/protocol.ts";
import { compileQuery } from "./query.ts";
import { deregisterEvent, WatcherSet, writeEvents } from "./events.ts";
import { sha256Hex } from "./hash.ts";
import * as codes from "./kv_codes.ts";
import type {
  CodeClaim,
  CodeStorage,
  KeyPair,
  KiteRecord,
  Storage,
  StorageEvent,
  StorageOptions,
  StoredCode,
  StoredKeyPair,
  StoredKite,
  Unsubscribe,
} from "./storage.ts";

/** Options for {@linkcode KvStorage}. */
export interface KvStorageOptions extends StorageOptions {
  /**
   * While watching, how often (ms) to look for changes made by other
   * processes; `0` turns this off (same-process handles are still seen).
   * @default {1000}
   */
  pollInterval?: number;
  /** Close the `Deno.Kv` handle in {@linkcode KvStorage.close}. @default {false} */
  closeKv?: boolean;
}

/** Default for {@linkcode KvStorageOptions.pollInterval}. */
export const DEFAULT_POLL_INTERVAL = 1000;
/** How long the change log keeps an event. */
const LOG_TTL = 60_000;
/** Attempts of an atomic operation before giving up under contention. */
const MAX_ATTEMPTS = 100;
/**
 * Most kite writes committed together: KV allows 100 checks and 1,000
 * mutations per atomic operation, and a write needs 1 check and at most 7.
 */
const MAX_BATCH = 32;

type KiteValue = Omit<StoredKite, "kite">;
type StoredPair = StoredKeyPair & { seq: number };
type WriteMode = "add" | "update" | "upsert" | "owned" | "delete";

interface QueuedWrite {
  /** The kite's id. */
  id: string;
  /** What to store; for a delete, only its `kite.id` counts. */
  record: KiteRecord;
  mode: WriteMode;
  resolve(written: boolean): void;
  reject(error: unknown): void;
}

interface WritePlan {
  /** The new record; `undefined` removes the kite. */
  next: StoredKite | undefined;
  events: StorageEvent[];
}

/** {@linkcode Storage} over a `Deno.Kv` database (engine `kv`). */
export class KvStorage implements Storage, CodeStorage {
  /** Always `kv`. */
  readonly engine: string = "kv";
  #kv: Deno.Kv;
  #clock: Clock;
  #closeKv: boolean;
  #pollInterval: number;
  #instance = crypto.randomUUID();
  #eventSeq = 0;
  #watchers: WatcherSet;
  #follower?: Follower;
  #stopping = new Set<Promise<void>>();
  #closed = false;
  #queued: QueuedWrite[] = [];
  #flushing = false;

  /** Wraps an opened KV handle; the caller keeps ownership unless `closeKv`. */
  constructor(kv: Deno.Kv, options: KvStorageOptions = {}) {
    this.#kv = kv;
    this.#clock = options.clock ?? systemClock;
    this.#closeKv = options.closeKv ?? false;
    this.#pollInterval = options.pollInterval ?? DEFAULT_POLL_INTERVAL;
    this.#watchers = new WatcherSet(() => this.#stopFollowing());
  }

  /** Opens (creating if needed) the database at `path`; `close()` closes it. */
  static async open(
    path: string,
    options: Omit<KvStorageOptions, "closeKv"> = {},
  ): Promise<KvStorage> {
    return new KvStorage(await Deno.openKv(path), {
      ...options,
      closeKv: true,
    });
  }

  /** Inserts a kite. @throws {Error} if a kite with that id exists. */
  async add(record: KiteRecord): Promise<void> {
    await this.#write(record, "add");
  }

  /** Refreshes url and updatedAt (keeping keyId); inserts when missing. */
  async update(record: KiteRecord): Promise<void> {
    await this.#write(record, "update");
  }

  /** Inserts or replaces. */
  async upsert(record: KiteRecord): Promise<void> {
    await this.#write(record, "upsert");
  }

  /**
   * Inserts or replaces unless a kite with this id belongs to another user;
   * resolves false, writing nothing, then. The ownership check is part of
   * the write's versionstamp-guarded commit: one read, not two.
   */
  upsertOwned(record: KiteRecord): Promise<boolean> {
    return this.#write(record, "owned");
  }

  /**
   * Removes a kite by id; resolves `true` when something was removed.
   * Deletes share commits with other writes, as writes do.
   */
  delete(kite: KiteIdentity): Promise<boolean> {
    if (kite?.id === "") return Promise.resolve(false);
    return this.#write({ kite, url: "", keyId: "" }, "delete");
  }

  /** Kites matching `query` (docs/protocol.md §8.4). @throws {QueryError} */
  async get(query: KontrolQuery): Promise<StoredKite[]> {
    const q = compileQuery(query);
    if (q.idOnly) {
      const entry = await this.#kv.get<StoredKite>(["kiteIds", q.query.id]);
      return entry.value ? [entry.value] : [];
    }
    const out: StoredKite[] = [];
    if (q.prefix.length === 7) {
      // `list({prefix})` excludes the prefix key itself.
      const entry = await this.#kv.get<KiteValue>(["kites", ...q.prefix]);
      if (entry.value) out.push(fromEntry(entry as Deno.KvEntry<KiteValue>));
      return out;
    }
    const entries = this.#kv.list<KiteValue>({
      prefix: ["kites", ...q.prefix],
    });
    for await (const entry of entries) {
      const record = fromEntry(entry);
      if (q.matches(record.kite)) out.push(record);
    }
    return out;
  }

  /** Removes kites not written since `before`; returns them. */
  async deleteStale(before: number): Promise<KiteIdentity[]> {
    const removed: KiteIdentity[] = [];
    const stale = this.#kv.list<null>({
      prefix: ["kitesByTime"],
      end: ["kitesByTime", before],
    });
    for await (const { key } of stale) {
      const id = key[2] as string;
      for (let attempt = 0;; attempt++) {
        if (attempt === MAX_ATTEMPTS) throw contention(`deleteStale ${id}`);
        const entry = await this.#kv.get<StoredKite>(["kiteIds", id]);
        // Refreshed (or removed) since the index was read: not stale.
        if (!entry.value || entry.value.updatedAt >= before) break;
        if (await this.#remove(entry as Deno.KvEntry<StoredKite>)) {
          removed.push(entry.value.kite);
          break;
        }
      }
    }
    return removed;
  }

  /**
   * Calls `listener` for later changes matching `query`, including those
   * written by other instances on the same database. @throws {QueryError}
   */
  watch(
    query: KontrolQuery,
    listener: (event: StorageEvent) => void,
  ): Unsubscribe {
    if (this.#closed) throw new Error("KvStorage is closed");
    const unsubscribe = this.#watchers.add(query, listener);
    this.#follower ??= new Follower(this.#kv, {
      instance: this.#instance,
      pollInterval: this.#pollInterval,
      watchers: this.#watchers,
    });
    return unsubscribe;
  }

  /** Stores a key pair. @throws {Error} when id or public key exists. */
  async addKey(pair: KeyPair): Promise<void> {
    if (!pair.id) throw new TypeError("key pair needs a non-empty id");
    const publicKey = pair.public.trim();
    const byPublic = ["keysByPublic", await sha256Hex(publicKey)];
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const [byId, byPub, seq] = await this.#kv.getMany<
        [StoredPair, string, number]
      >([["keys", pair.id], byPublic, ["keySeq"]]);
      if (byId.value) throw new Error(`key pair already exists: ${pair.id}`);
      if (byPub.value) {
        throw new Error("a key pair with this public key already exists");
      }
      const next = (seq.value ?? 0) + 1;
      const stored: StoredPair = {
        id: pair.id,
        public: publicKey,
        private: pair.private.trim(),
        deleted: false,
        seq: next,
      };
      const result = await this.#kv.atomic()
        .check(byId, byPub, seq)
        .set(["keySeq"], next)
        .set(["keys", pair.id], stored)
        .set(byPublic, pair.id)
        .commit();
      if (result.ok) return;
    }
    throw contention(`addKey ${pair.id}`);
  }

  /** Marks a pair deleted; it stays readable. Unknown ids are ignored. */
  async deleteKey(id: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const entry = await this.#kv.get<StoredPair>(["keys", id]);
      if (!entry.value || entry.value.deleted) return;
      const result = await this.#kv.atomic()
        .check(entry)
        .set(["keys", id], { ...entry.value, deleted: true })
        .commit();
      if (result.ok) return;
    }
    throw contention(`deleteKey ${id}`);
  }

  /** A pair by id, deleted or not. */
  async getKeyFromId(id: string): Promise<StoredKeyPair | undefined> {
    const entry = await this.#kv.get<StoredPair>(["keys", id]);
    return entry.value ? withoutSeq(entry.value) : undefined;
  }

  /** A pair by public key PEM (trimmed), deleted or not. */
  async getKeyFromPublic(
    publicKey: string,
  ): Promise<StoredKeyPair | undefined> {
    const hash = await sha256Hex(publicKey.trim());
    const id = await this.#kv.get<string>(["keysByPublic", hash]);
    return id.value ? await this.getKeyFromId(id.value) : undefined;
  }

  /** All pairs in insertion order. */
  async listKeys(): Promise<StoredKeyPair[]> {
    const pairs: StoredPair[] = [];
    for await (const e of this.#kv.list<StoredPair>({ prefix: ["keys"] })) {
      pairs.push(e.value);
    }
    return pairs.sort((a, b) => a.seq - b.seq).map(withoutSeq);
  }

  /**
   * Stores a one-time code unless `max` are held; resolves false then.
   * Layout and atomicity: `storage/kv_codes.ts`.
   */
  addCode(code: StoredCode, max: number): Promise<boolean> {
    return codes.addCode(this.#kv, code, max);
  }

  /** Marks a one-time code used for `username` (atomic), or says why not. */
  claimCode(digest: string, username: string, now: number): Promise<CodeClaim> {
    return codes.claimCode(this.#kv, digest, username, now);
  }

  /** Removes one-time codes expired at `now`; resolves how many. */
  deleteExpiredCodes(now: number): Promise<number> {
    return codes.deleteExpiredCodes(this.#kv, now);
  }

  /** Stops watches, and closes the KV handle when this instance owns it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watchers.clear();
    this.#stopFollowing();
    await Promise.all(this.#stopping);
    if (this.#closeKv) this.#kv.close();
  }

  /**
   * Queues a kite write. Writes that arrive while a commit is in flight are
   * committed together in one atomic operation (group commit): each KV
   * commit costs a disk sync, so a burst of registrations would otherwise be
   * bounded by one sync per kite.
   */
  #write(record: KiteRecord, mode: WriteMode): Promise<boolean> {
    const id = record?.kite?.id;
    if (typeof id !== "string" || id === "") {
      return Promise.reject(
        new TypeError("kite record needs a non-empty kite.id"),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queued.push({ id, record, mode, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  /** Commits queued writes, a batch at a time, until none are left. */
  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queued.length > 0) {
        await this.#commitBatch(this.#nextBatch());
      }
    } finally {
      this.#flushing = false;
    }
  }

  /**
   * Takes up to {@linkcode MAX_BATCH} queued writes of distinct ids, in
   * order; a second write of an id waits for the next batch, as it must see
   * the first one's result.
   */
  #nextBatch(): QueuedWrite[] {
    const batch: QueuedWrite[] = [];
    const ids = new Set<string>();
    const rest: QueuedWrite[] = [];
    for (const write of this.#queued) {
      if (batch.length < MAX_BATCH && !ids.has(write.id)) {
        ids.add(write.id);
        batch.push(write);
      } else {
        rest.push(write);
      }
    }
    this.#queued = rest;
    return batch;
  }

  /**
   * Commits `batch` in one atomic operation guarded by every kite's current
   * entry. If that fails (another writer changed one of the kites, or the
   * batch exceeds a KV limit) each write is retried on its own.
   */
  async #commitBatch(batch: QueuedWrite[]): Promise<void> {
    if (batch.length === 1) return settle(batch[0], this.#writeOne(batch[0]));
    let previous: Deno.KvEntryMaybe<StoredKite>[];
    try {
      previous = await this.#readKites(batch.map((w) => w.id));
    } catch (error) {
      for (const write of batch) write.reject(error);
      return;
    }
    const op = this.#kv.atomic();
    const planned: [QueuedWrite, StorageEvent[]][] = [];
    const events: StorageEvent[] = [];
    for (let i = 0; i < batch.length; i++) {
      try {
        const plan = this.#plan(batch[i], previous[i]);
        if (typeof plan === "boolean") {
          batch[i].resolve(plan);
          continue;
        }
        this.#stage(op, previous[i], plan);
        planned.push([batch[i], plan.events]);
        events.push(...plan.events);
      } catch (error) {
        batch[i].reject(error);
      }
    }
    if (planned.length === 0) return;
    this.#log(op, events);
    let committed = false;
    try {
      committed = (await op.commit()).ok;
    } catch {
      // Retried one by one below, where a real failure is reported.
    }
    if (!committed) {
      await Promise.all(planned.map(([w]) => settle(w, this.#writeOne(w))));
      return;
    }
    for (const [write, writeEvents] of planned) {
      for (const event of writeEvents) this.#watchers.emit(event);
      write.resolve(true);
    }
  }

  /** One write on its own, retried while another writer races it. */
  async #writeOne(write: QueuedWrite): Promise<boolean> {
    const id = write.id;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const previous = await this.#kv.get<StoredKite>(["kiteIds", id]);
      const plan = this.#plan(write, previous);
      if (typeof plan === "boolean") return plan;
      const op = this.#kv.atomic();
      this.#stage(op, previous, plan);
      this.#log(op, plan.events);
      if ((await op.commit()).ok) {
        for (const event of plan.events) this.#watchers.emit(event);
        return true;
      }
    }
    throw contention(`write ${id}`);
  }

  /** The stored entries of `ids`, in order (KV reads at most 10 per call). */
  async #readKites(ids: string[]): Promise<Deno.KvEntryMaybe<StoredKite>[]> {
    const reads: Promise<Deno.KvEntryMaybe<StoredKite>[]>[] = [];
    for (let i = 0; i < ids.length; i += 10) {
      reads.push(
        this.#kv.getMany<StoredKite[]>(
          ids.slice(i, i + 10).map((id) => ["kiteIds", id]),
        ),
      );
    }
    return (await Promise.all(reads)).flat();
  }

  /**
   * What a write does over the stored entry: the new record (none for a
   * delete) and its events, or a result without writing (`false`: another
   * user owns the id, or there is nothing to delete).
   * @throws {Error} when adding an id that exists.
   */
  #plan(
    write: QueuedWrite,
    previous: Deno.KvEntryMaybe<StoredKite>,
  ): WritePlan | boolean {
    const { record, mode } = write;
    const old = previous.value ?? undefined;
    if (mode === "delete") {
      return old
        ? { next: undefined, events: [deregisterEvent(old.kite)] }
        : false;
    }
    if (mode === "add" && old) {
      throw new Error(`kite already exists: ${record.kite.id}`);
    }
    if (mode === "owned" && old && old.kite.username !== record.kite.username) {
      return false;
    }
    const next: StoredKite = {
      kite: { ...record.kite },
      url: record.url,
      keyId: mode === "update" && old ? old.keyId : record.keyId,
      updatedAt: this.#clock.now(),
      ...contractsPart(record.contracts),
    };
    return { next, events: writeEvents(old, next) };
  }

  /** Adds a planned write, guarded by `previous`, to `op`. */
  #stage(
    op: Deno.AtomicOperation,
    previous: Deno.KvEntryMaybe<StoredKite>,
    { next }: WritePlan,
  ): void {
    op.check(previous);
    const old = previous.value;
    if (!next) {
      if (old) op.delete(kiteKey(old.kite)).delete(timeKey(old));
      op.delete(previous.key);
      return;
    }
    if (old) {
      const oldKey = kiteKey(old.kite);
      if (!sameKey(oldKey, kiteKey(next.kite))) op.delete(oldKey);
      if (old.updatedAt !== next.updatedAt) op.delete(timeKey(old));
    }
    op.set(kiteKey(next.kite), valueOf(next))
      .set(["kiteIds", next.kite.id], next)
      .set(timeKey(next), null);
  }

  /** Deletes all entries of a kite if `entry` is current; false on a race. */
  async #remove(entry: Deno.KvEntry<StoredKite>): Promise<boolean> {
    const event = deregisterEvent(entry.value.kite);
    const op = this.#kv.atomic();
    this.#stage(op, entry, { next: undefined, events: [event] });
    this.#log(op, [event]);
    if (!(await op.commit()).ok) return false;
    this.#watchers.emit(event);
    return true;
  }

  /** Appends `events` to the shared change log within the same commit. */
  #log(op: Deno.AtomicOperation, events: StorageEvent[]): void {
    if (events.length === 0) return;
    const at = Date.now(); // real time: compared with watch start times
    for (const event of events) {
      op.set(["events", at, this.#instance, this.#eventSeq++], event, {
        expireIn: LOG_TTL,
      });
    }
    op.sum(["eventBump"], 1n);
  }

  #stopFollowing(): void {
    const follower = this.#follower;
    if (!follower) return;
    this.#follower = undefined;
    const done = follower.stop();
    this.#stopping.add(done);
    done.finally(() => this.#stopping.delete(done));
  }
}

interface FollowerOptions {
  instance: string;
  pollInterval: number;
  watchers: WatcherSet;
}

/**
 * Follows the `["events", …]` log for one {@linkcode KvStorage} while it has
 * listeners, delivering events other instances wrote.
 */
class Follower {
  #kv: Deno.Kv;
  #options: FollowerOptions;
  #reader: ReadableStreamDefaultReader<Deno.KvEntryMaybe<unknown>[]>;
  #timer?: ReturnType<typeof setTimeout>;
  #loop: Promise<void>;
  #stopped = false;
  #lastBump: string | null | undefined;
  #scanning?: Promise<void>;
  #rescan = false;
  /** Log entries already delivered, by key text, with their time. */
  #seen = new Map<string, number>();

  constructor(kv: Deno.Kv, options: FollowerOptions) {
    this.#kv = kv;
    this.#options = options;
    this.#reader = kv.watch([["eventBump"]]).getReader();
    this.#loop = this.#readWatch();
    this.#schedulePoll();
  }

  /** Stops following; resolves when nothing is left running. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#reader.cancel().catch(() => {});
    await this.#loop;
    await this.#scanning;
  }

  async #readWatch(): Promise<void> {
    try {
      for (;;) {
        const { done, value } = await this.#reader.read();
        if (done || this.#stopped) return;
        this.#bumped(value[0].versionstamp);
      }
    } catch (error) {
      if (!this.#stopped) console.error("KvStorage: kv.watch failed", error);
    }
  }

  #schedulePoll(): void {
    if (this.#options.pollInterval <= 0 || this.#stopped) return;
    this.#timer = setTimeout(async () => {
      this.#timer = undefined;
      try {
        const bump = await this.#kv.get(["eventBump"]);
        this.#bumped(bump.versionstamp);
      } catch (error) {
        if (!this.#stopped) console.error("KvStorage: poll failed", error);
      }
      this.#schedulePoll();
    }, this.#options.pollInterval);
  }

  #bumped(versionstamp: string | null): void {
    if (this.#stopped || versionstamp === this.#lastBump) return;
    this.#lastBump = versionstamp;
    if (this.#scanning) {
      this.#rescan = true;
      return;
    }
    this.#scanning = this.#scan().finally(() => this.#scanning = undefined);
  }

  async #scan(): Promise<void> {
    do {
      this.#rescan = false;
      try {
        await this.#scanOnce();
      } catch (error) {
        if (!this.#stopped) {
          console.error("KvStorage: event scan failed", error);
        }
      }
    } while (this.#rescan && !this.#stopped);
  }

  async #scanOnce(): Promise<void> {
    const { watchers, instance } = this.#options;
    const low = Math.max(watchers.since, Date.now() - LOG_TTL);
    if (!Number.isFinite(low)) return;
    const entries = this.#kv.list<StorageEvent>({
      prefix: ["events"],
      start: ["events", low],
    });
    for await (const { key, value } of entries) {
      if (this.#stopped) return;
      const [, at, from] = key as [string, number, string, number];
      const text = key.join("/");
      if (from === instance || this.#seen.has(text)) continue;
      this.#seen.set(text, at);
      watchers.emit(value, at);
    }
    for (const [text, at] of this.#seen) if (at < low) this.#seen.delete(text);
  }
}

function kiteKey(kite: KiteIdentity): Deno.KvKey {
  return [
    "kites",
    kite.username,
    kite.environment,
    kite.name,
    kite.version,
    kite.region,
    kite.hostname,
    kite.id,
  ];
}

function timeKey(record: StoredKite): Deno.KvKey {
  return ["kitesByTime", record.updatedAt, record.kite.id];
}

function sameKey(a: Deno.KvKey, b: Deno.KvKey): boolean {
  return a.length === b.length && a.every((part, i) => part === b[i]);
}

function valueOf(record: StoredKite): KiteValue {
  return {
    url: record.url,
    keyId: record.keyId,
    updatedAt: record.updatedAt,
    ...contractsPart(record.contracts),
  };
}

function fromEntry(entry: Deno.KvEntry<KiteValue>): StoredKite {
  const [, username, environment, name, version, region, hostname, id] = entry
    .key as string[];
  return {
    kite: { name, username, id, environment, region, version, hostname },
    url: entry.value.url,
    keyId: entry.value.keyId,
    updatedAt: entry.value.updatedAt,
    ...contractsPart(entry.value.contracts),
  };
}

function withoutSeq(pair: StoredPair): StoredKeyPair {
  return {
    id: pair.id,
    public: pair.public,
    private: pair.private,
    deleted: pair.deleted,
  };
}

/** Settles a queued write with the outcome of `result`. */
async function settle(
  write: QueuedWrite,
  result: Promise<boolean>,
): Promise<void> {
  try {
    write.resolve(await result);
  } catch (error) {
    write.reject(error);
  }
}

function contention(what: string): Error {
  return new Error(
    `KvStorage: ${what} kept conflicting after ${MAX_ATTEMPTS} attempts`,
  );
}
