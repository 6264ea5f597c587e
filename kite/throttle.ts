/**
 * Token bucket for `Method.throttle` (Go juju/ratelimit semantics: one token
 * every `fillIntervalMs`, at most `capacity` stored).
 *
 * @module
 */
import type { Clock } from "./clock.ts";

/** A token bucket on an injectable clock. */
export class TokenBucket {
  readonly #fillIntervalMs: number;
  readonly #capacity: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;

  /**
   * Creates a full bucket.
   * @throws {RangeError} for a non-positive interval or capacity.
   */
  constructor(fillIntervalMs: number, capacity: number, clock: Clock) {
    if (!(fillIntervalMs > 0) || !(capacity >= 1)) {
      throw new RangeError(
        `throttle needs fillIntervalMs > 0 and capacity >= 1, got ${fillIntervalMs} and ${capacity}`,
      );
    }
    this.#fillIntervalMs = fillIntervalMs;
    this.#capacity = Math.floor(capacity);
    this.#clock = clock;
    this.#tokens = this.#capacity;
    this.#last = clock.now();
  }

  /** Takes one token; false when the bucket is empty. */
  take(): boolean {
    const now = this.#clock.now();
    const gained = Math.floor((now - this.#last) / this.#fillIntervalMs);
    if (gained > 0) {
      this.#tokens = Math.min(this.#capacity, this.#tokens + gained);
      this.#last += gained * this.#fillIntervalMs;
    }
    if (this.#tokens === this.#capacity) this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}
