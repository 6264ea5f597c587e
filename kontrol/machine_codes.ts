/**
 * One-time codes for `registerMachine`: each code gets one kite.key, once.
 * `deno task kontrol --machinecodes N` prints N at start, and the operator
 * (Kontrol's own user) mints more with `kontrol.machineCodes.create`
 * (`kitectl codes create`); `kitectl register --code C` sends
 * `{ authType: "code", code }`.
 *
 * Codes live in Kontrol's storage ({@linkcode CodeStorage}: memory, Deno
 * KV, etcd, PostgreSQL), as SHA-256 digests with their expiry and bound
 * user: every Kontrol on one storage accepts a code any of them made,
 * exactly once (the storage marks it used in one atomic step), and unused
 * codes outlive a restart (except on memory storage). A storage without
 * the code methods (one written for an older version) gets codes in this
 * Kontrol's memory instead: they work only on the Kontrol that made them,
 * until it restarts. Not part of the Go Kontrol.
 *
 * @module
 */
import { KiteError } from "../kite/errors.ts";
import type { Kite } from "../kite/kite.ts";
import type { Request } from "../kite/request.ts";
import { type Clock, systemClock } from "../kite/clock.ts";
import { sha256Hex } from "../storage/hash.ts";
import { MemoryCodeStorage } from "../storage/codes.ts";
import type { CodeClaim, CodeStorage, Storage } from "../storage/storage.ts";
import { refuseKontrolUser } from "./machine_secret.ts";
import type { MachineAuthenticate } from "./services.ts";

/** The `authType` a one-time code is sent with. */
export const CODE_AUTH_TYPE = "code";
/** How long a code is valid unless told otherwise: a day. */
export const DEFAULT_CODE_TTL_MS = 86_400_000;
/** Longest validity a code may be given: 30 days. */
const MAX_CODE_TTL_MS = 30 * 86_400_000;
/** Codes (used ones included, until they expire) one storage keeps. */
const MAX_CODES = 10_000;
/** Expired codes are swept at most this often, and whenever storage is full. */
const SWEEP_EVERY_MS = 3_600_000;
/** A code is 20 random bytes, 40 hex digits in groups of 8. */
const CODE_BYTES = 20;
const CODE_PATTERN = /^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/;

/** Options for {@linkcode MachineCodes}. */
export interface MachineCodesOptions {
  /**
   * Where codes are kept: Kontrol's storage when it has the
   * {@linkcode CodeStorage} methods (see {@linkcode codeStorageOf}).
   * @default {this process's memory}
   */
  storage?: CodeStorage;
  /** Expiry runs on it. @default {systemClock} */
  clock?: Clock;
  /**
   * Told of a storage failure while checking a code; the caller only
   * hears that Kontrol cannot check codes now. @default {console.error}
   */
  onStorageError?: (error: unknown) => void;
}

/** `storage` as a {@linkcode CodeStorage}, if it has all three methods. */
export function codeStorageOf(storage: Storage): CodeStorage | undefined {
  const { addCode, claimCode, deleteExpiredCodes } = storage;
  if (!addCode || !claimCode || !deleteExpiredCodes) return undefined;
  return {
    addCode: addCode.bind(storage),
    claimCode: claimCode.bind(storage),
    deleteExpiredCodes: deleteExpiredCodes.bind(storage),
  };
}

/** The one-time codes of Kontrol (of all Kontrols on one storage). */
export class MachineCodes {
  readonly #clock: Clock;
  readonly #store: CodeStorage;
  /** True when codes are only in this process (no code storage given). */
  readonly #local: boolean;
  readonly #onStorageError: (error: unknown) => void;
  #sweptAt = -Infinity;

  /** Codes in `options.storage`, or in memory. */
  constructor(options: MachineCodesOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#local = options.storage === undefined;
    this.#store = options.storage ?? new MemoryCodeStorage();
    this.#onStorageError = options.onStorageError ??
      ((error) => console.error("Kontrol: checking a one-time code:", error));
  }

