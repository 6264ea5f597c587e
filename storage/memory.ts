/**
 * An in-memory {@linkcode Storage}: kites, key pairs and watches in one
 * process. The default for tests and single-process Kontrols.
 *
 * Kites are kept by id and in a username → environment → name index, so a
 * query that sets those fields reads only the matching bucket.
 *
 * @example
 * ```ts
 * import { MemoryStorage } from "./memory.ts";
 * import { makeIdentity, makeQuery } from "../kite/protocol.ts";
 *
 * const storage = new MemoryStorage();
 * const kite = makeIdentity({ username: "alice", environment: "prod", name: "math", version: "1.0.0", region: "eu", hostname: "h1", id: crypto.randomUUID() });
 * await storage.add({ kite, url: "http://h1:3636/kite", keyId: "k1" });
 * await storage.get(makeQuery({ username: "alice" })); // [{ kite, url, keyId, updatedAt }]
 * ```
 *
 * @module
 */
import { contractsPart } from "./record.ts";
import { type Clock, systemClock } from "../kite/clock.ts";
import type { KiteIdentity, KontrolQuery } from "../kite/protocol.ts";
import { compileQuery } from "./query.ts";
import { deregisterEvent, WatcherSet, writeEvents } from "./events.ts";
import { MemoryCodeStorage } from "./codes.ts";
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

type Bucket = Map<string, StoredKite>;
type Index = Map<string, Map<string, Map<string, Bucket>>>;

/** {@linkcode Storage} held in process memory (engine `memory`). */
export class MemoryStorage implements Storage, CodeStorage {
  /** Always `memory`. */
  readonly engine: string = "memory";
  #clock: Clock;
  #byId = new Map<string, StoredKite>();
  #index: Index = new Map();
  #keys = new Map<string, StoredKeyPair>();
  #keysByPublic = new Map<string, StoredKeyPair>();
  #watchers = new WatcherSet();
  #codes = new MemoryCodeStorage();

