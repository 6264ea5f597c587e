/**
 * Kontrol storage on PostgreSQL (`npm:postgres`), with the Go Kontrol's
 * schema so a Go Kontrol and ours can share one database (docs/protocol.md §8.8).
 *
 * Tables (schema `kite`, created by the migrations in
 * `storage/postgres/schema.ts`, which also documents roles and grants):
 *
 * - `kite.key (id uuid PK, public text UNIQUE, private text UNIQUE,
 *   created_at, deleted_at)` — key pairs; `deleteKey` sets `deleted_at`.
 * - `kite.kite (username, environment, kitename, version, region, hostname
 *   text, id uuid PK, url text, created_at, updated_at timestamptz,
 *   key_id uuid → kite.key)`, UNLOGGED — registrations.
 * - `kite.machine_code (digest text PK, expires_at, username, used)` —
 *   one-time codes of `registerMachine`, as SHA-256 digests
 *   (`storage/postgres_codes.ts`; ours alone, not in Go's schema).
 *
 * Because `id` and `key_id` are `uuid` columns, kite ids and key pair ids
 * must be UUIDs with this engine; anything else is a `TypeError`.
 *
 * `kite.kite` is UNLOGGED, as in Go: after a PostgreSQL crash it comes back
 * empty. Each instance notices the restart (the server's start time,
 * `pg_postmaster_start_time()`, read whenever its LISTEN connection is
 * re-established) and tells its `onReset` listeners: Kontrol then writes
 * back every kite it supervises, as the etcd adapter does after losing its
 * lease.
 *
 * Liveness uses the database's clock: without a `clock` option, `updated_at`
 * is the server's `now()` and {@linkcode PostgresStorage.deleteOlderThan}
 * compares with `now()`, so Kontrols whose clocks differ agree on what is
 * stale.
 *
 * `watch` LISTENs on the `kite_events` channel, which a trigger on
 * `kite.kite` NOTIFYs on every insert and delete, so every Kontrol on the
 * database sees every registration — including a Go Kontrol's. Events that
 * happen while the LISTEN connection is down are missed; `onWatchGap`
 * listeners hear when it is back, so watchers can read the set again.
 *
 * Every operation is bounded by `timeoutMs` (and each connection attempt by
 * `connectTimeoutSeconds`) and fails with a {@linkcode PostgresStorageError}
 * when PostgreSQL is unreachable; the pool reconnects by itself when it is
 * back. Sessions use `TimeZone=UTC`. A Go Kontrol writes `updated_at` as
 * `now() at time zone 'utc'`, which is only right when its session time
 * zone is UTC too: when sharing a database, run PostgreSQL with
 * `timezone = 'UTC'`, or the two cleaners disagree on what is stale.
 *
 * A write resolves once this instance's own watchers have seen its event
 * (waiting at most a second), as with the in-memory storage.
 *
 * Permissions: besides `--allow-net` to the server, the driver reads the
 * environment variables `PGAPPNAME` and `PGTARGETSESSIONATTRS`, and
 * `PGPASSWORD` when no password is given: grant them with `--allow-env`.
 *
 * @example
 * ```ts
 * import { PostgresStorage, postgresOptionsFromEnv } from "./postgres.ts";
 *
 * const storage = await PostgresStorage.connect(postgresOptionsFromEnv());
 * const stopCleaner = storage.startCleaner();
 * // … serve Kontrol …
 * stopCleaner();
 * await storage.close();
 * ```
 *
 * @module
 */
import { contractsPart } from "./record.ts";
import postgres from "postgres";
import {
  type KiteIdentity,
  type KontrolQuery,
  makeIdentity,
  makeQuery,
  QUERY_FIELDS,
} from "../kite/protocol.ts";
import { type Clock, systemClock } from "../kite/clock.ts";
import { compileQuery } from "./query.ts";
import { WatcherSet } from "./events.ts";
import {
  BOOTSTRAP_SQL,
  KITE_EVENTS_CHANNEL,
  LATEST_SCHEMA_VERSION,
  MIGRATIONS,
  UUID_EXTENSION_SQL,
} from "./postgres/schema.ts";
import * as codes from "./postgres_codes.ts";
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

export { LATEST_SCHEMA_VERSION, schemaSql } from "./postgres/schema.ts";

// Types the API mentions, so this entry point documents on its own.
export { QUERY_FIELDS } from "../kite/protocol.ts";
export type {
  KiteIdentity,
  KontrolQuery,
  QueryField,
} from "../kite/protocol.ts";
export type { Clock } from "../kite/clock.ts";
export type * from "./storage.ts";

/** Default host (docs/protocol.md §8.1). */
export const DEFAULT_POSTGRES_HOST = "localhost";
/** Default port (docs/protocol.md §8.1). */
export const DEFAULT_POSTGRES_PORT = 5432;
/** Default connect timeout in seconds (docs/protocol.md §8.1). */
export const DEFAULT_POSTGRES_CONNECT_TIMEOUT_SECONDS = 20;
/** Default bound on one storage operation. */
export const DEFAULT_POSTGRES_TIMEOUT_MS = 10_000;
/** Default pool size. */
export const DEFAULT_POSTGRES_MAX_CONNECTIONS = 10;
/** Go's cleaner interval (docs/protocol.md §8.5). */
export const DEFAULT_CLEANER_INTERVAL_MS = 120_000;
/** Go's `KeyTTL`: rows older than this are stale (docs/protocol.md §8.5). */
export const DEFAULT_CLEANER_MAX_AGE_MS = 90_000;

