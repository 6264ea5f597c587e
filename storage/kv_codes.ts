/**
 * The one-time codes of a {@linkcode KvStorage}, shared by every Kontrol
 * on the database and kept across restarts.
 *
 * | Key | Value |
 * |---|---|
 * | `["codes", digest]` | `{expiresAt, used, username?}` |
 * | `["codesByExpiry", expiresAt, digest]` | `null` (index for the sweep) |
 * | `["codeCount"]` | how many `["codes", …]` entries there are |
 *
 * Every write is one atomic operation guarded by the versionstamps it read
 * (the code's entry, and the count where it changes), so a claim racing
 * another on one code either wins or sees it used, and the count is exact.
 * A commit refused because another handle held the file's write lock is
 * retried like a lost check.
 *
 * @module
 */
import { checkDigest, claim } from "./codes.ts";
import type { CodeClaim, StoredCode } from "./storage.ts";

interface Held {
  expiresAt: number;
  used: boolean;
  username?: string;
}

/** Attempts of an atomic operation before giving up under contention. */
const MAX_ATTEMPTS = 100;
/** Codes removed per sweep commit (KV allows 100 checks per operation). */
const SWEEP_BATCH = 50;
const COUNT: Deno.KvKey = ["codeCount"];

/** {@linkcode CodeStorage.addCode} on `kv`. */
export async function addCode(
  kv: Deno.Kv,
  code: StoredCode,
  max: number,
): Promise<boolean> {
  checkDigest(code.digest);
  const key = ["codes", code.digest];
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const [held, count] = await kv.getMany<[Held, number]>([key, COUNT]);
    if (held.value) {
      throw new Error("a one-time code with this digest is stored already");
    }
    const n = count.value ?? 0;
    if (n >= max) return false;
    const value: Held = {
      expiresAt: code.expiresAt,
      used: false,
      ...(code.username === undefined ? {} : { username: code.username }),
    };
    const op = kv.atomic()
      .check(held, count)
      .set(key, value)
      .set(["codesByExpiry", code.expiresAt, code.digest], null)
      .set(COUNT, n + 1);
    if (await commit(op)) return true;
  }
  throw contention("addCode");
}

/** {@linkcode CodeStorage.claimCode} on `kv`. */
export async function claimCode(
  kv: Deno.Kv,
  digest: string,
  username: string,
  now: number,
): Promise<CodeClaim> {
  checkDigest(digest);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const held = await kv.get<Held>(["codes", digest]);
    const outcome = claim(held.value ?? undefined, username, now);
    if (outcome.result !== "claimed") return outcome;
    const op = kv.atomic()
      .check(held)
      .set(held.key, { ...held.value!, used: true });
    if (await commit(op)) return outcome;
  }
  throw contention("claimCode");
}

/** {@linkcode CodeStorage.deleteExpiredCodes} on `kv`. */
export async function deleteExpiredCodes(
  kv: Deno.Kv,
  now: number,
): Promise<number> {
  let removed = 0;
  let conflicts = 0;
  for (;;) {
    const expired: Deno.KvKey[] = [];
    for await (const { key } of kv.list<null>({ prefix: ["codesByExpiry"] })) {
      if ((key[1] as number) > now || expired.length === SWEEP_BATCH) break;
      expired.push(key);
    }
    if (expired.length === 0) return removed;
    const n = await removeBatch(kv, expired);
    if (n !== undefined) removed += n;
    // Lost to another sweeper or writer: read again.
    else if (++conflicts === MAX_ATTEMPTS) {
      throw contention("deleteExpiredCodes");
    }
  }
}

/**
 * Removes the codes of `expired` index keys and their index entries in one
 * commit; resolves how many codes, or undefined when another writer won.
 */
async function removeBatch(
  kv: Deno.Kv,
  expired: Deno.KvKey[],
): Promise<number | undefined> {
  const codes = await getMany(kv, expired.map((k) => ["codes", k[2]]));
  const count = await kv.get<number>(COUNT);
  const op = kv.atomic().check(count, ...codes);
  let n = 0;
  for (let i = 0; i < expired.length; i++) {
    op.delete(expired[i]);
    if (codes[i].value) {
      op.delete(codes[i].key);
      n++;
    }
  }
  op.set(COUNT, Math.max(0, (count.value ?? 0) - n));
  return await commit(op) ? n : undefined;
}

/** `kv.getMany` for any number of keys (KV reads at most 10 per call). */
async function getMany(
  kv: Deno.Kv,
  keys: Deno.KvKey[],
): Promise<Deno.KvEntryMaybe<Held>[]> {
  const reads: Promise<Deno.KvEntryMaybe<Held>[]>[] = [];
  for (let i = 0; i < keys.length; i += 10) {
    reads.push(kv.getMany<Held[]>(keys.slice(i, i + 10)));
  }
  return (await Promise.all(reads)).flat();
}

/**
 * Commits `op`; false when a check failed or another handle on the same
 * database file held its write lock (SQLite's "database is locked", which
 * two handles writing at once meet): both mean read again and retry.
 */
async function commit(op: Deno.AtomicOperation): Promise<boolean> {
  try {
    return (await op.commit()).ok;
  } catch (err) {
    if (!String((err as Error)?.message).includes("database is locked")) {
      throw err;
    }
    await new Promise((r) => setTimeout(r, 1 + Math.random() * 10));
    return false;
  }
}

function contention(what: string): Error {
  return new Error(
    `KvStorage: ${what} kept conflicting after ${MAX_ATTEMPTS} attempts`,
  );
}
