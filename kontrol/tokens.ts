/**
 * What Kontrol signs: kite keys (`-initial`, `registerMachine`) and tokens
 * (`getKites`, `getToken`), byte-compatible with the Go Kontrol (docs/protocol.md §6.2–
 * §6.4, §6.7), plus the token cache of docs/protocol.md §6.4.
 *
 * @module
 */
import { CompactSign } from "jose/jws/compact/sign";
import { type Clock, systemClock } from "../kite/clock.ts";
import type { KontrolQuery } from "../kite/protocol.ts";
import { type KeyCache, sharedKeyCache, trimPem } from "../kite/auth/keys.ts";
import { BoundedCache } from "../kite/auth/cache.ts";

/** Token lifetime before the leeway is added (Go `TokenTTL`). */
export const DEFAULT_TOKEN_TTL_MS: number = 48 * 60 * 60_000;

/** Clock-skew allowance: `iat`/`nbf` back-dated, `exp` extended (Go `TokenLeeway`). */
export const DEFAULT_TOKEN_LEEWAY_MS: number = 5 * 60_000;

const HEADER = { alg: "RS256", typ: "JWT" } as const;

/** Options for {@linkcode signKiteKey}. */
export interface SignKiteKeyOptions {
  /** The user the key is for (`sub`). */
  username: string;
  /** The Kontrol's own username (`iss`). */
  kontrolUser: string;
  /** The Kontrol's kite URL (`kontrolURL`). */
  kontrolURL: string;
  /** The Kontrol public key, embedded trimmed as `kontrolKey`. */
  publicKeyPem: string;
  /** The matching private key (PKCS#8 or PKCS#1 PEM). */
  privateKeyPem: string;
  /** Time source. @default {systemClock} */
  clock?: Clock;
  /** `iat` is back-dated by this much. @default {300000} */
  leewayMs?: number;
  /** The `jti`. @default {a new UUID v4} */
  id?: string;
  /** Where the private key is imported. @default {sharedKeyCache} */
  keyCache?: KeyCache;
}

/**
 * Signs a kite.key: claims `jti, iat, iss, sub, kontrolKey, kontrolURL` in
 * Go's order, `iat` back-dated by the leeway, no `exp` and no `aud` (spec
 * §6.3).
 *
 * @example
 * ```ts
 * import { signKiteKey } from "./tokens.ts";
 * import { generateKeyPair } from "../kite/auth/keys.ts";
 * const pair = await generateKeyPair();
 * const kiteKey = await signKiteKey({
 *   username: "alice",
 *   kontrolUser: "kontrol",
 *   kontrolURL: "http://127.0.0.1:4000/kite",
 *   publicKeyPem: pair.public,
 *   privateKeyPem: pair.private,
 * });
 * ```
 */
export async function signKiteKey(
  options: SignKiteKeyOptions,
): Promise<string> {
  const now = (options.clock ?? systemClock).now();
  const leeway = options.leewayMs ?? DEFAULT_TOKEN_LEEWAY_MS;
  return await sign(
    {
      jti: options.id ?? crypto.randomUUID(),
      iat: unix(now - leeway),
      iss: options.kontrolUser,
      sub: options.username,
      kontrolKey: trimPem(options.publicKeyPem),
      kontrolURL: options.kontrolURL,
    },
    options.privateKeyPem,
    options.keyCache,
  );
}

/** Options for {@linkcode signToken}. */
export interface SignTokenOptions {
  /** `aud`, see {@linkcode audienceFor}. */
  audience: string;
  /** `sub`: the authenticated user asking for the token. */
  subject: string;
  /** `iss`: the Kontrol's username. */
  issuer: string;
  /** The private key of the key pair the target kite registered under. */
  privateKeyPem: string;
  /** Token lifetime before the leeway (48 h). @default {172800000} */
  ttlMs?: number;
  /** Back-dating of `iat`/`nbf` and extension of `exp` (5 min). @default {300000} */
  leewayMs?: number;
  /** Time source. @default {systemClock} */
  clock?: Clock;
  /** Leave `nbf` out (Go `Kontrol.TokenNoNBF`). @default {false} */
  noNbf?: boolean;
  /** The `jti`. @default {a new UUID v4} */
  id?: string;
  /** Where the private key is imported. @default {sharedKeyCache} */
  keyCache?: KeyCache;
}

