/**
 * Kontrol: the registry and auth kite (docs/protocol.md §8).
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import type { Clock } from "../kite/clock.ts";
import { systemClock } from "../kite/clock.ts";
import type { KiteConfig } from "../kite/config.ts";
import { Kite } from "../kite/kite.ts";
import type { KeyPair, Storage, StoredKeyPair } from "../storage/storage.ts";
import { Authenticator, TrustedKeys } from "../kite/auth/verify.ts";
import { generateKeyPair, trimPem } from "../kite/auth/keys.ts";
import { KiteError } from "../kite/errors.ts";
import { KONTROL_UNAVAILABLE } from "../kite/protocol.ts";
import { addKontrolHandlers, type KontrolHandlers } from "./handlers.ts";
import { type HealthTiming, StorageHealth } from "./health.ts";
import { addHttpRoutes } from "./http.ts";
import { addKeyAdminHandlers } from "./admin.ts";
import {
  addDashboardRoutes,
  type DashboardOptions,
} from "./dashboard/routes.ts";
import { type KontrolLimits, kontrolLimits } from "./limits.ts";
import { DEFAULT_TIMING, Registry, type RegistryTiming } from "./registry.ts";
import type { KontrolServices, MachineAuthenticate } from "./services.ts";
import { signKiteKey, TokenCache } from "./tokens.ts";
import { addKontrolMetrics, timedStorage } from "./metrics.ts";

export type { MachineAuthenticate } from "./services.ts";
export type { DashboardOptions } from "./dashboard/routes.ts";

/** Options for {@linkcode Kontrol}. */
export interface KontrolOptions {
  /** Where kites and key pairs live. */
  storage: Storage;
  /** The URL Kontrol advertises (in kite keys). @default {its own URL once serving} */
  kontrolURL?: string;
  /** Kontrol's username: the issuer of every token and kite key. @default {"kontrol"} */
  username?: string;
  /** Time source. @default {systemClock} */
  clock?: Clock;
  /** Heartbeat timing (docs/protocol.md §8.5). */
  timing?: Partial<RegistryTiming>;
  /** Token lifetime. @default {48 h} */
  tokenTtlMs?: number;
  /** Back-dating of `iat`/`nbf` and cache slack. @default {5 min} */
  tokenLeewayMs?: number;
  /** Entries not refreshed for this long are swept. @default {90 s} */
  staleAfterMs?: number;
  /** How the storage is probed and how long failures are tolerated. */
  health?: Partial<HealthTiming>;
  /**
   * Let `register` take token auth (a page kite has a token, never a
   * kite.key): the kite is registered under the token's user only, and no
   * kite.key is handed back; `getKey` answers tokens too (the current key,
   * which the page checks its callers with). Off by default, as Go refuses it
   * . @default {false}
   */
  tokenRegister?: boolean;
  /** Authorises `registerMachine`; without it the method is refused (as Go). */
  machineAuthenticate?: MachineAuthenticate;
  /** Per-user quotas and sizes; see {@linkcode KontrolLimits} for the defaults. */
  limits?: Partial<KontrolLimits>;
  /** Settings for Kontrol's own kite (port, ip, log level...). */
  kiteConfig?: Partial<KiteConfig>;
  /**
   * Record Prometheus metrics (Kontrol's own beside its kite's). `route:
   * false` keeps them off the public port: serve
   * `kontrol.kite.metrics.registry.handle` on a private one. Off unless
   * given (or `KITE_METRICS=1`). @default {undefined}
   */
  metrics?: { route?: boolean };
  /**
   * Serve the dashboard at `/dashboard`: a page that asks for a token and
   * shows that user's kites live. Off unless given (`--dashboard`).
   * @default {undefined}
   */
  dashboard?: DashboardOptions;
}

/** Kontrol's kite version: the package version, from `deno.json`. */
export const KONTROL_VERSION: string = denoJson.version;

/**
 * How long a key pair read by id is reused. Pairs change only by being
 * deleted, which another Kontrol of a cluster then sees this much later.
 */
const KEY_PAIR_CACHE_MS = 10_000;

/** Key pairs looked up lately, found or being looked up. */
type PairCache = Map<
  string,
  { pair: Promise<StoredKeyPair | undefined>; until: number }
>;

