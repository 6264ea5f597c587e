/**
 * Kontrol storage on etcd (v3 API, `npm:etcd3`), so several Kontrols can
 * share one cluster and see each other's kites.
 *
 * Key layout under `prefix` (default `/kite`):
 *
 * | Key | Value | Lease |
 * |---|---|---|
 * | `<prefix>/kites/<username>/<environment>/<name>/<version>/<region>/<hostname>/<id>` | JSON `{"url","keyId","updatedAt"}` (`updatedAt` in ms since the epoch) | the writer's lease |
 * | `<prefix>/kiteIds/<id>` | the kite's key above, relative to `<prefix>/` | the writer's lease |
 * | `<prefix>/keys/<id>` | JSON `{"id","public","private","deleted"}` | none |
 * | `<prefix>/keysByPublic/<sha256 hex of the public PEM>` | the key pair id | none |
 * | `<prefix>/codes/<sha256 hex of a one-time code>` | JSON `{"expiresAt","used","username"?}` (`storage/etcd_codes.ts`) | none |
 *
 * The kite path follows the Go Kontrol's etcd v2 layout (docs/protocol.md §8.8), but the
 * two cannot share data: Go uses the separate v2 keyspace with a TTL per key.
 * Here each storage instance holds ONE lease (kept alive by the client) and
 * attaches every kite it writes to it, so the kites of a Kontrol that dies
 * expire on their own after `leaseTtlSeconds` (Go's `KeyTTL`, docs/protocol.md §8.5);
 * `deleteStale` removes kites that stopped heartbeating while their Kontrol
 * lives. Both kite keys are written in one transaction.
 * {@linkcode EtcdStorage.deleteOlderThan} judges only this instance's own
 * kites against its own clock: another Kontrol's kites expire with its lease
 * (etcd's clock), so Kontrols whose clocks differ never delete each other's
 * live kites.
 *
 * Watchers are served by one etcd watch on `<prefix>/kites/`, so every
 * instance sees the writes of every other one: REGISTER when a kite key is
 * created, DEREGISTER when one is deleted or its lease expires.
 *
 * Every call is bounded by `timeoutMs` and fails with an
 * {@linkcode EtcdStorageError} when etcd does not answer. When the lease is
 * lost (etcd unreachable for longer than its TTL), a new one is granted as
 * soon as etcd answers again and this instance's kites are written back.
 *
 * Permissions: besides `--allow-net` to etcd, the driver needs
 * `--allow-read` on Deno's npm cache (it loads etcd's `.proto` files at run
 * time) and `--allow-env=GRPC_*,grpc_proxy,http_proxy,https_proxy,no_grpc_proxy,no_proxy`
 * (gRPC reads them; without the proxy variables it never connects, and
 * every call times out).
 *
 * A write resolves once this instance's own watchers have seen its event
 * (waiting at most a second), as with the in-memory storage.
 *
 * Known runtime issue: under Deno 2.9, an HTTP/2 GOAWAY from etcd (sent when
 * an etcd member shuts down gracefully) can abort the Deno process inside
 * nghttp2 (denoland/deno#36788); run Kontrol under a supervisor that
 * restarts it.
 *
 * @example
 * ```ts
 * import { EtcdStorage } from "./etcd.ts";
 *
 * const storage = await EtcdStorage.connect({ endpoints: ["http://127.0.0.1:2379"] });
 * try {
 *   console.log(await storage.listKeys());
 * } finally {
 *   await storage.close();
 * }
 * ```
 *
 * @module
 */
import { contractsPart } from "./record.ts";
import {
  Etcd3,
  EtcdLeaseInvalidError,
  type IKeyValue,
  type IOptions,
  type Lease,
  type Namespace,
  type Watcher,
} from "etcd3";
import type {
  ContractRef,
  KiteIdentity,
  KontrolQuery,
} from "../kite/protocol.ts";
import { QUERY_FIELDS } from "../kite/protocol.ts";
import { type Clock, systemClock } from "../kite/clock.ts";
import { compileQuery } from "./query.ts";
import { WatcherSet } from "./events.ts";
import { sha256Hex } from "./hash.ts";
import * as codes from "./etcd_codes.ts";
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

// Types the API mentions, so this entry point documents on its own.
export { QUERY_FIELDS } from "../kite/protocol.ts";
export type {
  KiteIdentity,
  KontrolQuery,
  QueryField,
} from "../kite/protocol.ts";
export type { Clock } from "../kite/clock.ts";
export type * from "./storage.ts";

/** Default key prefix. */
export const DEFAULT_ETCD_PREFIX = "/kite";
/** Default lease TTL: Go Kontrol's `KeyTTL` (docs/protocol.md §8.5). */
export const DEFAULT_ETCD_LEASE_TTL_SECONDS = 90;
/** Default bound on one storage operation. */
export const DEFAULT_ETCD_TIMEOUT_MS = 5_000;

