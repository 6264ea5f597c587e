/**
 * One-time codes for `registerMachine`: each code gets one kite.key, once.
 * `deno task kontrol --machinecodes N` prints N at start, and the operator
 * (Kontrol's own user) mints more with `kontrol.machineCodes.create`
 * (`kitectl codes create`); `kitectl register --code C` sends
 * `{ authType: "code", code }`.
 *
 * Codes live in this Kontrol's memory, as SHA-256 digests: a restart
 * voids the unused ones, and in a cluster a code works only on the Kontrol
 * that made it. Not part of the Go Kontrol.
 *
 * @module
 */
import { KiteError } from "../kite/errors.ts";
import type { Kite } from "../kite/kite.ts";
import type { Request } from "../kite/request.ts";
import { type Clock, systemClock } from "../kite/clock.ts";
import { refuseKontrolUser } from "./machine_secret.ts";
import type { MachineAuthenticate } from "./services.ts";

/** The `authType` a one-time code is sent with. */
export const CODE_AUTH_TYPE = "code";
/** How long a code is valid unless told otherwise: a day. */
export const DEFAULT_CODE_TTL_MS = 86_400_000;
/** Longest validity a code may be given: 30 days. */
const MAX_CODE_TTL_MS = 30 * 86_400_000;
/** Codes (used ones included, until they expire) one Kontrol keeps. */
const MAX_CODES = 10_000;
/** A code is 20 random bytes, 40 hex digits in groups of 8. */
const CODE_BYTES = 20;
const CODE_PATTERN = /^[0-9a-f]{8}(-[0-9a-f]{8}){4}$/;

interface Entry {
  expiresAt: number;
  used: boolean;
  /** The only user it gets a key for, when bound. */
  username?: string;
}

async function digest(code: string): Promise<string> {
  const bytes = new TextEncoder().encode(code);
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The one-time codes of one Kontrol. */
export class MachineCodes {
  readonly #clock: Clock;
  readonly #codes = new Map<string, Entry>();

  /** Expiry runs on `clock`. */
  constructor(clock: Clock = systemClock) {
    this.#clock = clock;
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
    this.#sweep();
    if (this.#codes.size >= MAX_CODES) {
      throw new RangeError(
        `Kontrol already holds ${MAX_CODES} one-time codes; use some or let them expire`,
      );
    }
    const hex = Array.from(
      crypto.getRandomValues(new Uint8Array(CODE_BYTES)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const code = hex.match(/.{8}/g)!.join("-");
    this.#codes.set(await digest(code), {
      expiresAt: this.#clock.now() + ttlMs,
      used: false,
      username: options.username,
    });
    return code;
  }

  /**
   * Uses up `code` for `username`.
   * @throws {Error} saying whether the code is unknown, expired, used, or
   * bound to someone else.
   */
  async consume(code: string, username: string): Promise<void> {
    if (!CODE_PATTERN.test(code)) {
      throw new Error(
        "that is not a one-time code (5 groups of 8 hex digits, e.g. from `kitectl codes create`)",
      );
    }
    const key = await digest(code);
    // No await between the check and the mark: two calls cannot both use it.
    const entry = this.#codes.get(key);
    if (!entry || entry.expiresAt <= this.#clock.now()) {
      throw new Error(
        "unknown or expired one-time code: ask Kontrol's operator for a new one (`kitectl codes create`)",
      );
    }
    if (entry.used) {
      throw new Error(
        "this one-time code was already used: each code gets one kite.key; ask for a new one",
      );
    }
    if (entry.username !== undefined && entry.username !== username) {
      throw new Error(
        `this one-time code is for user ${entry.username}, not ${username}`,
      );
    }
    entry.used = true;
  }

  #sweep(): void {
    const now = this.#clock.now();
    for (const [key, entry] of this.#codes) {
      if (entry.expiresAt <= now) this.#codes.delete(key);
    }
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
