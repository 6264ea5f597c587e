/**
 * Keeps a client's Kontrol token fresh, as Go's `TokenRenewer` (spec
 * §6.10): renew shortly before `exp`, retry on failure, stop when the kite
 * is gone, renew at once when a call was refused with `token is expired`.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { readExpiry } from "./jwt.ts";

/** Renew this long before `exp` (Go `renewBefore`). */
export const DEFAULT_RENEW_BEFORE_MS = 30_000;

/** Wait this long after a failed renewal (Go `retryInterval`). */
export const DEFAULT_RETRY_INTERVAL_MS = 10_000;

/** Longest delay handed to a timer; longer waits are split (setTimeout limit). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options for {@linkcode TokenRenewer}. */
export interface TokenRenewerOptions {
  /** The current token; its `exp` is read without verification. */
  token: string;
  /**
   * Fetches a new token, e.g. Kontrol `getToken` with the remote kite's id
   * (which yields audience `/`, docs/protocol.md §12 #18).
   */
  getToken: () => Promise<string>;
  /** Called with each new token. */
  onRenew?: (token: string) => void;
  /** Called with each failed renewal; failures are otherwise only retried. */
  onError?: (error: unknown) => void;
  /** Time source. @default {systemClock} */
  clock?: Clock;
  /** How long before `exp` to renew. @default {30000} */
  renewBeforeMs?: number;
  /** Wait between failed attempts. @default {10000} */
  retryIntervalMs?: number;
}

/** Where a {@linkcode TokenRenewer} stands. */
export type TokenRenewerState = "scheduled" | "renewing" | "idle" | "stopped";

/**
 * Renews a token before it expires.
 *
 * - Renews `renewBeforeMs` before `exp`; a token without `exp` is never
 *   renewed on a timer.
 * - After a failure, retries every `retryIntervalMs`.
 * - When the failure says `no kites found` (the remote kite is gone), goes
 *   idle: no more timers, but {@linkcode TokenRenewer.renewNow} still works.
 * - {@linkcode TokenRenewer.pause} disarms it until the next
 *   {@linkcode TokenRenewer.start} (Go renews only while the client is
 *   connected); {@linkcode TokenRenewer.stop} ends it for good.
 *
 * @example
 * ```ts
 * import { TokenRenewer } from "./token_renewer.ts";
 * declare const token: string;
 * declare function getToken(): Promise<string>;
 * const renewer = new TokenRenewer({ token, getToken, onRenew: (t) => console.log(t) });
 * renewer.start();
 * // later, on an authenticationError "token is expired":
 * await renewer.renewNow();
 * renewer.stop();
 * ```
 */
export class TokenRenewer {
  #options: TokenRenewerOptions;
  #clock: Clock;
  #token: string;
  #expiresAt: number | undefined;
  #timer: number | undefined;
  #inFlight: Promise<boolean> | undefined;
  #state: TokenRenewerState = "idle";
  #paused = false;

  /**
   * Creates a renewer; call {@linkcode TokenRenewer.start} to arm it.
   * @throws {TypeError} when the token is not a JWT.
   */
  constructor(options: TokenRenewerOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#token = options.token;
    this.#expiresAt = expiryMs(options.token);
  }

  /** The latest token. */
  get token(): string {
    return this.#token;
  }

  /** `exp` of the latest token in ms since the epoch, if it has one. */
  get expiresAt(): number | undefined {
    return this.#expiresAt;
  }

  /** Current state. */
  get state(): TokenRenewerState {
    return this.#state;
  }

  /**
   * Arms the renewal timer; undoes {@linkcode TokenRenewer.pause}. A token
   * that is already due is renewed at once. No-op when armed or stopped.
   */
  start(): void {
    this.#paused = false;
    if (this.#state === "idle") this.#schedule();
  }

  /**
   * Disarms the timer until {@linkcode TokenRenewer.start}, e.g. while the
   * connection is down. A renewal in flight still delivers its token but
   * arms nothing; {@linkcode TokenRenewer.renewNow} keeps working.
   */
  pause(): void {
    if (this.#state === "stopped") return;
    this.#paused = true;
    this.#clearTimer();
    if (this.#state === "scheduled") this.#state = "idle";
  }

  /**
   * Renews now, e.g. after a call failed with `token is expired`. Calls made
   * while a renewal is running share it. Resolves `true` when a new token was
   * obtained; never rejects (failures go to `onError` and are retried).
   */
  renewNow(): Promise<boolean> {
    if (this.#state === "stopped") return Promise.resolve(false);
    if (this.#inFlight) return this.#inFlight;
    this.#clearTimer();
    this.#state = "renewing";
    const run = this.#renew().finally(() => this.#inFlight = undefined);
    this.#inFlight = run;
    return run;
  }

  /** Resolves once no renewal is running (for tests and orderly shutdown). */
  async settled(): Promise<void> {
    while (this.#inFlight) await this.#inFlight;
  }

  /** Stops for good: no more timers or renewals; `onRenew` is not called again. */
  stop(): void {
    this.#state = "stopped";
    this.#clearTimer();
  }

  async #renew(): Promise<boolean> {
    let token: string;
    let expiresAt: number | undefined;
    try {
      token = await this.#options.getToken();
      expiresAt = expiryMs(token);
    } catch (error) {
      if (this.#state === "stopped") return false;
      this.#options.onError?.(error);
      if (isNoKitesFound(error)) {
        this.#state = "idle";
      } else {
        this.#arm(this.#options.retryIntervalMs ?? DEFAULT_RETRY_INTERVAL_MS);
      }
      return false;
    }
    if (this.#state === "stopped") return false;
    this.#token = token;
    this.#expiresAt = expiresAt;
    // A fresh token that is already due must not make us spin on Kontrol.
    this.#schedule(this.#options.retryIntervalMs ?? DEFAULT_RETRY_INTERVAL_MS);
    try {
      this.#options.onRenew?.(token);
    } catch (error) {
      this.#options.onError?.(error);
    }
    return true;
  }

  /** Arms the timer for `renewBeforeMs` before `exp`, at least `minDelay` away. */
  #schedule(minDelay = 0): void {
    if (this.#expiresAt === undefined) {
      this.#state = "idle";
      return;
    }
    const renewBefore = this.#options.renewBeforeMs ?? DEFAULT_RENEW_BEFORE_MS;
    const due = this.#expiresAt - renewBefore - this.#clock.now();
    this.#arm(due > 0 ? due : minDelay, true);
  }

  #arm(delay: number, untilDue = false): void {
    this.#clearTimer();
    if (this.#paused) {
      this.#state = "idle";
      return;
    }
    this.#state = "scheduled";
    const wait = Math.max(0, Math.min(delay, MAX_TIMER_MS));
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      // A wait longer than a timer allows is done in pieces.
      if (untilDue && wait < delay) this.#schedule();
      else void this.renewNow();
    }, wait);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

function expiryMs(token: string): number | undefined {
  let exp: number | undefined;
  try {
    exp = readExpiry(token);
  } catch (cause) {
    throw new TypeError(
      `cannot read token expiry: ${(cause as Error).message}`,
      { cause },
    );
  }
  return exp === undefined ? undefined : exp * 1000;
}

/** Go stops renewing on `ErrNoKitesAvailable` or `no kites found` (docs/protocol.md §6.10). */
function isNoKitesFound(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /no kites (found|availabi?le)/.test(message);
}