/** Options for {@linkcode EtcdStorage}. */
export interface EtcdStorageOptions extends StorageOptions {
  /** etcd client URLs, e.g. `["http://127.0.0.1:2379"]` (`KONTROL_MACHINES`). */
  endpoints: string[];
  /** Root of every key this storage writes. @default {"/kite"} */
  prefix?: string;
  /** TTL of this instance's lease. @default {90} */
  leaseTtlSeconds?: number;
  /** Upper bound on each operation, in ms. @default {5_000} */
  timeoutMs?: number;
  /**
   * Receives background failures (watch errors, lost leases, failed
   * recovery). @default {logs with console.error}
   */
  onError?: (error: Error) => void;
}

/** An etcd operation failed or timed out; `cause` holds the driver's error. */
export class EtcdStorageError extends Error {
  /** Creates the error with a message naming the operation and endpoints. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EtcdStorageError";
  }
}

/**
 * Reads etcd storage options from `KONTROL_MACHINES` (a comma-separated list
 * of client URLs; `host:port` gets `http://`), defaulting to
 * `http://127.0.0.1:2379` as the Go Kontrol does (docs/protocol.md §8.1).
 */
export function etcdOptionsFromEnv(
  env: { get(name: string): string | undefined } = Deno.env,
): EtcdStorageOptions {
  const machines = (env.get("KONTROL_MACHINES") ?? "").split(",")
    .map((m) => m.trim()).filter((m) => m !== "")
    .map((m) => /^https?:\/\//.test(m) ? m : `http://${m}`);
  return {
    endpoints: machines.length ? machines : ["http://127.0.0.1:2379"],
  };
}

interface KiteValue {
  url: string;
  keyId: string;
  updatedAt: number;
  contracts?: ContractRef[];
}

interface KeyValue {
  id: string;
  public: string;
  private: string;
  deleted: boolean;
}

type FaultHandling = NonNullable<IOptions["faultHandling"]>;
type HostPolicy = ReturnType<NonNullable<FaultHandling["host"]>>;
type WatchBackoff = NonNullable<FaultHandling["watchBackoff"]>;

const noDispose = () => ({ dispose() {} });

/**
 * No retries and no circuit breaker inside the driver: each call fails fast
 * and the next one dials again, so recovery after an outage is immediate.
 */
function passThroughPolicy(): HostPolicy {
  return {
    onSuccess: noDispose,
    onFailure: noDispose,
    execute: (
      fn: (context: { signal: AbortSignal }) => unknown,
      signal: AbortSignal = new AbortController().signal,
    ) => Promise.resolve().then(() => fn({ signal })),
  } as unknown as HostPolicy;
}

/** Watch stream reconnection: 100 ms doubling up to 2 s. */
function watchBackoff(duration = 100): WatchBackoff {
  return {
    duration,
    next: () => watchBackoff(Math.min(duration * 2, 2_000)),
  };
}

const KITES = "kites/";
const KITE_IDS = "kiteIds/";
const KEYS = "keys/";
const KEYS_BY_PUBLIC = "keysByPublic/";

function kiteKey(kite: KiteIdentity): string {
  return KITES + QUERY_FIELDS.map((f) => kite[f]).join("/");
}

function identityFromKey(key: string): KiteIdentity | undefined {
  if (!key.startsWith(KITES)) return undefined;
  const parts = key.slice(KITES.length).split("/");
  if (parts.length !== QUERY_FIELDS.length) return undefined;
  const [username, environment, name, version, region, hostname, id] = parts;
  return { name, username, id, environment, region, version, hostname };
}

function checkIdentity(kite: KiteIdentity): void {
  for (const f of QUERY_FIELDS) {
    const v = kite?.[f];
    if (typeof v !== "string") {
      throw new TypeError(`kite.${f} must be a string, got ${typeof v}`);
    }
    // `/` separates the fields of the etcd key.
    if (v.includes("/")) {
      throw new TypeError(
        `kite.${f} must not contain '/': ${JSON.stringify(v)}`,
      );
    }
  }
  if (kite.id === "") throw new TypeError("kite.id must not be empty");
}

function parseKiteValue(raw: string): KiteValue | undefined {
  try {
    const v = JSON.parse(raw);
    if (typeof v?.url === "string" && typeof v.keyId === "string") {
      return {
        url: v.url,
        keyId: v.keyId,
        updatedAt: Number(v.updatedAt) || 0,
        ...contractsPart(v.contracts),
      };
    }
  } catch { /* not ours: reported by the caller */ }
  return undefined;
}

function parseKeyValue(raw: string): KeyValue | undefined {
  try {
    const v = JSON.parse(raw);
    if (
      typeof v?.id === "string" && typeof v.public === "string" &&
      typeof v.private === "string"
    ) {
      return {
        id: v.id,
        public: v.public,
        private: v.private,
        deleted: v.deleted === true,
      };
    }
  } catch { /* not ours: reported by the caller */ }
  return undefined;
}

function compareRevisions(a: IKeyValue, b: IKeyValue): number {
  const x = BigInt(a.create_revision);
  const y = BigInt(b.create_revision);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** What this instance wrote, to write back after losing its lease. */
interface OwnedKite {
  key: string;
  value: string;
}

const MAX_TXN_ATTEMPTS = 10;
/** Longest a write waits for its own watch event (see #caughtUp). */
const CATCH_UP_MS = 1_000;
const RECOVERY_MIN_DELAY_MS = 500;
const RECOVERY_MAX_DELAY_MS = 10_000;

/**
 * {@linkcode Storage} on etcd. Use {@linkcode EtcdStorage.connect} to get an
 * instance whose watch is already established; a constructed one connects in
 * the background and every call waits for that.
 */
export class EtcdStorage implements Storage, CodeStorage {
  /** `etcd`. */
  readonly engine: string = "etcd";
  readonly #client: Etcd3;
  readonly #ns: Namespace;
  readonly #clock: Clock;
  readonly #endpoints: string;
  readonly #prefix: string;
  readonly #ttl: number;
  readonly #timeoutMs: number;
  readonly #onError: (error: Error) => void;
  readonly #watchers = new WatcherSet();
  readonly #owned = new Map<string, OwnedKite>();
  #watcher: Watcher | undefined;
  #watchReady: Promise<void> = Promise.resolve();
  #watchConnected = false;
  #seenRevision = 0n;
  readonly #revisionWaiters = new Set<
    { revision: bigint; resolve: () => void }
  >();
  #lease: Lease | undefined;
  #leaseId: Promise<string> | undefined;
  #grantedLeaseId: string | undefined;
  #recoveryTimer: ReturnType<typeof setTimeout> | undefined;
  #recoveryDelay = RECOVERY_MIN_DELAY_MS;
  #closed = false;

  /** Creates the client; connecting and watching start in the background. */
  constructor(options: EtcdStorageOptions) {
    if (!Array.isArray(options?.endpoints) || options.endpoints.length === 0) {
      throw new TypeError("EtcdStorage needs at least one endpoint URL");
    }
    const ttl = options.leaseTtlSeconds ?? DEFAULT_ETCD_LEASE_TTL_SECONDS;
    if (!Number.isInteger(ttl) || ttl < 1) {
      throw new RangeError(
        `leaseTtlSeconds must be an integer >= 1, got ${ttl}`,
      );
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_ETCD_TIMEOUT_MS;
    if (!(timeoutMs > 0)) {
      throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
    }
    const prefix = (options.prefix ?? DEFAULT_ETCD_PREFIX).replace(/\/+$/, "");
    this.#ttl = ttl;
    this.#timeoutMs = timeoutMs;
    this.#clock = options.clock ?? systemClock;
    this.#endpoints = options.endpoints.join(",");
    this.#onError = options.onError ??
      ((err) => console.error("EtcdStorage:", err));
    this.#client = new Etcd3({
      hosts: options.endpoints,
      dialTimeout: timeoutMs,
      defaultCallOptions: (ctx) =>
        ctx.isStream ? {} : { deadline: Date.now() + timeoutMs },
      grpcOptions: {
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1_000,
      },
      faultHandling: {
        host: () => passThroughPolicy(),
        global: passThroughPolicy(),
        watchBackoff: watchBackoff(),
      },
    });
    this.#prefix = prefix + "/";
    this.#ns = this.#client.namespace(this.#prefix);
    this.#startWatch();
  }

  /** Creates a storage and waits until its watch on etcd is established. */
  static async connect(options: EtcdStorageOptions): Promise<EtcdStorage> {
    const storage = new EtcdStorage(options);
    try {
      await storage.#ensureWatch();
    } catch (err) {
      await storage.close();
      throw err;
    }
    return storage;
  }

  /**
   * Resolves once the shared watch has connected for the first time, so that
   * watchers see every write made after `connect` or the first operation.
   * Later reconnections (after an outage) are the driver's business.
   */
  async #ensureWatch(): Promise<void> {
    if (this.#watchConnected) return;
    await this.#bounded("watch", () => this.#watchReady);
  }

  /** Creates the shared watch on `<prefix>/kites/`; it reconnects by itself. */
  #startWatch(): void {
    const watcher = this.#ns.watch().prefix(KITES).watcher();
    this.#watcher = watcher;
    this.#watchReady = new Promise((resolve) => {
      watcher.once("connected", () => {
        this.#watchConnected = true;
        resolve();
        // Every later "connected" is a reconnection: tell watchers events
        // may have been missed (the driver resumes, unless compacted).
        watcher.on("connected", () => {
          if (this.#watcher === watcher) this.#watchers.gap();
        });
      });
    });
    watcher.on("put", (kv) => this.#onPut(kv));
    watcher.on("delete", (kv) => this.#onDelete(kv));
    // Registered after the driver's own "data" handler, which emits the
    // put/delete events first.
    watcher.on("data", (res) => this.#sawRevision(res.header.revision));
    // Errors the driver does not recover from (etcd cancelled the watch, e.g.
    // its revision was compacted): report, then watch again from now on.
    watcher.on("error", (err) => {
      if (this.#closed || this.#watcher !== watcher) return;
      this.#onError(
        new EtcdStorageError(
          `etcd watch failed, restarting it: ${err.message}`,
          {
            cause: err,
          },
        ),
      );
      watcher.cancel().catch(() => {});
      this.#startWatch();
      this.#watchReady.then(() => this.#watchers.gap());
    });
  }

  #sawRevision(revision: string): void {
    const seen = BigInt(revision);
    if (seen <= this.#seenRevision) return;
    this.#seenRevision = seen;
    for (const waiter of [...this.#revisionWaiters]) {
      if (waiter.revision <= seen) waiter.resolve();
    }
  }

  /**
   * Waits (briefly) until the watch has delivered the change at `revision`,
   * so that when a write resolves, this instance's watchers have seen it —
   * as with the in-memory storage. Gives up quietly: the write itself is
   * done, and a slow watch must not turn it into an error.
   */
  async #caughtUp(revision: string | undefined): Promise<void> {
    if (revision === undefined || this.#watchers.size === 0) return;
    const target = BigInt(revision);
    if (target <= this.#seenRevision) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let waiter: { revision: bigint; resolve: () => void } | undefined;
    await new Promise<void>((resolve) => {
      waiter = { revision: target, resolve };
      this.#revisionWaiters.add(waiter);
      timer = setTimeout(resolve, CATCH_UP_MS);
    });
    clearTimeout(timer);
    this.#revisionWaiters.delete(waiter!);
  }

  #onPut(kv: IKeyValue): void {
    const key = kv.key.toString();
    const kite = identityFromKey(key);
    if (!kite) return;
    const owned = this.#owned.get(kite.id);
    // Another instance took the kite over: it is no longer ours to restore.
    if (owned?.key === key && kv.lease !== this.#grantedLeaseId) {
      this.#owned.delete(kite.id);
    }
    if (kv.version !== "1") return; // a refresh, not a registration
    const value = parseKiteValue(kv.value.toString());
    this.#emit({
      action: "REGISTER",
      kite,
      url: value?.url,
      keyId: value?.keyId,
    });
  }

  #onDelete(kv: IKeyValue): void {
    const key = kv.key.toString();
    const kite = identityFromKey(key);
    if (!kite) return;
    if (this.#owned.get(kite.id)?.key === key) {
      this.#ownedKiteDeleted(kite.id, key);
    }
    this.#emit({ action: "DEREGISTER", kite });
  }

  /**
   * One of our kites vanished: either someone deleted it (then it is no
   * longer ours to restore) or our lease is gone (then restore it). Asking
   * etcd about the lease tells which, without waiting for the next
   * keepalive, which may be a third of the TTL away.
   */
  #ownedKiteDeleted(id: string, key: string): void {
    const lease = this.#lease;
    if (!lease || this.#grantedLeaseId === undefined) return;
    this.#bounded("lease check", () => lease.keepaliveOnce()).then(
      () => {
        if (this.#owned.get(id)?.key === key) this.#owned.delete(id);
      },
      (err) => {
        // An invalid lease already emitted "lost" and started the recovery.
        if (!(err?.cause instanceof EtcdLeaseInvalidError) && !this.#closed) {
          this.#onError(err);
        }
      },
    );
  }

  #emit(event: StorageEvent): void {
    this.#watchers.emit(event);
  }