/**
 * A Kontrol server.
 *
 * @example
 * ```ts ignore
 * const kontrol = new Kontrol({ storage: new MemoryStorage() });
 * await kontrol.init();
 * await kontrol.kite.serve({ port: 4000 });
 * ```
 */
export class Kontrol implements KontrolServices {
  /** Kontrol's own kite. */
  readonly kite: Kite;
  /** The storage engine. */
  readonly storage: Storage;
  /** Live registrations of this process. */
  readonly registry: Registry;
  /** Whether the storage works; Kontrol steps aside while it does not. */
  readonly health: StorageHealth;
  /** Issued tokens, reused while valid (docs/protocol.md §6.4). */
  readonly tokens: TokenCache;
  /** Kontrol's username (token issuer). */
  readonly username: string;
  /** Options in force. */
  readonly options: Readonly<KontrolOptions>;
  /** Quotas and sizes in force. */
  readonly limits: Readonly<KontrolLimits>;
  readonly #clock: Clock;
  #selfPair: StoredKeyPair | undefined;
  /** Settles when {@linkcode Kontrol.init} has settled the signing pair. */
  #initialized: Promise<void> | undefined;
  #sweeper: number | undefined;
  #kontrolURL: string | undefined;
  #handlers: KontrolHandlers | undefined;
  readonly #trusted = new TrustedKeys();
  /**
   * Pairs found by id and by public key PEM. Two maps, not one keyed by a
   * joined string: that string (a PEM long) would be copied to be hashed on
   * every registration.
   */
  readonly #pairsById: PairCache = new Map();
  readonly #pairsByPublic: PairCache = new Map();