/** Options for {@linkcode PostgresStorage}. */
export interface PostgresStorageOptions extends StorageOptions {
  /** Server host. @default {"localhost"} */
  host?: string;
  /** Server port. @default {5432} */
  port?: number;
  /** Login role (required, as in Go). */
  username: string;
  /** Its password, if the server asks for one. */
  password?: string;
  /** Database name (required, as in Go). */
  database: string;
  /** Bound on each connection attempt, in seconds. @default {20} */
  connectTimeoutSeconds?: number;
  /** Bound on each operation, in ms; also the server's `statement_timeout`. @default {10_000} */
  timeoutMs?: number;
  /** Pool size. @default {10} */
  maxConnections?: number;
  /**
   * Create or upgrade the schema on first use. When false, a schema older
   * than {@linkcode LATEST_SCHEMA_VERSION} is an error. @default {true}
   */
  migrate?: boolean;
  /** Receives background failures (LISTEN connection, cleaner). @default {console.error} */
  onError?: (error: Error) => void;
}

/** A PostgreSQL operation failed or timed out; `cause` holds the driver's error. */
export class PostgresStorageError extends Error {
  /** Creates the error with a message naming the operation and server. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PostgresStorageError";
  }
}

/**
 * Reads `KONTROL_POSTGRES_HOST`, `…_PORT`, `…_USERNAME`, `…_PASSWORD`,
 * `…_DBNAME` and `…_CONNECTTIMEOUT` (seconds) as the Go Kontrol does
 * (docs/protocol.md §7.1, §8.1): host `localhost`, port 5432 and timeout 20 by default;
 * username and database name are required.
 * @throws {TypeError} when a required variable is missing or a number is not
 * an integer.
 */
export function postgresOptionsFromEnv(
  env: { get(name: string): string | undefined } = Deno.env,
): PostgresStorageOptions {
  const read = (name: string) => {
    const v = env.get(`KONTROL_POSTGRES_${name}`);
    return v === undefined || v === "" ? undefined : v;
  };
  const int = (name: string, fallback: number) => {
    const v = read(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) {
      throw new TypeError(
        `KONTROL_POSTGRES_${name} must be a non-negative integer, got ${
          JSON.stringify(v)
        }`,
      );
    }
    return n;
  };
  const username = read("USERNAME");
  const database = read("DBNAME");
  if (username === undefined || database === undefined) {
    throw new TypeError(
      "KONTROL_POSTGRES_USERNAME and KONTROL_POSTGRES_DBNAME are required for PostgreSQL storage",
    );
  }
  return {
    host: read("HOST") ?? DEFAULT_POSTGRES_HOST,
    port: int("PORT", DEFAULT_POSTGRES_PORT),
    username,
    password: read("PASSWORD"),
    database,
    connectTimeoutSeconds: int(
      "CONNECTTIMEOUT",
      DEFAULT_POSTGRES_CONNECT_TIMEOUT_SECONDS,
    ),
  };
}

const UUID_RE =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function checkUuid(value: unknown, what: string): string {
  if (typeof value !== "string" || !UUID_RE.test(value)) {
    throw new TypeError(
      `${what} must be a UUID with PostgreSQL storage (a uuid column, docs/protocol.md §8.8), got ${
        JSON.stringify(value)
      }`,
    );
  }
  return value;
}

function checkRecord(record: KiteRecord): void {
  for (const f of QUERY_FIELDS) {
    if (typeof record?.kite?.[f] !== "string") {
      throw new TypeError(`kite.${f} must be a string`);
    }
  }
  checkUuid(record.kite.id, "kite id");
  checkUuid(record.keyId, "key pair id (keyId)");
  if (typeof record.url !== "string") {
    throw new TypeError("url must be a string");
  }
}

/** The column that holds each identity field (Go names `name` `kitename`). */
const COLUMN: Record<string, string> = {
  username: "username",
  environment: "environment",
  name: "kitename",
  version: "version",
  region: "region",
  hostname: "hostname",
  id: "id",
};

interface KiteRow {
  username: string;
  environment: string;
  kitename: string;
  version: string;
  region: string;
  hostname: string;
  id: string;
  url: string;
  updated_at: Date;
  key_id: string;
  contracts?: unknown;
}

interface KeyRow {
  id: string;
  public: string;
  private: string;
  deleted: boolean;
}

function kiteFromRow(row: KiteRow): StoredKite {
  return {
    kite: makeIdentity({
      name: row.kitename,
      username: row.username,
      id: row.id,
      environment: row.environment,
      region: row.region,
      version: row.version,
      hostname: row.hostname,
    }),
    url: row.url,
    keyId: row.key_id,
    updatedAt: row.updated_at.getTime(),
    ...contractsPart(row.contracts),
  };
}

function keyFromRow(row: KeyRow): StoredKeyPair {
  return {
    id: row.id,
    public: row.public,
    private: row.private,
    deleted: row.deleted,
  };
}

/** An error from the server with a SQLSTATE code. */
function sqlState(err: unknown): string | undefined {
  return err instanceof postgres.PostgresError ? err.code : undefined;
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
    super(`key pair ${id} or its public or private key already exists`);
    this.name = "KeyExistsError";
  }
}

