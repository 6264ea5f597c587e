import assert from "node:assert/strict";
import { TokenRenewer, type TokenRenewerOptions } from "./token_renewer.ts";
import { Authenticator, TrustedKeys } from "./verify.ts";
import { ManualClock } from "../clock.ts";
import { makeIdentity } from "../protocol.ts";
import {
  fixtureKey,
  goTokenClaims,
  signJwt,
} from "../../tests/fixtures/jwt.ts";

const PRIVATE = fixtureKey("kontrol_pkcs8.pem");
const PUBLIC = fixtureKey("kontrol_public.pem");
const START = Date.UTC(2026, 10, 1);
const TTL_S = 48 * 3600 + 300; // exp is 48 h 5 min after issue (docs/protocol.md §6.4)

/** A fake Kontrol `getToken` that signs Go-shaped tokens at the clock's time. */
class FakeKontrol {
  calls: number[] = [];
  failures = 0;
  failWith = "kontrol unreachable";
  constructor(readonly clock: ManualClock) {}
  getToken = async (): Promise<string> => {
    this.calls.push(this.clock.now());
    if (this.failures > 0) {
      this.failures--;
      throw new Error(this.failWith);
    }
    return await signJwt(
      goTokenClaims(this.clock.now(), { aud: "/", iss: "kontrol", sub: "bob" }),
      PRIVATE,
    );
  };
}

async function setup(overrides: Partial<TokenRenewerOptions> = {}) {
  const clock = new ManualClock(START);
  const kontrol = new FakeKontrol(clock);
  const renewed: string[] = [];
  const errors: unknown[] = [];
  const renewer = new TokenRenewer({
    token: await kontrol.getToken(),
    getToken: kontrol.getToken,
    onRenew: (t) => renewed.push(t),
    onError: (e) => errors.push(e),
    clock,
    ...overrides,
  });
  kontrol.calls = [];
  return { clock, kontrol, renewer, renewed, errors };
}

async function advance(
  clock: ManualClock,
  renewer: TokenRenewer,
  ms: number,
): Promise<void> {
  await clock.advance(ms);
  await renewer.settled();
}

Deno.test("TokenRenewer renews 30 s before exp", async () => {
  const { clock, kontrol, renewer, renewed } = await setup();
  const due = renewer.expiresAt! - 30_000 - clock.now();
  renewer.start();
  assert.equal(renewer.state, "scheduled");
  await advance(clock, renewer, due - 1);
  assert.equal(kontrol.calls.length, 0);
  await advance(clock, renewer, 1);
  assert.deepEqual(kontrol.calls, [START + due]);
  assert.equal(renewed.length, 1);
  assert.equal(renewer.token, renewed[0]);
  assert.equal(
    renewer.expiresAt,
    (Math.floor((START + due) / 1000) + TTL_S) * 1000,
  );
  renewer.stop();
});

Deno.test("TokenRenewer retries every 10 s after a failure", async () => {
  const { clock, kontrol, renewer, renewed, errors } = await setup();
  const due = renewer.expiresAt! - 30_000 - clock.now();
  kontrol.failures = 2;
  renewer.start();
  await advance(clock, renewer, due);
  await advance(clock, renewer, 10_000);
  assert.equal(renewed.length, 0);
  await advance(clock, renewer, 10_000);
  assert.deepEqual(kontrol.calls, [
    START + due,
    START + due + 10_000,
    START + due + 20_000,
  ]);
  assert.equal(renewed.length, 1);
  assert.equal(errors.length, 2);
  renewer.stop();
});

Deno.test("TokenRenewer goes idle when Kontrol says no kites found", async () => {
  const { clock, kontrol, renewer, renewed } = await setup();
  kontrol.failures = 1;
  kontrol.failWith = "no kites found";
  renewer.start();
  await advance(clock, renewer, renewer.expiresAt! - clock.now());
  assert.equal(kontrol.calls.length, 1);
  assert.equal(renewer.state, "idle");
  assert.equal(clock.pending, 0);
  // It can still be woken by a "token is expired" reply.
  assert.equal(await renewer.renewNow(), true);
  assert.equal(renewed.length, 1);
  assert.equal(renewer.state, "scheduled");
  renewer.stop();
});

Deno.test("TokenRenewer.renewNow() renews at once, shares a running renewal and re-arms", async () => {
  const { clock, kontrol, renewer, renewed } = await setup();
  renewer.start();
  await clock.advance(3_600_000);
  const [a, b] = [renewer.renewNow(), renewer.renewNow()];
  assert.equal(a, b);
  assert.equal(await a, true);
  assert.deepEqual(kontrol.calls, [START + 3_600_000]);
  assert.equal(renewed.length, 1);
  // The timer now follows the new token's exp.
  const due = renewer.expiresAt! - 30_000 - clock.now();
  await advance(clock, renewer, due - 1);
  assert.equal(kontrol.calls.length, 1);
  await advance(clock, renewer, 1);
  assert.equal(kontrol.calls.length, 2);
  renewer.stop();
});

