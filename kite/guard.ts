/**
 * Running code that has no caller to fail: timer callbacks, event
 * listeners, hooks. A throw or a rejected promise there would end the
 * process (an uncaught error or unhandled rejection), so it goes to an
 * error handler instead, whatever the function returns.
 *
 * @module
 */
import type { Clock } from "./clock.ts";

/**
 * Runs `fn`; a throw, or a rejection of the promise it returns, goes to
 * `onError`. Never throws, never leaves a rejection unhandled.
 */
export function guard(
  fn: () => unknown,
  onError: (error: unknown) => void,
): void {
  try {
    const out = fn();
    if (isThenable(out)) out.then(undefined, onError);
  } catch (error) {
    onError(error);
  }
}

/**
 * `clock`, with every timer callback run under {@linkcode guard}: a timer
 * set on it cannot end the process, whatever it calls.
 */
export function guardedClock(
  clock: Clock,
  onError: (error: unknown) => void,
): Clock {
  return {
    now: () => clock.now(),
    setTimeout: (fn, ms) => clock.setTimeout(() => guard(fn, onError), ms),
    clearTimeout: (handle) => clock.clearTimeout(handle),
  };
}

/** True for promises and other objects with a `then` method. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function";
}