/**
 * Signs a token: claims `aud, exp, jti, iat, iss, nbf, sub` in Go's order,
 * `exp` = now + TTL + leeway, `iat` = `nbf` = now − leeway, header
 * `{"alg":"RS256","typ":"JWT"}` (docs/protocol.md §6.4).
 */
export async function signToken(options: SignTokenOptions): Promise<string> {
  const now = (options.clock ?? systemClock).now();
  const ttl = options.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
  const leeway = options.leewayMs ?? DEFAULT_TOKEN_LEEWAY_MS;
  if (!(ttl > 0)) throw new RangeError(`ttlMs must be positive, got ${ttl}`);
  if (!(leeway >= 0)) {
    throw new RangeError(`leewayMs must not be negative, got ${leeway}`);
  }
  return await sign(
    {
      aud: options.audience,
      exp: unix(now + ttl + leeway),
      jti: options.id ?? crypto.randomUUID(),
      iat: unix(now - leeway),
      iss: options.issuer,
      nbf: options.noNbf ? 0 : unix(now - leeway),
      sub: options.subject,
    },
    options.privateKeyPem,
    options.keyCache,
  );
}

/**
 * The token audience for a query (Go `getAudience`, docs/protocol.md §6.7):
 * `/user/env/name` when name is set, else `/user/env` when environment is
 * set, else `/user` — so an id-only query yields `/`. Kontrol's handlers
 * pass the identity of the kite found, never the query, so that a token
 * is only ever good for the kites of that user, environment and name.
 */
export function audienceFor(query: Partial<KontrolQuery>): string {
  const { username = "", environment = "", name = "" } = query;
  if (name !== "") return `/${username}/${environment}/${name}`;
  if (environment !== "") return `/${username}/${environment}`;
  return `/${username}`;
}

/** What a cached token is keyed by (Go `token.String()`, docs/protocol.md §6.4). */
export interface TokenCacheKey {
  /** The token's `aud`. */
  audience: string;
  /** The token's `sub`. */
  subject: string;
  /** The token's `iss`. */
  issuer: string;
  /** Id of the key pair that signs it. */
  keyId: string;
}

/** A token wanted from {@linkcode TokenCache.get}. */
export interface TokenRequest extends TokenCacheKey {
  /** The private key of pair `keyId`, used on a cache miss. */
  privateKeyPem: string;
  /** Sign a new token even if one is cached (Go `GetTokenForce`). @default {false} */
  force?: boolean;
}

/** Options for {@linkcode TokenCache}. */
export interface TokenCacheOptions {
  /** Time source for signing and expiry. @default {systemClock} */
  clock?: Clock;
  /** Token TTL; entries live `ttlMs − leewayMs`. @default {172800000} */
  ttlMs?: number;
  /** Token leeway. @default {300000} */
  leewayMs?: number;
  /** Leave `nbf` out of signed tokens (Go `Kontrol.TokenNoNBF`). @default {false} */
  noNbf?: boolean;
  /** Where private keys are imported. @default {sharedKeyCache} */
  keyCache?: KeyCache;
  /** Most tokens kept; the least recently signed go first. @default {100000} */
  maxEntries?: number;
  /** Most bytes of tokens and keys kept. @default {67108864} */
  maxBytes?: number;
}

/**
 * Signed tokens by audience + subject + issuer + key pair id, each kept for
 * TTL − leeway, so repeated `getKites`/`getToken` calls return the same
 * string (docs/protocol.md §6.4). Entries expire lazily; nothing runs in the background.
 */
