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
    scope = { deadline: Infinity, signal, active: true };
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
 * The calls with deadlines one kite is serving, per connection and
 * response-callback id, so `kite.cancel` can find them. Holds only calls
 * in flight, so no more than the kite's request limits.
 */
export class ServedDeadlines<C extends { readonly signal: AbortSignal }> {
  readonly #clock: Clock;
  readonly #byConn = new WeakMap<C, Map<number, AbortController>>();

  /** Timers run on `clock`. */
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Starts the deadline of a call that came with `timeoutMs`. */
  begin(conn: C, replyTo: number | undefined, timeoutMs: number): ServedScope {
    const clock = this.#clock;
    const controller = new AbortController();
    const deadline = timeoutMs > 0 ? clock.now() + timeoutMs : Infinity;
    const timer = timeoutMs > 0
      ? clock.setTimeout(
        () =>
          controller.abort(
            new KiteError(
              "timeout",
              `the caller's deadline passed (${timeoutMs}ms)`,
            ),
          ),
        timeoutMs,
      )
      : undefined;
    // Built when first read: most handlers never look, and a dependent
    // signal per call is a cost the connection's signal carries until GC.
    let signal: AbortSignal | undefined;
    let calls = this.#byConn.get(conn);
    if (replyTo !== undefined) {
      if (!calls) this.#byConn.set(conn, calls = new Map());
      calls.set(replyTo, controller);
    }
    let active = true;
    return {
      deadline,
      get signal() {
        return signal ??= AbortSignal.any([controller.signal, conn.signal]);
      },
      get active() {
        return active;
      },
      end: () => {
        active = false;
        if (timer !== undefined) clock.clearTimeout(timer);
        if (replyTo !== undefined && calls?.get(replyTo) === controller) {
          calls.delete(replyTo);
        }
      },
    };
  }

  /** Aborts the call `conn` sent with response callback `replyTo`, if it is still served. */
  cancel(conn: C, replyTo: unknown): void {
    if (typeof replyTo !== "number") return;
    const controller = this.#byConn.get(conn)?.get(replyTo);
    controller?.abort(
      new KiteError("timeout", "the caller cancelled the call"),
    );
  }
}
