/**
 * One instance of a pool: its client (dialed on first use), breaker,
 * outstanding calls and smoothed latency.
 *
 * @module
 */
import type { Clock } from "../clock.ts";
import type { FoundKite } from "../kontrol_client.ts";
import type { KiteIdentity } from "../protocol.ts";
import type { Balanceable } from "./balancer.ts";
import {
  type BreakerOptions,
  type BreakerState,
  CircuitBreaker,
} from "./breaker.ts";

/** What a pool shows of one instance (a snapshot). */
export interface PoolInstance {
  /** The kite's id. */
  id: string;
  /** The URL it registered. */
  url: string;
  /** Its identity as Kontrol knows it. */
  kite: KiteIdentity;
  /** Whether a connection to it is open. */
  connected: boolean;
  /** The transport of that connection (`"websocket"`, …), while open. */
  transport?: string;
  /** Calls sent to it and not answered yet. */
  outstanding: number;
  /** Smoothed answer time, ms (0 before the first answer). */
  latencyMs: number;
  /** Its circuit breaker. */
  breaker: BreakerState;
  /** Consecutive connection-level failures. */
  failures: number;
  /**
   * False when the last resync with Kontrol did not list it but its
   * connection was still open: it stays until its first failure.
   */
  listed: boolean;
}

/** The method a kite answers with the names of its idempotent methods. */
export const IDEMPOTENT_METHOD = "kite.idempotent";
/** How long a first dial waits for that answer (kite.js never answers). */
const LEARN_MS = 1_000;

/** Weight of the newest answer time in the latency average. */
const LATENCY_WEIGHT = 0.2;
/** An instance without answers for this long has its latency halved. */
const LATENCY_HALF_LIFE_MS = 5_000;

/** @internal One instance of a pool. */
export class Member implements Balanceable {
  readonly found: FoundKite;
  readonly breaker: CircuitBreaker;
  outstanding = 0;
  #latencyMs = 0;
  #observedAt = 0;
  readonly #clock: Clock;
  listed = true;
  removed = false;
  /** Methods the instance declared idempotent (learned on first dial). */
  idempotent: ReadonlySet<string> = new Set();
  #learned: Promise<void> | undefined;
  /** True once the instance answered (or did not) which methods are idempotent. */
  asked = false;

  constructor(
    found: FoundKite,
    breaker: BreakerOptions,
    clock: Clock,
    onBreaker: (member: Member, state: BreakerState) => void,
  ) {
    this.found = found;
    this.#clock = clock;
    this.breaker = new CircuitBreaker(
      breaker,
      clock,
      (state) => onBreaker(this, state),
    );
  }

  get id(): string {
    return this.found.kite.id;
  }

  /** Smoothed answer time, fading while no answers come. */
  get latencyMs(): number {
    if (this.#latencyMs === 0) return 0;
    const idle = this.#clock.now() - this.#observedAt;
    return idle <= 0
      ? this.#latencyMs
      : this.#latencyMs * 0.5 ** (idle / LATENCY_HALF_LIFE_MS);
  }

  /** Records an answer that took `ms`. */
  observe(ms: number): void {
    const now = this.latencyMs;
    // At least a microsecond: 0 means "no answer yet" to the balancer.
    const sample = Math.max(ms, 0.001);
    this.#latencyMs = now === 0
      ? sample
      : now + (sample - now) * LATENCY_WEIGHT;
    this.#observedAt = this.#clock.now();
  }

  /**
   * Dials unless connected (concurrent callers share one dial); the first
   * time, asks which methods the instance declares idempotent (Go kites
   * answer methodNotFound, kite.js nothing: then none).
   */
  async connect(learn: boolean): Promise<void> {
    const client = this.found.client;
    if (!client.connected) await client.dial();
    if (!learn) return;
    this.#learned ??= client.tellWithTimeout(IDEMPOTENT_METHOD, LEARN_MS)
      .then((names) => {
        if (Array.isArray(names)) {
          this.idempotent = new Set(
            names.filter((n) => typeof n === "string"),
          );
        }
      }, () => {}).finally(() => this.asked = true);
    await this.#learned;
  }

  /** Takes it out of the pool; its connection closes once its calls are done. */
  remove(): void {
    this.removed = true;
    this.found.renewer.stop();
    this.closeIfIdle();
  }

  closeIfIdle(): void {
    if (this.removed && this.outstanding === 0) this.found.client.close();
  }

  get info(): PoolInstance {
    return {
      id: this.id,
      url: this.found.url,
      kite: this.found.kite,
      connected: this.found.client.connected,
      transport: this.found.client.session?.transport,
      outstanding: this.outstanding,
      latencyMs: this.latencyMs,
      breaker: this.breaker.state,
      failures: this.breaker.failures,
      listed: this.listed,
    };
  }
}