Deno.test("TokenRenewer.renewNow() resolves false on failure and schedules a retry", async () => {
  const { clock, kontrol, renewer } = await setup();
  kontrol.failures = 1;
  assert.equal(await renewer.renewNow(), false);
  await advance(clock, renewer, 10_000);
  assert.equal(kontrol.calls.length, 2);
  assert.equal(renewer.state, "scheduled");
  renewer.stop();
});

Deno.test("TokenRenewer.stop() cancels the timer and ignores a renewal in flight", async () => {
  const { clock, kontrol, renewer, renewed } = await setup();
  renewer.start();
  assert.equal(clock.pending, 1);
  const running = renewer.renewNow();
  renewer.stop();
  assert.equal(await running, false);
  assert.equal(renewed.length, 0);
  assert.equal(clock.pending, 0);
  await advance(clock, renewer, 7 * 86_400_000);
  assert.equal(kontrol.calls.length, 1);
  assert.equal(await renewer.renewNow(), false);
  assert.equal(renewer.state, "stopped");
});

Deno.test("TokenRenewer.pause() disarms until start(), which renews a token that fell due meanwhile", async () => {
  const { clock, kontrol, renewer, renewed } = await setup();
  renewer.start();
  renewer.pause();
  assert.equal(renewer.state, "idle");
  assert.equal(clock.pending, 0);
  // Paused across the due time: nothing is fetched.
  await advance(clock, renewer, renewer.expiresAt! - clock.now() + 60_000);
  assert.equal(kontrol.calls.length, 0);
  // Resuming with an overdue token renews at once.
  renewer.start();
  await advance(clock, renewer, 0);
  assert.deepEqual(kontrol.calls, [clock.now()]);
  assert.equal(renewed.length, 1);
  assert.equal(renewer.state, "scheduled");
  renewer.stop();
});

Deno.test("TokenRenewer.pause() lets a renewal in flight finish without arming a timer", async () => {
  const { clock, kontrol, renewer, renewed } = await setup();
  renewer.start();
  const running = renewer.renewNow();
  renewer.pause();
  assert.equal(await running, true);
  assert.equal(renewed.length, 1);
  assert.equal(renewer.token, renewed[0]);
  assert.equal(renewer.state, "idle");
  assert.equal(clock.pending, 0);
  // A failed renewal while paused does not schedule a retry either.
  kontrol.failures = 1;
  assert.equal(await renewer.renewNow(), false);
  assert.equal(clock.pending, 0);
  assert.equal(kontrol.calls.length, 2);
  renewer.stop();
});

Deno.test("TokenRenewer does not spin when Kontrol returns an almost expired token", async () => {
  const clock = new ManualClock(START);
  const now = Math.floor(START / 1000);
  let calls = 0;
  const stale = await signJwt({ exp: now + 5, sub: "bob" }, PRIVATE);
  const renewer = new TokenRenewer({
    token: stale,
    clock,
    getToken: () => {
      calls++;
      return Promise.resolve(stale);
    },
  });
  renewer.start();
  await advance(clock, renewer, 0);
  assert.equal(calls, 1);
  await advance(clock, renewer, 9_999);
  assert.equal(calls, 1);
  await advance(clock, renewer, 1);
  assert.equal(calls, 2);
  renewer.stop();
});

Deno.test("TokenRenewer refuses a token that is not a JWT", () => {
  assert.throws(
    () =>
      new TokenRenewer({ token: "nope", getToken: () => Promise.resolve("") }),
    TypeError,
  );
});

Deno.test("TokenRenewer keeps a valid token for 7 simulated days despite failures", async () => {
  const { clock, kontrol, renewer, renewed } = await setup();
  const auth = new Authenticator({
    localKite: () =>
      makeIdentity({ username: "alice", environment: "prod", name: "math" }),
    trustedKeys: new TrustedKeys([PUBLIC]),
    kontrolUser: () => "kontrol",
    clock,
  });
  renewer.start();
  const step = 5_000;
  let gaps = 0;
  let failuresInjected = 0;
  for (let t = 0; t <= 7 * 86_400_000; t += step) {
    // Before each renewal is due, make the first two attempts fail.
    if (
      renewer.expiresAt! - clock.now() === 30_000 + step &&
      kontrol.failures === 0
    ) {
      kontrol.failures = 2;
      failuresInjected += 2;
    }
    try {
      await auth.authenticate({ type: "token", key: renewer.token });
    } catch {
      gaps++;
    }
    await advance(clock, renewer, step);
  }
  assert.equal(gaps, 0);
  assert.ok(renewed.length >= 3, `only ${renewed.length} renewals`);
  assert.ok(
    failuresInjected >= 6,
    `only ${failuresInjected} failures injected`,
  );
  assert.equal(kontrol.calls.length, renewed.length + failuresInjected);
  renewer.stop();
});
