import assert from "node:assert/strict";
import {
  KEY_REFRESH_INTERVAL_MS,
  pageAuthenticator,
  PageKeys,
} from "./page_auth.ts";
import { ManualClock } from "../clock.ts";
import { DEFAULT_CONFIG } from "../config.ts";
import { KiteError } from "../errors.ts";
import { createLogger } from "../log.ts";
import { type Auth, makeIdentity } from "../protocol.ts";
import {
  FOREIGN_PAIR as FOREIGN,
  goTokenClaims,
  KONTROL_PAIR as KONTROL,
  signJwt,
} from "../../tests/fixtures/jwt.ts";

/** A page of alice's whose Kontrol answers `getKey` with KONTROL's key, counting the asks. */
async function page() {
  const clock = new ManualClock();
  const host = {
    config: { ...DEFAULT_CONFIG, username: "alice", environment: "test" },
    identity: makeIdentity({
      name: "page",
      username: "alice",
      environment: "test",
    }),
    clock,
    logger: createLogger("page", "FATAL"),
    kontrolToken: { key: await token(clock, "/kontrol", "kontrol") },
    asks: 0,
    kontrolKey() {
      host.asks++;
      return Promise.resolve(KONTROL.public);
    },
  };
  const auth = pageAuthenticator(host, new PageKeys(host));
  return { host, clock, auth };
}

function token(
  clock: ManualClock,
  aud: string,
  iss = "kontrol",
  pair = KONTROL,
): Promise<string> {
  return signJwt(
    goTokenClaims(clock.now(), { aud, iss, sub: "bob" }),
    pair.private,
  );
}

function kiteKey(clock: ManualClock, pair = KONTROL): Promise<string> {
  return signJwt({
    iss: "kontrol",
    sub: "bob",
    iat: Math.floor(clock.now() / 1000),
    jti: crypto.randomUUID(),
    kontrolKey: pair.public,
    kontrolURL: "http://127.0.0.1:1/kite",
  }, pair.private);
}

async function refused(
  auth: { authenticate(a: Auth): Promise<unknown> },
  credential: Auth,
  message: string,
): Promise<void> {
  await assert.rejects(auth.authenticate(credential), (error: unknown) => {
    assert.ok(error instanceof KiteError, `expected KiteError, got ${error}`);
    assert.deepEqual([error.type, error.message], [
      "authenticationError",
      message,
    ]);
    return true;
  });
}

Deno.test("pageAuthenticator() learns Kontrol's key with getKey the first time a caller needs it", async () => {
  const { host, clock, auth } = await page();
  const t = await token(clock, "/alice/test/page");
  assert.equal(
    (await auth.authenticate({ type: "token", key: t })).username,
    "bob",
  );
  assert.equal(host.asks, 1);
  const k = await kiteKey(clock);
  assert.equal(
    (await auth.authenticate({ type: "kiteKey", key: k })).username,
    "bob",
  );
  assert.equal(host.asks, 1, "the key is trusted now");
});

Deno.test("pageAuthenticator() asks Kontrol again for strangers' keys at most once a minute", async () => {
  const { host, clock, auth } = await page();
  assert.equal(
    (await auth.authenticate({ type: "kiteKey", key: await kiteKey(clock) }))
      .username,
    "bob",
  );
  assert.equal(host.asks, 1);
  await refused(
    auth,
    { type: "kiteKey", key: await kiteKey(clock, FOREIGN) },
    "kiteKey: kontrol key is not trusted",
  );
  const foreignToken = async () =>
    refused(
      auth,
      {
        type: "token",
        key: await token(clock, "/alice/test/page", "kontrol", FOREIGN),
      },
      "token: token is expired",
    );
  for (let i = 0; i < 3; i++) await foreignToken();
  assert.equal(host.asks, 1, "no ask within the minute");
  await clock.advance(KEY_REFRESH_INTERVAL_MS);
  await foreignToken();
  assert.equal(host.asks, 2, "one ask a minute later");
});

Deno.test("pageAuthenticator() takes tokens of the issuer of the page's own Kontrol token only", async () => {
  const { clock, auth } = await page();
  await refused(
    auth,
    { type: "token", key: await token(clock, "/alice/test/page", "mallory") },
    "token: issuer is not trusted: mallory",
  );
  await refused(
    auth,
    { type: "token", key: await token(clock, "/alice/test/other") },
    'token: audience: kite "other" not allowed (/alice/test/other)',
  );
});
