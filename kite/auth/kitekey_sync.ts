/**
 * Reading the kite.key while a kite is constructed (synchronously, so
 * `new Kite()` stays a plain constructor). The signature is not checked
 * here; whoever receives the key checks it.
 *
 * @module
 */
import type { KiteConfig } from "../config.ts";
import { decodeJwt } from "./jwt.ts";
import {
  isPermissionError,
  KITE_KEY_FILE,
  KITE_KEY_HINT,
  kiteHome,
  KiteKeyError,
} from "./kitekey.ts";

/** The settings a kite.key supplies (docs/protocol.md §6.3): username, Kontrol URL, key and issuer. */
export function kiteKeyConfig(
  raw: string,
  source = "kite.key",
): Partial<KiteConfig> {
  let claims;
  try {
    claims = decodeJwt(raw).claims;
  } catch (cause) {
    throw new KiteKeyError(
      "malformed",
      `${source} is not a JWT (${(cause as Error).message}): ${KITE_KEY_HINT}`,
      {
        cause,
      },
    );
  }
  const out: Partial<KiteConfig> = { kiteKey: raw };
  if (claims.sub) out.username = claims.sub;
  if (claims.kontrolURL) out.kontrolURL = claims.kontrolURL;
  if (claims.kontrolKey) out.kontrolKey = claims.kontrolKey;
  if (claims.iss) out.kontrolUser = claims.iss;
  return out;
}

/** What {@linkcode loadKiteKeySync} found. */
export interface LoadedKiteKey {
  /** Settings from the key; empty without one. */
  config: Partial<KiteConfig>;
  /**
   * Why there is no key, when one was looked for and not found: the file is
   * missing, or Deno may not read it or the variables that locate it (the
   * text names the flag). The kite runs without Kontrol meanwhile.
   */
  problem?: KiteKeyError;
  /** `$KITE_HOME`, when the key was read from `$KITE_HOME/kite.key`. */
  home?: string;
}

/**
 * Settings from `kiteKey` (a JWT), or from `$KITE_HOME/kite.key` when
 * `kiteKey` is undefined. A missing or unreadable file means no settings
 * and a `problem`; a present but malformed one throws
 * {@linkcode KiteKeyError}.
 */
export function loadKiteKeySync(kiteKey?: string | false): LoadedKiteKey {
  if (kiteKey === false) return { config: {} };
  if (typeof kiteKey === "string") {
    return { config: kiteKeyConfig(kiteKey.trim()) };
  }
  let home: string;
  let path: string;
  try {
    home = kiteHome();
    path = `${home}/${KITE_KEY_FILE}`;
  } catch (err) {
    if (err instanceof KiteKeyError) return { config: {}, problem: err };
    throw err;
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (cause) {
    const problem = isPermissionError(cause)
      ? new KiteKeyError(
        "permission",
        `no permission to read the kite.key at ${path}: run deno with --allow-read=${path}`,
        { path, cause },
      )
      : new KiteKeyError(
        cause instanceof Deno.errors.NotFound ? "missing" : "unreadable",
        `no kite.key at ${path} (${
          (cause as Error).message
        }): ${KITE_KEY_HINT}`,
        { path, cause },
      );
    return { config: {}, problem };
  }
  return { config: kiteKeyConfig(text.trim(), path), home };
}