  /** Creates Kontrol; call {@linkcode Kontrol.init} before serving. */
  constructor(options: KontrolOptions) {
    this.options = options;
    this.#clock = options.clock ?? systemClock;
    this.username = options.username ?? "kontrol";
    this.#kontrolURL = options.kontrolURL;
    this.limits = kontrolLimits(options.limits);
    this.kite = new Kite("kontrol", KONTROL_VERSION, {
      clock: this.#clock,
      // Kontrol issues kite keys and needs none: reading $KITE_HOME would
      // fail under the launcher's scoped permissions (no HOME).
      kiteKey: false,
      config: {
        username: this.username,
        ...options.kiteConfig,
        ...(options.metrics ? { metrics: true } : {}),
      },
      metricsRoute: options.metrics?.route ?? true,
    });
    const metrics = this.kite.metrics;
    this.storage = metrics
      ? timedStorage(options.storage, metrics)
      : options.storage;
    this.health = new StorageHealth(
      () => this.#probe(),
      this.#clock,
      this.kite.logger,
      options.health,
      (healthy) => {
        // Back: watchers may have missed what changed meanwhile.
        if (healthy) return this.#handlers?.resyncWatchers();
        const n = this.registry.release();
        this.kite.logger.warning(
          `closed the connections of ${n} kite(s): they register elsewhere`,
        );
      },
    );
    this.registry = new Registry(
      this.storage,
      this.#clock,
      this.kite.logger,
      options.timing,
      this.limits,
      this.health,
    );
    this.tokens = new TokenCache({
      clock: this.#clock,
      ttlMs: options.tokenTtlMs,
      leewayMs: options.tokenLeewayMs,
    });
    // Any key pair Kontrol ever had (deleted ones too) is trusted for
    // kiteKey auth, so old kites can reach `register` and get a new key (docs/protocol.md §6.5, §8.7).
    this.kite.authenticator = new Authenticator({
      localKite: () => this.kite.identity,
      trustedKeys: this.#trusted,
      kontrolUser: () => this.username,
      clock: this.#clock,
      verifyTtlMs: this.kite.config.verifyTtlMs,
      // An unknown pair reads `kiteKey: not found`, as Go's Kontrol answers
      // (docs/protocol.md §6.5, go-kite/08 connection 2).
      verifyKontrolKey: async (pem) => {
        if (await this.storage.getKeyFromPublic(trimPem(pem))) return true;
        throw new Error("not found");
      },
    });
    const handlers = this.#handlers = addKontrolHandlers(this);
    if (metrics) {
      addKontrolMetrics(metrics, {
        environments: () => this.registry.environments(),
        watchers: () => handlers.watcherCount(),
      });
    }
    addKeyAdminHandlers(this);
    // A storage that lost its kites (PostgreSQL crash) gets ours back at once.
    this.storage.onReset?.(() => void this.registry.restore());
    addHttpRoutes(this);
    if (options.dashboard) addDashboardRoutes(this.kite, options.dashboard);
    this.kite.addCloser(() => this.#stop());
  }

  /** The URL put into kite keys. */
  get kontrolURL(): string {
    return this.#kontrolURL ?? this.kite.url;
  }

  /** Time source. */
  get clock(): Clock {
    return this.#clock;
  }

  /**
   * Loads the key pairs, generating one when storage has none (or adding
   * `pair` when given), and starts sweeping stale entries. `pair` may still
   * be on its way (a first start generating it): Kontrol can serve
   * meanwhile, as only signing with its own pair
   * ({@linkcode Kontrol.currentPair}) needs it, and that waits.
   */
  init(pair?: KeyPair | Promise<KeyPair>): Promise<void> {
    // A pending pair that fails is reported by the promise returned here,
    // not as an unhandled rejection while storage is read first.
    if (pair instanceof Promise) pair.catch(() => {});
    const done = this.#init(pair);
    this.#initialized = done.then(() => {}, () => {});
    return done;
  }

  async #init(pending?: KeyPair | Promise<KeyPair>): Promise<void> {
    // Trust the pairs storage holds before anything else: kites whose keys
    // they signed are served while a new pair is still being generated.
    await this.#loadSelfPair();
    const pair = await pending;
    if (pair) {
      const pem = trimPem(pair.public);
      if (!await this.storage.getKeyFromPublic(pem)) {
        try {
          await this.addKeyPair(pair);
        } catch (err) {
          // Kontrols of a cluster starting together race to store the
          // shared pair: losing that race is fine.
          if (!await this.storage.getKeyFromPublic(pem)) throw err;
        }
      }
    }
    await this.#loadSelfPair();
    if (!this.#selfPair) {
      const generated = await generateKeyPair();
      await this.addKeyPair({ id: crypto.randomUUID(), ...generated });
      await this.#loadSelfPair();
    }
    await this.sweep();
    this.health.start();
    const every = Math.max(
      1000,
      this.options.staleAfterMs ?? DEFAULT_TIMING.updateIntervalMs,
    );
    const loop = () => {
      this.#sweeper = this.#clock.setTimeout(() => {
        this.sweep().finally(loop);
      }, every);
    };
    loop();
  }

  /** Adds a key pair (PEMs trimmed); it becomes the signing pair. */
  async addKeyPair(pair: KeyPair): Promise<KeyPair> {
    const clean = {
      id: pair.id || crypto.randomUUID(),
      public: trimPem(pair.public),
      private: trimPem(pair.private),
    };
    await this.storage.addKey(clean);
    this.#trusted.add(clean.public, clean.id);
    this.#selfPair = { ...clean, deleted: false };
    return clean;
  }

  /**
   * A key pair by id, deleted or not. Reads are cached briefly and shared,
   * so a getKites answer costs one lookup per distinct pair, not per kite.
   */
  keyPair(id: string): Promise<StoredKeyPair | undefined> {
    return this.#cachedPair(
      this.#pairsById,
      id,
      () => this.storage.getKeyFromId(id),
    );
  }

  /** A key pair by public key PEM, deleted or not; cached as {@linkcode Kontrol.keyPair}. */
  keyPairFromPublic(publicKey: string): Promise<StoredKeyPair | undefined> {
    const pem = trimPem(publicKey);
    return this.#cachedPair(
      this.#pairsByPublic,
      pem,
      () => this.storage.getKeyFromPublic(pem),
    );
  }

  #cachedPair(
    pairs: PairCache,
    key: string,
    load: () => Promise<StoredKeyPair | undefined>,
  ): Promise<StoredKeyPair | undefined> {
    const now = this.#clock.now();
    const hit = pairs.get(key);
    if (hit && hit.until > now) return hit.pair;
    let pair: Promise<StoredKeyPair | undefined>;
    try {
      pair = load();
    } catch (err) {
      return Promise.reject(err); // e.g. an id the storage cannot hold
    }
    const entry = { pair, until: now + KEY_PAIR_CACHE_MS };
    pairs.set(key, entry);
    // Only found pairs are kept: a failure or a miss is asked again next time.
    const forget = () => {
      if (pairs.get(key) === entry) pairs.delete(key);
    };
    pair.then((found) => found || forget(), forget);
    return pair;
  }

  /** Retires a key pair: it stays trusted so its kites can re-register and get a new key (docs/protocol.md §8.7). */
  async deleteKeyPair(id: string): Promise<void> {
    await this.storage.deleteKey(id);
    this.#pairsById.clear();
    this.#pairsByPublic.clear();
    if (this.#selfPair?.id === id) this.#selfPair = undefined;
    await this.#loadSelfPair();
    if (!this.#selfPair) {
      throw new Error("no key pair left to sign with; add one first");
    }
  }

  /**
   * {@linkcode Kontrol.selfPair}, once {@linkcode Kontrol.init} has settled
   * it (at once when it has).
   * @throws {Error} when Kontrol has no pair (init not called, or failed).
   */
  async currentPair(): Promise<StoredKeyPair> {
    await this.#initialized;
    return this.selfPair;
  }

  /** The pair new kite keys and tokens are signed with: the newest live one. */
  get selfPair(): StoredKeyPair {
    if (!this.#selfPair) {
      throw new Error("Kontrol has no key pair; call init() first");
    }
    return this.#selfPair;
  }

  async #loadSelfPair(): Promise<void> {
    const all = await this.storage.listKeys();
    // Tokens signed by any pair, even a retired one, are Kontrol's own.
    for (const k of all) {
      if (!this.#trusted.has(k.public)) this.#trusted.add(k.public, k.id);
    }
    const live = all.filter((k) => !k.deleted);
    this.#selfPair = live[live.length - 1];
  }

  /** Signs a kite.key for `username` with the current pair (like `kontrol -initial`). */
  async signKiteKey(username: string): Promise<string> {
    const pair = await this.currentPair();
    return await signKiteKey({
      username,
      kontrolUser: this.username,
      kontrolURL: this.kontrolURL,
      publicKeyPem: pair.public,
      privateKeyPem: pair.private,
      clock: this.#clock,
    });
  }

  /**
   * Deletes entries nobody refreshed for `staleAfterMs` — e.g. kites of a
   * previous run that never came back. Live kites refresh well within it.
   */
  async sweep(): Promise<void> {
    const maxAge = this.options.staleAfterMs ?? 90_000;
    const storage = this.storage;
    try {
      // One clock decides (the storage's, spec'd in Storage.deleteOlderThan):
      // this Kontrol's clock against other Kontrols' stamps would delete
      // their live kites whenever the clocks differ.
      const gone = storage.deleteOlderThan
        ? await storage.deleteOlderThan(maxAge)
        : await storage.deleteStale(this.#clock.now() - maxAge);
      for (const k of gone) this.kite.logger.debug(`swept stale kite ${k.id}`);
    } catch (err) {
      this.kite.logger.warning(
        `sweeping stale kites failed: ${(err as Error).message}`,
      );
    }
  }

  /** False while the storage fails: see {@linkcode Kontrol.requireHealthy}. */
  get healthy(): boolean {
    return this.health.healthy;
  }

  /**
   * Refuses while the storage fails ({@linkcode KONTROL_UNAVAILABLE}): a
   * kite then moves to another Kontrol of its list rather than waiting for
   * this one.
   * @throws {KiteError} `genericError` while unhealthy.
   */
  requireHealthy(): void {
    if (this.health.healthy) return;
    throw new KiteError(
      "genericError",
      `${KONTROL_UNAVAILABLE} Kontrol ${this.kontrolURL} cannot use its ${this.storage.engine} storage (${this.health.problem}); use another Kontrol`,
    );
  }

  /** A cheap read of the storage, bounded by the storage's own timeout. */
  #probe(): Promise<unknown> {
    const pair = this.#selfPair;
    return pair ? this.storage.getKeyFromId(pair.id) : this.storage.listKeys();
  }

  #stop(): void {
    this.health.stop();
    if (this.#sweeper !== undefined) this.#clock.clearTimeout(this.#sweeper);
    this.registry.close();
  }
}
