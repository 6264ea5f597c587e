/**
 * The storage interfaces Kontrol runs on. Every adapter (memory, Deno KV,
 * etcd, PostgreSQL) implements {@linkcode Storage} and passes the shared
 * conformance suite in `storage/conformance.ts`.
 *
 * @module
 */
import type {
  ContractRef,
  KiteIdentity,
  KontrolQuery,
} from "../kite/protocol.ts";
import type { Clock } from "../kite/clock.ts";

/** What Kontrol stores for a registered kite (Go `RegisterValue`, docs/protocol.md §8.8). */
export interface KiteRecord {
  /** The kite's identity; `id` is its primary key. */
  kite: KiteIdentity;
  /** The URL the kite registered. */
  url: string;
  /** Id of the key pair its tokens are signed with (`key_id` in Go storage). */
  keyId: string;
  /**
   * The contracts it registered with (Deno kites only); absent when it
   * named none. Written by add/update/upsert like `url`.
   */
  contracts?: ContractRef[];
}

/** A stored kite with the time it was last written. */
export interface StoredKite extends KiteRecord {
  /** Last add/update/upsert, ms since the epoch (storage clock). */
  updatedAt: number;
}

/** A change seen by a watcher. */
export interface StorageEvent {
  /** `REGISTER` on add/upsert of a new id, `DEREGISTER` on delete/expiry. */
  action: "REGISTER" | "DEREGISTER";
  /** The kite concerned. */
  kite: KiteIdentity;
  /** Its URL (REGISTER only). */
  url?: string;
  /** Its key pair id (REGISTER only). */
  keyId?: string;
}

/** Cancels a watch. */
export type Unsubscribe = () => void;

/** Kite registrations. */
export interface KiteStorage {
  /** Inserts a kite. @throws {Error} if a kite with that id exists. */
  add(record: KiteRecord): Promise<void>;
  /** Refreshes url and updatedAt; inserts when missing (as Go's etcd Update). */
  update(record: KiteRecord): Promise<void>;
  /** Inserts or replaces. */
  upsert(record: KiteRecord): Promise<void>;
  /**
   * Upserts unless a kite of another username holds the id; resolves
   * `false` then, writing nothing. Optional: engines that can check and
   * write in one step offer it; Kontrol otherwise reads, then upserts.
   */
  upsertOwned?(record: KiteRecord): Promise<boolean>;
  /** Removes a kite by id; resolves `true` when something was removed. */
  delete(kite: KiteIdentity): Promise<boolean>;
  /**
   * Kites matching a query (docs/protocol.md §8.4, see `storage/query.ts`). An empty
   * match is an empty array. @throws {QueryError} for an invalid query.
   */
  get(query: KontrolQuery): Promise<StoredKite[]>;
  /** Removes kites not written since `before` (ms epoch); returns them. */
  deleteStale(before: number): Promise<KiteIdentity[]>;
  /**
   * Removes kites not written for `maxAgeMs` as judged by one clock — the
   * storage's own (PostgreSQL `now()`), or only this instance's own writes
   * against its own clock (etcd, whose other writers' kites expire with
   * their lease) — so Kontrols whose clocks differ never delete each
   * other's live kites. Optional: Kontrol's sweep prefers it to
   * `deleteStale`, which compares a caller's clock with every writer's.
   */
  deleteOlderThan?(maxAgeMs: number): Promise<KiteIdentity[]>;
  /**
   * Removes a kite unless another writer has written it since this
   * instance last did (it registered again through another Kontrol);
   * resolves `true` when removed. Optional: storages that know their own
   * writes offer it, so no clocks are compared; Kontrol otherwise compares
   * `updatedAt` with the time of its own last write.
   */
  deleteOwn?(kite: KiteIdentity): Promise<boolean>;
  /**
   * Calls `listener` for every later REGISTER/DEREGISTER of a kite matching
   * `query`, including changes made by other processes sharing the engine.
   * The listener may be `async`: a rejection is reported like a throw and
   * never left unhandled.
   */
  watch(
    query: KontrolQuery,
    listener: (event: StorageEvent) => void | Promise<void>,
  ): Unsubscribe;
  /**
   * Calls `listener` whenever watch events may have been missed (the
   * storage's watch or LISTEN connection was re-established, or the
   * storage was reset): a watcher should read the current set again.
   * Optional: storages whose watches cannot miss events omit it.
   */
  onWatchGap?(listener: () => void): Unsubscribe;
  /**
   * Calls `listener` when the storage lost its kites (a PostgreSQL crash
   * empties the UNLOGGED table): whoever supervises kites writes them
   * back. Optional: storages that restore their own writes (etcd, after a
   * lost lease) or cannot lose them omit it.
   */
  onReset?(listener: () => void): Unsubscribe;
}

