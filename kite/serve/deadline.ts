/**
 * Deadlines and cancellation across hops. A call sent with a timeout
 * carries the time left in an extra options field, `"timeout"` (ms,
 * after `withArgs`); the serving kite gives the request a deadline and an
 * `AbortSignal` that aborts when the time is up, when the caller's
 * connection drops, or when the caller sends `kite.cancel` for it. A call
 * made inside the handler inherits the rest of the time (and is cancelled
 * with the request) through an `AsyncLocalStorage` scope.
 *
 * Go kites decode the options object with encoding/json, which skips
 * fields it does not know, and answer an unknown method only through a
 * `responseCallback`; `kite.cancel` names none, so Go sends nothing back.
 * kite.js reads the options fields it knows by name and never answers an
 * unknown method (docs/protocol.md §3.4).
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { Clock } from "../clock.ts";
import { KiteError } from "../errors.ts";

/**
 * The options field that carries the caller's time left, ms; 0 marks a
 * call the caller may cancel but that has no deadline.
 */
export const TIMEOUT_FIELD = "timeout";
/** The method a caller sends to cancel one of its calls: `withArgs: [responseCallbackId]`. */
export const CANCEL_METHOD = "kite.cancel";
/** Longest timeout taken from the wire (a day); longer ones are capped. */
const MAX_WIRE_TIMEOUT_MS = 86_400_000;

/** The time limit of the call being served, as seen by the calls its handler makes. */
export interface CallScope {
  /** When the caller gives up, ms since the epoch (`Infinity`: no deadline). */
  readonly deadline: number;
  /** Aborts when the served call is given up. */
  readonly signal: AbortSignal;
  /**
   * False once the call is answered: work its handler left behind (timers,
   * loops) is then no longer bound by it.
   */
  readonly active: boolean;
  /** True once the served call was given up (as `signal.aborted`, without making it). */
  readonly givenUp: boolean;
  /**
   * The signal a call made in this scope over the connection whose signal
   * is `conn` must follow, or `undefined` if none. A call back over the
   * connection being served fails when that connection drops anyway, so it
   * follows only what else gives the served call up (its deadline,
   * `kite.cancel`): no dependent signal, which the connection's signal
   * would keep for as long as it lives.
   */
  follow(conn: AbortSignal): AbortSignal | undefined;
}

const scopes = new AsyncLocalStorage<CallScope>();

/** Runs `fn` (and everything it awaits) inside `scope`. */
export function withScope<T>(scope: CallScope, fn: () => T): T {
  return scopes.run(scope, fn);
}

/** The scope of the call being served here, if it came with a deadline. */
export function currentScope(): CallScope | undefined {
  return scopes.getStore();
}

/** The scope of calls that came without a deadline on one connection. */
class ConnectionScope implements CallScope {
  readonly deadline = Infinity;
  readonly active = true;
  readonly signal: AbortSignal;

  constructor(signal: AbortSignal) {
    this.signal = signal;
  }

  get givenUp(): boolean {
    return this.signal.aborted;
  }

  follow(conn: AbortSignal): AbortSignal | undefined {
    return conn === this.signal ? undefined : this.signal;
  }
}

const connectionScopes = new WeakMap<AbortSignal, CallScope>();

/**
 * The scope of a call that came without a deadline: it ends when the
 * caller's connection drops, so the calls its handler makes are cancelled
 * then too (they carry `"timeout": 0`, and `kite.cancel` follows). One
 * object per connection.
 */
export function connectionScope(signal: AbortSignal): CallScope {
  let scope = connectionScopes.get(signal);
  if (!scope) {
    scope = new ConnectionScope(signal);
    connectionScopes.set(signal, scope);
  }
  return scope;
}

/** A timeout read from the wire: a number of ms >= 0, else `undefined`. */
export function wireTimeout(value: unknown): number | undefined {
  if (typeof value !== "number" || !(value >= 0)) return undefined;
  return Math.min(MAX_WIRE_TIMEOUT_MS, Math.ceil(value));
}

/** One served call with a deadline. */
export interface ServedScope extends CallScope {
  /** Stops its timer and forgets it (the call is answered). */
  end(): void;
}

/**
 * A served call that came with a timeout. What only a listener needs — the
 * deadline's timer, the signal that joins the connection's — is made when
 * first asked for: a registering kite's calls all come with a timeout, and
 * most handlers never look. Nothing of it stays with the connection once
 * the call is answered.
 */
