import postgres from "postgres";
import { ManualClock } from "../kite/clock.ts";
import {
  type KiteIdentity,
  makeIdentity,
  makeQuery,
} from "../kite/protocol.ts";
import {
  LATEST_SCHEMA_VERSION,
  postgresOptionsFromEnv,
  PostgresStorage,
  PostgresStorageError,
  schemaSql,
} from "./postgres.ts";
import { storageConformance } from "./conformance.ts";
import type { KeyPair, StorageEvent } from "./storage.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  assertThrows,
} from "../tests/helpers/assert.ts";
import { startBlackhole } from "../tests/helpers/binaries.ts";
import {
  type PostgresServer,
  startPostgres,
} from "../tests/helpers/postgres_server.ts";
import { eventually, within } from "../tests/helpers/wait.ts";

function kite(name: string, fields: Partial<KiteIdentity> = {}): KiteIdentity {
  return makeIdentity({
    username: "alice",
    environment: "prod",
    name,
    version: "1.0.0",
    region: "eu",
    hostname: "h1",
    id: crypto.randomUUID(),
    ...fields,
  });
}

function keyPair(): KeyPair {
  const tag = crypto.randomUUID();
  return {
    id: crypto.randomUUID(),
    public: `PUB ${tag}`,
    private: `PRIV ${tag}`,
  };
}

Deno.test("postgresOptionsFromEnv() reads KONTROL_POSTGRES_*", () => {
  const env = (vars: Record<string, string>) => ({
    get: (k: string) => vars[k],
  });
  assertEquals(
    postgresOptionsFromEnv(env({
      KONTROL_POSTGRES_USERNAME: "kontrolapplication",
      KONTROL_POSTGRES_DBNAME: "kontrol",
    })),
    {
      host: "localhost",
      port: 5432,
      username: "kontrolapplication",
      password: undefined,
      database: "kontrol",
      connectTimeoutSeconds: 20,
    },
  );
  assertEquals(
    postgresOptionsFromEnv(env({
      KONTROL_POSTGRES_HOST: "db",
      KONTROL_POSTGRES_PORT: "6543",
      KONTROL_POSTGRES_USERNAME: "u",
      KONTROL_POSTGRES_PASSWORD: "p",
      KONTROL_POSTGRES_DBNAME: "d",
      KONTROL_POSTGRES_CONNECTTIMEOUT: "3",
    })),
    {
      host: "db",
      port: 6543,
      username: "u",
      password: "p",
      database: "d",
      connectTimeoutSeconds: 3,
    },
  );
  assertThrows(
    () => postgresOptionsFromEnv(env({ KONTROL_POSTGRES_USERNAME: "u" })),
    TypeError,
    "KONTROL_POSTGRES_DBNAME",
  );
  assertThrows(
    () =>
      postgresOptionsFromEnv(env({
        KONTROL_POSTGRES_USERNAME: "u",
        KONTROL_POSTGRES_DBNAME: "d",
        KONTROL_POSTGRES_PORT: "x",
      })),
    TypeError,
    "KONTROL_POSTGRES_PORT",
  );
});

Deno.test("PostgresStorage times out against a server that never answers", async () => {
  const blackhole = startBlackhole();
  const options = {
    host: "127.0.0.1",
    port: blackhole.port,
    username: "kontrol",
    database: "kontrol",
    connectTimeoutSeconds: 30,
    timeoutMs: 500,
  };
  const storage = new PostgresStorage(options);
  try {
    const err = await within(
      assertRejects(
        () => storage.get(makeQuery({ username: "alice" })),
        PostgresStorageError,
        "within 500 ms",
      ),
      "the storage call",
      10_000,
    );
    assert(
      err.message.includes(`127.0.0.1:${blackhole.port}/kontrol`),
      err.message,
    );
    await within(
      assertRejects(
        () => PostgresStorage.connect(options),
        PostgresStorageError,
      ),
      "the storage call",
      10_000,
    );
  } finally {
    await storage.close();
    await blackhole.close();
  }
});

