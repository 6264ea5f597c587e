/**
 * A cache of verification results bounded by entries *and* bytes: keys of
 * credential caches are credentials (tokens, PEMs), so their size is chosen
 * by whoever sends them, and a bound by count alone lets a few large keys
 * hold any amount of memory.
 *
 * @module
 */

/** Bounds of one {@linkcode BoundedCache}. */
export interface BoundedCacheOptions {
  /** Most entries held. */
  maxEntries: number;
  /** Most bytes held, counted by {@linkcode BoundedCache.set}'s `bytes`. */
  maxBytes: number;
}

interface Slot<V> {
  value: V;
  until: number;
  bytes: number;
}

/**
 * Entries expire at their own `until`; when a bound is exceeded the least
 * recently stored entries go first.
 */
export class BoundedCache<V> {
  #slots = new Map<string, Slot<V>>();
  #bytes = 0;
  #options: BoundedCacheOptions;

  /** Creates an empty cache. */
  constructor(options: BoundedCacheOptions) {
    for (const name of ["maxEntries", "maxBytes"] as const) {
      if (!(options[name] >= 1)) {
        throw new RangeError(`${name} must be >= 1, got ${options[name]}`);
      }
    }
    this.#options = options;
  }

  /** Entries held (expired ones included until they are looked up or pushed out). */
  get size(): number {
    return this.#slots.size;
  }

  /** Bytes held, as counted by the callers of {@linkcode BoundedCache.set}. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The value stored under `key`, unless it expired by `nowMs`. */
  get(key: string, nowMs: number): V | undefined {
    const slot = this.#slots.get(key);
    if (!slot) return undefined;
    if (slot.until > nowMs) return slot.value;
    this.delete(key);
    return undefined;
  }

  /**
   * Stores `value` until `until`. `bytes` is what the entry costs besides
   * its key (the key's length is added here). An entry larger than the
   * whole byte budget is not stored.
   */
  set(key: string, value: V, until: number, bytes = 0): void {
    this.delete(key);
    const cost = key.length + bytes + ENTRY_OVERHEAD_BYTES;
    if (cost > this.#options.maxBytes) return;
    this.#slots.set(key, { value, until, bytes: cost });
    this.#bytes += cost;
    const { maxEntries, maxBytes } = this.#options;
    while (this.#slots.size > maxEntries || this.#bytes > maxBytes) {
      this.delete(this.#slots.keys().next().value!);
    }
  }

  /** Forgets `key`. */
  delete(key: string): void {
    const slot = this.#slots.get(key);
    if (!slot) return;
    this.#slots.delete(key);
    this.#bytes -= slot.bytes;
  }

  /** Forgets everything. */
  clear(): void {
    this.#slots.clear();
    this.#bytes = 0;
  }
}

/** What a map entry and its record cost besides key and value (an estimate). */
export const ENTRY_OVERHEAD_BYTES = 128;