class Served<C extends { readonly signal: AbortSignal }>
  implements ServedScope {
  readonly deadline: number;
  readonly #owner: ServedDeadlines<C>;
  readonly #conn: C;
  /** The response callback id `kite.cancel` names it by, if any. */
  readonly replyTo: number | undefined;
  readonly #controller = new AbortController();
  readonly #timeoutMs: number;
  #timer: number | undefined;
  #signal: AbortSignal | undefined;
  #active = true;

  constructor(
    owner: ServedDeadlines<C>,
    conn: C,
    replyTo: number | undefined,
    timeoutMs: number,
    now: number,
  ) {
    this.#owner = owner;
    this.#conn = conn;
    this.replyTo = replyTo;
    this.#timeoutMs = timeoutMs;
    this.deadline = timeoutMs > 0 ? now + timeoutMs : Infinity;
  }

  get active(): boolean {
    return this.#active;
  }

  get signal(): AbortSignal {
    return this.#signal ??= AbortSignal.any([this.#own, this.#conn.signal]);
  }

  get givenUp(): boolean {
    return this.#controller.signal.aborted || this.#conn.signal.aborted ||
      this.deadline <= this.#owner.clock.now();
  }

  follow(conn: AbortSignal): AbortSignal {
    // A call back over the served connection carries at most the time left,
    // with a timer of its own: it needs the deadline's timer no more than
    // the connection's signal, and follows only `kite.cancel`.
    return conn === this.#conn.signal ? this.#controller.signal : this.signal;
  }

  /** The call's own signal (deadline, `kite.cancel`), its timer armed. */
  get #own(): AbortSignal {
    const own = this.#controller.signal;
    if (
      this.#timer === undefined && this.#active && !own.aborted &&
      this.deadline !== Infinity
    ) {
      const clock = this.#owner.clock;
      this.#timer = clock.setTimeout(
        () => this.cancel(deadlinePassed(this.#timeoutMs)),
        Math.max(0, this.deadline - clock.now()),
      );
    }
    return own;
  }

  /** Gives the call up. */
  cancel(reason: KiteError): void {
    this.#controller.abort(reason);
  }

  end(): void {
    if (!this.#active) return;
    this.#active = false;
    if (this.#timer !== undefined) this.#owner.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.replyTo !== undefined) this.#owner.forget(this.#conn, this);
  }
}

function deadlinePassed(timeoutMs: number): KiteError {
  return new KiteError(
    "timeout",
    `the caller's deadline passed (${timeoutMs}ms)`,
  );
}

/**
 * The calls with deadlines one kite is serving, per connection and
 * response-callback id, so `kite.cancel` can find them. Holds only calls
 * in flight, so no more than the kite's request limits.
 */
export class ServedDeadlines<C extends { readonly signal: AbortSignal }> {
  /** @internal Source of the deadlines' timers. */
  readonly clock: Clock;
  /**
   * A connection's one call in flight, or a map of them once it had two at
   * a time (kept then: such a connection is likely to again).
   */
  readonly #byConn = new WeakMap<C, Served<C> | Map<number, Served<C>>>();

  /** Timers run on `clock`. */
  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** Starts the deadline of a call that came with `timeoutMs`. */
  begin(conn: C, replyTo: number | undefined, timeoutMs: number): ServedScope {
    const served = new Served(this, conn, replyTo, timeoutMs, this.clock.now());
    if (replyTo === undefined) return served;
    const calls = this.#byConn.get(conn);
    if (calls === undefined) this.#byConn.set(conn, served);
    else if (calls instanceof Map) calls.set(replyTo, served);
    else {
      this.#byConn.set(
        conn,
        new Map([[calls.replyTo!, calls], [replyTo, served]]),
      );
    }
    return served;
  }

  /** @internal `served`, answered, is no longer found by `kite.cancel`. */
  forget(conn: C, served: Served<C>): void {
    const calls = this.#byConn.get(conn);
    if (calls === served) this.#byConn.delete(conn);
    else if (calls instanceof Map && calls.get(served.replyTo!) === served) {
      calls.delete(served.replyTo!);
    }
  }

  /** Aborts the call `conn` sent with response callback `replyTo`, if it is still served. */
  cancel(conn: C, replyTo: unknown): void {
    if (typeof replyTo !== "number") return;
    const calls = this.#byConn.get(conn);
    const served = calls instanceof Map
      ? calls.get(replyTo)
      : calls?.replyTo === replyTo
      ? calls
      : undefined;
    served?.cancel(new KiteError("timeout", "the caller cancelled the call"));
  }
}
