/**
 * Liveness of registered kites (docs/protocol.md §8.5), improved on Go: a kite whose
 * connection closes is deregistered at once, and one silent for
 * `heartbeat interval + grace` is deregistered by a timer — never by a
 * storage TTL.
 *
 * @module
 */
import type { Client } from "../kite/client.ts";
import type { Clock } from "../kite/clock.ts";
import { KiteError } from "../kite/errors.ts";
import type { Logger } from "../kite/log.ts";
import { makeQuery } from "../kite/protocol.ts";
import type { KiteRecord, Storage } from "../storage/storage.ts";
import {
  DEFAULT_KONTROL_LIMITS,
  type KontrolLimits,
  MAX_RETAINED_IDS,
} from "./limits.ts";
import { IdOwners } from "./owners.ts";

/** The limits a {@linkcode Registry} enforces. */
export type RegistryLimits = Pick<
  KontrolLimits,
  "maxKitesPerUser" | "idRetentionMs" | "httpProofMs"
>;

/** How an HTTP registration was made, for its unauthenticated heartbeats. */
export interface HttpRegistration {
  /** The address the authenticated `POST /register` came from, if known. */
  address?: string;
}

/** Timing of liveness checks. */
export interface RegistryTiming {
  /** Interval kites are asked to ping at. @default {10000} */
  heartbeatIntervalMs: number;
  /** Grace on top of the interval before a silent kite is gone. @default {20000} */
  heartbeatGraceMs: number;
  /** Storage is refreshed at most this often per kite. @default {60000} */
  updateIntervalMs: number;
}

/** Go's constants (docs/protocol.md §8.5). */
export const DEFAULT_TIMING: RegistryTiming = {
  heartbeatIntervalMs: 10_000,
  heartbeatGraceMs: 20_000,
  updateIntervalMs: 60_000,
};

interface Entry {
  record: KiteRecord;
  /** Last registration or heartbeat. */
  lastSeen: number;
  /** When the next refresh is counted from; -Infinity after a failed one. */
  lastWrite: number;
  /** When this process last wrote the record (kept after failures). */
  wroteAt: number;
  off: (() => void) | undefined;
  /** Set for HTTP registrations: only those take `/heartbeat` pings. */
  http: HttpRegistration | undefined;
  /** When the kite last proved itself (registered with its kite.key). */
  provenAt: number;
  /** The connection it registered over (dnode), closed by `release`. */
  client: Client | undefined;
}

/** Where the registry reports the outcome of its storage writes. */
export interface WriteReport {
  /** A write succeeded. */
  ok(): void;
  /** A write failed. */
  fail(error: unknown): void;
}

/**
 * How much later than this process's last write another write of the same
 * kite must be for a deregistration to leave it alone: covers the gap
 * between taking the time and the storage stamping it, and clock skew
 * between Kontrol hosts.
 */
export const FOREIGN_WRITE_MARGIN_MS = 250;

/** Tracks live registrations of one Kontrol process. */
export class Registry {
  readonly #storage: Storage;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #timing: RegistryTiming;
  readonly #report: WriteReport | undefined;
  /**
   * Supervised kites, oldest `lastSeen` first: a ping moves its entry to
   * the end. One timer, due when the first entry goes silent too long,
   * supervises them all (no timer per kite).
   */
  readonly #entries = new Map<string, Entry>();
  #timer: number | undefined;
  #closing = false;
  #refreshFailing = false;
  readonly #limits: RegistryLimits;
  /** Supervised kites per username. */
  readonly #perUser = new Map<string, number>();
  readonly #owners: IdOwners;

