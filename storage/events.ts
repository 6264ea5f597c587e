/**
 * Watch plumbing shared by the storage adapters: in-process listeners and the
 * events a write produces. Internal; adapters use it to implement `watch`.
 *
 * @module
 */
import type { KiteIdentity, KontrolQuery } from "../kite/protocol.ts";
import { QUERY_FIELDS } from "../kite/protocol.ts";
import { type CompiledQuery, compileQuery } from "./query.ts";
import type { StorageEvent, StoredKite, Unsubscribe } from "./storage.ts";

/**
 * A watch listener. It may be `async`: a promise it returns that rejects is
 * reported like a throw (a listener often sends to a peer, which can fail).
 */
export type WatchListener = (event: StorageEvent) => void | Promise<void>;

interface Watcher {
  query: CompiledQuery;
  listener: WatchListener;
  /** `Date.now()` when the watch started. */
  since: number;
}

/** A set of watch listeners, each filtered by its compiled query. */
export class WatcherSet {
  #watchers = new Set<Watcher>();
  #gapListeners = new Set<() => void>();
  #onEmpty: () => void;

  /** `onEmpty` runs when the last listener unsubscribes. */
  constructor(onEmpty: () => void = () => {}) {
    this.#onEmpty = onEmpty;
  }

  /** Number of active listeners. */
  get size(): number {
    return this.#watchers.size;
  }

  /** Earliest start time (`Date.now()`) of the active listeners. */
  get since(): number {
    let min = Infinity;
    for (const w of this.#watchers) min = Math.min(min, w.since);
    return min;
  }

  /**
   * Adds a listener. @throws {QueryError} when `query` is invalid.
   */
  add(
    query: KontrolQuery,
    listener: WatchListener,
  ): Unsubscribe {
    const watcher = { query: compileQuery(query), listener, since: Date.now() };
    this.#watchers.add(watcher);
    return () => {
      if (this.#watchers.delete(watcher) && this.#watchers.size === 0) {
        this.#onEmpty();
      }
    };
  }

  /**
   * Delivers `event` to every listener whose query matches and which started
   * no later than `at` (`Date.now()` of the change; default: deliver to all).
   * Never throws and leaves no rejection unhandled: a listener's failure,
   * thrown or as a rejected promise, is reported and stops nothing else.
   */
  emit(event: StorageEvent, at: number = Infinity): void {
    for (const w of [...this.#watchers]) {
      if (w.since > at || !w.query.matches(event.kite)) continue;
      try {
        const out = w.listener(event);
        if (out instanceof Promise) {
          out.then(undefined, (error) => listenerFailed(event, error));
        }
      } catch (error) {
        listenerFailed(event, error);
      }
    }
  }

  /** Adds a listener for {@linkcode WatcherSet.gap}. */
  onGap(listener: () => void): Unsubscribe {
    this.#gapListeners.add(listener);
    return () => void this.#gapListeners.delete(listener);
  }

  /** Tells the gap listeners that events may have been missed. */
  gap(): void {
    for (const listener of [...this.#gapListeners]) {
      try {
        listener();
      } catch (error) {
        console.error("storage watch gap listener failed", error);
      }
    }
  }

  /** Removes every listener (without calling `onEmpty`). */
  clear(): void {
    this.#watchers.clear();
    this.#gapListeners.clear();
  }
}

function listenerFailed(event: StorageEvent, error: unknown): void {
  console.error(
    "storage watch listener failed",
    event.action,
    event.kite.id,
    error,
  );
}

/** True when all seven identity fields are equal. */
export function sameIdentity(a: KiteIdentity, b: KiteIdentity): boolean {
  return QUERY_FIELDS.every((f) => a[f] === b[f]);
}

/** A `REGISTER` event for a stored kite. */
export function registerEvent(record: StoredKite): StorageEvent {
  return {
    action: "REGISTER",
    kite: { ...record.kite },
    url: record.url,
    keyId: record.keyId,
  };
}

/** A `DEREGISTER` event for a kite. */
export function deregisterEvent(kite: KiteIdentity): StorageEvent {
  return { action: "DEREGISTER", kite: { ...kite } };
}

/**
 * The events a write of `next` over `previous` produces: `REGISTER` for a new
 * id, nothing when only url/keyId/updatedAt change, and `DEREGISTER` then
 * `REGISTER` when the same id comes back with another identity (so watchers
 * of the old identity learn it is gone).
 */
export function writeEvents(
  previous: StoredKite | undefined,
  next: StoredKite,
): StorageEvent[] {
  if (!previous) return [registerEvent(next)];
  if (sameIdentity(previous.kite, next.kite)) return [];
  return [deregisterEvent(previous.kite), registerEvent(next)];
}
