/**
 * The fuzzer of `deno task fuzz`, reduced: 3,000 malformed inputs at a math
 * kite and a Kontrol, each answered as expected, while good clients get
 * only right answers. Plus checks that the fuzzer itself can fail and
 * replays the same inputs for the same seed.
 */
import { type Input, nextInput } from "../scripts/fuzz/inputs.ts";
import { runFuzz } from "../scripts/fuzz/fuzz.ts";
import { runStateful } from "../scripts/fuzz/stateful.ts";
import { Rng } from "../scripts/fuzz/prng.ts";
import { assert, assertEquals } from "./helpers/assert.ts";

const COUNT = 3_000;

Deno.test(`fuzz: ${COUNT} malformed inputs each get a clear error or a close, good clients get right answers`, async () => {
  const s = await runFuzz({ count: COUNT, seed: 42, timeLimitMs: 120_000 });
  const detail = JSON.stringify(
    {
      failures: s.failures.slice(0, 5),
      crashes: s.crashes,
      serverErrors: s.serverErrors.slice(0, 5),
    },
    null,
    1,
  );
  assertEquals(s.sent, COUNT, "every input was sent");
  assertEquals(s.failureCount, 0, detail);
  assertEquals(s.crashes.length, 0, detail);
  assertEquals(s.serverErrors.length, 0, detail);
  assert(s.goodCalls > 100, `only ${s.goodCalls} good calls`);
  assertEquals(s.goodWrong, 0, "wrong answers to the good client");
  assertEquals(s.goodFailed, 0, "failed calls of the good client");
  assertEquals(s.leftover, { kite: 0, kontrol: 0 }, "connections left behind");
  // One peer filled its slots on each server (the default caps: 60 XHR
  // sessions, 200 connections per address), and was refused beyond them.
  for (const target of ["kite", "kontrol"] as const) {
    const flood = s.flood[target];
    assert(flood, `no flood of ${target}`);
    assert(
      flood.xhrAccepted > 0 && flood.xhrAccepted <= 60,
      `${target}: ${flood.xhrAccepted} XHR sessions`,
    );
    assert(
      flood.wsAccepted > 0 && flood.wsAccepted <= 200,
      `${target}: ${flood.wsAccepted} WebSockets`,
    );
  }
  for (const [kind, n] of Object.entries(s.outcomes)) {
    assert(n > 0, `no input expected a ${kind} answer`);
  }
  assert(
    Object.keys(s.categories).length >= 40,
    `only ${Object.keys(s.categories).length} categories: ${
      Object.keys(s.categories)
    }`,
  );
});

Deno.test("fuzz: a server that answers otherwise than expected is reported", async () => {
  // The inputs assume a nesting limit of 64; these servers close at 30, so
  // deep-but-allowed echoes get a close instead of their result.
  const s = await runFuzz({
    count: 600,
    seed: 3,
    timeLimitMs: 60_000,
    targetConfig: { maxJsonDepth: 30 },
  });
  assert(s.failureCount > 0, "the fuzzer saw nothing wrong");
  assert(
    s.failures.some((f) => f.category === "live:deepWithin"),
    JSON.stringify(s.failures.slice(0, 3)),
  );
  assertEquals(s.crashes.length, 0);
});

Deno.test("fuzz: stateful attacks (slow readers plus heartbeats, callbacks, watch events) close only the attacker's session", async () => {
  const s = await runStateful({ rounds: 24, seed: 7 });
  const detail = JSON.stringify(
    { failures: s.failures, crashes: s.crashes, errors: s.serverErrors },
    null,
    1,
  );
  assertEquals(s.crashes, [], detail);
  assertEquals(s.failures, [], detail);
  assertEquals(s.serverErrors, [], detail);
  assertEquals(s.goodFailed, 0, "failed calls of the good client");
  assert(s.goodCalls > 10, `only ${s.goodCalls} good calls`);
  assert(
    Object.keys(s.attacks).length >= 5,
    `only ${Object.keys(s.attacks)} attacks drawn`,
  );
});

Deno.test("fuzz: the same seed gives the same inputs", () => {
  const ctx = {
    kiteKey: "k.k.k",
    maxMessageBytes: 4096,
    maxJsonDepth: 64,
    methods: { kite: new Set(["square"]), kontrol: new Set(["register"]) },
    fetch: () => Promise.reject(new Error("not used")),
    rawHttp: () => Promise.reject(new Error("not used")),
  };
  const draw = (seed: number) => {
    const rng = new Rng(seed);
    return Array.from({ length: 500 }, () => {
      const input: Input = nextInput(rng, ctx);
      const sent = input.kind === "ws" ? input.build(7) : "";
      return `${input.target} ${input.category} ${
        typeof sent === "string" ? sent : [...sent].join(",")
      }`;
    });
  };
  const a = draw(11);
  assertEquals(draw(11), a);
  assert(draw(12).join("\n") !== a.join("\n"), "another seed, other inputs");
  // Inputs are built while others run: building must not draw numbers, or
  // the sequence would depend on timing.
  const after = (build: boolean) => {
    const rng = new Rng(11);
    const inputs = Array.from({ length: 2_000 }, () => nextInput(rng, ctx));
    if (build) { for (const i of inputs) if (i.kind === "ws") i.build(7); }
    return [rng.next(), rng.next()];
  };
  assertEquals(after(true), after(false));
});