  /**
   * A new code, valid once for `ttlMs`, for any user but Kontrol's own,
   * or only for `username`.
   * @throws {RangeError} for a bad `ttlMs`, or when 10,000 codes are held.
   */
  async create(
    options: { ttlMs?: number; username?: string } = {},
  ): Promise<string> {
    const ttlMs = options.ttlMs ?? DEFAULT_CODE_TTL_MS;
    if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_CODE_TTL_MS) {
      throw new RangeError(
        `a one-time code's ttl must be 1 ms to 30 days, got ${ttlMs}`,
      );
    }
    const now = this.#clock.now();
    if (now - this.#sweptAt >= SWEEP_EVERY_MS) await this.#sweep(now);
    const hex = Array.from(
      crypto.getRandomValues(new Uint8Array(CODE_BYTES)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const code = hex.match(/.{8}/g)!.join("-");
    const stored = {
      digest: await sha256Hex(code),
      expiresAt: now + ttlMs,
      ...(options.username === undefined ? {} : { username: options.username }),
    };
    if (
      !await this.#store.addCode(stored, MAX_CODES) &&
      (await this.#sweep(now) === 0 ||
        !await this.#store.addCode(stored, MAX_CODES))
    ) {
      throw new RangeError(
        `Kontrol already holds ${MAX_CODES} one-time codes; use some or let them expire`,
      );
    }
    return code;
  }

  /**
   * Uses up `code` for `username`: of Kontrols racing on one code, one
   * succeeds.
   * @throws {Error} saying whether the code is unknown, expired, used, or
   * bound to someone else.
   */
  async consume(code: string, username: string): Promise<void> {
    if (!CODE_PATTERN.test(code)) {
      throw new Error(
        "that is not a one-time code (5 groups of 8 hex digits, e.g. from `kitectl codes create`)",
      );
    }
    let claim: CodeClaim;
    try {
      claim = await this.#store.claimCode(
        await sha256Hex(code),
        username,
        this.#clock.now(),
      );
    } catch (err) {
      // The caller is anonymous: it hears no storage address or driver text.
      this.#onStorageError(err);
      throw new Error(
        "Kontrol cannot check one-time codes now (its storage failed); try again later or another Kontrol",
      );
    }
    switch (claim.result) {
      case "claimed":
        return;
      case "unknown":
        throw new Error(
          "unknown or expired one-time code: ask Kontrol's operator for a new one (`kitectl codes create`)" +
            (this.#local
              ? "; this Kontrol's storage cannot hold codes, so a code works only on the Kontrol that made it, until it restarts"
              : ""),
        );
      case "used":
        throw new Error(
          "this one-time code was already used: each code gets one kite.key; ask for a new one",
        );
      case "otherUser":
        throw new Error(
          `this one-time code is for user ${claim.username}, not ${username}`,
        );
    }
  }

  async #sweep(now: number): Promise<number> {
    this.#sweptAt = now;
    return await this.#store.deleteExpiredCodes(now);
  }
}

/** What {@linkcode machineAuthenticator} accepts. */
export interface MachineAuthOptions {
  /** The shared secret's authenticator (`kontrol/machine_secret.ts`), if set. */
  secret?: MachineAuthenticate;
  /** One-time codes, if Kontrol takes them. */
  codes?: MachineCodes;
  /** Kontrol's own user: never handed out this way. */
  kontrolUser: () => string;
}

/**
 * A `registerMachine` authenticator taking a shared secret
 * (`authType: "secret"`) and/or one-time codes (`authType: "code"`).
 */
export function machineAuthenticator(
  options: MachineAuthOptions,
): MachineAuthenticate {
  return async (authType: string, r: Request): Promise<string> => {
    if (authType === CODE_AUTH_TYPE && options.codes) {
      const username = r.claimedUsername;
      refuseKontrolUser(username, options.kontrolUser());
      const given = r.args.one().get("code");
      await options.codes.consume(
        given.isNull() ? "" : given.string(),
        username,
      );
      return username;
    }
    if (authType !== CODE_AUTH_TYPE && options.secret) {
      return await options.secret(authType, r);
    }
    const taken = [
      options.secret ? '"secret"' : "",
      options.codes ? `"${CODE_AUTH_TYPE}"` : "",
    ].filter(Boolean).join(" or ");
    throw new Error(
      `authType must be ${taken || "one Kontrol is configured for"}, got ${
        JSON.stringify(authType)
      }`,
    );
  };
}

/**
 * Adds `kontrol.machineCodes.create` `{ ttl?: seconds, username? }` →
 * `{ code, expiresAt }` to Kontrol's kite, callable only by `operator()`.
 */
export function addMachineCodeHandler(
  kite: Kite,
  codes: MachineCodes,
  operator: () => string,
  clock: Clock = systemClock,
): void {
  kite.handle("kontrol.machineCodes.create", async (r) => {
    if (r.username !== operator()) {
      throw new KiteError(
        "authenticationError",
        `only Kontrol's own user ${operator()} may create one-time codes, not ${
          r.username ?? "an anonymous caller"
        }`,
      );
    }
    const o = r.args.at(0);
    const ttl = o.isNull() ? undefined : o.get("ttl");
    const user = o.isNull() ? undefined : o.get("username");
    const ttlMs = ttl && !ttl.isNull()
      ? ttl.number() * 1000
      : DEFAULT_CODE_TTL_MS;
    const username = user && !user.isNull() ? user.string() : undefined;
    let code: string;
    try {
      if (username !== undefined) refuseKontrolUser(username, operator());
      code = await codes.create({ ttlMs: Math.round(ttlMs), username });
    } catch (err) {
      throw new KiteError("argumentError", (err as Error).message);
    }
    return {
      code,
      expiresAt: new Date(clock.now() + Math.round(ttlMs)).toISOString(),
      username: username ?? null,
    };
  });
}