/** A kite whose `keyId` names no stored key pair (foreign key). */
class UnknownKeyError extends Error {
  constructor(keyId: string) {
    super(`no key pair with id ${keyId}: store it with addKey() first`);
    this.name = "UnknownKeyError";
  }
}

const PASS_THROUGH = [
  TypeError,
  KiteExistsError,
  KeyExistsError,
  UnknownKeyError,
];

/** npm:postgres options, some of which its types do not declare. */
type DriverOptions = postgres.Options<Record<string, never>>;

/** Serializes concurrent schema migrations of several Kontrols. */
const MIGRATION_LOCK = 0x6b697465; // "kite"
const LISTEN_MIN_DELAY_MS = 100;
const LISTEN_MAX_DELAY_MS = 2_000;
/** Longest a write waits for its own notification (see #caughtUp). */
const CATCH_UP_MS = 1_000;
/** Bound on the write stamps kept for deleteOwn (see #stamps). */
const MAX_STAMPS = 100_000;

/**
 * {@linkcode Storage} on PostgreSQL. Use {@linkcode PostgresStorage.connect}
 * to get an instance whose schema is in place and whose LISTEN is
 * established; a constructed one does that on its first call.
 */
export class PostgresStorage implements Storage, CodeStorage {
  /** `postgres`. */
  readonly engine: string = "postgres";
  readonly #sql: postgres.Sql;
  readonly #listenSql: postgres.Sql;
  readonly #clock: Clock;
  /** No clock given: stamps and staleness use the server's `now()`. */
  readonly #serverClock: boolean;
  readonly #timeoutMs: number;
  readonly #where: string;
  readonly #username: string;
  readonly #migrate: boolean;
  readonly #onError: (error: Error) => void;
  readonly #watchers = new WatcherSet();
  readonly #cleaners = new Set<() => void>();
  #ready: Promise<void> | undefined;
  #listenTimer: ReturnType<typeof setTimeout> | undefined;
  #listenDelay = LISTEN_MIN_DELAY_MS;
  #listenFailureReported = false;
  #listening = false;
  readonly #syncWaiters = new Map<string, () => void>();
  /**
   * The `updated_at` of this instance's last write of each kite it has not
   * deleted (server text, exact): the proof for
   * {@linkcode PostgresStorage.deleteOwn}. At most {@linkcode MAX_STAMPS},
   * oldest dropped first (such a kite is then left to the stale sweep).
   */
  readonly #stamps = new Map<string, string>();
  readonly #resetListeners = new Set<() => void>();
  /** `pg_postmaster_start_time()` when last listened. */
  #serverStart: string | undefined;
  #closed = false;

