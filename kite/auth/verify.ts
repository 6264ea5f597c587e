/**
 * Server-side authentication of incoming calls (docs/protocol.md §6.5–§6.7): the
 * built-in `kiteKey` and `token` types, custom types, and the caches that
 * keep verification off the hot path. Failure texts are Go's, because Go
 * clients react to them (`token is expired` triggers a token renewal,
 * docs/protocol.md §12 #17).
 *
 * @module
 */
import { compactVerify } from "jose/jws/compact/verify";
import type { Auth, KiteIdentity } from "../protocol.ts";
import { KiteError } from "../errors.ts";
import { type Clock, systemClock } from "../clock.ts";
import {
  algProblem,
  decodeJwt,
  DEFAULT_CLOCK_SKEW_MS,
  type KiteClaims,
  timeProblem,
} from "./jwt.ts";
import { importPublicKey, KeyCache, type RsaAlg, trimPem } from "./keys.ts";
import { BoundedCache } from "./cache.ts";

/** Who a call was authenticated as. */
export interface AuthResult {
  /** The authenticated username (the JWT `sub` for built-in types). */
  username: string;
  /** The authentication type that accepted the call. */
  type: string;
  /** The verified claims (empty for custom types that have none). */
  claims: Record<string, unknown>;
}

/** Checks one credential of a custom type; throws an Error to refuse it. */
export type AuthenticatorFunc = (key: string) => Promise<AuthResult>;

/** Default kite-key trust cache TTL, Go's `VerifyTTL` default (docs/protocol.md §6.5). */
export const DEFAULT_VERIFY_TTL_MS: number = 5 * 60_000;

/** Default bound on cached verifications and trust decisions. */
export const DEFAULT_MAX_CACHE_ENTRIES = 10_000;

/**
 * Default byte bound of each verification cache (verified credentials,
 * trust decisions): their keys are credentials a caller chose.
 */
export const DEFAULT_MAX_CACHE_BYTES: number = 4 * 1024 * 1024;

/**
 * Default bound on the length of one credential (`authentication.key`), in
 * characters, checked before anything parses it. A kite.key signed with a
 * 4096-bit key is about 2,500 characters; a token about 700.
 */
export const DEFAULT_MAX_CREDENTIAL_LENGTH: number = 16 * 1024;

/** Options for {@linkcode Authenticator}. */
export interface VerifierOptions {
  /** The local kite's identity, for audience checks (docs/protocol.md §6.7). */
  localKite: () => KiteIdentity;
  /** The Kontrol public keys this kite trusts. */
  trustedKeys: TrustedKeys;
  /**
   * The issuer tokens must carry: the `iss` of the local kite.key (Go
   * `Config.KontrolUser`, docs/protocol.md §6.6 step 2). When it returns `undefined`,
   * any issuer is accepted: trust then rests on the signature alone, which
   * is safe as long as a Kontrol key pair is not shared between Kontrols
   * with different usernames. An empty string is compared like any other.
   */
  kontrolUser?: () => string | undefined;
  /** Time source for `exp`/`nbf`/`iat` and the caches. @default {systemClock} */
  clock?: Clock;
  /**
   * How long a kite key trust decision (per PEM) and a verified signature
   * (per token string) are cached, Go's `KITE_VERIFY_TTL`. `0` means the
   * default; a negative value disables caching.
   * @default {300000}
   */
  verifyTtlMs?: number;
  /**
   * Clock skew tolerated on `iat`/`nbf` (a Kontrol whose clock is ahead).
   * @default {300000}
   */
  clockSkewMs?: number;
  /**
   * Replaces the default audience rules of docs/protocol.md §6.7. Return `false` or
   * throw (the Error's message is sent) to refuse.
   */
  verifyAudience?: (local: KiteIdentity, aud: string) => boolean;
  /**
   * Extra kite-key trust check for PEMs not in `trustedKeys`; Kontrol
   * installs one that accepts any key in its key-pair store (docs/protocol.md §6.5).
   * `false` gives `kontrol key is not trusted` (cached for `verifyTtlMs`); a
   * thrown Error's message is sent instead (e.g. Kontrol's `not found`) and
   * nothing is cached.
   */
  verifyKontrolKey?: (pem: string) => Promise<boolean>;
  /** Where imported public keys are kept. @default {a new KeyCache} */
  keyCache?: KeyCache;
  /** Bound on the entries of each cache. @default {10000} */
  maxCacheEntries?: number;
  /** Bound on the bytes of each cache (keys included). @default {4194304} */
  maxCacheBytes?: number;
  /**
   * Longest `authentication.key` accepted, in characters; longer ones are
   * refused before they are parsed (`<type>: credential is too long …`).
   * @default {16384}
   */
  maxCredentialLength?: number;
}

