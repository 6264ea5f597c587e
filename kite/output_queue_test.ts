import { assert, assertEquals } from "../tests/helpers/assert.ts";
import { OutputQueue } from "./output_queue.ts";

Deno.test("OutputQueue holds at most maxBytes for a sink that does not take them, then drops and counts", async () => {
  const stuck = Promise.withResolvers<number>();
  const writes: number[] = [];
  const queue = new OutputQueue({
    write: (bytes) => {
      writes.push(bytes.length);
      return writes.length === 1
        ? stuck.promise
        : Promise.resolve(bytes.length);
    },
  }, 100);
  assert(queue.push(new Uint8Array(60)));
  assert(queue.push(new Uint8Array(40)));
  assertEquals(queue.push(new Uint8Array(1)), false);
  assertEquals(queue.dropped, { writes: 1, bytes: 1 });
  assertEquals(queue.queuedBytes, 100);
  // The sink takes part of the first chunk, then the rest goes out in order.
  stuck.resolve(20);
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  assertEquals(writes, [60, 40, 40]);
  assertEquals(queue.queuedBytes, 0);
  assert(queue.push(new Uint8Array(100)));
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
});

Deno.test("OutputQueue drops everything once its sink failed", async () => {
  const queue = new OutputQueue({
    write: () => Promise.reject(new Error("closed")),
  });
  assert(queue.push(new Uint8Array(5)));
  await new Promise((r) => setTimeout(r, 0));
  assertEquals((queue.failure as Error).message, "closed");
  assertEquals(queue.push(new Uint8Array(5)), false);
});
