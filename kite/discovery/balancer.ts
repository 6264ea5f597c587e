/**
 * How a {@linkcode KitePool} picks the instance for a call: a small
 * interface and three strategies (power of two choices, round-robin,
 * random).
 *
 * @module
 */

/** What a balancer may read of an instance. */
export interface Balanceable {
  /** Calls sent to the instance and not answered yet. */
  readonly outstanding: number;
  /**
   * Smoothed answer time of the instance, ms (0 before the first answer);
   * it fades while the instance gets no calls, so one that was slow once
   * is tried again.
   */
  readonly latencyMs: number;
}

/**
 * Picks one of `candidates` (never empty) for the next call. The pool
 * passes only instances whose breaker lets a call through and that the
 * call has not tried yet.
 */
export interface Balancer {
  /** Returns an index into `candidates`. */
  pick(candidates: readonly Balanceable[]): number;
}

/** The strategies {@linkcode balancerFor} knows by name. */
export type BalancerName = "p2c" | "round-robin" | "random";

/**
 * Power of two choices over least outstanding calls: two random
 * candidates, and the one whose outstanding calls, each weighted by its
 * smoothed answer time, cost less wins: `(outstanding + 1) × latencyMs`.
 * A slow instance piles up outstanding calls and a higher latency, so it
 * gets less traffic without configuration, also when calls are few and
 * outstanding counts are mostly 0. An instance with no answer yet costs
 * nothing, so a new one is tried at once; on a tie, fewer outstanding wins.
 */
export class PowerOfTwoChoices implements Balancer {
  readonly #random: () => number;

  /** `random` returns [0, 1) (injectable for tests). */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** Picks the better of two random candidates. */
  pick(candidates: readonly Balanceable[]): number {
    const n = candidates.length;
    if (n === 1) return 0;
    const a = Math.floor(this.#random() * n);
    let b = Math.floor(this.#random() * (n - 1));
    if (b >= a) b++;
    const x = candidates[a];
    const y = candidates[b];
    const cx = (x.outstanding + 1) * x.latencyMs;
    const cy = (y.outstanding + 1) * y.latencyMs;
    if (cx !== cy) return cx < cy ? a : b;
    return x.outstanding <= y.outstanding ? a : b;
  }
}

/** Each candidate in turn. */
export class RoundRobin implements Balancer {
  #next = 0;

  /** The next candidate after the one picked last. */
  pick(candidates: readonly Balanceable[]): number {
    const i = this.#next % candidates.length;
    this.#next = (this.#next + 1) % 0x40000000;
    return i;
  }
}

/** A uniformly random candidate. */
export class RandomBalancer implements Balancer {
  readonly #random: () => number;

  /** `random` returns [0, 1) (injectable for tests). */
  constructor(random: () => number = Math.random) {
    this.#random = random;
  }

  /** A random index. */
  pick(candidates: readonly Balanceable[]): number {
    return Math.floor(this.#random() * candidates.length);
  }
}

/**
 * A balancer from a name, or `balancer` itself when it is one.
 * @throws {TypeError} for an unknown name.
 */
export function balancerFor(balancer: BalancerName | Balancer): Balancer {
  if (typeof balancer === "object" && balancer !== null) return balancer;
  switch (balancer) {
    case "p2c":
      return new PowerOfTwoChoices();
    case "round-robin":
      return new RoundRobin();
    case "random":
      return new RandomBalancer();
  }
  throw new TypeError(
    `unknown balancer ${
      JSON.stringify(balancer)
    }: use "p2c", "round-robin", "random" or an object with pick()`,
  );
}