/** One trusted Kontrol key. */
export interface TrustedKey {
  /** Key id (Kontrol's key pair id, or a generated one). */
  id: string;
  /** PKIX public key PEM, trimmed. */
  pem: string;
}

/**
 * The Kontrol public keys a kite trusts. Several at once, so a Kontrol key
 * rotation (docs/protocol.md §8.7) can add the new key before removing the old one.
 * PEMs are compared byte for byte after trimming (docs/protocol.md §12 #16).
 */
export class TrustedKeys {
  #byId = new Map<string, string>();
  #revision = 0;

  /** Starts with the given PEMs (or `{id, pem}` entries). */
  constructor(keys: Iterable<string | TrustedKey> = []) {
    for (const k of keys) {
      typeof k === "string" ? this.add(k) : this.add(k.pem, k.id);
    }
  }

  /**
   * Trusts `pem` under `id` (default: a new UUID). Adding a PEM that is
   * already trusted moves it to the given id; adding under a known id
   * replaces that id's key.
   * @throws {TypeError} when `pem` is not a PUBLIC KEY or CERTIFICATE PEM.
   */
  add(pem: string, id?: string): void {
    const trimmed = trimPem(pem);
    if (!/^-----BEGIN (PUBLIC KEY|CERTIFICATE)-----/.test(trimmed)) {
      throw new TypeError(
        "trusted key must be a PEM starting with -----BEGIN PUBLIC KEY----- or " +
          "-----BEGIN CERTIFICATE-----",
      );
    }
    const existing = this.#idOf(trimmed);
    if (existing !== undefined && id === undefined) return;
    if (existing !== undefined) this.#byId.delete(existing);
    this.#byId.set(id ?? crypto.randomUUID(), trimmed);
    this.#revision++;
  }

  /** Stops trusting the key with this id or PEM; `true` if one was removed. */
  remove(idOrPem: string): boolean {
    const id = this.#byId.has(idOrPem) ? idOrPem : this.#idOf(trimPem(idOrPem));
    if (id === undefined) return false;
    this.#byId.delete(id);
    this.#revision++;
    return true;
  }

  /** Whether `pem` (trimmed) is trusted. */
  has(pem: string): boolean {
    return this.#idOf(trimPem(pem)) !== undefined;
  }

  /** The trusted keys in the order they were added. */
  list(): TrustedKey[] {
    return [...this.#byId].map(([id, pem]) => ({ id, pem }));
  }

  /** Number of trusted keys. */
  get size(): number {
    return this.#byId.size;
  }

  /** Increases on every change, so caches built on this set can notice. */
  get revision(): number {
    return this.#revision;
  }

  #idOf(trimmed: string): string | undefined {
    for (const [id, pem] of this.#byId) if (pem === trimmed) return id;
    return undefined;
  }
}

/**
 * Go's default audience rules (docs/protocol.md §6.7): `/` is accepted by every kite;
 * otherwise the username must equal the local one, and environment and name
 * must match when present. Returns Go's failure text, or `undefined`.
 */
export function audienceProblem(
  local: KiteIdentity,
  aud: string,
): string | undefined {
  if (aud === "/") return undefined;
  if (aud === "") return "invalid empty audience";
  if (!aud.startsWith("/")) {
    return `invalid audience: invalid kite string (${aud})`;
  }
  const [username = "", environment = "", name = ""] = aud.slice(1).split("/");
  if (local.username !== username) {
    return `audience: username ${
      JSON.stringify(username)
    } not allowed (${aud})`;
  }
  if (environment !== "" && local.environment !== environment) {
    return `audience: environment ${
      JSON.stringify(environment)
    } not allowed (${aud})`;
  }
  if (name !== "" && local.name !== name) {
    return `audience: kite ${JSON.stringify(name)} not allowed (${aud})`;
  }
  return undefined;
}

interface Verified {
  /**
   * What the credential was verified as. Kept beside the claims, not in the
   * cache key: a key joined to the credential is a new string to hash on
   * every call, a copy the size of the token.
   */
  type: "token" | "kiteKey";
  claims: KiteClaims;
  /** The PEM whose signature matched. */
  pem: string;
}

const NOT_TRUSTED = "kontrol key is not trusted";

/**
 * Authenticates the `authentication` field of incoming calls.
 *
 * @example
 * ```ts
 * import { Authenticator, TrustedKeys } from "./verify.ts";
 * import { makeIdentity } from "../protocol.ts";
 *
 * const auth = new Authenticator({
 *   localKite: () => makeIdentity({ name: "math", username: "alice", environment: "prod" }),
 *   trustedKeys: new TrustedKeys(),
 * });
 * await auth.authenticate(null).catch((e) => e.message);
 * // "No authentication information is provided"
 * ```
 */
export class Authenticator {
  #options: VerifierOptions;
  #clock: Clock;
  #ttl: number;
  #maxCredential: number;
  #keys: KeyCache;
  #types = new Map<string, AuthenticatorFunc>();
  #verified: BoundedCache<Verified>;
  #trust: BoundedCache<boolean>;
  #revision: number;

