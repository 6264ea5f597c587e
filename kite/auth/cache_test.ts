import assert from "node:assert/strict";
import { BoundedCache, ENTRY_OVERHEAD_BYTES } from "./cache.ts";

Deno.test("BoundedCache drops the oldest entries when over its byte bound", () => {
  const cache = new BoundedCache<number>({
    maxEntries: 1000,
    maxBytes: 3 * (100 + ENTRY_OVERHEAD_BYTES),
  });
  for (let i = 0; i < 10; i++) {
    cache.set(String(i).padEnd(100, "k"), i, Infinity);
  }
  assert.equal(cache.size, 3);
  assert.ok(cache.bytes <= 3 * (100 + ENTRY_OVERHEAD_BYTES));
  assert.equal(cache.get("9".padEnd(100, "k"), 0), 9);
  assert.equal(cache.get("6".padEnd(100, "k"), 0), undefined);
  // An entry larger than the whole budget is not kept, and evicts nothing.
  cache.set("x".repeat(10_000), 1, Infinity);
  assert.equal(cache.size, 3);
});

Deno.test("BoundedCache bounds entries and expires them", () => {
  const cache = new BoundedCache<string>({ maxEntries: 2, maxBytes: 1e6 });
  cache.set("a", "A", 10);
  cache.set("b", "B", 20);
  cache.set("c", "C", 20);
  assert.equal(cache.get("a", 0), undefined);
  assert.equal(cache.get("b", 15), "B");
  assert.equal(cache.get("b", 20), undefined);
  assert.equal(cache.size, 1);
  cache.clear();
  assert.equal(cache.bytes, 0);
  assert.throws(
    () => new BoundedCache({ maxEntries: 0, maxBytes: 1 }),
    RangeError,
  );
});
