import { ManualClock } from "../clock.ts";
import {
  assert,
  assertEquals,
  assertThrows,
} from "../../tests/helpers/assert.ts";
import {
  balancerFor,
  PowerOfTwoChoices,
  RandomBalancer,
  RoundRobin,
} from "./balancer.ts";
import { type BreakerState, CircuitBreaker } from "./breaker.ts";
import { RetryBudget } from "./retry_budget.ts";

Deno.test("CircuitBreaker opens after consecutive failures, probes once, closes on success", () => {
  const clock = new ManualClock();
  const states: BreakerState[] = [];
  const b = new CircuitBreaker(
    { consecutiveFailures: 3, openMs: 100 },
    clock,
    (s) => void states.push(s),
  );
  b.failure();
  b.failure();
  b.success();
  b.failure();
  b.failure();
  assertEquals(b.state, "closed", "a success in between resets the count");
  b.failure();
  assertEquals(b.state, "open");
  assert(!b.acquire(), "an open breaker lets nothing through");
  clock.advance(100);
  assertEquals(b.state, "half-open");
  assert(b.acquire(), "one probe");
  assert(!b.acquire(), "only one probe at a time");
  b.failure();
  assertEquals(b.state, "open", "a failed probe opens it again");
  clock.advance(150);
  assertEquals(b.state, "open", "for twice as long");
  clock.advance(50);
  assert(b.acquire());
  b.success();
  assertEquals(b.state, "closed");
  assertEquals(states, [
    "open",
    "half-open",
    "open",
    "half-open",
    "closed",
  ]);
});

Deno.test("CircuitBreaker opens on an error rate without a run of failures", () => {
  const b = new CircuitBreaker(
    { consecutiveFailures: 100, errorRate: 0.5, window: 10 },
    new ManualClock(),
  );
  for (let i = 0; i < 4; i++) {
    b.failure();
    b.success();
  }
  b.failure();
  assertEquals(b.state, "closed", "9 outcomes: not judged yet");
  b.success();
  b.failure();
  assertEquals(b.state, "open", "5 failures in the last 10");
});

Deno.test("PowerOfTwoChoices prefers the lower (outstanding + 1) × latency, an untried instance first", () => {
  const seq = [0, 0.1, 0.5, 0.6, 0, 0.6];
  let i = 0;
  const p2c = new PowerOfTwoChoices(() => seq[i++ % seq.length]);
  const c = [
    { outstanding: 3, latencyMs: 1 }, // costs 4
    { outstanding: 0, latencyMs: 50 }, // slow but idle: costs 50
    { outstanding: 1, latencyMs: 0 }, // no answer yet: costs 0
  ];
  assertEquals(p2c.pick(c), 0); // 0 vs 1
  assertEquals(p2c.pick(c), 2); // 1 vs 2
  assertEquals(p2c.pick(c), 2); // 0 vs 2
  assertEquals(p2c.pick([c[0]]), 0);
});

Deno.test("RoundRobin takes each in turn; RandomBalancer stays in range; balancerFor names them", () => {
  const rr = new RoundRobin();
  const c = [0, 1, 2].map(() => ({ outstanding: 0, latencyMs: 0 }));
  assertEquals([0, 1, 2, 3].map(() => rr.pick(c)), [0, 1, 2, 0]);
  const random = new RandomBalancer(() => 0.999);
  assertEquals(random.pick(c), 2);
  assert(balancerFor("round-robin") instanceof RoundRobin);
  assert(balancerFor(rr) === rr);
  assertThrows(
    () => balancerFor("fastest" as "p2c"),
    TypeError,
    "unknown balancer",
  );
});

Deno.test("RetryBudget allows its reserve, then ratio of the calls", () => {
  const budget = new RetryBudget({ ratio: 0.2, reserve: 2, window: 100 });
  assert(budget.withdraw());
  assert(budget.withdraw());
  assert(!budget.withdraw(), "reserve spent");
  for (let i = 0; i < 10; i++) budget.deposit();
  assertEquals(budget.available, 2, "10 calls earn 2 retries");
  for (let i = 0; i < 10_000; i++) budget.deposit();
  assertEquals(budget.available, 22, "capped at reserve + ratio * window");
  assertThrows(() => new RetryBudget({ ratio: 2 }), RangeError);
});