  /** Creates an authenticator with the `kiteKey` and `token` types. */
  constructor(options: VerifierOptions) {
    const ttl = options.verifyTtlMs ?? 0;
    if (Number.isNaN(ttl)) {
      throw new RangeError("verifyTtlMs must be a number of ms, got NaN");
    }
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#ttl = ttl === 0 ? DEFAULT_VERIFY_TTL_MS : ttl;
    const bounds = {
      maxEntries: options.maxCacheEntries ?? DEFAULT_MAX_CACHE_ENTRIES,
      maxBytes: options.maxCacheBytes ?? DEFAULT_MAX_CACHE_BYTES,
    };
    this.#verified = new BoundedCache(bounds);
    this.#trust = new BoundedCache(bounds);
    this.#maxCredential = options.maxCredentialLength ??
      DEFAULT_MAX_CREDENTIAL_LENGTH;
    this.#keys = options.keyCache ?? new KeyCache();
    this.#revision = options.trustedKeys.revision;
    this.#types.set("kiteKey", (key) => this.#kiteKey(key));
    this.#types.set("token", (key) => this.#token(key));
  }

  /**
   * Checks the credentials of one call.
   * @throws {KiteError} of type `authenticationError` with Go's texts:
   * `No authentication information is provided`,
   * `Unknown authentication type: <t>`, or `<type>: <cause>` (docs/protocol.md §6.6).
   */
  async authenticate(auth: Auth | null | undefined): Promise<AuthResult> {
    if (auth === null || typeof auth !== "object") {
      throw new KiteError(
        "authenticationError",
        "No authentication information is provided",
      );
    }
    const type = typeof auth.type === "string" ? auth.type : "";
    const authenticateKey = this.#types.get(type);
    if (!authenticateKey) {
      throw new KiteError(
        "authenticationError",
        `Unknown authentication type: ${type}`,
      );
    }
    try {
      const key = typeof auth.key === "string" ? auth.key : "";
      // Before any parsing: the size of a credential is the sender's choice.
      if (key.length > this.#maxCredential) {
        refuse(
          `credential is too long (${key.length} characters, at most ${this.#maxCredential})`,
        );
      }
      const result = await authenticateKey(key);
      if (typeof result?.username !== "string") {
        throw new Error("authenticator returned no username");
      }
      return result;
    } catch (error) {
      const cause = error instanceof Error ? error.message : String(error);
      throw new KiteError("authenticationError", `${type}: ${cause}`, {
        cause: error,
      });
    }
  }

  /**
   * Adds (or replaces) the check for an authentication type. The function's
   * thrown Error message becomes `<type>: <message>` on the wire.
   */
  register(type: string, fn: AuthenticatorFunc): void {
    this.#types.set(type, fn);
  }

