/**
 * The one-time codes of an {@linkcode EtcdStorage}: `<prefix>/codes/<digest>`
 * holds JSON `{"expiresAt","used","username"?}`, with no lease, so codes
 * outlive the Kontrol that made them. A claim is a transaction that writes
 * only if the key's mod revision is the one read: of claims racing on one
 * code, one commits and the others read it again and find it used.
 *
 * @module
 */
import type { IKeyValue, Namespace } from "etcd3";
import { checkDigest, claim } from "./codes.ts";
import type { CodeClaim, StoredCode } from "./storage.ts";

const CODES = "codes/";
/** Transactions tried before a claim gives up under contention. */
const MAX_TXN_ATTEMPTS = 10;

interface Held {
  expiresAt: number;
  used: boolean;
  username?: string;
}

function parse(kv: IKeyValue | undefined): Held | undefined {
  if (!kv) return undefined;
  try {
    const v = JSON.parse(kv.value.toString());
    if (typeof v?.expiresAt !== "number" || typeof v.used !== "boolean") {
      return undefined;
    }
    return v;
  } catch {
    return undefined; // not ours: treated as no code
  }
}

/**
 * {@linkcode CodeStorage.addCode} in `ns`. Counting and inserting are two
 * requests: Kontrols adding at the same moment may overshoot `max` by their
 * number.
 */
export async function addCode(
  ns: Namespace,
  code: StoredCode,
  max: number,
): Promise<boolean> {
  checkDigest(code.digest);
  if (await ns.getAll().prefix(CODES).count() >= max) return false;
  const key = CODES + code.digest;
  const value: Held = {
    expiresAt: code.expiresAt,
    used: false,
    ...(code.username === undefined ? {} : { username: code.username }),
  };
  const res = await ns.if(key, "Version", "==", 0)
    .then(ns.put(key).value(JSON.stringify(value)))
    .commit();
  if (!res.succeeded) {
    throw new Error("a one-time code with this digest is stored already");
  }
  return true;
}

/** {@linkcode CodeStorage.claimCode} in `ns`. */
export async function claimCode(
  ns: Namespace,
  digest: string,
  username: string,
  now: number,
): Promise<CodeClaim> {
  checkDigest(digest);
  const key = CODES + digest;
  for (let attempt = 0; attempt < MAX_TXN_ATTEMPTS; attempt++) {
    const kv = (await ns.get(key).exec()).kvs[0];
    const held = parse(kv);
    const outcome = claim(held, username, now);
    if (outcome.result !== "claimed") return outcome;
    const res = await ns.if(key, "Mod", "==", kv.mod_revision)
      .then(ns.put(key).value(JSON.stringify({ ...held, used: true })))
      .commit();
    if (res.succeeded) return outcome;
  }
  throw new Error(
    `etcd claimCode: too many concurrent changes to one code, gave up`,
  );
}

/** {@linkcode CodeStorage.deleteExpiredCodes} in `ns`. */
export async function deleteExpiredCodes(
  ns: Namespace,
  now: number,
): Promise<number> {
  const kvs = (await ns.getAll().prefix(CODES).exec()).kvs;
  let removed = 0;
  for (const kv of kvs) {
    const held = parse(kv);
    if (!held || held.expiresAt > now) continue;
    // Only if unchanged since read; a code changed since waits for the next sweep.
    const full = kv.key.toString();
    const key = CODES + full.slice(full.lastIndexOf("/") + 1);
    const res = await ns.if(key, "Mod", "==", kv.mod_revision)
      .then(ns.delete().key(key))
      .commit();
    if (res.succeeded) removed++;
  }
  return removed;
}
