/**
 * Caps retries at a share of calls, so a failing service is not stormed
 * by the callers that retry against it.
 *
 * @module
 */

/** Settings of a {@linkcode RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed per call made, 0..1. @default {0.2} */
  ratio?: number;
  /** Retries allowed at any time, so that a pool with little traffic can still retry. @default {10} */
  reserve?: number;
  /** How many calls' deposits the budget keeps at most. @default {1000} */
  window?: number;
}

/** Ten deposits of 0.1 make one retry, not 0.999…. */
const EPSILON = 1e-9;

/** Defaults of {@linkcode RetryBudgetOptions}. */
export const DEFAULT_RETRY_BUDGET: Required<RetryBudgetOptions> = {
  ratio: 0.2,
  reserve: 10,
  window: 1000,
};

/**
 * A token bucket: every call deposits `ratio` of a retry, every retry
 * withdraws one. The balance never exceeds `reserve` plus what `window`
 * calls deposit, so over any stretch retries stay below `ratio` of the
 * calls plus that much, and a burst of failures stops retrying once it
 * is spent.
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #max: number;
  #balance: number;

  /**
   * Creates a budget holding `reserve` retries.
   * @throws {RangeError} for a ratio outside 0..1 or a negative reserve.
   */
  constructor(options: RetryBudgetOptions = {}) {
    const { ratio, reserve, window } = {
      ...DEFAULT_RETRY_BUDGET,
      ...options,
    };
    if (!(ratio >= 0 && ratio <= 1)) {
      throw new RangeError(`retry budget ratio must be in 0..1, got ${ratio}`);
    }
    if (!(reserve >= 0)) {
      throw new RangeError(`retry budget reserve must be >= 0, got ${reserve}`);
    }
    this.#ratio = ratio;
    this.#max = reserve + ratio * Math.max(0, window);
    this.#balance = reserve;
  }

  /** Records a call (not a retry). */
  deposit(): void {
    this.#balance = Math.min(this.#max, this.#balance + this.#ratio);
  }

  /** Takes one retry if the budget has one. */
  withdraw(): boolean {
    if (this.#balance < 1 - EPSILON) return false;
    this.#balance -= 1;
    return true;
  }

  /** Retries available now. */
  get available(): number {
    return Math.floor(this.#balance + EPSILON);
  }
}