  async #token(key: string): Promise<AuthResult> {
    this.#syncRevision();
    const nowMs = this.#clock.now();
    let claims = this.#verifiedAs("token", key, nowMs);
    if (!claims) {
      const decoded = decodeJwt(key);
      check(algProblem(decoded.header));
      // Go checks the issuer in its key function, before the signature.
      check(this.#issuerProblem(decoded.claims));
      const pem = await this.#verifyWithTrusted(
        key,
        decoded.header.alg as RsaAlg,
      );
      claims = decoded.claims;
      this.#remember("token", key, claims, pem, nowMs);
    }
    check(this.#issuerProblem(claims));
    check(timeProblem(claims, Math.floor(nowMs / 1000), this.#skewSeconds));
    if (!claims.aud) refuse("token has no audience");
    if (!claims.sub) refuse("token has no username");
    check(this.#audienceProblem(claims.aud));
    return { username: claims.sub, type: "token", claims };
  }

  async #kiteKey(key: string): Promise<AuthResult> {
    this.#syncRevision();
    const nowMs = this.#clock.now();
    let claims = this.#verifiedAs("kiteKey", key, nowMs);
    if (claims) {
      await this.#checkTrust(claims.kontrolKey!, nowMs);
    } else {
      const decoded = decodeJwt(key);
      check(algProblem(decoded.header));
      const pem = decoded.claims.kontrolKey;
      if (!pem) refuse("no kontrol key found");
      // The signature first, as Go does (docs/protocol.md §6.5): nothing is looked up
      // or cached under a PEM until the sender proved it holds its private key.
      await this.#verifySelfSigned(key, pem, decoded.header.alg as RsaAlg);
      await this.#checkTrust(pem, nowMs);
      claims = decoded.claims;
      this.#remember("kiteKey", key, claims, pem, nowMs);
    }
    // `iss` is not checked for kite keys (docs/protocol.md §6.5 step 3).
    check(timeProblem(claims, Math.floor(nowMs / 1000), this.#skewSeconds));
    if (!claims.sub) refuse("token has no username");
    return { username: claims.sub, type: "kiteKey", claims };
  }

  get #skewSeconds(): number {
    return Math.floor(
      (this.#options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS) / 1000,
    );
  }

  #issuerProblem(claims: KiteClaims): string | undefined {
    const expected = this.#options.kontrolUser?.();
    if (expected === undefined || (claims.iss ?? "") === expected) {
      return undefined;
    }
    return `issuer is not trusted: ${claims.iss ?? ""}`;
  }

  #audienceProblem(aud: string): string | undefined {
    const local = this.#options.localKite();
    const custom = this.#options.verifyAudience;
    if (!custom) return audienceProblem(local, aud);
    return custom(local, aud) ? undefined : `audience not allowed (${aud})`;
  }

  /**
   * Verifies a kite key with the PEM it carries. Only PEMs known to be
   * trusted go through the shared key cache: any byte string imports as a
   * public key, so caching those of strangers would let them fill it.
   */
  async #verifySelfSigned(key: string, pem: string, alg: RsaAlg) {
    const trimmed = trimPem(pem);
    const known = this.#options.trustedKeys.has(trimmed) ||
      this.#trust.get(trimmed, this.#clock.now()) === true;
    let cryptoKey: CryptoKey;
    try {
      cryptoKey = known
        ? await this.#keys.publicKey(trimmed, alg)
        : await importPublicKey(trimmed, { alg });
    } catch {
      // Not a key at all: no key of ours.
      return refuse(NOT_TRUSTED);
    }
    try {
      await compactVerify(key, cryptoKey, { algorithms: [alg] });
    } catch {
      refuse("crypto/rsa: verification error");
    }
  }

  /** Returns the PEM of the trusted key that signed `token`. */
  async #verifyWithTrusted(token: string, alg: RsaAlg): Promise<string> {
    const trusted = this.#options.trustedKeys.list();
    if (trusted.length === 0) refuse("no trusted kontrol key is configured");
    let importProblem: unknown;
    let imported = 0;
    for (const { pem } of trusted) {
      let cryptoKey: CryptoKey;
      try {
        cryptoKey = await this.#keys.publicKey(pem, alg);
        imported++;
      } catch (error) {
        importProblem = error;
        continue;
      }
      try {
        await compactVerify(token, cryptoKey, { algorithms: [alg] });
        return pem;
      } catch {
        // Try the next trusted key.
      }
    }
    // A broken configuration must not look like an expired token.
    if (imported === 0) throw importProblem;
    // On purpose: makes Go clients fetch a new token (docs/protocol.md §6.6 step 4).
    return refuse("token is expired");
  }

  async #checkTrust(pem: string, nowMs: number): Promise<void> {
    const key = trimPem(pem);
    const cached = this.#trust.get(key, nowMs);
    if (cached !== undefined) {
      if (!cached) refuse(NOT_TRUSTED);
      return;
    }
    let trusted = this.#options.trustedKeys.has(key);
    if (!trusted && this.#options.verifyKontrolKey) {
      trusted = await this.#options.verifyKontrolKey(key);
    }
    if (this.#ttl > 0) this.#trust.set(key, trusted, nowMs + this.#ttl);
    if (!trusted) refuse(NOT_TRUSTED);
  }

  #verifiedAs(
    type: Verified["type"],
    key: string,
    nowMs: number,
  ): KiteClaims | undefined {
    const verified = this.#verified.get(key, nowMs);
    return verified?.type === type ? verified.claims : undefined;
  }

  #remember(
    type: Verified["type"],
    key: string,
    claims: KiteClaims,
    pem: string,
    nowMs: number,
  ): void {
    if (this.#ttl <= 0) return;
    const until = Math.min(
      claims.exp ? claims.exp * 1000 : Infinity,
      nowMs + this.#ttl,
    );
    if (until <= nowMs) return;
    // The claims are about as large as the token that carried them.
    this.#verified.set(key, { type, claims, pem }, until, key.length);
  }

  /** Forgets everything cached when the trusted key set changed. */
  #syncRevision(): void {
    const revision = this.#options.trustedKeys.revision;
    if (revision === this.#revision) return;
    this.#revision = revision;
    this.#verified.clear();
    this.#trust.clear();
  }
}

/** Refuses the credential with `cause` as the text after `<type>: `. */
function refuse(cause: string): never {
  throw new Error(cause);
}

/** Refuses the credential when a check found a problem. */
function check(problem: string | undefined): void {
  if (problem !== undefined) refuse(problem);
}