Deno.test({
  name: "PostgresStorage against a real PostgreSQL",
  async fn(t) {
    const server = await startPostgres();
    const admin = postgres({
      ...server.connection,
      onnotice: () => {},
      max: 2,
    });
    const open: PostgresStorage[] = [];
    const connect = async (
      options: { clock?: ManualClock; onError?: (e: Error) => void } = {},
    ): Promise<PostgresStorage> => {
      const storage = await PostgresStorage.connect({
        ...server.connection,
        connectTimeoutSeconds: 2,
        timeoutMs: 5_000,
        ...options,
      });
      open.push(storage);
      return storage;
    };
    const truncate = () =>
      admin`TRUNCATE kite.kite_contracts, kite.kite, kite.key, kite.machine_code`;
    try {
      await t.step("creates exactly the Go Kontrol schema", async () => {
        const storage = await connect();
        assertEquals(await storage.schemaVersion(), LATEST_SCHEMA_VERSION);
        await checkGoSchema(admin);
      });

      const conformance = (clock?: ManualClock) => async () => {
        await truncate();
        const options = { ...server.connection, clock };
        const storage = await PostgresStorage.connect(options);
        return {
          storage,
          clock,
          openPeer: () => PostgresStorage.connect(options),
          async cleanup() {
            await storage.close();
            await truncate();
          },
        };
      };
      await t.step(
        "passes the storage conformance suite",
        (t) => storageConformance(t, conformance(new ManualClock())),
      );
      await t.step(
        "conforms on the system clock",
        (t) => storageConformance(t, conformance()),
      );

      await t.step("ids must be UUIDs", async () => {
        await truncate();
        const storage = await connect();
        const pair = keyPair();
        await storage.addKey(pair);
        assertThrows(
          () =>
            storage.add({
              kite: kite("x", { id: "not-a-uuid" }),
              url: "u",
              keyId: pair.id,
            }),
          TypeError,
          "kite id must be a UUID",
        );
        assertThrows(
          () => storage.add({ kite: kite("x"), url: "u", keyId: "k1" }),
          TypeError,
          "keyId",
        );
        assertThrows(
          () => storage.addKey({ ...keyPair(), id: "k1" }),
          TypeError,
          "UUID",
        );
        assertThrows(() => storage.getKeyFromId("k1"), TypeError, "UUID");
        assertThrows(
          () => storage.get(makeQuery({ id: "k1" })),
          TypeError,
          "UUID",
        );
        // A kite must name a stored key pair (foreign key, docs/protocol.md §8.8).
        const orphan = crypto.randomUUID();
        const err = await assertRejects(
          () => storage.add({ kite: kite("x"), url: "u", keyId: orphan }),
        );
        assert(err.message.includes(orphan), err.message);
      });

      await t.step(
        "two instances see each other's kites and events",
        async () => {
          await truncate();
          const a = await connect();
          const b = await connect();
          const seenByA: StorageEvent[] = [];
          const seenByB: StorageEvent[] = [];
          a.watch(makeQuery({ username: "alice" }), (e) => seenByA.push(e));
          b.watch(makeQuery({ username: "alice" }), (e) => seenByB.push(e));
          const pair = keyPair();
          await a.addKey(pair);
          assertEquals((await b.getKeyFromId(pair.id))?.public, pair.public);

          const math = kite("math");
          await b.add({
            kite: math,
            url: "http://h1:3636/kite",
            keyId: pair.id,
          });
          assertEquals(
            (await a.get(makeQuery({ username: "alice" }))).map((
              k,
            ) => [k.kite, k.url]),
            [[math, "http://h1:3636/kite"]],
          );
          await eventually(
            () => seenByA.length === 1,
            "A sees B's REGISTER",
            20_000,
          );
          assertEquals(seenByA[0], {
            action: "REGISTER",
            kite: math,
            url: "http://h1:3636/kite",
            keyId: pair.id,
          });
          assert(await a.delete(math));
          await eventually(
            () => seenByB.length === 2,
            "B sees A's DEREGISTER",
            20_000,
          );
          assertEquals(seenByB.map((e) => e.action), [
            "REGISTER",
            "DEREGISTER",
          ]);
          assertEquals(seenByA.map((e) => e.action), [
            "REGISTER",
            "DEREGISTER",
          ]);
        },
      );

      await t.step(
        "startCleaner() deletes rows older than maxAge",
        async () => {
          await truncate();
          const clock = new ManualClock();
          const storage = await connect({ clock });
          const pair = keyPair();
          await storage.addKey(pair);
          const old = kite("old");
          await storage.add({
            kite: old,
            url: "http://old/kite",
            keyId: pair.id,
          });
          const stop = storage.startCleaner(120_000, 90_000);
          try {
            await clock.advance(100_000);
            const fresh = kite("fresh");
            await storage.add({
              kite: fresh,
              url: "http://fresh/kite",
              keyId: pair.id,
            });
            await clock.advance(20_000); // the cleaner runs at 120 s
            await eventually(
              async () =>
                (await storage.get(makeQuery({ id: old.id }))).length === 0,
              "the old kite is cleaned",
              20_000,
            );
            assertEquals(
              (await storage.get(makeQuery({ username: "alice" }))).map((k) =>
                k.kite
              ),
              [fresh],
            );
            assertEquals(clock.pending, 1, "the next run is scheduled");
          } finally {
            stop();
          }
          assertEquals(clock.pending, 0, "stop() cancels the next run");
        },
      );

      await t.step(
        "shares a database created by the Go SQL files",
        async () => {
          await goCompatibility(server, admin);
        },
      );

      await t.step("schemaSql() creates the same schema", async () => {
        await admin`DROP SCHEMA IF EXISTS kite CASCADE`;
        await admin.unsafe(schemaSql()).simple();
        await checkGoSchema(admin);
        const storage = await connect();
        assertEquals(await storage.schemaVersion(), LATEST_SCHEMA_VERSION);
      });

      await t.step(
        "survives a PostgreSQL outage without losing kites",
        async () => {
          await truncate();
          await outage(
            server,
            await connect({ onError: () => {} }),
            await connect(),
          );
        },
      );
    } finally {
      for (const storage of open) await storage.close();
      await admin.end();
      await server.close();
    }
  },
});