  /** Creates an empty registry. */
  constructor(
    storage: Storage,
    clock: Clock,
    logger: Logger,
    timing: Partial<RegistryTiming> = {},
    limits: RegistryLimits = DEFAULT_KONTROL_LIMITS,
    report?: WriteReport,
  ) {
    this.#report = report;
    this.#storage = storage;
    this.#clock = clock;
    this.#logger = logger;
    this.#timing = { ...DEFAULT_TIMING, ...timing };
    this.#limits = limits;
    this.#owners = new IdOwners({
      retentionMs: limits.idRetentionMs,
      maxIds: MAX_RETAINED_IDS,
      maxIdsPerUser: limits.maxKitesPerUser * 2,
    });
  }

  /** Timing in force. */
  get timing(): RegistryTiming {
    return this.#timing;
  }

  /** Number of kites this process supervises. */
  get size(): number {
    return this.#entries.size;
  }

  /** The environment of each supervised kite (for metrics). */
  *environments(): Iterable<string> {
    for (const e of this.#entries.values()) yield e.record.kite.environment;
  }

  /**
   * Stores a registration and supervises it. With a `client` (dnode
   * registration) the kite is deregistered as soon as that connection
   * closes; without (HTTP, `http` then says how it came) only the
   * heartbeat timer applies.
   * @throws {KiteError} `genericError` when another user's kite holds the
   * id, now or within `idRetentionMs` of leaving: storage is keyed by id, so
   * reusing an id seen in `getKites` would replace that kite's entry (and
   * send its callers, with their tokens, elsewhere), or lock its owner out.
   * `requestLimitError` when the user has `maxKitesPerUser` kites here.
   */
  async register(
    record: KiteRecord,
    client?: Client,
    http?: HttpRegistration,
  ): Promise<void> {
    const id = record.kite.id;
    const username = record.kite.username;
    const owner = this.#owners.owner(id, this.#clock.now());
    if (owner !== undefined && owner !== username) throw taken(id);
    const current = this.#entries.get(id)?.record.kite.username;
    const count = this.#perUser.get(username) ?? 0;
    if (current !== username && count >= this.#limits.maxKitesPerUser) {
      throw new KiteError(
        "requestLimitError",
        `user ${username} has ${count} kites registered, the most this Kontrol allows (maxKitesPerUser, KONTROL_MAXKITESPERUSER)`,
      );
    }
    // Counted before the write, so concurrent registrations cannot overshoot;
    // dropping a replaced entry below takes its count back.
    this.#count(username, 1);
    try {
      let owned: boolean;
      try {
        owned = await this.#upsertOwned(record);
        this.#report?.ok();
      } catch (err) {
        this.#report?.fail(err);
        throw err;
      }
      if (!owned) throw taken(id);
    } catch (err) {
      this.#count(username, -1);
      throw err;
    }
    this.#drop(id);
    const now = this.#clock.now();
    this.#owners.claim(id, username, now);
    const entry: Entry = {
      record,
      lastSeen: now,
      lastWrite: now,
      wroteAt: now,
      off: undefined,
      http: client ? undefined : http ?? {},
      provenAt: now,
      client,
    };
    if (client) {
      entry.off = client.onDisconnect(() => {
        if (this.#entries.get(id) === entry && !this.#closing) {
          void this.deregister(id, "disconnected");
        }
      });
    }
    this.#entries.set(id, entry);
    this.#arm();
  }

  /** Records a heartbeat; false when the id is not supervised here. */
  ping(id: string): boolean {
    const entry = this.#entries.get(id);
    if (!entry) return false;
    const now = this.#clock.now();
    entry.lastSeen = now;
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    if (now - entry.lastWrite >= this.#timing.updateIntervalMs) {
      entry.lastWrite = now;
      entry.wroteAt = now;
      this.#storage.update(entry.record).then(() => {
        this.#report?.ok();
        if (!this.#refreshFailing) return;
        this.#refreshFailing = false;
        this.#logger.info("storage refreshes work again");
      }, (err) => {
        // Storage is away: try again on the next ping, not a whole interval
        // later; warn once per outage, not once per kite and ping.
        entry.lastWrite = -Infinity;
        this.#report?.fail(err);
        const message = `refresh of ${id} failed: ${(err as Error).message}`;
        if (this.#refreshFailing) return this.#logger.debug(message);
        this.#refreshFailing = true;
        this.#logger.warning(message);
      });
    }
    return true;
  }

  /**
   * An unauthenticated `GET /heartbeat?id=` (docs/protocol.md §8.3): Go
   * kites send nothing but the id, which every user can read. So it only
   * keeps alive an HTTP registration, from the address that registered it,
   * for `httpProofMs` after the kite last registered with its kite.key;
   * otherwise the answer is `registeragain` and nothing is refreshed (an
   * honest kite then registers again at once).
   */
  httpPing(id: string, address?: string): boolean {
    const entry = this.#entries.get(id);
    if (!entry?.http) return false;
    const from = entry.http.address;
    if (from !== undefined && address !== undefined && from !== address) {
      return false;
    }
    const proof = this.#limits.httpProofMs;
    if (proof > 0 && this.#clock.now() - entry.provenAt >= proof) return false;
    return this.ping(id);
  }

  /** True when this process supervises the id. */
  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /**
   * Stops supervising a kite and removes it from storage — unless the kite
   * registered again through another Kontrol since this one last wrote it
   * (a connection this process saw close late, or a heartbeat that stopped
   * here because the kite moved): that newer entry stays.
   */
  async deregister(id: string, why: string): Promise<void> {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#drop(id);
    try {
      if (this.#storage.deleteOwn) {
        // The storage knows whether the entry is still its write: no clocks.
        const removed = await this.#storage.deleteOwn(entry.record.kite);
        this.#logger.debug(
          removed
            ? `deregistered ${id}: ${why}`
            : `not deregistering ${id} (${why}): registered again elsewhere`,
        );
        return;
      }
      const [stored] = await this.#storage.get(makeQuery({ id }));
      if (!stored) return;
      if (stored.updatedAt > entry.wroteAt + FOREIGN_WRITE_MARGIN_MS) {
        this.#logger.debug(
          `not deregistering ${id} (${why}): registered again elsewhere`,
        );
        return;
      }
      this.#logger.debug(`deregistering ${id}: ${why}`);
      await this.#storage.delete(entry.record.kite);
    } catch (err) {
      this.#logger.warning(
        `deregistering ${id} failed: ${(err as Error).message}`,
      );
    }
  }

  /**
   * Stops supervising without deleting: on shutdown the kites reconnect
   * and re-register, and a stale-entry sweep removes those that do not.
   */
  close(): void {
    this.#closing = true;
    for (const id of [...this.#entries.keys()]) this.#drop(id);
  }

  /**
   * Writes every supervised kite again, e.g. after the storage lost them
   * (a PostgreSQL crash). Failures are left to the next refresh.
   */
  async restore(): Promise<void> {
    const entries = [...this.#entries.values()];
    let failed = 0;
    let lastError: unknown;
    for (const entry of entries) {
      if (this.#entries.get(entry.record.kite.id) !== entry) continue;
      try {
        await this.#storage.update(entry.record);
        this.#report?.ok();
      } catch (err) {
        entry.lastWrite = -Infinity;
        failed++;
        lastError = err;
      }
    }
    const message = `storage lost its kites: wrote back ${
      entries.length - failed
    } of ${entries.length}`;
    if (failed === 0) return this.#logger.info(message);
    this.#logger.warning(`${message}: ${(lastError as Error)?.message}`);
  }

  /**
   * Stops supervising every kite without deleting it and closes their
   * connections, so they register through another Kontrol: this one
   * cannot keep their entries fresh. Returns how many were released.
   */
  release(): number {
    const entries = [...this.#entries.values()];
    for (const entry of entries) {
      this.#drop(entry.record.kite.id);
      entry.client?.close();
    }
    return entries.length;
  }

  /**
   * Upserts unless another user's kite holds the id (false then): in one
   * step on storages that offer it, else a read then the write.
   */
  async #upsertOwned(record: KiteRecord): Promise<boolean> {
    const storage = this.#storage;
    if (storage.upsertOwned) return await storage.upsertOwned(record);
    const [holder] = await storage.get(makeQuery({ id: record.kite.id }));
    if (holder && holder.kite.username !== record.kite.username) return false;
    await storage.upsert(record);
    return true;
  }

  /** How long a kite may stay silent. */
  get #silenceMs(): number {
    return this.#timing.heartbeatIntervalMs + this.#timing.heartbeatGraceMs;
  }

  /** Arms the timer for the oldest entry, unless armed or nothing is left. */
  #arm(): void {
    if (this.#timer !== undefined) return;
    const first = this.#entries.values().next();
    if (first.done) return;
    const wait = Math.max(
      0,
      first.value.lastSeen + this.#silenceMs - this.#clock.now(),
    );
    this.#timer = this.#clock.setTimeout(this.#expire, wait);
  }

  /** Deregisters every kite silent for too long, then re-arms. */
  #expire = (): void => {
    this.#timer = undefined;
    const deadline = this.#clock.now() - this.#silenceMs;
    const silent: string[] = [];
    for (const [id, entry] of this.#entries) {
      if (entry.lastSeen > deadline) break;
      silent.push(id);
    }
    for (const id of silent) void this.deregister(id, "no heartbeat");
    this.#arm();
  };

  #count(username: string, delta: number): void {
    const n = (this.#perUser.get(username) ?? 0) + delta;
    if (n > 0) this.#perUser.set(username, n);
    else this.#perUser.delete(username);
  }

  #drop(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    entry.off?.();
    this.#entries.delete(id);
    const username = entry.record.kite.username;
    this.#count(username, -1);
    // The id stays its owner's for a while after the kite left.
    this.#owners.claim(id, username, this.#clock.now());
    if (this.#entries.size === 0 && this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}

function taken(id: string): KiteError {
  return new KiteError(
    "genericError",
    `kite id ${id} is registered by another user`,
  );
}
