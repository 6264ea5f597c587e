/**
 * The PostgreSQL schema of {@linkcode PostgresStorage}, as versioned
 * migrations.
 *
 * Version 1 is the Go Kontrol's schema (`kontrol/002-table.sql` and the two
 * `003-migration-*.sql` files, docs/protocol.md §8.8): same schema, tables, column names
 * and types, constraint and index names, so a Go Kontrol and ours can share
 * one database. Every statement is `IF NOT EXISTS`, so running it on a
 * database the Go SQL files created changes nothing there. Version 2 adds
 * a trigger that NOTIFYs every kite insert/delete (also those made by a Go
 * Kontrol), which the adapter LISTENs to for `watch`. Version 3 adds
 * `kite.kite_contracts`, the contracts Deno kites register with (a table of
 * its own, so `kite.kite` keeps exactly Go's columns). Version 4 adds
 * `kite.machine_code`, the one-time codes of `registerMachine` (ours alone).
 *
 * Applied versions are recorded in `kite.schema_migrations`, ours alone.
 *
 * Roles and grants are the deployer's business and are not created here.
 * The Go files use a role `kontrol` and a login `kontrolapplication`:
 *
 * ```sql
 * CREATE ROLE kontrol;
 * CREATE USER kontrolapplication PASSWORD '…';
 * GRANT kontrol TO kontrolapplication;
 * GRANT USAGE ON SCHEMA kite TO kontrol;
 * GRANT SELECT, INSERT, UPDATE ON kite.key TO kontrolapplication; -- no DELETE
 * GRANT SELECT, INSERT, UPDATE, DELETE ON kite.kite TO kontrol;
 * GRANT SELECT, INSERT, UPDATE, DELETE ON kite.kite_contracts TO kontrol;
 * GRANT SELECT, INSERT, UPDATE, DELETE ON kite.machine_code TO kontrol;
 * GRANT SELECT ON kite.schema_migrations TO kontrol;
 * ```
 *
 * Such a role cannot run the migrations (it may not create objects); run
 * them once as the owner, e.g. `psql -f` on the output of
 * {@linkcode schemaSql}, or start one Kontrol as the owner.
 *
 * @module
 */

/** One schema version. */
export interface Migration {
  /** Version number, from 1, without gaps. */
  version: number;
  /** What it does, stored in `kite.schema_migrations`. */
  description: string;
  /**
   * The statements, given how to generate a UUID (`uuid_generate_v4()` when
   * the `uuid-ossp` extension is available, else `gen_random_uuid()`).
   */
  statements(uuidDefault: string): string[];
}

/** The LISTEN/NOTIFY channel the trigger of version 2 notifies. */
export const KITE_EVENTS_CHANNEL = "kite_events";

/**
 * NOTIFY payloads must stay below 8000 bytes; above this a payload carries
 * only the action and id.
 */
export const NOTIFY_PAYLOAD_LIMIT = 7900;

/** Creates the schema and the version table; safe to run every start. */
export const BOOTSTRAP_SQL: string[] = [
  `CREATE SCHEMA IF NOT EXISTS kite`,
  `CREATE TABLE IF NOT EXISTS kite.schema_migrations (
    version integer PRIMARY KEY,
    description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`,
];

/**
 * Tries to install `uuid-ossp` as the Go schema does; where the extension is
 * missing or may not be created, `gen_random_uuid()` (built in since
 * PostgreSQL 13) takes its place.
 */
export const UUID_EXTENSION_SQL: string = `DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'uuid-ossp not available (%), using gen_random_uuid()', SQLERRM;
END
$$`;

/** A row's identity as JSON with Go field order (docs/protocol.md §4.1). */
function identityJson(row: "OLD" | "NEW"): string {
  return `json_build_object(
      'name', ${row}.kitename, 'username', ${row}.username, 'id', ${row}.id,
      'environment', ${row}.environment, 'region', ${row}.region,
      'version', ${row}.version, 'hostname', ${row}.hostname)`;
}