interface Column {
  table: string;
  column: string;
  type: string;
  nullable: string;
  default: string | null;
}

/** Compares the catalog with the schema of docs/protocol.md §8.8. */
async function checkGoSchema(admin: postgres.Sql): Promise<void> {
  const columns = await admin<Column[]>`
    SELECT table_name AS table, column_name AS column,
      data_type AS type, is_nullable AS nullable, column_default AS default
    FROM information_schema.columns
    WHERE table_schema = 'kite' AND table_name IN ('key', 'kite')
    ORDER BY table_name, ordinal_position`;
  const tz = "timestamp with time zone";
  // How PostgreSQL 15 prints Go's `DEFAULT (NOW() AT TIME ZONE 'UTC')`;
  // older versions print the same expression as a timezone() call.
  const utcNow = "(now() AT TIME ZONE 'UTC'::text)";
  for (const c of columns) {
    if (c.default === "timezone('UTC'::text, now())") c.default = utcNow;
  }
  const uuidDefault = columns.find((c) =>
    c.table === "key" && c.column === "id"
  )
    ?.default;
  assert(
    uuidDefault === "uuid_generate_v4()" || uuidDefault === "gen_random_uuid()",
    `kite.key.id default: ${uuidDefault}`,
  );
  assertEquals(
    columns.map((c) => [c.table, c.column, c.type, c.nullable, c.default]),
    [
      ["key", "id", "uuid", "NO", uuidDefault],
      ["key", "public", "text", "NO", null],
      ["key", "private", "text", "NO", null],
      ["key", "created_at", tz, "NO", "now()"],
      ["key", "deleted_at", tz, "YES", null],
      ["kite", "username", "text", "NO", null],
      ["kite", "environment", "text", "NO", null],
      ["kite", "kitename", "text", "NO", null],
      ["kite", "version", "text", "NO", null],
      ["kite", "region", "text", "NO", null],
      ["kite", "hostname", "text", "NO", null],
      ["kite", "id", "uuid", "NO", null],
      ["kite", "url", "text", "NO", null],
      ["kite", "created_at", tz, "NO", utcNow],
      ["kite", "updated_at", tz, "NO", utcNow],
      ["kite", "key_id", "uuid", "NO", null],
    ],
  );
  const [{ persistence }] = await admin<[{ persistence: string }]>`
    SELECT relpersistence AS persistence FROM pg_class
    WHERE oid = 'kite.kite'::regclass`;
  assertEquals(persistence, "u", "kite.kite is UNLOGGED");
  const constraints = await admin<{ name: string; def: string }[]>`
    SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
    WHERE conrelid IN ('kite.key'::regclass, 'kite.kite'::regclass)
    ORDER BY conname`;
  assertEquals(constraints.map((c) => [c.name, c.def]), [
    [
      "key_created_at_lte_deleted_at_check",
      "CHECK ((created_at <= deleted_at))",
    ],
    ["key_pkey", "PRIMARY KEY (id)"],
    ["key_private_unique", "UNIQUE (private)"],
    ["key_public_unique", "UNIQUE (public)"],
    ["kite_key_id_fkey", "FOREIGN KEY (key_id) REFERENCES kite.key(id)"],
    ["kite_pkey", "PRIMARY KEY (id)"],
  ]);
  const indexes = await admin<{ name: string; def: string }[]>`
    SELECT indexname AS name, indexdef AS def FROM pg_indexes
    WHERE schemaname = 'kite' AND tablename IN ('key', 'kite')
      AND indexname LIKE '%\\_idx' ORDER BY indexname`;
  assertEquals(indexes.map((i) => i.def.replace(/^.* USING /, "")), [
    "btree (deleted_at DESC, public)", // NULLS FIRST is DESC's default
    "btree (public)",
    "btree (updated_at DESC)",
  ]);
  assertEquals(indexes.map((i) => i.name), [
    "kite_key_deleted_at_public_idx",
    "kite_key_public_idx",
    "kite_updated_at_btree_idx",
  ]);
}

