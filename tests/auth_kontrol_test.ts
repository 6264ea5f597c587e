/**
 * Tokens from Kontrol over simulated days: a caller finds the secret kite
 * with getKites and keeps calling it while one ManualClock (shared by
 * Kontrol, the secret kite and the caller) runs through a week. Tokens live
 * 48 h, so they must be renewed before `exp` — the Go kite is known to rot
 * after a day or two (koding/kite#224).
 */
import type { Client, Kite } from "../mod.ts";
import { ManualClock } from "../kite/clock.ts";
import { decodeJwt, readExpiry } from "../kite/auth/jwt.ts";
import { DEFAULT_RENEW_BEFORE_MS } from "../kite/auth/token_renewer.ts";
import type { FoundKite } from "../kite/kontrol_client.ts";
import { Kontrol } from "../kontrol/kontrol.ts";
import { MemoryStorage } from "../storage/memory.ts";
import { secretKite } from "../examples/secret/server.ts";
import { fixtureKey, signJwt } from "./fixtures/jwt.ts";
import { assert, assertEquals, assertNotEquals } from "./helpers/assert.ts";
import { MemoryLogger, settle, testKite } from "./helpers/kite_harness.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const START = Date.UTC(2026, 10, 1);

/** What the secret kite saw for one `secret` call. */
type Seen = { ok: true; result: unknown } | { ok: false; message: string };

interface World {
  clock: ManualClock;
  kontrol: Kontrol;
  secret: Kite;
  caller: Kite;
  found: FoundKite;
  client: Client;
  /** Every `secret` call the secret kite finished, in order. */
  seen: Seen[];
  /** `getToken` calls Kontrol answered. */
  getTokenCalls: () => number;
  /** "token is expired" replies the caller's client received. */
  expiredReplies: () => number;
}

/**
 * Kontrol (memory storage, fixture key pair), the example secret kite
 * registered with it as alice, and a caller (bob) that found it through
 * getKites and dialed it. Heartbeats are slowed down (30 min, 6 h grace, a
 * day before stale entries are swept) so a week passes in few timer firings.
 */
async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const clock = new ManualClock(START);
  const storage = new MemoryStorage({ clock });
  const kontrol = new Kontrol({
    storage,
    clock,
    staleAfterMs: DAY,
    // The storage probe at its 5 s default would fire 120,000 times a week.
    health: { probeIntervalMs: HOUR, graceMs: HOUR },
    timing: {
      heartbeatIntervalMs: 30 * MINUTE,
      heartbeatGraceMs: 6 * HOUR,
      updateIntervalMs: HOUR,
    },
    kiteConfig: { ip: "127.0.0.1", logLevel: "FATAL" },
  });
  let getTokens = 0;
  kontrol.kite.finalFunc((r) => {
    if (r.method === "getToken") getTokens++;
  });
  const kites: Kite[] = [];
  try {
    await kontrol.init({
      id: "",
      public: fixtureKey("kontrol_public.pem"),
      private: fixtureKey("kontrol_pkcs8.pem"),
    });
    await kontrol.kite.serve({ port: 0, hostname: "127.0.0.1" });

    const secret = secretKite({
      env: false,
      kiteKey: await kontrol.signKiteKey("alice"),
      clock,
      logger: new MemoryLogger(),
      config: { ip: "127.0.0.1", port: 0, environment: "test" },
    });
    kites.push(secret);
    const seen: Seen[] = [];
    secret.method("secret")!.finalFunc((_r, result, error) => {
      seen.push(
        error ? { ok: false, message: error.message } : { ok: true, result },
      );
    });
    await secret.serve();
    await secret.registerForever();

    const caller = testKite("caller", { environment: "test" }, {
      kiteKey: await kontrol.signKiteKey("bob"),
      clock,
    });
    kites.push(caller);
    const found = await caller.getKites({
      username: "alice",
      environment: "test",
      name: "secret",
    });
    assertEquals(found.length, 1);
    assertEquals(found[0].kite.id, secret.identity.id);
    const client = found[0].client;
    let expired = 0;
    client.onTokenExpire(() => expired++);
    // Proactive renewal runs only while connected (Go: RenewWhenExpires on connect).
    assertEquals(found[0].renewer.state, "idle");
    await client.dial();
    assertEquals(found[0].renewer.state, "scheduled");

    await fn({
      clock,
      kontrol,
      secret,
      caller,
      found: found[0],
      client,
      seen,
      getTokenCalls: () => getTokens,
      expiredReplies: () => expired,
    });
  } finally {
    for (const kite of kites.reverse()) await kite.close();
    await kontrol.kite.close();
    await storage.close();
  }
}

/** The token the client currently sends. */
function tokenOf(client: Client): string {
  assertEquals(client.auth?.type, "token");
  return client.auth!.key;
}

