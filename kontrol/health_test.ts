import { assertEquals } from "../tests/helpers/assert.ts";
import { ManualClock } from "../kite/clock.ts";
import { MemoryLogger } from "../tests/helpers/kite_harness.ts";
import { StorageHealth } from "./health.ts";

function setup() {
  const clock = new ManualClock();
  let failing: Error | undefined;
  const changes: boolean[] = [];
  const health = new StorageHealth(
    () => failing ? Promise.reject(failing) : Promise.resolve(),
    clock,
    new MemoryLogger(),
    { probeIntervalMs: 1_000, graceMs: 3_000 },
    (healthy) => changes.push(healthy),
  );
  const fail = (message?: string) => {
    failing = message === undefined ? undefined : new Error(message);
  };
  return { clock, health, changes, fail };
}

Deno.test("StorageHealth turns unhealthy only after failures outlast the grace, and back at the first success", async () => {
  const { clock, health, changes, fail } = setup();
  health.start();
  try {
    fail("connection refused");
    await clock.advance(3_000); // probes at 1, 2, 3 s: failing for 2 s
    assertEquals(health.healthy, true, "a blip does not move the kites");
    await clock.advance(1_000); // failing for 3 s
    assertEquals(health.healthy, false);
    assertEquals(health.problem, "connection refused");
    assertEquals(changes, [false]);
    fail();
    await clock.advance(1_000);
    assertEquals(health.healthy, true);
    assertEquals(changes, [false, true]);
  } finally {
    health.stop();
  }
});

Deno.test("StorageHealth: a successful write between failures restarts the grace", async () => {
  const { clock, health } = setup();
  health.fail(new Error("timeout"));
  await clock.advance(2_000);
  health.ok();
  await clock.advance(2_000);
  health.fail(new Error("timeout"));
  assertEquals(health.healthy, true, "failing for 0 s, not 4 s");
  await clock.advance(3_000);
  health.fail(new Error("timeout"));
  assertEquals(health.healthy, false);
});
