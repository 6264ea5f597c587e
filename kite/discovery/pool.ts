/**
 * A pool calls a service, not an instance: it finds the kites matching a
 * query through Kontrol, keeps the set current with a watch, balances
 * calls over them, retries where that is safe, keeps a circuit breaker
 * per instance and answers from a fallback when no instance can.
 *
 * @module
 */
import { KiteError } from "../errors.ts";
import type { KiteEvent, KiteWithToken, KontrolQuery } from "../protocol.ts";
import { type Balancer, balancerFor } from "./balancer.ts";
import { Member, type PoolInstance } from "./member.ts";
import {
  DEFAULT_POOL_OPTIONS,
  type PoolCallOptions,
  type PoolEvent,
  type PoolOptions,
  type PoolResult,
} from "./pool_options.ts";
import { RetryBudget } from "./retry_budget.ts";
import { callOnce, failed, type Failure, succeeded } from "./attempt.ts";
import { KontrolWatch, type PoolHost } from "./watch.ts";

export type { PoolInstance } from "./member.ts";
export type { PoolHost } from "./watch.ts";
export { DEFAULT_POOL_OPTIONS } from "./pool_options.ts";
export type {
  PoolCallOptions,
  PoolEvent,
  PoolFallback,
  PoolOptions,
  PoolResult,
} from "./pool_options.ts";

/** A finished call: the instance that answered, none when a fallback did. */
interface Done {
  result: unknown;
  member: Member | undefined;
  attempts: number;
}

const NONE: readonly Member[] = [];
const NO_CALL_OPTIONS = {};
const resultOf = (done: Done): unknown => done.result;

/**
 * A service behind Kontrol: every kite matching a query. Get one from
 * `Kite.pool()`.
 *
 * @example
 * ```ts ignore
 * const math = kite.pool({ username: "alice", environment: "prod", name: "math" }, {
 *   idempotent: ["square"],
 * });
 * console.log(await math.tellWithTimeout("square", 1_000, 4)); // 16
 * await math.close();
 * ```
 */
export class KitePool {
  /** The query the pool watches. */
  readonly query: Partial<KontrolQuery>;
  readonly #kite: PoolHost;
  readonly #members = new Map<string, Member>();
  readonly #balancer: Balancer;
  readonly #idempotent: ReadonlySet<string>;
  readonly #budget: RetryBudget;
  readonly #options: PoolOptions;
  readonly #listeners = new Set<(event: PoolEvent) => void>();
  readonly #watch: KontrolWatch;
  readonly #removeCloser: () => void;
  #closed = false;
  #synced = false;