  /** Creates the connection pools; nothing connects before the first call. */
  constructor(options: PostgresStorageOptions) {
    if (typeof options?.username !== "string" || options.username === "") {
      throw new TypeError("PostgresStorage needs a username");
    }
    if (typeof options.database !== "string" || options.database === "") {
      throw new TypeError("PostgresStorage needs a database name");
    }
    const host = options.host ?? DEFAULT_POSTGRES_HOST;
    const port = options.port ?? DEFAULT_POSTGRES_PORT;
    const timeoutMs = options.timeoutMs ?? DEFAULT_POSTGRES_TIMEOUT_MS;
    if (!(timeoutMs > 0)) {
      throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
    }
    const connectTimeout = options.connectTimeoutSeconds ??
      DEFAULT_POSTGRES_CONNECT_TIMEOUT_SECONDS;
    if (!(connectTimeout > 0)) {
      throw new RangeError(
        `connectTimeoutSeconds must be positive, got ${connectTimeout}`,
      );
    }
    this.#clock = options.clock ?? systemClock;
    this.#serverClock = options.clock === undefined;
    this.#timeoutMs = timeoutMs;
    this.#where = `${host}:${port}/${options.database}`;
    this.#username = options.username;
    this.#migrate = options.migrate ?? true;
    this.#onError = options.onError ??
      ((err) => console.error("PostgresStorage:", err));
    // Every driver setting is given, so npm:postgres reads as few PG*
    // environment variables as it can: it still reads PGAPPNAME and
    // PGTARGETSESSIONATTRS, and PGPASSWORD when there is no password.
    const common = {
      host,
      port,
      username: options.username,
      password: options.password ?? "",
      database: options.database,
      ssl: false,
      sslnegotiation: null,
      connect_timeout: connectTimeout,
      // Reconnect promptly once the server is back (the driver's default
      // waits up to 20 s after repeated failures).
      backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 1),
      keep_alive: 60,
      max_pipeline: 100,
      prepare: true,
      debug: false,
      publications: "alltables",
      target_session_attrs: null,
      onnotice: () => {},
      connection: {
        application_name: "kite-kontrol",
        TimeZone: "UTC",
        client_min_messages: "warning",
        statement_timeout: timeoutMs,
      },
    };
    this.#sql = postgres({
      ...common,
      max: options.maxConnections ?? DEFAULT_POSTGRES_MAX_CONNECTIONS,
      idle_timeout: 60,
      // Jittered like the driver's default, so pools do not recycle at once.
      max_lifetime: 60 * (30 + Math.random() * 30),
      // No array-type lookup on connect: the driver runs it as a promise
      // nobody awaits, so a reset during it (a server going away) was an
      // unhandled rejection that ended the process. The schema has no
      // array columns, so the lookup bought nothing.
      fetch_types: false,
    } as unknown as DriverOptions);
    this.#listenSql = postgres({
      ...common,
      max: 1,
      idle_timeout: null,
      // One long-lived connection: recycling it would drop notifications.
      max_lifetime: null,
      fetch_types: false,
      onclose: () => this.#onListenClosed(),
      // Not in the driver's types, but how it hands out NOTIFY messages.
      onnotify: (_channel: string, payload: string) => this.#onNotify(payload),
    } as unknown as DriverOptions);
  }

  /**
   * Creates a storage, applies the schema migrations (unless
   * `migrate: false`) and starts listening for kite events.
   * @throws {PostgresStorageError} when the server is unreachable or the
   * schema cannot be brought up to date.
   */
  static async connect(
    options: PostgresStorageOptions,
  ): Promise<PostgresStorage> {
    const storage = new PostgresStorage(options);
    try {
      await storage.#ensureReady();
    } catch (err) {
      await storage.close();
      throw err;
    }
    return storage;
  }

  /** The schema version recorded in the database (0 when none). */
  schemaVersion(): Promise<number> {
    return this.#bounded("schemaVersion", () => this.#readSchemaVersion());
  }

  async #readSchemaVersion(): Promise<number> {
    const [{ exists }] = await this.#sql<[{ exists: boolean }]>`
      SELECT to_regclass('kite.schema_migrations') IS NOT NULL AS exists`;
    if (!exists) return 0;
    const [{ version }] = await this.#sql<[{ version: number }]>`
      SELECT coalesce(max(version), 0) AS version FROM kite.schema_migrations`;
    return version;
  }

  /** Runs once: schema, then LISTEN; after a failure the next call retries. */
  #ensureReady(): Promise<void> {
    if (!this.#ready) {
      const ready = this.#bounded("connect", async () => {
        await this.#migrateSchema();
        await this.#listen();
      });
      this.#ready = ready;
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = undefined;
      });
    }
    return this.#ready;
  }

  async #migrateSchema(): Promise<void> {
    const current = await this.#readSchemaVersion();
    if (current >= LATEST_SCHEMA_VERSION) return;
    if (!this.#migrate) {
      throw new PostgresStorageError(
        `PostgreSQL schema at ${this.#where} is at version ${current}, ${LATEST_SCHEMA_VERSION} needed, and migrate is false: apply schemaSql() as the owner`,
      );
    }
    try {
      await this.#sql.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
        for (const statement of BOOTSTRAP_SQL) await tx.unsafe(statement);
        const applied = new Set(
          (await tx<
            { version: number }[]
          >`SELECT version FROM kite.schema_migrations`)
            .map((r) => r.version),
        );
        if (MIGRATIONS.every((m) => applied.has(m.version))) return;
        await tx.unsafe(UUID_EXTENSION_SQL);
        const [{ ossp }] = await tx<[{ ossp: boolean }]>`
          SELECT to_regprocedure('uuid_generate_v4()') IS NOT NULL AS ossp`;
        const uuidDefault = ossp ? "uuid_generate_v4()" : "gen_random_uuid()";
        for (const m of MIGRATIONS) {
          if (applied.has(m.version)) continue;
          for (const statement of m.statements(uuidDefault)) {
            await tx.unsafe(statement);
          }
          await tx`INSERT INTO kite.schema_migrations (version, description)
            VALUES (${m.version}, ${m.description})`;
        }
      });
    } catch (err) {
      if (sqlState(err) === "42501") {
        throw new PostgresStorageError(
          `PostgreSQL schema at ${this.#where} is at version ${current}, ${LATEST_SCHEMA_VERSION} needed, and user ${this.#username} may not create it: apply schemaSql() once as the owner`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  // -- LISTEN ----------------------------------------------------------------

  async #listen(): Promise<void> {
    await this.#listenSql.unsafe(`LISTEN ${KITE_EVENTS_CHANNEL}`);
    const relisten = this.#serverStart !== undefined;
    const [{ started }] = await this.#listenSql<[{ started: string }]>`
      SELECT pg_postmaster_start_time()::text AS started`;
    const restarted = relisten && started !== this.#serverStart;
    this.#serverStart = started;
    this.#listening = true;
    this.#listenDelay = LISTEN_MIN_DELAY_MS;
    this.#listenFailureReported = false;
    if (restarted) {
      // A crash empties the UNLOGGED kite.kite: writers put theirs back.
      for (const listener of [...this.#resetListeners]) {
        try {
          listener();
        } catch (err) {
          this.#onError(err instanceof Error ? err : new Error(String(err)));
        }
      }
    }
    // Events may have passed while the connection was down.
    if (relisten) this.#watchers.gap();
  }

  /**
   * Calls `listener` when the server restarted (seen when the LISTEN
   * connection is re-established): after a crash `kite.kite` is empty,
   * and whoever supervises kites should write them back.
   */
  onReset(listener: () => void): Unsubscribe {
    this.#resetListeners.add(listener);
    return () => void this.#resetListeners.delete(listener);
  }

  #stamp(id: string, stamp: string): void {
    this.#stamps.delete(id); // re-inserted last: the map is oldest first
    this.#stamps.set(id, stamp);
    if (this.#stamps.size > MAX_STAMPS) {
      this.#stamps.delete(this.#stamps.keys().next().value!);
    }
  }

  /** The LISTEN connection closed (server restart, network): listen again. */
  #onListenClosed(): void {
    this.#listening = false;
    if (this.#closed || this.#ready === undefined) return;
    this.#scheduleListen();
  }

  #scheduleListen(): void {
    if (this.#closed || this.#listenTimer !== undefined) return;
    this.#listenTimer = setTimeout(async () => {
      try {
        await this.#bounded("LISTEN", () => this.#listen());
        this.#listenTimer = undefined;
      } catch (err) {
        this.#listenTimer = undefined;
        if (this.#closed) return;
        if (!this.#listenFailureReported) {
          this.#listenFailureReported = true;
          this.#onError(
            new PostgresStorageError(
              `lost the LISTEN connection to ${this.#where}, retrying; watch events are missed until it is back`,
              { cause: err },
            ),
          );
        }
        this.#listenDelay = Math.min(
          this.#listenDelay * 2,
          LISTEN_MAX_DELAY_MS,
        );
        this.#scheduleListen();
      }
    }, this.#listenDelay);
  }

  #onNotify(payload: string): void {
    let message: {
      action?: unknown;
      kite?: Record<string, unknown>;
      url?: unknown;
      keyId?: unknown;
      id?: unknown;
      truncated?: boolean;
      sync?: unknown;
    };
    try {
      message = JSON.parse(payload);
    } catch (err) {
      this.#onError(
        new PostgresStorageError(`unreadable kite event: ${payload}`, {
          cause: err,
        }),
      );
      return;
    }
    if (typeof message.sync === "string") {
      this.#syncWaiters.get(message.sync)?.();
      return;
    }
    const action = message.action;
    if (action !== "REGISTER" && action !== "DEREGISTER") return;
    if (message.truncated) {
      this.#onTruncated(action, String(message.id));
      return;
    }
    const k = message.kite ?? {};
    const kite = makeIdentity({
      name: String(k.name ?? ""),
      username: String(k.username ?? ""),
      id: String(k.id ?? ""),
      environment: String(k.environment ?? ""),
      region: String(k.region ?? ""),
      version: String(k.version ?? ""),
      hostname: String(k.hostname ?? ""),
    });
    this.#watchers.emit(
      action === "REGISTER"
        ? {
          action,
          kite,
          url: String(message.url),
          keyId: String(message.keyId),
        }
        : { action, kite },
    );
  }

  /** The trigger sent only the id: the row was too large for a NOTIFY. */
  #onTruncated(action: "REGISTER" | "DEREGISTER", id: string): void {
    if (action === "DEREGISTER") {
      this.#onError(
        new PostgresStorageError(
          `DEREGISTER of kite ${id} not delivered: its identity is too large for a notification`,
        ),
      );
      return;
    }
    this.get(makeQuery({ id }))
      .then((found) => {
        for (const s of found) {
          this.#watchers.emit({
            action,
            kite: s.kite,
            url: s.url,
            keyId: s.keyId,
          });
        }
      })
      .catch((err) => this.#onError(err));
  }

  // -- plumbing -------------------------------------------------------------

  /** Runs `fn` within the operation bound, mapping failures to clear errors. */
  async #bounded<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closed) {
      throw new PostgresStorageError(`PostgreSQL ${what}: storage is closed`);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new PostgresStorageError(
              `PostgreSQL ${what}: no answer from ${this.#where} within ${this.#timeoutMs} ms`,
            ),
          ),
        this.#timeoutMs,
      );
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      if (err instanceof PostgresStorageError) throw err;
      if (PASS_THROUGH.some((type) => err instanceof type)) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new PostgresStorageError(
        `PostgreSQL ${what} failed (${this.#where}): ${message}`,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for the schema and LISTEN, then runs a bounded operation. */
  async #op<T>(
    what: string,
    fn: (sql: postgres.Sql) => Promise<T>,
  ): Promise<T> {
    await this.#ensureReady();
    return await this.#bounded(what, () => fn(this.#sql));
  }

  /**
   * Waits (briefly) until this instance's LISTEN connection has received
   * the notifications of a write it just committed, so that when a write
   * resolves, local watchers have seen it — as with the in-memory storage.
   * NOTIFYs reach a listener in commit order, so a marker sent after the
   * write arrives after the write's own events. Gives up quietly: the
   * write is done, and a slow LISTEN must not turn it into an error.
   */
  async #caughtUp(sql: postgres.Sql): Promise<void> {
    if (this.#watchers.size === 0 || !this.#listening) return;
    const token = crypto.randomUUID();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const seen = new Promise<void>((resolve) => {
      this.#syncWaiters.set(token, resolve);
      timer = setTimeout(resolve, CATCH_UP_MS);
    });
    try {
      await sql`SELECT pg_notify(${KITE_EVENTS_CHANNEL}, ${
        JSON.stringify({ sync: token })
      })`;
      await seen;
    } catch {
      // The write committed; only the wait for its echo failed.
    } finally {
      clearTimeout(timer);
      this.#syncWaiters.delete(token);
    }
  }

  // -- kites ----------------------------------------------------------------

  /** Inserts a kite. @throws {Error} when a kite with that id exists. */
  add(record: KiteRecord): Promise<void> {
    checkRecord(record);
    return this.#op("add", async (sql) => {
      const k = record.kite;
      const at = this.#now(sql);
      try {
        const [{ stamp }] = await sql<[{ stamp: string }]>`
          INSERT INTO kite.kite (username, environment, kitename,
            version, region, hostname, id, url, created_at, updated_at, key_id)
          VALUES (${k.username}, ${k.environment}, ${k.name}, ${k.version},
            ${k.region}, ${k.hostname}, ${k.id}, ${record.url}, ${at}, ${at},
            ${record.keyId})
          RETURNING updated_at::text AS stamp`;
        this.#stamp(k.id, stamp);
        await this.#setContracts(sql, k.id, record.contracts);
      } catch (err) {
        if (sqlState(err) === "23505") throw new KiteExistsError(k.id);
        if (sqlState(err) === "23503") throw new UnknownKeyError(record.keyId);
        throw err;
      }
      await this.#caughtUp(sql);
    });
  }

  /** Refreshes url and updatedAt (keeping the stored keyId); inserts when missing. */
  update(record: KiteRecord): Promise<void> {
    checkRecord(record);
    return this.#op("update", (sql) => this.#write(sql, record, false));
  }

  /** Inserts or replaces a kite (identity, url, keyId). */
  upsert(record: KiteRecord): Promise<void> {
    checkRecord(record);
    return this.#op("upsert", (sql) => this.#write(sql, record, true));
  }

  /** The time a write stamps: the server's `now()` unless a clock was given. */
  #now(sql: postgres.Sql): postgres.Fragment {
    return this.#serverClock
      ? sql`now()`
      : sql`${new Date(this.#clock.now())}::timestamptz`;
  }

  async #write(
    sql: postgres.Sql,
    record: KiteRecord,
    replaceKeyId: boolean,
  ): Promise<void> {
    const k = record.kite;
    const at = this.#now(sql);
    try {
      const [{ stamp }] = await sql<[{ stamp: string }]>`
        INSERT INTO kite.kite (username, environment, kitename,
          version, region, hostname, id, url, created_at, updated_at, key_id)
        VALUES (${k.username}, ${k.environment}, ${k.name}, ${k.version},
          ${k.region}, ${k.hostname}, ${k.id}, ${record.url}, ${at}, ${at},
          ${record.keyId})
        ON CONFLICT (id) DO UPDATE SET
          username = EXCLUDED.username,
          environment = EXCLUDED.environment,
          kitename = EXCLUDED.kitename,
          version = EXCLUDED.version,
          region = EXCLUDED.region,
          hostname = EXCLUDED.hostname,
          url = EXCLUDED.url,
          updated_at = EXCLUDED.updated_at,
          key_id = ${
        replaceKeyId ? sql`EXCLUDED.key_id` : sql`kite.kite.key_id`
      }
        RETURNING updated_at::text AS stamp`;
      this.#stamp(k.id, stamp);
      await this.#setContracts(sql, k.id, record.contracts);
    } catch (err) {
      if (sqlState(err) === "23503") throw new UnknownKeyError(record.keyId);
      throw err;
    }
    await this.#caughtUp(sql);
  }

  /** Writes (or clears) the contracts of kite `id`, just written. */
  async #setContracts(
    sql: postgres.Sql,
    id: string,
    contracts: KiteRecord["contracts"],
  ): Promise<void> {
    const list = contractsPart(contracts).contracts;
    if (list) {
      await sql`INSERT INTO kite.kite_contracts (id, contracts)
        VALUES (${id}, ${sql.json(list as unknown as postgres.JSONValue)})
        ON CONFLICT (id) DO UPDATE SET contracts = EXCLUDED.contracts`;
    } else {
      await sql`DELETE FROM kite.kite_contracts WHERE id = ${id}`;
    }
  }

  /** Removes a kite by id; `true` when something was removed. */
  delete(kite: KiteIdentity): Promise<boolean> {
    const id = checkUuid(kite?.id, "kite id");
    return this.#op("delete", async (sql) => {
      const result = await sql`DELETE FROM kite.kite WHERE id = ${id}`;
      this.#stamps.delete(id);
      if (result.count > 0) await this.#caughtUp(sql);
      return result.count > 0;
    });
  }

  /**
   * Removes a kite unless someone wrote it after this instance's last
   * write (its `updated_at` is later): the kite registered again through
   * another Kontrol. Compares two stamps of the server, no client clock.
   */
  deleteOwn(kite: KiteIdentity): Promise<boolean> {
    const id = checkUuid(kite?.id, "kite id");
    return this.#op("deleteOwn", async (sql) => {
      const stamp = this.#stamps.get(id);
      if (stamp === undefined) return false;
      // Sent as text: the driver rounds a timestamptz parameter to ms.
      const result = await sql`DELETE FROM kite.kite
        WHERE id = ${id} AND updated_at <= ${stamp}::text::timestamptz`;
      if (this.#stamps.get(id) === stamp) this.#stamps.delete(id);
      if (result.count > 0) await this.#caughtUp(sql);
      return result.count > 0;
    });
  }

  /**
   * Kites matching `query` (docs/protocol.md §8.4): equality on the prefix fields in
   * SQL, then the shared filter. @throws {QueryError} for an invalid query.
   */
  get(query: KontrolQuery): Promise<StoredKite[]> {
    const compiled = compileQuery(query);
    if (compiled.query.id !== "") checkUuid(compiled.query.id, "kite id");
    return this.#op("get", async (sql) => {
      const conditions = compiled.idOnly
        ? [sql`id = ${compiled.query.id}`]
        : compiled.prefix.map((value, i) =>
          sql`${sql(COLUMN[QUERY_FIELDS[i]])} = ${value}`
        );
      const where = conditions.length
        ? conditions.reduce((a, b) => sql`${a} AND ${b}`)
        : sql`TRUE`;
      const rows = await sql<KiteRow[]>`
        SELECT username, environment, kitename, version, region, hostname,
          id, url, updated_at, key_id, contracts
        FROM kite.kite LEFT JOIN kite.kite_contracts USING (id)
        WHERE ${where}`;
      return rows.map(kiteFromRow).filter((s) => compiled.matches(s.kite));
    });
  }

  /** Removes kites with `updated_at` before `before` (ms epoch); returns them. */
  deleteStale(before: number): Promise<KiteIdentity[]> {
    if (!Number.isFinite(before)) {
      throw new TypeError(`before must be a time in ms, got ${before}`);
    }
    return this.#op("deleteStale", async (sql) => {
      const rows = await sql<KiteRow[]>`
        DELETE FROM kite.kite WHERE updated_at < ${new Date(before)}
        RETURNING username, environment, kitename, version, region, hostname,
          id, url, updated_at, key_id`;
      return await this.#deleted(sql, rows);
    });
  }

  /**
   * Removes kites whose `updated_at` is more than `maxAgeMs` before the
   * server's `now()` (or the given clock's time); returns them.
   */
  deleteOlderThan(maxAgeMs: number): Promise<KiteIdentity[]> {
    if (!(maxAgeMs >= 0)) {
      throw new RangeError(`maxAgeMs must be >= 0, got ${maxAgeMs}`);
    }
    return this.#op("deleteOlderThan", async (sql) => {
      const limit = this.#serverClock
        ? sql`now() - make_interval(secs => ${maxAgeMs / 1000})`
        : sql`${new Date(this.#clock.now() - maxAgeMs)}::timestamptz`;
      const rows = await sql<KiteRow[]>`
        DELETE FROM kite.kite WHERE updated_at < ${limit}
        RETURNING username, environment, kitename, version, region, hostname,
          id, url, updated_at, key_id`;
      return await this.#deleted(sql, rows);
    });
  }

  async #deleted(sql: postgres.Sql, rows: KiteRow[]): Promise<KiteIdentity[]> {
    for (const row of rows) this.#stamps.delete(row.id);
    if (rows.length > 0) await this.#caughtUp(sql);
    return rows.map((row) => kiteFromRow(row).kite);
  }

  /** Adds a listener told when watch events may have been missed. */
  onWatchGap(listener: () => void): Unsubscribe {
    return this.#watchers.onGap(listener);
  }

  /**
   * Runs {@linkcode PostgresStorage.deleteOlderThan} every `intervalMs` for rows
   * older than `maxAgeMs`, like the Go Kontrol's cleaner (docs/protocol.md §8.5), on
   * the database's clock (see {@linkcode PostgresStorage.deleteOlderThan}). Failures go to `onError`. Returns a stop function;
   * `close` stops it too.
   */
  startCleaner(
    intervalMs: number = DEFAULT_CLEANER_INTERVAL_MS,
    maxAgeMs: number = DEFAULT_CLEANER_MAX_AGE_MS,
  ): () => void {
    if (!(intervalMs > 0) || !(maxAgeMs >= 0)) {
      throw new RangeError(
        `cleaner needs intervalMs > 0 and maxAgeMs >= 0, got ${intervalMs}, ${maxAgeMs}`,
      );
    }
    let stopped = false;
    let handle: number | undefined;
    const tick = async () => {
      try {
        await this.deleteOlderThan(maxAgeMs);
      } catch (err) {
        if (!stopped) {
          this.#onError(err instanceof Error ? err : new Error(String(err)));
        }
      }
      if (!stopped) {
        handle = this.#clock.setTimeout(() => void tick(), intervalMs);
      }
    };
    handle = this.#clock.setTimeout(() => void tick(), intervalMs);
    const stop = () => {
      stopped = true;
      if (handle !== undefined) this.#clock.clearTimeout(handle);
      this.#cleaners.delete(stop);
    };
    this.#cleaners.add(stop);
    return stop;
  }

  /**
   * Calls `listener` for every later REGISTER/DEREGISTER of a matching kite
   * written by any client of the database.
   * @throws {QueryError} for an invalid query.
   */
  watch(
    query: KontrolQuery,
    listener: (event: StorageEvent) => void,
  ): Unsubscribe {
    const unsubscribe = this.#watchers.add(query, listener);
    this.#ensureReady().catch((err) => this.#onError(err));
    return unsubscribe;
  }

  // -- key pairs --------------------------------------------------------------

  /** Stores a key pair. @throws {Error} when its id or public key exists. */
  addKey(pair: KeyPair): Promise<void> {
    const id = checkUuid(pair?.id, "key pair id");
    for (const f of ["public", "private"] as const) {
      if (typeof pair[f] !== "string" || pair[f].trim() === "") {
        throw new TypeError(`key pair ${f} key must be a non-empty PEM string`);
      }
    }
    return this.#op("addKey", async (sql) => {
      try {
        // clock_timestamp(), not now(): keys added in one transaction keep
        // their order (listKeys sorts by created_at).
        await sql`INSERT INTO kite.key (id, public, private, created_at)
          VALUES (${id}, ${pair.public.trim()}, ${pair.private.trim()},
            clock_timestamp())`;
      } catch (err) {
        if (sqlState(err) === "23505") throw new KeyExistsError(id);
        throw err;
      }
    });
  }

  /** Marks a key pair deleted (`deleted_at`); it stays readable. */
  deleteKey(id: string): Promise<void> {
    checkUuid(id, "key pair id");
    return this.#op("deleteKey", async (sql) => {
      await sql`UPDATE kite.key
        SET deleted_at = greatest(clock_timestamp(), created_at)
        WHERE id = ${id} AND deleted_at IS NULL`;
    });
  }

  /** A key pair by id, deleted or not. */
  getKeyFromId(id: string): Promise<StoredKeyPair | undefined> {
    checkUuid(id, "key pair id");
    return this.#op("getKeyFromId", async (sql) => {
      const [row] = await sql<KeyRow[]>`
        SELECT id, public, private, deleted_at IS NOT NULL AS deleted
        FROM kite.key WHERE id = ${id}`;
      return row && keyFromRow(row);
    });
  }

  /** A key pair by public key PEM (trimmed), deleted or not. */
  getKeyFromPublic(publicKey: string): Promise<StoredKeyPair | undefined> {
    if (typeof publicKey !== "string") {
      throw new TypeError("publicKey must be a PEM string");
    }
    return this.#op("getKeyFromPublic", async (sql) => {
      const [row] = await sql<KeyRow[]>`
        SELECT id, public, private, deleted_at IS NOT NULL AS deleted
        FROM kite.key WHERE public = ${publicKey.trim()}`;
      return row && keyFromRow(row);
    });
  }

  /** All key pairs in insertion order. */
  listKeys(): Promise<StoredKeyPair[]> {
    return this.#op("listKeys", async (sql) => {
      const rows = await sql<KeyRow[]>`
        SELECT id, public, private, deleted_at IS NOT NULL AS deleted
        FROM kite.key ORDER BY created_at, id`;
      return rows.map(keyFromRow);
    });
  }

  // -- one-time codes (storage/postgres_codes.ts) ---------------------------

  /** Stores a one-time code unless `max` are held; resolves false then. */
  addCode(code: StoredCode, max: number): Promise<boolean> {
    return this.#op("addCode", (sql) => codes.addCode(sql, code, max));
  }

  /** Marks a one-time code used for `username` (one UPDATE), or says why not. */
  claimCode(digest: string, username: string, now: number): Promise<CodeClaim> {
    return this.#op(
      "claimCode",
      (sql) => codes.claimCode(sql, digest, username, now),
    );
  }

  /** Removes one-time codes expired at `now`; resolves how many. */
  deleteExpiredCodes(now: number): Promise<number> {
    return this.#op(
      "deleteExpiredCodes",
      (sql) => codes.deleteExpiredCodes(sql, now),
    );
  }

  /** Stops cleaners and watches and closes both connection pools. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const stop of [...this.#cleaners]) stop();
    this.#watchers.clear();
    for (const resolve of this.#syncWaiters.values()) resolve();
    clearTimeout(this.#listenTimer);
    this.#listenTimer = undefined;
    // Queries still running get the operation bound, then are cut off.
    const timeout = this.#timeoutMs / 1000;
    await Promise.all([
      this.#sql.end({ timeout }),
      this.#listenSql.end({ timeout }),
    ]);
  }
}
