/**
 * What the browser bundle puts where the library imports
 * `node:async_hooks` (`kite/serve/deadline.ts`): browsers have no
 * `AsyncLocalStorage`. A page serves no deadlines, so the store is only
 * seen by code that runs synchronously inside `run()`; calls made after an
 * `await` in a page handler do not inherit a caller's deadline.
 *
 * @module
 */

/** `AsyncLocalStorage` reduced to synchronous scopes. */
export class AsyncLocalStorage<T> {
  #store: T | undefined;

  /** Runs `fn` with `store` as the current store. */
  run<R>(store: T, fn: () => R): R {
    const previous = this.#store;
    this.#store = store;
    try {
      return fn();
    } finally {
      this.#store = previous;
    }
  }

  /** The store of the `run()` under way, if any. */
  getStore(): T | undefined {
    return this.#store;
  }
}
