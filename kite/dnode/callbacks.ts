/**
 * The table of local functions a peer may call by id, one per connection.
 *
 * @module
 */
import type { AnyFunction } from "./scrub.ts";

/**
 * Local callbacks of one connection. Ids count up from 0 and are never
 * reused (docs/protocol.md §2.2). Passing the same function again reuses its id, so a
 * loop that sends one callback a million times holds one entry.
 */
export class CallbackTable {
  #next = 0;
  // Made on first use: most accepted connections never send a function.
  #byId: Map<number, AnyFunction> | undefined;
  #ids: Map<AnyFunction, number> | undefined;

  /**
   * Registers a function that lives until released or cleared. With
   * `fresh`, it gets a new id even if it is registered already (a function
   * sent twice in one message).
   */
  register(fn: AnyFunction, fresh = false): number {
    if (fresh) return this.registerOnce(fn);
    const ids = this.#ids ??= new Map();
    const known = ids.get(fn);
    if (known !== undefined) return known;
    const id = this.#next++;
    (this.#byId ??= new Map()).set(id, fn);
    ids.set(fn, id);
    return id;
  }

  /**
   * Takes the next id without registering a function, for a callback the
   * caller keeps itself (a call's response callback lives with the call).
   */
  newId(): number {
    return this.#next++;
  }

  /** Registers a one-shot function: no dedupe. */
  registerOnce(fn: AnyFunction): number {
    const id = this.#next++;
    (this.#byId ??= new Map()).set(id, fn);
    return id;
  }

  /** The function with this id, if still registered. */
  get(id: number): AnyFunction | undefined {
    return this.#byId?.get(id);
  }

  /** Releases one callback by id. */
  delete(id: number): void {
    const fn = this.#byId?.get(id);
    if (fn === undefined) return;
    this.#byId!.delete(id);
    if (this.#ids?.get(fn) === id) this.#ids.delete(fn);
  }

  /** Releases a function passed as an argument earlier. */
  release(fn: AnyFunction): boolean {
    const id = this.#ids?.get(fn);
    if (id === undefined) return false;
    this.delete(id);
    return true;
  }

  /** Drops every callback (the connection closed). */
  clear(): void {
    this.#byId?.clear();
    this.#ids?.clear();
  }

  /** Number of live callbacks. */
  get size(): number {
    return this.#byId?.size ?? 0;
  }
}
