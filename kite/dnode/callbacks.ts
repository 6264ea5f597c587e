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
  // A table's first function sits in fields of its own; the maps are made
  // when it holds two: a Kontrol keeps one heartbeat callback on each of
  // thousands of connections, and most accepted connections send none.
  #soleId = -1;
  #sole: AnyFunction | undefined;
  /** The sole function is found by value too (registered, not once). */
  #soleByValue = false;
  #byId: Map<number, AnyFunction> | undefined;
  #ids: Map<AnyFunction, number> | undefined;

  /**
   * Registers a function that lives until released or cleared. With
   * `fresh`, it gets a new id even if it is registered already (a function
   * sent twice in one message).
   */
  register(fn: AnyFunction, fresh = false): number {
    if (fresh) return this.registerOnce(fn);
    const known = this.#idOf(fn);
    if (known !== undefined) return known;
    return this.#add(fn, true);
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
    return this.#add(fn, false);
  }

  /** The function with this id, if still registered. */
  get(id: number): AnyFunction | undefined {
    if (this.#byId) return this.#byId.get(id);
    return id === this.#soleId ? this.#sole : undefined;
  }

  /** Releases one callback by id. */
  delete(id: number): void {
    const byId = this.#byId;
    if (!byId) {
      if (id === this.#soleId) this.#clearSole();
      return;
    }
    const fn = byId.get(id);
    if (fn === undefined) return;
    byId.delete(id);
    if (this.#ids?.get(fn) === id) this.#ids.delete(fn);
  }

  /** Releases a function passed as an argument earlier. */
  release(fn: AnyFunction): boolean {
    const id = this.#idOf(fn);
    if (id === undefined) return false;
    this.delete(id);
    return true;
  }

  /** Drops every callback (the connection closed). */
  clear(): void {
    this.#clearSole();
    this.#byId?.clear();
    this.#ids?.clear();
  }

  /** Number of live callbacks. */
  get size(): number {
    if (this.#byId) return this.#byId.size;
    return this.#sole === undefined ? 0 : 1;
  }

  #idOf(fn: AnyFunction): number | undefined {
    if (this.#byId) return this.#ids?.get(fn);
    return this.#soleByValue && this.#sole === fn ? this.#soleId : undefined;
  }

  #add(fn: AnyFunction, byValue: boolean): number {
    const id = this.#next++;
    if (!this.#byId && this.#sole === undefined) {
      this.#soleId = id;
      this.#sole = fn;
      this.#soleByValue = byValue;
      return id;
    }
    if (!this.#byId) {
      // A second function: both go to the maps from now on.
      this.#byId = new Map([[this.#soleId, this.#sole!]]);
      if (this.#soleByValue) this.#ids = new Map([[this.#sole!, this.#soleId]]);
      this.#clearSole();
    }
    this.#byId.set(id, fn);
    if (byValue) (this.#ids ??= new Map()).set(fn, id);
    return id;
  }

  #clearSole(): void {
    this.#soleId = -1;
    this.#sole = undefined;
    this.#soleByValue = false;
  }
}
