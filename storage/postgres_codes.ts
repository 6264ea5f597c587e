/**
 * The one-time codes of a {@linkcode PostgresStorage}, in
 * `kite.machine_code (digest, expires_at, username, used)` (schema version
 * 4). A claim is one `UPDATE … WHERE NOT used … RETURNING`: of claims
 * racing on one code, PostgreSQL lets exactly one update the row.
 *
 * @module
 */
import type postgres from "postgres";
import { checkDigest, claim } from "./codes.ts";
import type { CodeClaim, StoredCode } from "./storage.ts";

/** `pg_advisory_xact_lock` key that serializes adds (count, then insert). */
const ADD_LOCK = 0x6b697465_636f6465n; // "kitecode"

/** {@linkcode CodeStorage.addCode} on `sql`; exact across Kontrols. */
export async function addCode(
  sql: postgres.Sql,
  code: StoredCode,
  max: number,
): Promise<boolean> {
  checkDigest(code.digest);
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${ADD_LOCK.toString()}::bigint)`;
    const rows = await tx`
      INSERT INTO kite.machine_code (digest, expires_at, username)
      SELECT ${code.digest}, ${new Date(code.expiresAt)},
        ${code.username ?? null}
      WHERE (SELECT count(*) FROM kite.machine_code) < ${max}
      RETURNING digest`;
    return rows.length === 1;
  }) as boolean;
}

/** {@linkcode CodeStorage.claimCode} on `sql`. */
export async function claimCode(
  sql: postgres.Sql,
  digest: string,
  username: string,
  now: number,
): Promise<CodeClaim> {
  checkDigest(digest);
  const at = new Date(now);
  const taken = await sql`
    UPDATE kite.machine_code SET used = true
    WHERE digest = ${digest} AND NOT used AND expires_at > ${at}
      AND (username IS NULL OR username = ${username})
    RETURNING digest`;
  if (taken.length === 1) return { result: "claimed" };
  // Why not: read after the fact, only to word the refusal.
  const [row] = await sql<
    { expires_at: Date; used: boolean; username: string | null }[]
  >`SELECT expires_at, used, username FROM kite.machine_code
    WHERE digest = ${digest}`;
  const outcome = claim(
    row && {
      expiresAt: row.expires_at.getTime(),
      used: row.used,
      ...(row.username === null ? {} : { username: row.username }),
    },
    username,
    now,
  );
  // The UPDATE took nothing, so the read cannot grant it: never "claimed".
  return outcome.result === "claimed" ? { result: "used" } : outcome;
}

/** {@linkcode CodeStorage.deleteExpiredCodes} on `sql`. */
export async function deleteExpiredCodes(
  sql: postgres.Sql,
  now: number,
): Promise<number> {
  const result = await sql`
    DELETE FROM kite.machine_code WHERE expires_at <= ${new Date(now)}`;
  return result.count;
}