/**
 * Recreates the database as the Go Kontrol's SQL files leave it (docs/protocol.md §8.8:
 * `001-schema.sql`, `002-table.sql`, `003-migration-*.sql`, including the
 * roles), with a row a Go Kontrol wrote, then starts our storage on it.
 */
async function goCompatibility(
  server: PostgresServer,
  admin: postgres.Sql,
): Promise<void> {
  await admin`DROP SCHEMA kite CASCADE`;
  await admin.unsafe(`
    DO $$ BEGIN
      CREATE ROLE kontrol;
    EXCEPTION WHEN duplicate_object THEN NULL; END $$;
    DO $$ BEGIN
      CREATE USER kontrolapplication PASSWORD 'kontrol-test';
    EXCEPTION WHEN duplicate_object THEN NULL; END $$;
    GRANT kontrol TO kontrolapplication;
    CREATE SCHEMA kite;
    GRANT USAGE ON SCHEMA kite TO kontrol;
    CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
    CREATE TABLE kite.key (
      id UUID NOT NULL DEFAULT uuid_generate_v4(),
      public TEXT NOT NULL COLLATE "default",
      private TEXT NOT NULL COLLATE "default",
      created_at timestamp(6) WITH TIME ZONE NOT NULL DEFAULT now(),
      deleted_at timestamp(6) WITH TIME ZONE,
      PRIMARY KEY (id) NOT DEFERRABLE INITIALLY IMMEDIATE,
      CONSTRAINT key_public_unique UNIQUE (public) NOT DEFERRABLE INITIALLY IMMEDIATE,
      CONSTRAINT key_private_unique UNIQUE (private) NOT DEFERRABLE INITIALLY IMMEDIATE,
      CONSTRAINT key_created_at_lte_deleted_at_check CHECK (created_at <= deleted_at)
    );
    GRANT SELECT, INSERT, UPDATE ON kite.key TO kontrolapplication;
    CREATE UNLOGGED TABLE kite.kite (
      username TEXT NOT NULL, environment TEXT NOT NULL, kitename TEXT NOT NULL,
      version TEXT NOT NULL, region TEXT NOT NULL, hostname TEXT NOT NULL,
      id uuid PRIMARY KEY, url TEXT NOT NULL,
      created_at timestamptz NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'),
      updated_at timestamptz NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'),
      key_id UUID NOT NULL,
      CONSTRAINT kite_key_id_fkey FOREIGN KEY (key_id) REFERENCES kite.key (id)
        ON UPDATE NO ACTION ON DELETE NO ACTION NOT DEFERRABLE INITIALLY IMMEDIATE
    );
    GRANT SELECT, INSERT, UPDATE, DELETE ON kite.kite TO kontrol;
    CREATE INDEX kite_updated_at_btree_idx ON kite.kite USING BTREE (updated_at DESC);
    CREATE INDEX kite_key_public_idx ON kite.key USING btree (public);
    CREATE INDEX kite_key_deleted_at_public_idx
      ON kite.key USING btree (deleted_at DESC NULLS FIRST, public);
  `).simple();
  // What a Go Kontrol writes: AddKey, then Upsert's INSERT (docs/protocol.md §8.8).
  const goKey = crypto.randomUUID();
  const goKite = kite("gokite");
  await admin`INSERT INTO kite.key (id, public, private)
    VALUES (${goKey}, 'GO PUB', 'GO PRIV')`;
  await admin`INSERT INTO kite.kite (username, environment, kitename, version,
      region, hostname, id, url, key_id)
    VALUES (${goKite.username}, ${goKite.environment}, ${goKite.name},
      ${goKite.version}, ${goKite.region}, ${goKite.hostname}, ${goKite.id},
      'http://go/kite', ${goKey})`;

  // The Go application role may not create objects: a clear error.
  const restricted = {
    ...server.connection,
    username: "kontrolapplication",
    password: "kontrol-test",
  };
  const err = await assertRejects(
    () => PostgresStorage.connect(restricted),
    PostgresStorageError,
    "apply schemaSql() once as the owner",
  );
  assert(err.message.includes("version 0"), err.message);

  // The owner migrates without touching the Go tables or rows.
  const owner = await PostgresStorage.connect(server.connection);
  try {
    await checkGoSchema(admin);
    const [stored] = await owner.get(makeQuery({ id: goKite.id }));
    assertEquals([stored.kite, stored.url, stored.keyId], [
      goKite,
      "http://go/kite",
      goKey,
    ]);
    assertEquals((await owner.getKeyFromId(goKey))?.public, "GO PUB");
    const events: StorageEvent[] = [];
    owner.watch(makeQuery({ username: "alice" }), (e) => events.push(e));

    // Now the application role works, and sees (and makes) events.
    await admin`GRANT SELECT ON kite.schema_migrations TO kontrol`;
    await admin`GRANT SELECT, INSERT, UPDATE, DELETE ON kite.kite_contracts
      TO kontrol`;
    const app = await PostgresStorage.connect(restricted);
    try {
      const ours = kite("ours");
      await app.add({ kite: ours, url: "http://ours/kite", keyId: goKey });
      // A Go Kontrol's write is seen by our watchers too (the trigger).
      const another = kite("another");
      await admin`INSERT INTO kite.kite (username, environment, kitename,
          version, region, hostname, id, url, key_id)
        VALUES (${another.username}, ${another.environment}, ${another.name},
          ${another.version}, ${another.region}, ${another.hostname},
          ${another.id}, 'http://go2/kite', ${goKey})`;
      await eventually(
        () => events.length === 2,
        "events from both writers",
        20_000,
      );
      assertEquals(events.map((e) => [e.action, e.kite.id]), [
        ["REGISTER", ours.id],
        ["REGISTER", another.id],
      ]);
      assertEquals(
        (await app.get(makeQuery({ username: "alice" }))).map((k) => k.kite.id)
          .sort(),
        [goKite.id, ours.id, another.id].sort(),
      );
    } finally {
      await app.close();
    }
  } finally {
    await owner.close();
    await admin`DROP SCHEMA kite CASCADE`;
    await admin`DROP OWNED BY kontrolapplication, kontrol`;
    await admin`DROP ROLE kontrolapplication`;
    await admin`DROP ROLE kontrol`;
  }
}