  /** Creates an empty store. */
  constructor(options: StorageOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  /** Inserts a kite. @throws {Error} if a kite with that id exists. */
  add(record: KiteRecord): Promise<void> {
    return settle(() => {
      checkRecord(record);
      if (this.#byId.has(record.kite.id)) {
        throw new Error(`kite already exists: ${record.kite.id}`);
      }
      this.#write(record);
    });
  }

  /** Refreshes url and updatedAt (keeping keyId); inserts when missing. */
  update(record: KiteRecord): Promise<void> {
    return settle(() => {
      checkRecord(record);
      const keyId = this.#byId.get(record.kite.id)?.keyId ?? record.keyId;
      this.#write({ ...record, keyId });
    });
  }

  /** Inserts or replaces. */
  upsert(record: KiteRecord): Promise<void> {
    return settle(() => {
      checkRecord(record);
      this.#write(record);
    });
  }

  /**
   * Inserts or replaces unless a kite with this id belongs to another user;
   * resolves false, writing nothing, then. One step where `get` then
   * `upsert` would be two.
   */
  upsertOwned(record: KiteRecord): Promise<boolean> {
    return settle(() => {
      checkRecord(record);
      const held = this.#byId.get(record.kite.id);
      if (held && held.kite.username !== record.kite.username) return false;
      this.#write(record);
      return true;
    });
  }

  /** Removes a kite by id; resolves `true` when something was removed. */
  delete(kite: KiteIdentity): Promise<boolean> {
    return settle(() => {
      const previous = this.#remove(kite.id);
      if (previous) this.#watchers.emit(deregisterEvent(previous.kite));
      return previous !== undefined;
    });
  }

  /** Kites matching `query` (docs/protocol.md §8.4). @throws {QueryError} */
  get(query: KontrolQuery): Promise<StoredKite[]> {
    return settle(() => {
      const q = compileQuery(query);
      if (q.idOnly) {
        const found = this.#byId.get(q.query.id);
        return found ? [copy(found)] : [];
      }
      const out: StoredKite[] = [];
      for (const bucket of this.#buckets(q.prefix)) {
        for (const record of bucket.values()) {
          if (q.matches(record.kite)) out.push(copy(record));
        }
      }
      return out;
    });
  }

  /** Removes kites not written since `before`; returns them. */
  deleteStale(before: number): Promise<KiteIdentity[]> {
    return settle(() => {
      const stale = [...this.#byId.values()].filter((r) =>
        r.updatedAt < before
      );
      for (const record of stale) this.#remove(record.kite.id);
      for (const record of stale) {
        this.#watchers.emit(deregisterEvent(record.kite));
      }
      return stale.map((r) => ({ ...r.kite }));
    });
  }

  /** Calls `listener` for later changes matching `query`. @throws {QueryError} */
  watch(
    query: KontrolQuery,
    listener: (event: StorageEvent) => void,
  ): Unsubscribe {
    return this.#watchers.add(query, listener);
  }

  /** Stores a key pair. @throws {Error} when id or public key exists. */
  addKey(pair: KeyPair): Promise<void> {
    return settle(() => {
      const stored: StoredKeyPair = {
        id: pair.id,
        public: pair.public.trim(),
        private: pair.private.trim(),
        deleted: false,
      };
      if (!stored.id) throw new TypeError("key pair needs a non-empty id");
      if (this.#keys.has(stored.id)) {
        throw new Error(`key pair already exists: ${stored.id}`);
      }
      if (this.#keysByPublic.has(stored.public)) {
        throw new Error("a key pair with this public key already exists");
      }
      this.#keys.set(stored.id, stored);
      this.#keysByPublic.set(stored.public, stored);
    });
  }

  /** Marks a pair deleted; it stays readable. Unknown ids are ignored. */
  deleteKey(id: string): Promise<void> {
    const pair = this.#keys.get(id);
    if (pair) pair.deleted = true;
    return Promise.resolve();
  }

  /** A pair by id, deleted or not. */
  getKeyFromId(id: string): Promise<StoredKeyPair | undefined> {
    const pair = this.#keys.get(id);
    return Promise.resolve(pair && { ...pair });
  }

  /** A pair by public key PEM (trimmed), deleted or not. */
  getKeyFromPublic(publicKey: string): Promise<StoredKeyPair | undefined> {
    const pair = this.#keysByPublic.get(publicKey.trim());
    return Promise.resolve(pair && { ...pair });
  }

  /** All pairs in insertion order. */
  listKeys(): Promise<StoredKeyPair[]> {
    return Promise.resolve([...this.#keys.values()].map((p) => ({ ...p })));
  }

  /** Stores a one-time code unless `max` are held; resolves false then. */
  addCode(code: StoredCode, max: number): Promise<boolean> {
    return this.#codes.addCode(code, max);
  }

  /** Marks a one-time code used for `username`, or says why not. */
  claimCode(digest: string, username: string, now: number): Promise<CodeClaim> {
    return this.#codes.claimCode(digest, username, now);
  }

  /** Removes one-time codes expired at `now`; resolves how many. */
  deleteExpiredCodes(now: number): Promise<number> {
    return this.#codes.deleteExpiredCodes(now);
  }

  /** Drops all watchers. The data stays until the object is dropped. */
  close(): Promise<void> {
    this.#watchers.clear();
    return Promise.resolve();
  }

  #write(record: KiteRecord): void {
    const next: StoredKite = {
      kite: { ...record.kite },
      url: record.url,
      keyId: record.keyId,
      updatedAt: this.#clock.now(),
      ...contractsPart(record.contracts),
    };
    const previous = this.#remove(next.kite.id);
    this.#byId.set(next.kite.id, next);
    this.#bucket(next.kite).set(next.kite.id, next);
    for (const event of writeEvents(previous, next)) this.#watchers.emit(event);
  }

  #remove(id: string): StoredKite | undefined {
    const previous = this.#byId.get(id);
    if (!previous) return undefined;
    this.#byId.delete(id);
    const { username, environment, name } = previous.kite;
    const envs = this.#index.get(username)!;
    const names = envs.get(environment)!;
    const bucket = names.get(name)!;
    bucket.delete(id);
    // Prune empty levels so the index does not grow with churn.
    if (bucket.size === 0) names.delete(name);
    if (names.size === 0) envs.delete(environment);
    if (envs.size === 0) this.#index.delete(username);
    return previous;
  }

  #bucket(kite: KiteIdentity): Bucket {
    let envs = this.#index.get(kite.username);
    if (!envs) this.#index.set(kite.username, envs = new Map());
    let names = envs.get(kite.environment);
    if (!names) envs.set(kite.environment, names = new Map());
    let bucket = names.get(kite.name);
    if (!bucket) names.set(kite.name, bucket = new Map());
    return bucket;
  }

  /** The buckets under a query prefix (username, environment, name). */
  *#buckets(prefix: string[]): Iterable<Bucket> {
    const envs = this.#index.get(prefix[0]);
    if (!envs) return;
    const envLevel = prefix.length > 1 ? [envs.get(prefix[1])] : envs.values();
    for (const names of envLevel) {
      if (!names) continue;
      const nameLevel = prefix.length > 2
        ? [names.get(prefix[2])]
        : names.values();
      for (const bucket of nameLevel) if (bucket) yield bucket;
    }
  }
}

function checkRecord(record: KiteRecord): void {
  if (typeof record?.kite?.id !== "string" || record.kite.id === "") {
    throw new TypeError("kite record needs a non-empty kite.id");
  }
}

function copy(record: StoredKite): StoredKite {
  return { ...record, kite: { ...record.kite } };
}

/** Runs `fn`, turning a throw into a rejected promise. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}