/** An RSA key pair Kontrol signs with (docs/protocol.md §8.7). PEM strings, trimmed. */
export interface KeyPair {
  /** Stable id (UUID). */
  id: string;
  /** Public key, PKIX PEM. */
  public: string;
  /** Private key, PKCS#8 or PKCS#1 PEM. */
  private: string;
}

/** A stored key pair; deleted pairs stay readable (docs/protocol.md §8.7). */
export interface StoredKeyPair extends KeyPair {
  /** True after {@linkcode KeyPairStorage.deleteKey}. */
  deleted: boolean;
}

/** Kontrol's key pairs. */
export interface KeyPairStorage {
  /** Stores a pair. @throws {Error} when id or public key already exists. */
  addKey(pair: KeyPair): Promise<void>;
  /** Marks a pair deleted (soft delete); it stays readable. */
  deleteKey(id: string): Promise<void>;
  /** A pair by id, deleted or not. */
  getKeyFromId(id: string): Promise<StoredKeyPair | undefined>;
  /** A pair by public key PEM (trimmed), deleted or not. */
  getKeyFromPublic(publicKey: string): Promise<StoredKeyPair | undefined>;
  /** All pairs in insertion order. */
  listKeys(): Promise<StoredKeyPair[]>;
}

/**
 * A one-time code for `registerMachine` as storage holds it: the code's
 * SHA-256, never the code itself.
 */
export interface StoredCode {
  /** SHA-256 of the code, 64 lower-case hex digits; the code's key. */
  digest: string;
  /** When it stops working, ms since the epoch (the creating Kontrol's clock). */
  expiresAt: number;
  /** The only user it gets a kite.key for; absent: any user. */
  username?: string;
}

/** What {@linkcode CodeStorage.claimCode} did. */
export type CodeClaim =
  /** The code was unused and is now used: the claimer gets its key. */
  | { result: "claimed" }
  /** Never stored, swept, or expired: nothing was written. */
  | { result: "unknown" }
  /** Used already (by this or another Kontrol): nothing was written. */
  | { result: "used" }
  /** Bound to `username`, someone else: nothing was written. */
  | { result: "otherUser"; username: string };

/**
 * One-time codes shared by every Kontrol on one storage, so that a code
 * any of them made works once on any of them and outlives a restart.
 * Kontrol's logic is in `kontrol/machine_codes.ts`; this is its backend.
 */
export interface CodeStorage {
  /**
   * Stores a new, unused code unless `max` codes (used ones included,
   * until swept) are held; resolves `false` then, writing nothing.
   * Concurrent adds on several processes may overshoot `max` by their
   * number where the engine cannot count and insert in one step (etcd,
   * PostgreSQL). @throws {Error} when the digest is stored already.
   */
  addCode(code: StoredCode, max: number): Promise<boolean>;
  /**
   * Marks a code used for `username`, if it is stored, unused, not expired
   * at `now` (ms since the epoch) and for any user or `username`: in one
   * atomic step across every process sharing the storage, so that of
   * claims racing for one code exactly one is `claimed`.
   */
  claimCode(digest: string, username: string, now: number): Promise<CodeClaim>;
  /** Removes codes expired at `now`, used or not; resolves how many. */
  deleteExpiredCodes(now: number): Promise<number>;
}

/**
 * One storage engine: kites plus key pairs, and (optional, all four
 * adapters here have it) one-time codes; Kontrol keeps codes in its own
 * memory when its storage has no {@linkcode CodeStorage} methods.
 */
export interface Storage
  extends KiteStorage, KeyPairStorage, Partial<CodeStorage> {
  /** Short engine name, e.g. `memory`, `kv`, `etcd`, `postgres`. */
  readonly engine: string;
  /** Releases connections and watches. */
  close(): Promise<void>;
}

/** Options every adapter accepts. */
export interface StorageOptions {
  /**
   * Time source for `updatedAt`. @default {systemClock; PostgreSQL: the
   * database's `now()`}
   */
  clock?: Clock;
}
