/**
 * What a pool is configured with, what a call gives back, and the events
 * a pool reports (the types of `kite/discovery/pool.ts`).
 *
 * @module
 */
import type { BackoffOptions } from "../backoff.ts";
import type { KiteError } from "../errors.ts";
import type { Balancer, BalancerName } from "./balancer.ts";
import type { BreakerOptions, BreakerState } from "./breaker.ts";
import type { PoolInstance } from "./member.ts";
import type { RetryBudgetOptions } from "./retry_budget.ts";

/** Answers a call no instance could take (a degraded answer). */
export type PoolFallback = (
  method: string,
  args: unknown[],
  error: KiteError,
) => unknown;

/** Options for `Kite.pool()`. */
export interface PoolOptions {
  /** How an instance is picked: a name or an object with `pick()`. @default {"p2c"} */
  balancer?: BalancerName | Balancer;
  /**
   * Methods safe to run twice: a call to them that loses its connection
   * after it was sent is retried on another instance. Calls that were
   * certainly not run (dial failure, send error, breaker open, shed with
   * `requestLimitError`) are retried for every method.
   * @default {[]}
   */
  idempotent?: readonly string[];
  /**
   * Ask each instance, on first dial, which methods it declares idempotent
   * (`kite.handle(…).idempotent()`), and treat those as listed in
   * `idempotent` for calls to it. @default {true}
   */
  learnIdempotent?: boolean;
  /** Instances one call may try, the first included. @default {3} */
  maxAttempts?: number;
  /** Delays between attempts (jittered). @default {{initialMs: 5, maxMs: 100}} */
  backoff?: BackoffOptions;
  /** Caps retries at a share of calls. @default {{ratio: 0.2, reserve: 10}} */
  retryBudget?: RetryBudgetOptions;
  /** Per-instance circuit breaker settings. */
  breaker?: BreakerOptions;
  /** Timeout of {@linkcode KitePool.tell}, ms (0: none). @default {0} */
  timeoutMs?: number;
  /** Answers any method when no instance can. */
  fallback?: PoolFallback;
  /** Answers one method when no instance can (before `fallback`). */
  fallbacks?: Record<string, (args: unknown[], error: KiteError) => unknown>;
}

/** Defaults of {@linkcode PoolOptions}. */
export const DEFAULT_POOL_OPTIONS = {
  maxAttempts: 3,
  backoff: { initialMs: 5, maxMs: 100, multiplier: 2, jitter: 0.5 },
  timeoutMs: 0,
} as const;

/** What {@linkcode KitePool.call} resolves with. */
export interface PoolResult {
  /** The method's result, or the fallback's answer. */
  result: unknown;
  /** True when the fallback answered. */
  degraded: boolean;
  /** The instance that answered (none when degraded). */
  instance?: PoolInstance;
  /** Instances tried. */
  attempts: number;
}

/** Options of one {@linkcode KitePool.call}. */
export interface PoolCallOptions {
  /** Whole-call timeout over every attempt, ms (0: none). @default {the pool's `timeoutMs`} */
  timeoutMs?: number;
  /** Gives the call up; the instance serving it sees its `r.signal` abort. */
  signal?: AbortSignal;
}

/** What a pool reports to {@linkcode KitePool.onEvent} listeners. */
export type PoolEvent =
  | { type: "add"; instance: PoolInstance }
  | {
    type: "remove";
    instance: PoolInstance;
    reason: "deregister" | "resync" | "unreachable" | "replaced";
  }
  | { type: "breaker"; instance: PoolInstance; state: BreakerState }
  | {
    type: "retry";
    method: string;
    attempt: number;
    error: KiteError;
    instance: PoolInstance;
  }
  | { type: "degraded"; method: string; error: KiteError }
  | { type: "sync"; instances: number }
  | { type: "watchError"; error: KiteError };
