import { assertEquals, assertThrows } from "../tests/helpers/assert.ts";
import { ManualClock } from "./clock.ts";
import { TokenBucket } from "./throttle.ts";

/** How many tokens can be taken right now. */
function drain(bucket: TokenBucket): number {
  let n = 0;
  while (bucket.take()) n++;
  return n;
}

Deno.test("TokenBucket starts full and refuses once empty", () => {
  const bucket = new TokenBucket(100, 5, new ManualClock());
  assertEquals(drain(bucket), 5);
  assertEquals(bucket.take(), false);
});

Deno.test("TokenBucket adds one token per fill interval, up to the capacity", async () => {
  const clock = new ManualClock();
  const bucket = new TokenBucket(100, 5, clock);
  drain(bucket);
  await clock.advance(99);
  assertEquals(bucket.take(), false);
  await clock.advance(1);
  assertEquals(drain(bucket), 1);
  // Partial intervals are kept: 50 + 50 ms make one token.
  await clock.advance(50);
  assertEquals(bucket.take(), false);
  await clock.advance(50);
  assertEquals(drain(bucket), 1);
  await clock.advance(250);
  assertEquals(drain(bucket), 2);
  await clock.advance(10_000);
  assertEquals(drain(bucket), 5);
});

Deno.test("TokenBucket does not bank time while full: refill counts from the first take", async () => {
  const clock = new ManualClock();
  const bucket = new TokenBucket(100, 2, clock);
  // Full for 1050 ms; the 50 ms past the last whole interval are not kept.
  await clock.advance(1_050);
  assertEquals(bucket.take(), true);
  await clock.advance(50);
  assertEquals(drain(bucket), 1);
  await clock.advance(50);
  assertEquals(drain(bucket), 1);
});

Deno.test("TokenBucket refuses a non-positive interval or capacity", () => {
  const clock = new ManualClock();
  for (
    const [interval, capacity] of [[0, 1], [-1, 1], [NaN, 1], [10, 0], [
      10,
      NaN,
    ]]
  ) {
    assertThrows(() => new TokenBucket(interval, capacity, clock), RangeError);
  }
});
