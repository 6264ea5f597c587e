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

/**
 * Settings from `kiteKey` (a JWT), or from `$KITE_HOME/kite.key` when
 * `kiteKey` is undefined. A missing or unreadable file means no settings;
 * a present but malformed one throws {@linkcode KiteKeyError}.
 */
export function loadKiteKeySync(kiteKey?: string | false): Partial<KiteConfig> {
  if (kiteKey === false) return {};
  if (typeof kiteKey === "string") return kiteKeyConfig(kiteKey.trim());
  const path = `${kiteHome()}/${KITE_KEY_FILE}`;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return {}; // no key (or no permission to read it): the kite runs without Kontrol
  }
  return kiteKeyConfig(text.trim(), path);
}