Deno.test("getKites client calls the secret kite for 7 simulated days without a failure", () =>
  withWorld(async (w) => {
    assertEquals(await w.client.tell("secret"), "hello bob");
    const first = tokenOf(w.client);
    const tokens = new Set([first]);
    const end = START + 7 * DAY;
    let calls = 0;
    const failures: string[] = [];
    while (w.clock.now() < end) {
      // Hourly steps, but a step ends where a renewal falls due: simulated
      // time must not run on while the getToken round trip is on the wire
      // (it takes milliseconds in reality).
      const due = w.found.renewer.expiresAt! - DEFAULT_RENEW_BEFORE_MS;
      const next = Math.min(
        w.clock.now() + HOUR,
        end,
        due > w.clock.now() ? due : Infinity,
      );
      await w.clock.advance(next - w.clock.now());
      await w.found.renewer.settled();
      const token = tokenOf(w.client);
      tokens.add(token);
      // The token in use is never past its exp: renewal came first.
      assert(
        readExpiry(token)! * 1000 > w.clock.now(),
        `token expired at ${new Date(readExpiry(token)! * 1000).toISOString()}`,
      );
      const r = await settle(w.client.tell("secret"));
      calls++;
      if (!r.ok) failures.push((r.error as Error).message);
      else assertEquals(r.value, "hello bob");
    }
    assertEquals(failures, []);
    assert(calls >= 7 * 24, `only ${calls} calls`);
    // 48 h 5 min tokens renewed 30 s early: at +48h04m30s, +96h09m, +144h13m30s.
    assertEquals(tokens.size, 4);
    assertEquals(w.getTokenCalls(), 3);
    assertEquals(w.expiredReplies(), 0);
    assertEquals(w.seen.filter((s) => !s.ok), []);
    assertEquals(w.seen.length, calls + 1);

    // The secret kite stayed registered all week (renewals need it).
    const again = await w.caller.getKites({
      username: "alice",
      environment: "test",
      name: "secret",
    });
    assertEquals(again.map((k) => k.kite.id), [w.secret.identity.id]);
    again[0].client.close();

    // Closing the client disarms its renewer.
    w.client.close();
    assertEquals(w.found.renewer.state, "idle");
    await w.clock.advance(3 * DAY);
    assertEquals(w.getTokenCalls(), 3);
    // Dialing again re-arms it, and the token that expired meanwhile is
    // renewed before the first call needs it.
    await w.client.dial();
    await w.clock.advance(0);
    await w.found.renewer.settled();
    assertEquals(w.getTokenCalls(), 4);
    assertEquals(await w.client.tell("secret"), "hello bob");
    assertEquals(w.expiredReplies(), 0);
  }));

Deno.test("an expired token is refused, then the client's renewToken path renews once and retries", () =>
  withWorld(async (w) => {
    const old = tokenOf(w.client);
    w.found.renewer.stop();
    const exp = readExpiry(old)! * 1000;
    await w.clock.advance(exp + MINUTE - w.clock.now());

    assertEquals(await w.client.tell("secret"), "hello bob");
    // The secret kite refused the first attempt with Go's jwt-go text and
    // ran the handler only for the retry.
    assertEquals(w.seen, [
      { ok: false, message: "token: token is expired by 1m0s" },
      { ok: true, result: "hello bob" },
    ]);
    assertEquals(w.expiredReplies(), 1);
    assertEquals(w.getTokenCalls(), 1);
    const renewed = tokenOf(w.client);
    assertNotEquals(renewed, old);
    assert(readExpiry(renewed)! * 1000 > w.clock.now() + 47 * HOUR);
    // A stopped renewer stays stopped: the reactive path did not re-arm it.
    assertEquals(w.found.renewer.state, "stopped");
    assertEquals(await w.client.tell("secret"), "hello bob");
    assertEquals(w.getTokenCalls(), 1);
  }));

Deno.test("concurrent refusals share one renewal with the running renewer", () =>
  withWorld(async (w) => {
    const good = tokenOf(w.client);
    // The same claims under a foreign key: Go reports it as "token is expired".
    const refused = await signJwt(
      decodeJwt(good).claims,
      fixtureKey("foreign_pkcs8.pem"),
    );
    w.client.auth = { type: "token", key: refused };

    const replies = await Promise.all([
      w.client.tell("secret"),
      w.client.tell("secret"),
      w.client.tell("secret"),
    ]);
    assertEquals(replies, ["hello bob", "hello bob", "hello bob"]);
    assertEquals(
      w.seen.filter((s) => !s.ok),
      Array(3).fill({ ok: false, message: "token: token is expired" }),
    );
    assertEquals(w.expiredReplies(), 3);
    assertEquals(w.getTokenCalls(), 1);
    // Kontrol's cache hands back the still valid token; the renewer follows it.
    assertEquals(tokenOf(w.client), good);
    assertEquals(w.found.renewer.token, good);
    assertEquals(w.found.renewer.state, "scheduled");

    // A refusal whose token was replaced meanwhile retries with the new one
    // and costs no getToken.
    w.client.auth = { type: "token", key: refused };
    const late = w.client.tell("secret");
    w.client.auth = { type: "token", key: good };
    assertEquals(await late, "hello bob");
    assertEquals(w.expiredReplies(), 4);
    assertEquals(w.getTokenCalls(), 1);

    // getToken hits Kontrol's cache; force (Go GetTokenForce) signs anew.
    assertEquals(await w.caller.kontrol.getToken(w.found.kite), good);
    const forced = await w.caller.kontrol.getToken(w.found.kite, {
      force: true,
    });
    assertNotEquals(forced, good);
    assertEquals(decodeJwt(forced).claims.aud, "/alice/test/secret");
  }));