export class TokenCache {
  #options: TokenCacheOptions;
  #clock: Clock;
  #lifetime: number;
  #tokens: BoundedCache<string>;
  #signing = new Map<string, Promise<string>>();

  /** Creates an empty cache. */
  constructor(options: TokenCacheOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#lifetime = (options.ttlMs ?? DEFAULT_TOKEN_TTL_MS) -
      (options.leewayMs ?? DEFAULT_TOKEN_LEEWAY_MS);
    if (!(this.#lifetime > 0)) {
      throw new RangeError("ttlMs must be greater than leewayMs");
    }
    // One entry per found kite and caller: bounded, as both are many.
    this.#tokens = new BoundedCache({
      maxEntries: options.maxEntries ?? 100_000,
      maxBytes: options.maxBytes ?? 64 * 1024 * 1024,
    });
  }

  /** Number of entries, including expired ones not yet dropped. */
  get size(): number {
    return this.#tokens.size;
  }

  /**
   * A token for `request`: the cached one while it lives, else a new one
   * signed with {@linkcode signToken} (this cache's clock, TTL and leeway)
   * and cached. Concurrent requests for one key share a single signature.
   */
  get(request: TokenRequest): Promise<string> {
    const { privateKeyPem, force } = request;
    return this.getOrSign(request, () =>
      signToken({
        audience: request.audience,
        subject: request.subject,
        issuer: request.issuer,
        privateKeyPem,
        clock: this.#clock,
        ttlMs: this.#options.ttlMs,
        leewayMs: this.#options.leewayMs,
        noNbf: this.#options.noNbf,
        keyCache: this.#options.keyCache,
      }), { force });
  }

  /** The cached token for `key`, unless it has expired. */
  peek(key: TokenCacheKey): string | undefined {
    return this.#tokens.get(cacheId(key), this.#clock.now());
  }

  /** Stores `token` for `key`, replacing any previous one. */
  set(key: TokenCacheKey, token: string): void {
    const until = this.#clock.now() + this.#lifetime;
    this.#tokens.set(cacheId(key), token, until, token.length);
  }

  /** Forgets the token for `key`. */
  delete(key: TokenCacheKey): void {
    this.#tokens.delete(cacheId(key));
  }

  /**
   * The cached token for `key`, or a new one from `sign` that is then cached.
   * `force` skips the lookup (Go `GetTokenForce`). Concurrent calls for one
   * key share a single signature.
   */
  getOrSign(
    key: TokenCacheKey,
    sign: () => Promise<string>,
    options: { force?: boolean } = {},
  ): Promise<string> {
    if (!options.force) {
      const hit = this.peek(key);
      if (hit !== undefined) return Promise.resolve(hit);
    }
    const id = cacheId(key);
    const running = this.#signing.get(id);
    if (running) return running;
    const signing = sign().then((token) => {
      this.set(key, token);
      return token;
    }).finally(() => this.#signing.delete(id));
    this.#signing.set(id, signing);
    return signing;
  }
}

function cacheId(key: TokenCacheKey): string {
  return JSON.stringify([key.audience, key.subject, key.issuer, key.keyId]);
}

/** Unix seconds, truncated as Go's `Time.Unix()`. */
function unix(ms: number): number {
  return Math.floor(ms / 1000);
}

/**
 * Signs `claims` as an RS256 JWT with Go's header and claim bytes: claims in
 * insertion order, empty ones left out (`omitempty`), `<`, `>`, `&` escaped
 * as Go's encoder does (docs/protocol.md §12 #22).
 */
async function sign(
  claims: Record<string, string | number>,
  privateKeyPem: string,
  keyCache: KeyCache = sharedKeyCache,
): Promise<string> {
  const present = Object.fromEntries(
    Object.entries(claims).filter(([, v]) => v !== "" && v !== 0),
  );
  const json = JSON.stringify(present).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  const key = await keyCache.privateKey(privateKeyPem, "RS256");
  return await new CompactSign(new TextEncoder().encode(json))
    .setProtectedHeader(HEADER)
    .sign(key);
}
