/**
 * Whose name Kontrol signs with: the `iss` of every token and kite key.
 * Go kites accept a token only when its `iss` equals the `iss` of their own
 * kite.key (docs/protocol.md §6.6), so Kontrol picks its name as Go's
 * Kontrol does: `-initial -username U` writes `iss` = `sub` = U, and a
 * serving Kontrol is the user of its own kite.key.
 *
 * @module
 */
import {
  KITE_KEY_FILE,
  KiteKeyError,
  readKiteKey,
} from "../kite/auth/kitekey.ts";
import type { KontrolSettings } from "./settings.ts";

/** Kontrol's name when nothing else gives one. */
export const DEFAULT_KONTROL_USERNAME = "kontrol";

/** Kontrol's username and where it came from (for the start-up line). */
export interface KontrolIssuer {
  /** The `iss` of tokens and kite keys. */
  username: string;
  /** `--username`, the kite.key path, or `default`. */
  source: string;
}

/**
 * The issuer for these settings: the `--initial` user; else `--username` /
 * `KONTROL_USERNAME`; else the `sub` of `$KITE_HOME/kite.key`; else
 * `"kontrol"`.
 * @throws {Error} when that kite.key exists but cannot be read or is not
 * valid, saying how to name the issuer instead.
 */
export async function kontrolIssuer(
  s: KontrolSettings,
): Promise<KontrolIssuer> {
  if (s.initial && s.initialUser) {
    return { username: s.initialUser, source: "--username" };
  }
  if (s.username) return { username: s.username, source: "--username" };
  const path = `${s.kiteHome}/${KITE_KEY_FILE}`;
  try {
    const key = await readKiteKey(path);
    return { username: key.claims.sub, source: path };
  } catch (err) {
    if (err instanceof KiteKeyError && err.problem === "missing") {
      return { username: DEFAULT_KONTROL_USERNAME, source: "default" };
    }
    throw new Error(
      `${
        (err as Error).message
      }; Kontrol takes its username (the token issuer) ` +
        "from that kite.key: fix it, or name the issuer with --username or KONTROL_USERNAME",
      { cause: err },
    );
  }
}
