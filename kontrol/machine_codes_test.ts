import { ManualClock } from "../kite/clock.ts";
import { assertEquals, assertRejects } from "../tests/helpers/assert.ts";
import { MachineCodes } from "./machine_codes.ts";

Deno.test("MachineCodes: a code works once, until it expires, for its user only", async () => {
  const clock = new ManualClock(1_000);
  const codes = new MachineCodes(clock);
  const a = await codes.create({ ttlMs: 60_000 });
  const b = await codes.create({ ttlMs: 60_000, username: "carol" });
  assertEquals(a === b, false);
  await codes.consume(a, "alice");
  await assertRejects(() => codes.consume(a, "alice"), Error, "already used");
  await assertRejects(() => codes.consume(b, "bob"), Error, "for user carol");
  await clock.advance(60_000);
  await assertRejects(() => codes.consume(b, "carol"), Error, "expired");
  await assertRejects(
    () => codes.create({ ttlMs: 0 }),
    RangeError,
    "ttl must be 1 ms to 30 days",
  );
});