async function outage(
  server: PostgresServer,
  storage: PostgresStorage,
  peer: PostgresStorage,
): Promise<void> {
  const events: StorageEvent[] = [];
  storage.watch(makeQuery({ username: "alice" }), (e) => events.push(e));
  const pair = keyPair();
  await storage.addKey(pair);
  const before = kite("before");
  await storage.add({
    kite: before,
    url: "http://before/kite",
    keyId: pair.id,
  });

  await server.stop();
  const err = await within(
    assertRejects(
      () => storage.get(makeQuery({ username: "alice" })),
      PostgresStorageError,
    ),
    "the storage call",
    20_000,
  );
  assert(err.message.includes("PostgreSQL"), err.message);
  await within(
    assertRejects(
      () =>
        storage.add({
          kite: kite("during"),
          url: "http://x/kite",
          keyId: pair.id,
        }),
      PostgresStorageError,
    ),
    "the storage call",
    20_000,
  );

  await server.start();
  await eventually(
    async () => {
      try {
        await storage.get(makeQuery({ username: "alice" }));
        return true;
      } catch {
        return false;
      }
    },
    "storage works again",
    20_000,
  );
  const kites = await storage.get(makeQuery({ username: "alice" }));
  assertEquals(kites.map((k) => k.kite), [before]);
  assertEquals((await storage.getKeyFromId(pair.id))?.public, pair.public);

  // The LISTEN connection comes back too: a peer's write reaches the watcher.
  await eventually(
    async () => {
      const probe = kite("after");
      await peer.add({ kite: probe, url: "http://after/kite", keyId: pair.id });
      await new Promise((r) => setTimeout(r, 200));
      return events.some((e) =>
        e.action === "REGISTER" && e.kite.id === probe.id
      );
    },
    "the watch resumes",
    20_000,
  );
}