/** All migrations, oldest first. */
export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: "Go Kontrol schema: kite.key and kite.kite",
    statements: (uuidDefault) => [
      `CREATE TABLE IF NOT EXISTS kite.key (
        id uuid NOT NULL DEFAULT ${uuidDefault},
        public text NOT NULL COLLATE "default",
        private text NOT NULL COLLATE "default",
        created_at timestamp(6) with time zone NOT NULL DEFAULT now(),
        deleted_at timestamp(6) with time zone,
        PRIMARY KEY (id),
        CONSTRAINT key_public_unique UNIQUE (public),
        CONSTRAINT key_private_unique UNIQUE (private),
        CONSTRAINT key_created_at_lte_deleted_at_check
          CHECK (created_at <= deleted_at)
      )`,
      // UNLOGGED as in Go: registrations are soft state that kites renew.
      `CREATE UNLOGGED TABLE IF NOT EXISTS kite.kite (
        username text NOT NULL,
        environment text NOT NULL,
        kitename text NOT NULL,
        version text NOT NULL,
        region text NOT NULL,
        hostname text NOT NULL,
        id uuid PRIMARY KEY,
        url text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        updated_at timestamptz NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
        key_id uuid NOT NULL,
        CONSTRAINT kite_key_id_fkey FOREIGN KEY (key_id)
          REFERENCES kite.key (id) ON UPDATE NO ACTION ON DELETE NO ACTION
      )`,
      `CREATE INDEX IF NOT EXISTS kite_updated_at_btree_idx
        ON kite.kite USING btree (updated_at DESC)`,
      `CREATE INDEX IF NOT EXISTS kite_key_public_idx
        ON kite.key USING btree (public)`,
      `CREATE INDEX IF NOT EXISTS kite_key_deleted_at_public_idx
        ON kite.key USING btree (deleted_at DESC NULLS FIRST, public)`,
    ],
  },
  {
    version: 2,
    description: "NOTIFY kite_events on kite.kite changes (watch)",
    statements: () => [
      `CREATE OR REPLACE FUNCTION kite.kite_notify() RETURNS trigger
      LANGUAGE plpgsql AS $$
      DECLARE
        moved boolean := false;
        payload text;
      BEGIN
        IF TG_OP = 'UPDATE' THEN
          moved := (OLD.username, OLD.environment, OLD.kitename, OLD.version,
                    OLD.region, OLD.hostname, OLD.id)
            IS DISTINCT FROM
                   (NEW.username, NEW.environment, NEW.kitename, NEW.version,
                    NEW.region, NEW.hostname, NEW.id);
        END IF;
        -- A refresh (same identity) is not an event.
        IF TG_OP = 'DELETE' OR moved THEN
          payload := json_build_object('action', 'DEREGISTER',
            'kite', ${identityJson("OLD")})::text;
          IF octet_length(payload) > ${NOTIFY_PAYLOAD_LIMIT} THEN
            payload := json_build_object('action', 'DEREGISTER',
              'id', OLD.id, 'truncated', true)::text;
          END IF;
          PERFORM pg_notify('${KITE_EVENTS_CHANNEL}', payload);
        END IF;
        IF TG_OP = 'INSERT' OR moved THEN
          payload := json_build_object('action', 'REGISTER',
            'kite', ${identityJson("NEW")},
            'url', NEW.url, 'keyId', NEW.key_id)::text;
          IF octet_length(payload) > ${NOTIFY_PAYLOAD_LIMIT} THEN
            payload := json_build_object('action', 'REGISTER',
              'id', NEW.id, 'truncated', true)::text;
          END IF;
          PERFORM pg_notify('${KITE_EVENTS_CHANNEL}', payload);
        END IF;
        RETURN NULL;
      END
      $$`,
      `DROP TRIGGER IF EXISTS kite_notify ON kite.kite`,
      // EXECUTE PROCEDURE (not FUNCTION) still works on PostgreSQL < 11.
      `CREATE TRIGGER kite_notify AFTER INSERT OR UPDATE OR DELETE
        ON kite.kite FOR EACH ROW EXECUTE PROCEDURE kite.kite_notify()`,
    ],
  },
  {
    version: 3,
    description: "kite.kite_contracts: the contracts a kite registered with",
    statements: () => [
      // A table of its own, not a column: the Go Kontrol reads kite.kite
      // with `SELECT *` into a fixed row, so kite.kite keeps Go's columns.
      // UNLOGGED like kite.kite, and gone with its kite whoever deletes it.
      `CREATE UNLOGGED TABLE IF NOT EXISTS kite.kite_contracts (
        id uuid PRIMARY KEY
          REFERENCES kite.kite (id) ON UPDATE NO ACTION ON DELETE CASCADE,
        contracts jsonb NOT NULL
      )`,
    ],
  },
  {
    version: 4,
    description: "kite.machine_code: one-time codes for registerMachine",
    statements: () => [
      // Logged (unlike kite.kite): a code must outlive a crash and restarts.
      // Only the code's SHA-256 is stored, never the code.
      `CREATE TABLE IF NOT EXISTS kite.machine_code (
        digest text PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
        expires_at timestamptz NOT NULL,
        username text,
        used boolean NOT NULL DEFAULT false
      )`,
      `CREATE INDEX IF NOT EXISTS machine_code_expires_at_idx
        ON kite.machine_code USING btree (expires_at)`,
    ],
  },
];

/** The newest schema version. */
export const LATEST_SCHEMA_VERSION: number =
  MIGRATIONS[MIGRATIONS.length - 1].version;

/**
 * The whole schema as one SQL script, for deployers who apply it with psql
 * as the owner before starting Kontrols under a less privileged role.
 */
export function schemaSql(uuidDefault = "uuid_generate_v4()"): string {
  const parts = [...BOOTSTRAP_SQL, UUID_EXTENSION_SQL];
  for (const m of MIGRATIONS) {
    parts.push(...m.statements(uuidDefault));
    parts.push(
      `INSERT INTO kite.schema_migrations (version, description) VALUES (${m.version}, '${
        m.description.replaceAll("'", "''")
      }') ON CONFLICT (version) DO NOTHING`,
    );
  }
  return parts.map((p) => p.trim() + ";\n").join("\n");
}
