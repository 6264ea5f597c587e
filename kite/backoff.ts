/**
 * Exponential backoff with jitter for reconnects and re-registration.
 *
 * @module
 */

/** Backoff settings. */
export interface BackoffOptions {
  /** First delay, ms. @default {500} */
  initialMs?: number;
  /** Largest delay, ms. @default {60000} */
  maxMs?: number;
  /** Growth per attempt. @default {1.5} */
  multiplier?: number;
  /** Random spread, 0..1 (0.5 = ±50 %). @default {0.5} */
  jitter?: number;
}

/** Go kite's reconnect defaults (cenkalti/backoff, docs/protocol.md §10). */
export const DEFAULT_BACKOFF: Required<BackoffOptions> = {
  initialMs: 500,
  maxMs: 60_000,
  multiplier: 1.5,
  jitter: 0.5,
};

/** Yields growing, jittered delays; `reset()` after a success. */
export class Backoff {
  readonly #options: Required<BackoffOptions>;
  #current: number;

  /** Creates a backoff; unspecified settings take {@linkcode DEFAULT_BACKOFF}. */
  constructor(options: BackoffOptions = {}) {
    this.#options = { ...DEFAULT_BACKOFF, ...options };
    this.#current = this.#options.initialMs;
  }

  /** The next delay in ms. */
  next(): number {
    const { jitter, multiplier, maxMs } = this.#options;
    const base = this.#current;
    this.#current = Math.min(maxMs, base * multiplier);
    const spread = base * jitter;
    return Math.max(0, Math.round(base - spread + Math.random() * 2 * spread));
  }

  /** Starts over from the initial delay. */
  reset(): void {
    this.#current = this.#options.initialMs;
  }
}