  /** Runs `fn` with the operation bound, wrapping failures. */
  async #bounded<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      throw new EtcdStorageError(`etcd ${what}: storage is closed`);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() =>
        reject(
          new EtcdStorageError(
            `etcd ${what}: no answer from ${this.#endpoints} within ${this.#timeoutMs} ms`,
          ),
        ), this.#timeoutMs);
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      if (err instanceof EtcdStorageError || err instanceof TypeError) {
        throw err;
      }
      if (err instanceof KiteExistsError || err instanceof KeyExistsError) {
        throw err;
      }
      const message = err instanceof Error ? err.message : String(err);
      throw new EtcdStorageError(
        `etcd ${what} failed (${this.#endpoints}): ${message}`,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for the watch, then runs a bounded operation. */
  async #op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    await this.#ensureWatch();
    return await this.#bounded(what, fn);
  }

  // -- lease ---------------------------------------------------------------

  #currentLease(): Promise<string> {
    if (!this.#leaseId) {
      const lease = this.#ns.lease(this.#ttl, { autoKeepAlive: true });
      this.#lease = lease;
      lease.on("lost", (err) => this.#onLeaseLost(lease, err));
      const granted = lease.grant().then((id) => {
        if (this.#lease === lease) this.#grantedLeaseId = id;
        return id;
      });
      this.#leaseId = granted;
      granted.catch(() => {
        // Not granted (etcd down): the next write asks for a new one.
        if (this.#lease === lease) {
          this.#lease = undefined;
          this.#leaseId = undefined;
        }
        lease.release();
      });
    }
    return this.#leaseId;
  }

  #onLeaseLost(lease: Lease, err: Error): void {
    if (this.#lease !== lease || this.#grantedLeaseId === undefined) return;
    this.#lease = undefined;
    this.#leaseId = undefined;
    this.#grantedLeaseId = undefined;
    if (this.#closed) return;
    this.#onError(
      new EtcdStorageError(
        `etcd lease lost, granting a new one and restoring ${this.#owned.size} kite(s): ${err.message}`,
        { cause: err },
      ),
    );
    this.#scheduleRecovery(0);
  }

  #scheduleRecovery(delay: number): void {
    if (this.#closed || this.#recoveryTimer !== undefined) return;
    this.#recoveryTimer = setTimeout(async () => {
      try {
        await this.#bounded("restore kites", () => this.#restoreOwned());
        this.#recoveryTimer = undefined;
        this.#recoveryDelay = RECOVERY_MIN_DELAY_MS;
      } catch (err) {
        this.#recoveryTimer = undefined;
        if (this.#closed) return;
        this.#onError(err instanceof Error ? err : new Error(String(err)));
        this.#recoveryDelay = Math.min(
          this.#recoveryDelay * 2,
          RECOVERY_MAX_DELAY_MS,
        );
        this.#scheduleRecovery(this.#recoveryDelay);
      }
    }, delay);
  }

  /** Writes back this instance's kites that vanished with its old lease. */
  async #restoreOwned(): Promise<void> {
    const lease = await this.#currentLease();
    for (const [id, owned] of [...this.#owned]) {
      // Stamped now: the kite is alive, and an old stamp would let the
      // next sweep take it for stale.
      const old = parseKiteValue(owned.value);
      const value = old
        ? JSON.stringify({ ...old, updatedAt: this.#clock.now() })
        : owned.value;
      const res = await this.#ns
        .if(owned.key, "Version", "==", 0)
        .and(KITE_IDS + id, "Version", "==", 0)
        .then(
          this.#ns.put(owned.key).value(value).lease(lease),
          this.#ns.put(KITE_IDS + id).value(owned.key).lease(lease),
        )
        .commit();
      // Present means someone re-registered it meanwhile: theirs is newer.
      if (!res.succeeded) this.#owned.delete(id);
      else this.#owned.set(id, { key: owned.key, value });
    }
    this.#watchers.gap();
  }

  /** Runs a write that uses the lease, renewing the lease once if etcd lost it. */
  async #withLease<T>(fn: (lease: string) => Promise<T>): Promise<T> {
    const lease = await this.#currentLease();
    try {
      return await fn(lease);
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError)) throw err;
      if (this.#lease) this.#onLeaseLost(this.#lease, err);
      return await fn(await this.#currentLease());
    }
  }

  // -- kites ---------------------------------------------------------------

  /** Inserts a kite. @throws {Error} when a kite with that id exists. */
  add(record: KiteRecord): Promise<void> {
    checkIdentity(record.kite);
    return this.#op("add", () =>
      this.#withLease(async (lease) => {
        const key = kiteKey(record.kite);
        const value = this.#value(record);
        const res = await this.#ns
          .if(KITE_IDS + record.kite.id, "Version", "==", 0)
          .and(key, "Version", "==", 0)
          .then(
            this.#ns.put(key).value(value).lease(lease),
            this.#ns.put(KITE_IDS + record.kite.id).value(key).lease(lease),
          )
          .commit();
        if (!res.succeeded) throw new KiteExistsError(record.kite.id);
        this.#owned.set(record.kite.id, { key, value });
        await this.#caughtUp(res.header.revision);
      }));
  }

  /** Refreshes url and updatedAt (keeping the stored keyId); inserts when missing. */
  update(record: KiteRecord): Promise<void> {
    checkIdentity(record.kite);
    return this.#op("update", () => this.#write(record, true));
  }

  /** Inserts or replaces a kite. */
  upsert(record: KiteRecord): Promise<void> {
    checkIdentity(record.kite);
    return this.#op("upsert", () => this.#write(record, false));
  }

  #value(record: KiteRecord, keyId = record.keyId): string {
    const value: KiteValue = {
      url: record.url,
      keyId,
      updatedAt: this.#clock.now(),
      ...contractsPart(record.contracts),
    };
    return JSON.stringify(value);
  }

  /** Upsert as an optimistic transaction on the id index. */
  #write(record: KiteRecord, keepKeyId: boolean): Promise<void> {
    return this.#withLease(async (lease) => {
      const id = record.kite.id;
      const key = kiteKey(record.kite);
      for (let attempt = 0; attempt < MAX_TXN_ATTEMPTS; attempt++) {
        const index = (await this.#ns.get(KITE_IDS + id).exec()).kvs[0];
        const oldKey = index?.value.toString();
        let keyId = record.keyId;
        if (keepKeyId && oldKey !== undefined) {
          const old = await this.#ns.get(oldKey).string();
          keyId = (old !== null ? parseKiteValue(old)?.keyId : undefined) ??
            keyId;
        }
        const value = this.#value(record, keyId);
        const ops = [
          this.#ns.put(key).value(value).lease(lease),
          this.#ns.put(KITE_IDS + id).value(key).lease(lease),
        ];
        const txn = index
          ? this.#ns.if(KITE_IDS + id, "Mod", "==", index.mod_revision)
          : this.#ns.if(KITE_IDS + id, "Version", "==", 0);
        const res = await (oldKey !== undefined && oldKey !== key
          ? txn.then(this.#ns.delete().key(oldKey), ...ops)
          : txn.then(...ops)).commit();
        if (res.succeeded) {
          this.#owned.set(id, { key, value });
          await this.#caughtUp(res.header.revision);
          return;
        }
      }
      throw new EtcdStorageError(
        `etcd write of kite ${id}: too many concurrent changes, gave up`,
      );
    });
  }

  /** Removes a kite by id; `true` when something was removed. */
  delete(kite: KiteIdentity): Promise<boolean> {
    if (
      typeof kite?.id !== "string" || kite.id === "" || kite.id.includes("/")
    ) {
      throw new TypeError(`kite.id must be a non-empty string without '/'`);
    }
    return this.#op("delete", async () => {
      for (let attempt = 0; attempt < MAX_TXN_ATTEMPTS; attempt++) {
        const index = (await this.#ns.get(KITE_IDS + kite.id).exec()).kvs[0];
        if (!index) {
          this.#owned.delete(kite.id);
          return false;
        }
        const res = await this.#ns
          .if(KITE_IDS + kite.id, "Mod", "==", index.mod_revision)
          .then(
            this.#ns.delete().key(KITE_IDS + kite.id),
            this.#ns.delete().key(index.value.toString()),
          )
          .commit();
        if (res.succeeded) {
          this.#owned.delete(kite.id);
          await this.#caughtUp(res.header.revision);
          return true;
        }
      }
      throw new EtcdStorageError(
        `etcd delete of kite ${kite.id}: too many concurrent changes, gave up`,
      );
    });
  }

  /**
   * Kites matching `query`, read by key prefix and filtered (docs/protocol.md §8.4).
   * @throws {QueryError} for an invalid query.
   */
  get(query: KontrolQuery): Promise<StoredKite[]> {
    const compiled = compileQuery(query);
    return this.#op("get", async () => {
      let kvs: IKeyValue[];
      if (compiled.idOnly) {
        const id = compiled.query.id;
        if (id.includes("/")) return [];
        const key = await this.#ns.get(KITE_IDS + id).string();
        kvs = key === null ? [] : (await this.#ns.get(key).exec()).kvs;
      } else if (compiled.prefix.length === QUERY_FIELDS.length) {
        kvs =
          (await this.#ns.get(KITES + compiled.prefix.join("/")).exec()).kvs;
      } else {
        if (compiled.prefix.some((p) => p.includes("/"))) return [];
        const prefix = KITES + compiled.prefix.map((p) => p + "/").join("");
        kvs = (await this.#ns.getAll().prefix(prefix).exec()).kvs;
      }
      const out: StoredKite[] = [];
      for (const kv of kvs) {
        const kite = this.#decode(kv);
        if (kite && compiled.matches(kite.kite)) out.push(kite);
      }
      return out;
    });
  }

  /** A range result's key without the namespace (watch keys come without). */
  #relative(kv: IKeyValue): string {
    const key = kv.key.toString();
    return key.startsWith(this.#prefix) ? key.slice(this.#prefix.length) : key;
  }

  /** Decodes a kite read by a range request. */
  #decode(kv: IKeyValue): StoredKite | undefined {
    const key = this.#relative(kv);
    const kite = identityFromKey(key);
    const value = parseKiteValue(kv.value.toString());
    if (!kite || !value) {
      this.#onError(
        new EtcdStorageError(
          `etcd: ignoring malformed kite entry ${this.#prefix}${key}`,
        ),
      );
      return undefined;
    }
    return {
      kite,
      url: value.url,
      keyId: value.keyId,
      updatedAt: value.updatedAt,
      ...contractsPart(value.contracts),
    };
  }

  /** Removes kites whose `updatedAt` is before `before`; returns them. */
  deleteStale(before: number): Promise<KiteIdentity[]> {
    return this.#op("deleteStale", () => this.#deleteBefore(before, false));
  }

  /**
   * Removes this instance's own kites (on its lease) not written for
   * `maxAgeMs` by its clock; kites of other instances are left to their
   * lease and their Kontrol. Returns the removed kites.
   */
  deleteOlderThan(maxAgeMs: number): Promise<KiteIdentity[]> {
    if (!(maxAgeMs >= 0)) {
      throw new RangeError(`maxAgeMs must be >= 0, got ${maxAgeMs}`);
    }
    return this.#op(
      "deleteOlderThan",
      () => this.#deleteBefore(this.#clock.now() - maxAgeMs, true),
    );
  }

  async #deleteBefore(
    before: number,
    ownOnly: boolean,
  ): Promise<KiteIdentity[]> {
    {
      const kvs = (await this.#ns.getAll().prefix(KITES).exec()).kvs;
      const removed: KiteIdentity[] = [];
      let revision: string | undefined;
      for (const kv of kvs) {
        if (ownOnly && kv.lease !== this.#grantedLeaseId) continue;
        const stored = this.#decode(kv);
        if (!stored || stored.updatedAt >= before) continue;
        const key = this.#relative(kv);
        // Only if unchanged since read: a refresh in between keeps it.
        const res = await this.#ns
          .if(key, "Mod", "==", kv.mod_revision)
          .then(
            this.#ns.delete().key(key),
            this.#ns.delete().key(KITE_IDS + stored.kite.id),
          )
          .commit();
        if (res.succeeded) {
          this.#owned.delete(stored.kite.id);
          removed.push(stored.kite);
          revision = res.header.revision;
        }
      }
      await this.#caughtUp(revision);
      return removed;
    }
  }

  /**
   * Removes a kite only while it is still on this instance's lease: once
   * another Kontrol wrote it (it registered again there), it is left alone.
   */
  deleteOwn(kite: KiteIdentity): Promise<boolean> {
    checkIdentity(kite);
    return this.#op("deleteOwn", async () => {
      const owned = this.#owned.get(kite.id);
      const lease = this.#grantedLeaseId;
      if (!owned || lease === undefined) return false;
      const res = await this.#ns
        .if(KITE_IDS + kite.id, "Lease", "==", lease)
        .and(owned.key, "Lease", "==", lease)
        .then(
          this.#ns.delete().key(KITE_IDS + kite.id),
          this.#ns.delete().key(owned.key),
        )
        .commit();
      if (this.#owned.get(kite.id) === owned) this.#owned.delete(kite.id);
      if (res.succeeded) await this.#caughtUp(res.header.revision);
      return res.succeeded;
    });
  }

  /** Adds a listener told when watch events may have been missed. */
  onWatchGap(listener: () => void): Unsubscribe {
    return this.#watchers.onGap(listener);
  }

  /**
   * Calls `listener` for every later REGISTER/DEREGISTER of a matching kite
   * written by any storage on the same etcd and prefix.
   * @throws {QueryError} for an invalid query.
   */
  watch(
    query: KontrolQuery,
    listener: (event: StorageEvent) => void,
  ): Unsubscribe {
    return this.#watchers.add(query, listener);
  }

  // -- key pairs -----------------------------------------------------------

  /** Stores a key pair. @throws {Error} when its id or public key exists. */
  addKey(pair: KeyPair): Promise<void> {
    const value = checkKeyPair(pair);
    return this.#op("addKey", async () => {
      const byPublic = KEYS_BY_PUBLIC + await sha256Hex(value.public);
      const res = await this.#ns
        .if(KEYS + value.id, "Version", "==", 0)
        .and(byPublic, "Version", "==", 0)
        .then(
          this.#ns.put(KEYS + value.id).value(JSON.stringify(value)),
          this.#ns.put(byPublic).value(value.id),
        )
        .commit();
      if (!res.succeeded) throw new KeyExistsError(value.id);
    });
  }

  /** Marks a key pair deleted; it stays readable. */
  deleteKey(id: string): Promise<void> {
    checkKeyId(id);
    return this.#op("deleteKey", async () => {
      for (let attempt = 0; attempt < MAX_TXN_ATTEMPTS; attempt++) {
        const kv = (await this.#ns.get(KEYS + id).exec()).kvs[0];
        const value = kv && parseKeyValue(kv.value.toString());
        if (!kv || !value || value.deleted) return;
        value.deleted = true;
        const res = await this.#ns
          .if(KEYS + id, "Mod", "==", kv.mod_revision)
          .then(this.#ns.put(KEYS + id).value(JSON.stringify(value)))
          .commit();
        if (res.succeeded) return;
      }
      throw new EtcdStorageError(
        `etcd deleteKey ${id}: too many concurrent changes, gave up`,
      );
    });
  }

  /** A key pair by id, deleted or not. */
  getKeyFromId(id: string): Promise<StoredKeyPair | undefined> {
    checkKeyId(id);
    return this.#op("getKeyFromId", async () => {
      const raw = await this.#ns.get(KEYS + id).string();
      return raw === null ? undefined : parseKeyValue(raw);
    });
  }

  /** A key pair by public key PEM (trimmed), deleted or not. */
  getKeyFromPublic(publicKey: string): Promise<StoredKeyPair | undefined> {
    if (typeof publicKey !== "string") {
      throw new TypeError("publicKey must be a PEM string");
    }
    const pem = publicKey.trim();
    return this.#op("getKeyFromPublic", async () => {
      const id = await this.#ns.get(KEYS_BY_PUBLIC + await sha256Hex(pem))
        .string();
      if (id === null) return undefined;
      const raw = await this.#ns.get(KEYS + id).string();
      const pair = raw === null ? undefined : parseKeyValue(raw);
      return pair?.public === pem ? pair : undefined;
    });
  }

  /** All key pairs in insertion order. */
  listKeys(): Promise<StoredKeyPair[]> {
    return this.#op("listKeys", async () => {
      const kvs = (await this.#ns.getAll().prefix(KEYS).exec()).kvs;
      return kvs.sort(compareRevisions)
        .map((kv) => parseKeyValue(kv.value.toString()))
        .filter((p): p is KeyValue => p !== undefined);
    });
  }

  // -- one-time codes (storage/etcd_codes.ts) ------------------------------

  /** Stores a one-time code unless about `max` are held; resolves false then. */
  addCode(code: StoredCode, max: number): Promise<boolean> {
    return this.#op("addCode", () => codes.addCode(this.#ns, code, max));
  }

  /** Marks a one-time code used for `username` (one transaction), or says why not. */
  claimCode(digest: string, username: string, now: number): Promise<CodeClaim> {
    return this.#op(
      "claimCode",
      () => codes.claimCode(this.#ns, digest, username, now),
    );
  }

  /** Removes one-time codes expired at `now`; resolves how many. */
  deleteExpiredCodes(now: number): Promise<number> {
    return this.#op(
      "deleteExpiredCodes",
      () => codes.deleteExpiredCodes(this.#ns, now),
    );
  }

  /**
   * Stops watching and keeping the lease alive, and closes the client. The
   * lease is not revoked: this instance's kites expire after its TTL, as they
   * would if the process died, unless another Kontrol re-registers them.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watchers.clear();
    for (const waiter of this.#revisionWaiters) waiter.resolve();
    clearTimeout(this.#recoveryTimer);
    this.#recoveryTimer = undefined;
    this.#lease?.release();
    this.#lease = undefined;
    this.#leaseId = undefined;
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (watcher) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        watcher.cancel().catch(() => {}),
        new Promise((r) => timer = setTimeout(r, this.#timeoutMs)),
      ]);
      clearTimeout(timer);
    }
    this.#client.close();
  }
}

/** `add` of an id that is already registered. */
class KiteExistsError extends Error {
  constructor(id: string) {
    super(`kite with id ${id} already exists`);
    this.name = "KiteExistsError";
  }
}

/** `addKey` of an id or public key that is already stored. */
class KeyExistsError extends Error {
  constructor(id: string) {
    super(`key pair ${id} or its public key already exists`);
    this.name = "KeyExistsError";
  }
}

function checkKeyId(id: string): void {
  if (typeof id !== "string" || id === "" || id.includes("/")) {
    throw new TypeError(
      `key pair id must be a non-empty string without '/': ${id}`,
    );
  }
}

function checkKeyPair(pair: KeyPair): KeyValue {
  checkKeyId(pair?.id);
  for (const f of ["public", "private"] as const) {
    if (typeof pair[f] !== "string" || pair[f].trim() === "") {
      throw new TypeError(`key pair ${f} key must be a non-empty PEM string`);
    }
  }
  return {
    id: pair.id,
    public: pair.public.trim(),
    private: pair.private.trim(),
    deleted: false,
  };
}
