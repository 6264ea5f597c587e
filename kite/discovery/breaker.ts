/**
 * A circuit breaker for one instance of a pool: closed while calls reach
 * it, open (no calls) after consecutive failures or a high error rate,
 * half-open (one probe call) once the open time has passed, then closed
 * again when the probe gets through.
 *
 * @module
 */
import type { Clock } from "../clock.ts";

/** Where a breaker stands. */
export type BreakerState = "closed" | "open" | "half-open";

/** Settings of a {@linkcode CircuitBreaker}. */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker. @default {5} */
  consecutiveFailures?: number;
  /** Share of failures among the last `window` outcomes that opens it (0..1). @default {0.5} */
  errorRate?: number;
  /** Outcomes the error rate is judged over; judged only once that many are in. @default {20} */
  window?: number;
  /** How long the breaker stays open before a probe, ms. @default {1000} */
  openMs?: number;
  /** Open time after failed probes grows up to this, ms. @default {30000} */
  maxOpenMs?: number;
}

/** Defaults of {@linkcode BreakerOptions}. */
export const DEFAULT_BREAKER: Required<BreakerOptions> = {
  consecutiveFailures: 5,
  errorRate: 0.5,
  window: 20,
  openMs: 1_000,
  maxOpenMs: 30_000,
};

/**
 * One instance's breaker. Failures are what the pool counts as the
 * instance being unreachable (dial failure, disconnect, send error,
 * timeout); an application error is an answer, so a success here.
 */
export class CircuitBreaker {
  readonly #options: Required<BreakerOptions>;
  readonly #clock: Clock;
  readonly #onChange: (state: BreakerState) => void;
  #state: BreakerState = "closed";
  #consecutive = 0;
  /** Last outcomes, 1 for a failure (a ring of `window` entries). */
  readonly #outcomes: Uint8Array;
  #next = 0;
  #count = 0;
  #failuresInWindow = 0;
  #openUntil = 0;
  #openMs: number;
  #probing = false;

  /** `onChange` hears every state change. */
  constructor(
    options: BreakerOptions,
    clock: Clock,
    onChange: (state: BreakerState) => void = () => {},
  ) {
    this.#options = { ...DEFAULT_BREAKER, ...options };
    this.#clock = clock;
    this.#onChange = onChange;
    this.#openMs = this.#options.openMs;
    this.#outcomes = new Uint8Array(Math.max(1, this.#options.window));
  }

  /** The state now (an open breaker whose time is up reads half-open). */
  get state(): BreakerState {
    if (this.#state === "open" && this.#clock.now() >= this.#openUntil) {
      this.#move("half-open");
    }
    return this.#state;
  }

  /** Consecutive failures so far. */
  get failures(): number {
    return this.#consecutive;
  }

  /** When an open breaker lets a probe through, ms since the epoch. */
  get openUntil(): number {
    return this.#openUntil;
  }

  /** Whether a call could go through now (no side effect). */
  get available(): boolean {
    const state = this.state;
    return state === "closed" || (state === "half-open" && !this.#probing);
  }

  /** Claims the way through for one call; false when it may not go. */
  acquire(): boolean {
    if (!this.available) return false;
    if (this.#state === "half-open") this.#probing = true;
    return true;
  }

  /** The call reached the instance. */
  success(): void {
    this.#consecutive = 0;
    this.#record(false);
    if (this.#state !== "closed") {
      this.#probing = false;
      this.#openMs = this.#options.openMs;
      this.#outcomes.fill(0);
      this.#count = 0;
      this.#failuresInWindow = 0;
      this.#move("closed");
    }
  }

  /** The call did not reach the instance. */
  failure(): void {
    this.#consecutive++;
    this.#record(true);
    if (this.#state === "half-open") {
      this.#probing = false;
      this.#openMs = Math.min(this.#options.maxOpenMs, this.#openMs * 2);
      this.#open();
      return;
    }
    if (this.#state !== "closed") return;
    const { consecutiveFailures, errorRate, window } = this.#options;
    if (
      this.#consecutive >= consecutiveFailures ||
      (this.#count >= window &&
        this.#failuresInWindow / this.#count >= errorRate)
    ) this.#open();
  }

  #open(): void {
    this.#openUntil = this.#clock.now() + this.#openMs;
    this.#move("open");
  }

  #record(failed: boolean): void {
    const ring = this.#outcomes;
    this.#failuresInWindow += (failed ? 1 : 0) - ring[this.#next];
    ring[this.#next] = failed ? 1 : 0;
    this.#next = (this.#next + 1) % ring.length;
    if (this.#count < ring.length) this.#count++;
  }

  #move(state: BreakerState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#onChange(state);
  }
}