  /** @internal Use `Kite.pool()`. */
  constructor(
    kite: PoolHost,
    query: Partial<KontrolQuery>,
    options: PoolOptions = {},
  ) {
    const attempts = options.maxAttempts ?? DEFAULT_POOL_OPTIONS.maxAttempts;
    if (!Number.isInteger(attempts) || attempts < 1) {
      throw new RangeError(
        `pool maxAttempts must be a whole number >= 1, got ${attempts}`,
      );
    }
    this.query = query;
    this.#kite = kite;
    this.#options = options;
    this.#balancer = balancerFor(options.balancer ?? "p2c");
    this.#idempotent = new Set(options.idempotent ?? []);
    this.#budget = new RetryBudget(options.retryBudget);
    this.#watch = new KontrolWatch(kite, query, {
      sync: (kites) => this.#sync(kites),
      event: (event) => this.#event(event),
      error: (error) => {
        kite.logger.warning(`pool watch failed: ${error.message}`);
        this.#emit({ type: "watchError", error });
      },
    });
    this.#removeCloser = kite.addCloser(() => this.close());
  }

  /** Resolves once the first list of instances arrived from Kontrol. */
  get ready(): Promise<void> {
    return this.#watch.first;
  }

  /** The instances the pool sees now, with their health. */
  get instances(): PoolInstance[] {
    return [...this.#members.values()].map((m) => m.info);
  }

  /** Calls `fn` with every {@linkcode PoolEvent}; returns an unsubscribe function. */
  onEvent(fn: (event: PoolEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /**
   * Calls `method` on one instance and resolves with its result.
   * @throws {KiteError} the instance's error, or the last connection-level
   * failure once no instance could take the call.
   */
  tell(method: string, ...args: unknown[]): Promise<unknown> {
    return this.#tell(method, args, this.#options.timeoutMs ?? 0);
  }

  /** Like {@linkcode KitePool.tell}, failing with `timeout` after `ms` over all attempts. */
  tellWithTimeout(
    method: string,
    ms: number,
    ...args: unknown[]
  ): Promise<unknown> {
    return this.#tell(method, args, ms);
  }

  /**
   * The first attempt on an instance that is ready (connected, its
   * idempotent methods known) goes out with no async frame of the pool's
   * own: the common case costs little more than a direct call. Anything
   * else, and every retry, takes {@linkcode KitePool.#call}.
   */
  #tell(method: string, args: unknown[], timeoutMs: number): Promise<unknown> {
    if (this.#closed || !this.#synced) {
      return this.#call(method, args, { timeoutMs }).then(resultOf);
    }
    const member = this.#choose(NONE);
    if (!member) return this.#call(method, args, { timeoutMs }).then(resultOf);
    const learn = this.#options.learnIdempotent !== false;
    if (!member.found.client.connected || learn && !member.asked) {
      return this.#call(method, args, { timeoutMs }, member).then(resultOf);
    }
    const clock = this.#kite.clock;
    const start = clock.now();
    this.#budget.deposit();
    member.outstanding++;
    return member.found.client.call(
      method,
      args,
      timeoutMs > 0 ? { timeoutMs } : NO_CALL_OPTIONS,
    ).then(
      (result) => {
        succeeded(member, start, clock);
        return result;
      },
      (err) => {
        member.outstanding--;
        const failure = failed(
          member,
          method,
          err,
          true,
          this.#idempotent.has(method),
          undefined,
        );
        const deadline = timeoutMs > 0 ? start + timeoutMs : Infinity;
        return this.#call(method, args, { timeoutMs }, member, {
          failure,
          deadline,
        }).then(resultOf);
      },
    );
  }

  /** Calls `method` and tells which instance answered, or whether the fallback did. */
  async call(
    method: string,
    args: unknown[] = [],
    options: PoolCallOptions = {},
  ): Promise<PoolResult> {
    const done = await this.#call(method, args, options);
    return {
      result: done.result,
      degraded: done.member === undefined,
      instance: done.member?.info,
      attempts: done.attempts,
    };
  }

  /**
   * A call over as many attempts as allowed. `first`: the instance the
   * first attempt goes to (already chosen); with `done`, that attempt
   * already failed (the call was counted, and its deadline set, then).
   */
  async #call(
    method: string,
    args: unknown[],
    options: PoolCallOptions,
    first?: Member,
    done?: { failure: Failure; deadline: number },
  ): Promise<Done> {
    if (this.#closed) {
      throw done?.failure.error ??
        new KiteError("sendError", "can't send, the pool is closed");
    }
    const clock = this.#kite.clock;
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs ?? 0;
    const deadline = done?.deadline ??
      (timeoutMs > 0 ? clock.now() + timeoutMs : Infinity);
    if (!this.#synced) await this.#waitReady(method, timeoutMs);
    if (!done) this.#budget.deposit();
    const maxAttempts = this.#options.maxAttempts ??
      DEFAULT_POOL_OPTIONS.maxAttempts;
    const tried: Member[] = [];
    let last: KiteError | undefined;
    let attempt = 0;
    while (attempt < maxAttempts) {
      const member = attempt === 0 && first ? first : this.#choose(tried);
      if (!member) {
        last = this.#unavailable(method, tried.length > 0, last);
        break;
      }
      attempt++;
      tried.push(member);
      const outcome = attempt === 1 && done ? done.failure : await callOnce(
        member,
        method,
        args,
        deadline,
        clock,
        this.#idempotent.has(method),
        this.#options.learnIdempotent !== false,
        options.signal,
      );
      if (outcome.ok) {
        return { result: outcome.result, member, attempts: attempt };
      }
      last = outcome.error;
      this.#afterFailure(member, outcome);
      if (!outcome.retry) throw last;
      if (attempt >= maxAttempts || !this.#budget.withdraw()) break;
      this.#emit({
        type: "retry",
        method,
        attempt,
        error: last,
        instance: member.info,
      });
      await this.#pause(attempt, deadline);
      if (clock.now() >= deadline) {
        last = new KiteError(
          "timeout",
          `No response to "${method}" method in ${timeoutMs}ms (${attempt} attempts)`,
          { cause: last },
        );
        break;
      }
    }
    const error = last ?? this.#unavailable(method, false, undefined);
    return await this.#degrade(method, args, error, attempt);
  }

  /** Stops watching and closes every connection the pool opened. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#removeCloser();
    await this.#watch.close();
    for (const member of this.#members.values()) {
      member.remove();
      member.found.client.close();
    }
    this.#members.clear();
    this.#listeners.clear();
  }

  async #waitReady(method: string, timeoutMs: number): Promise<void> {
    if (timeoutMs <= 0) return await this.#watch.first;
    const clock = this.#kite.clock;
    let timer = 0;
    const expired = new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() =>
        reject(
          new KiteError(
            "timeout",
            `No response to "${method}" method in ${timeoutMs}ms: Kontrol ${this.#kite.kontrol.url} has not listed the pool's kites yet`,
          ),
        ), timeoutMs);
    });
    try {
      await Promise.race([this.#watch.first, expired]);
    } finally {
      clock.clearTimeout(timer);
    }
  }

  #choose(tried: readonly Member[]): Member | undefined {
    const candidates: Member[] = [];
    for (const m of this.#members.values()) {
      if (!tried.includes(m) && m.breaker.available) candidates.push(m);
    }
    while (candidates.length > 0) {
      const i = this.#balancer.pick(candidates);
      const m = candidates[i] ?? candidates[0];
      if (m.breaker.acquire()) return m;
      candidates.splice(candidates.indexOf(m), 1);
    }
    return undefined;
  }

  #afterFailure(member: Member, outcome: Failure): void {
    // An instance Kontrol no longer lists goes at its first failure.
    if (outcome.connectionLevel && !member.listed && !member.removed) {
      this.#remove(member, "unreachable");
    }
  }

  #unavailable(
    method: string,
    triedSome: boolean,
    last: KiteError | undefined,
  ): KiteError {
    if (triedSome && last) return last;
    const all = [...this.#members.values()];
    const where = `kites matching ${JSON.stringify(this.query)}`;
    if (all.length === 0) {
      return new KiteError(
        "sendError",
        `no instance to call "${method}" on: Kontrol lists no ${where}`,
      );
    }
    const soonest = Math.min(...all.map((m) => m.breaker.openUntil));
    const wait = Math.max(0, soonest - this.#kite.clock.now());
    return new KiteError(
      "sendError",
      `no instance to call "${method}" on: the circuit breaker of all ${all.length} ${where} is open (next probe in ${wait}ms); set a fallback to answer meanwhile`,
      { cause: last },
    );
  }

  async #degrade(
    method: string,
    args: unknown[],
    error: KiteError,
    attempts: number,
  ): Promise<Done> {
    const fallback = this.#options.fallbacks?.[method];
    const any = this.#options.fallback;
    if (!fallback && !any) throw error;
    this.#emit({ type: "degraded", method, error });
    const result = fallback
      ? await fallback(args, error)
      : await any!(method, args, error);
    return { result, member: undefined, attempts };
  }

  /** Jittered backoff before attempt `attempt + 1`, within the deadline. */
  #pause(attempt: number, deadline: number): Promise<void> {
    const b = { ...DEFAULT_POOL_OPTIONS.backoff, ...this.#options.backoff };
    const base = Math.min(b.maxMs, b.initialMs * b.multiplier ** (attempt - 1));
    const spread = base * b.jitter;
    const clock = this.#kite.clock;
    const ms = Math.min(
      Math.max(0, base - spread + Math.random() * 2 * spread),
      Math.max(0, deadline - clock.now()),
    );
    return new Promise((resolve) => clock.setTimeout(resolve, ms));
  }

  #sync(kites: KiteWithToken[]): void {
    const seen = new Set<string>();
    for (const k of kites) {
      seen.add(k.kite.id);
      this.#add(k);
    }
    for (const m of [...this.#members.values()]) {
      if (seen.has(m.id)) continue;
      // Not listed (yet) after a Kontrol restart: keep it while it works.
      if (m.found.client.connected) m.listed = false;
      else this.#remove(m, "resync");
    }
    this.#synced = true;
    this.#emit({ type: "sync", instances: this.#members.size });
  }

  #event(event: KiteEvent): void {
    const id = event?.kite?.id;
    if (typeof id !== "string") return;
    if (event.action === "DEREGISTER") {
      const m = this.#members.get(id);
      if (m) this.#remove(m, "deregister");
      return;
    }
    if (event.action !== "REGISTER" || !event.url || !event.token) return;
    this.#add({
      kite: event.kite,
      url: event.url,
      keyId: "",
      token: event.token,
    });
  }

  #add(k: KiteWithToken): void {
    if (this.#closed) return;
    const known = this.#members.get(k.kite.id);
    if (known && known.found.url === k.url) {
      known.listed = true;
      return;
    }
    let member: Member;
    try {
      member = new Member(
        this.#kite.kontrol.found(k),
        this.#options.breaker ?? {},
        this.#kite.clock,
        (m, state) => this.#emit({ type: "breaker", instance: m.info, state }),
      );
    } catch (err) {
      this.#kite.logger.warning(
        `pool skips ${k.kite.name} (${k.kite.id}): ${(err as Error).message}`,
      );
      return;
    }
    if (known) this.#remove(known, "replaced");
    this.#members.set(member.id, member);
    this.#emit({ type: "add", instance: member.info });
  }

  #remove(
    member: Member,
    reason: "deregister" | "resync" | "unreachable" | "replaced",
  ): void {
    if (this.#members.get(member.id) === member) {
      this.#members.delete(member.id);
    }
    member.remove();
    this.#emit({ type: "remove", instance: member.info, reason });
  }

  #emit(event: PoolEvent): void {
    for (const fn of this.#listeners) {
      try {
        const out = fn(event) as unknown;
        if (out instanceof Promise) {
          out.catch((err) =>
            this.#kite.logger.warning(`pool event listener failed: ${err}`)
          );
        }
      } catch (err) {
        this.#kite.logger.warning(`pool event listener failed: ${err}`);
      }
    }
  }
}
