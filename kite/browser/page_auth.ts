/**
 * How a page checks the callers a tunnel brings it: with the same
 * {@linkcode Authenticator} (kite/auth/verify.ts) a server kite uses, so
 * `kiteKey` and `token` credentials pass or fail with Go's texts. A page
 * has no kite.key to learn Kontrol's key from, so it asks Kontrol
 * (`getKey` with its token) when it registers, and again when a caller
 * shows a kite.key signed by a key it does not know or a token no known key
 * signed (after a key rotation, docs/protocol.md §8.7). Keys once learned
 * stay trusted, as a server kite keeps the key it started with beside a
 * rotated one.
 *
 * @module
 */
import { Authenticator, type AuthResult, TrustedKeys } from "../auth/verify.ts";
import { KiteError } from "../errors.ts";
import type { RequestAuthenticator } from "../serve/dispatch.ts";
import { decodeJwt } from "../auth/jwt.ts";
import type { Clock } from "../clock.ts";
import type { KiteConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Auth, KiteIdentity } from "../protocol.ts";

/**
 * Callers' unknown keys ask Kontrol again at most this often: anyone can
 * sign a kite.key or token with a key of their own, and each would
 * otherwise cost the page a call to Kontrol.
 */
export const KEY_REFRESH_INTERVAL_MS = 60_000;

/** What a page's authenticator needs of the page. */
export interface PageAuthHost {
  readonly config: KiteConfig;
  readonly identity: KiteIdentity;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The token the page calls Kontrol with, if it has one. */
  readonly kontrolToken?: { key: string };
  /** Kontrol's current public key (`getKey`). */
  kontrolKey(): Promise<string>;
}

/** The Kontrol keys a page trusts and how it learns new ones. */
export class PageKeys {
  /** The trusted keys the authenticator checks against. */
  readonly trusted: TrustedKeys = new TrustedKeys();
  readonly #host: PageAuthHost;
  #fetching: Promise<void> | undefined;
  #lastAsk = -Infinity;

  /** Keys for `host`, starting with `config.kontrolKey` when set. */
  constructor(host: PageAuthHost) {
    this.#host = host;
    if (host.config.kontrolKey) this.trusted.add(host.config.kontrolKey);
  }

  /** Asks Kontrol for its current key and trusts it (one request at a time). */
  refresh(): Promise<void> {
    return this.#fetching ??= this.#fetch().finally(() =>
      this.#fetching = undefined
    );
  }

  async #fetch(): Promise<void> {
    this.trusted.add(await this.#host.kontrolKey());
  }

  /**
   * For a caller's credential no trusted key verifies: asks Kontrol for its
   * key unless a caller made it ask within {@linkcode KEY_REFRESH_INTERVAL_MS};
   * resolves `true` when that brought a key not trusted before.
   */
  async askAgain(): Promise<boolean> {
    const revision = this.trusted.revision;
    const now = this.#host.clock.now();
    if (now - this.#lastAsk >= KEY_REFRESH_INTERVAL_MS) {
      this.#lastAsk = now;
      await this.refresh().catch((err) =>
        this.#host.logger.warning(
          `cannot get Kontrol's key to check a caller (${
            (err as Error).message
          }); refusing the caller's credential`,
        )
      );
    } else {
      await this.#fetching?.catch(() => {});
    }
    return this.trusted.revision !== revision;
  }

  /** Whether `pem` is a key of this page's Kontrol (asking again if due). */
  async isKontrolKey(pem: string): Promise<boolean> {
    if (!this.trusted.has(pem)) await this.askAgain();
    return this.trusted.has(pem);
  }
}

/**
 * The authenticator of a page's tunneled calls: Kontrol's keys from
 * `keys`, tokens issued by `config.kontrolUser` or else by whoever issued
 * the page's own Kontrol token (its Kontrol).
 */
export function pageAuthenticator(
  host: PageAuthHost,
  keys: PageKeys,
): RequestAuthenticator {
  const issuer = host.config.kontrolUser || issuerOf(host.kontrolToken?.key);
  const inner = new Authenticator({
    localKite: () => host.identity,
    trustedKeys: keys.trusted,
    kontrolUser: () => issuer,
    clock: host.clock,
    verifyTtlMs: host.config.verifyTtlMs,
    verifyKontrolKey: (pem) => keys.isKontrolKey(pem),
  });
  return {
    async authenticate(auth: Auth | null | undefined): Promise<AuthResult> {
      try {
        return await inner.authenticate(auth);
      } catch (err) {
        // No trusted key signed this token (verify.ts): it may be signed
        // by a key Kontrol rotated to since, or the page has none yet.
        if (
          !(err instanceof KiteError) ||
          !TOKEN_UNVERIFIED.includes(err.message) || !await keys.askAgain()
        ) throw err;
        return await inner.authenticate(auth);
      }
    },
  };
}

const TOKEN_UNVERIFIED = [
  "token: token is expired",
  "token: no trusted kontrol key is configured",
];

function issuerOf(token: string | undefined): string | undefined {
  if (!token) return undefined;
  try {
    return decodeJwt(token).claims.iss || undefined;
  } catch {
    // Not a JWT the page can read: tokens are then trusted by signature alone.
    return undefined;
  }
}
