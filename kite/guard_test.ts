import { assertEquals } from "../tests/helpers/assert.ts";
import { ManualClock } from "./clock.ts";
import { guard, guardedClock } from "./guard.ts";

Deno.test("guard() sends a throw and a rejected promise to onError, never to the caller", async () => {
  const errors: string[] = [];
  const onError = (e: unknown) => errors.push((e as Error).message);
  guard(() => {
    throw new Error("sync");
  }, onError);
  guard(() => Promise.reject(new Error("async")), onError);
  guard(async () => {
    await Promise.resolve();
    throw new Error("later");
  }, onError);
  guard(() => 42, onError);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(errors, ["sync", "async", "later"]);
});

Deno.test("guardedClock() runs timers whose callbacks throw or reject without ending the process", async () => {
  const inner = new ManualClock();
  const errors: unknown[] = [];
  const clock = guardedClock(inner, (e) => errors.push(e));
  let ran = 0;
  clock.setTimeout(() => {
    throw new Error("tick");
  }, 10);
  clock.setTimeout(
    (async () => {
      await Promise.resolve();
      throw new Error("async tick");
    }) as () => void,
    20,
  );
  const kept = clock.setTimeout(() => ran++, 30);
  const cancelled = clock.setTimeout(() => ran += 100, 30);
  clock.clearTimeout(cancelled);
  await inner.advance(30);
  assertEquals(errors.map((e) => (e as Error).message), ["tick", "async tick"]);
  assertEquals(ran, 1);
  assertEquals(clock.now(), inner.now());
  clock.clearTimeout(kept);
});
