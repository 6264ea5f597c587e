import assert from "node:assert/strict";
import {
  audienceFor,
  DEFAULT_TOKEN_LEEWAY_MS,
  DEFAULT_TOKEN_TTL_MS,
  signKiteKey,
  signToken,
  TokenCache,
  type TokenCacheKey,
} from "./tokens.ts";
import { ManualClock } from "../kite/clock.ts";
import { makeIdentity, makeQuery } from "../kite/protocol.ts";
import { decodeJwt, GO_JWT_HEADER } from "../kite/auth/jwt.ts";
import { Authenticator, TrustedKeys } from "../kite/auth/verify.ts";
import { readKiteKey, writeKiteKey } from "../kite/auth/kitekey.ts";
import { fixtureKey } from "../tests/fixtures/jwt.ts";
import {
  POSTGRES_TOKEN,
  TRUSTED_KITE_KEY,
} from "../tests/fixtures/go_kite_auth.ts";

const PKCS1 = fixtureKey("kontrol_pkcs1.pem");
const PKCS8 = fixtureKey("kontrol_pkcs8.pem");
const PUBLIC = fixtureKey("kontrol_public.pem");
const START = Date.UTC(2026, 10, 1, 12, 0, 0, 789);

function authenticator(clock: ManualClock): Authenticator {
  return new Authenticator({
    localKite: () =>
      makeIdentity({ username: "alice", environment: "prod", name: "math" }),
    trustedKeys: new TrustedKeys([PUBLIC]),
    kontrolUser: () => "kontrol",
    clock,
  });
}

function tokenOptions(clock: ManualClock) {
  return {
    audience: "/alice/prod/math",
    subject: "bob",
    issuer: "kontrol",
    privateKeyPem: PKCS1,
    clock,
  };
}

function segments(jwt: string): { header: string; payload: string } {
  const [h, p] = jwt.split(".");
  const text = (s: string) => atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  return { header: h, payload: text(p) };
}

Deno.test("signToken() writes Go's header bytes, claim order and lifetimes", async () => {
  const clock = new ManualClock(START);
  const jwt = await signToken(tokenOptions(clock));
  assert.equal(jwt.split(".")[0], "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9");
  assert.equal(jwt.split(".")[0], POSTGRES_TOKEN.split(".")[0]);
  assert.equal(atob(jwt.split(".")[0]), GO_JWT_HEADER);
  const { claims } = decodeJwt(jwt);
  const recorded = decodeJwt(POSTGRES_TOKEN).claims;
  assert.deepEqual(Object.keys(claims), Object.keys(recorded));
  assert.deepEqual(Object.keys(claims), [
    "aud",
    "exp",
    "jti",
    "iat",
    "iss",
    "nbf",
    "sub",
  ]);
  const now = Math.floor(START / 1000);
  assert.equal(claims.iat, now - 300);
  assert.equal(claims.nbf, claims.iat);
  assert.equal(claims.exp! - claims.iat!, 173400);
  assert.equal(claims.exp! - claims.iat!, recorded.exp! - recorded.iat!);
  assert.match(
    claims.jti!,
    /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  assert.equal(
    segments(jwt).payload,
    `{"aud":"/alice/prod/math","exp":${claims.exp},"jti":"${claims.jti}","iat":${claims.iat},` +
      `"iss":"kontrol","nbf":${claims.nbf},"sub":"bob"}`,
  );
  assert.equal(
    (await authenticator(clock).authenticate({ type: "token", key: jwt }))
      .username,
    "bob",
  );
});

Deno.test("signToken() signs alike with PKCS#1 and PKCS#8 keys", async () => {
  const clock = new ManualClock(START);
  const a = await signToken({
    ...tokenOptions(clock),
    id: "x",
    privateKeyPem: PKCS1,
  });
  const b = await signToken({
    ...tokenOptions(clock),
    id: "x",
    privateKeyPem: PKCS8,
  });
  assert.equal(a, b);
});

Deno.test("signToken() leaves nbf out with noNbf and honours ttl and leeway", async () => {
  const clock = new ManualClock(START);
  const jwt = await signToken({
    ...tokenOptions(clock),
    noNbf: true,
    ttlMs: 3_600_000,
    leewayMs: 60_000,
  });
  const { claims } = decodeJwt(jwt);
  assert.deepEqual(Object.keys(claims), [
    "aud",
    "exp",
    "jti",
    "iat",
    "iss",
    "sub",
  ]);
  assert.equal(claims.exp! - claims.iat!, 3600 + 120);
  await assert.rejects(
    signToken({ ...tokenOptions(clock), ttlMs: 0 }),
    RangeError,
  );
});

Deno.test("signToken() escapes <, > and & as Go's JSON encoder does", async () => {
  const clock = new ManualClock(START);
  const jwt = await signToken({ ...tokenOptions(clock), subject: "a<b>&c" });
  assert.match(segments(jwt).payload, /"sub":"a\\u003cb\\u003e\\u0026c"/);
  assert.equal(decodeJwt(jwt).claims.sub, "a<b>&c");
});

Deno.test("signKiteKey() writes Go's kite.key claims and it reads back", async () => {
  const clock = new ManualClock(START);
  const jwt = await signKiteKey({
    username: "alice",
    kontrolUser: "kontrol",
    kontrolURL: "http://127.0.0.1:4000/kite",
    publicKeyPem: `\n${PUBLIC}\n`,
    privateKeyPem: PKCS8,
    clock,
  });
  assert.equal(jwt.split(".")[0], "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9");
  const { claims } = decodeJwt(jwt);
  assert.deepEqual(
    Object.keys(claims),
    Object.keys(decodeJwt(TRUSTED_KITE_KEY).claims),
  );
  assert.equal(claims.iat, Math.floor(START / 1000) - 300);
  assert.equal(claims.kontrolKey, PUBLIC.trim());
  assert.equal(claims.exp, undefined);
  assert.equal(claims.aud, undefined);
  const result = await authenticator(clock).authenticate({
    type: "kiteKey",
    key: jwt,
  });
  assert.equal(result.username, "alice");
  const dir = await Deno.makeTempDir();
  try {
    const path = await writeKiteKey(jwt, dir);
    const read = await readKiteKey(path, { clock });
    assert.deepEqual(read.claims, {
      jti: claims.jti,
      iat: claims.iat,
      iss: "kontrol",
      sub: "alice",
      kontrolKey: PUBLIC.trim(),
      kontrolURL: "http://127.0.0.1:4000/kite",
    });
    await Deno.chmod(path, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("audienceFor() follows Go's getAudience", () => {
  const q = makeQuery;
  assert.equal(
    audienceFor(
      q({ username: "a", environment: "e", name: "n", version: "1" }),
    ),
    "/a/e/n",
  );
  assert.equal(audienceFor(q({ username: "a", environment: "e" })), "/a/e");
  assert.equal(audienceFor(q({ username: "a", name: "n" })), "/a//n");
  assert.equal(audienceFor(q({ username: "a", region: "r" })), "/a");
  assert.equal(audienceFor(q({ id: "7d1b2a3b" })), "/");
  assert.equal(audienceFor({}), "/");
});

const KEY: TokenCacheKey = {
  audience: "/a/e/n",
  subject: "bob",
  issuer: "kontrol",
  keyId: "k1",
};

Deno.test("TokenCache keeps a token for TTL minus leeway", async () => {
  const clock = new ManualClock(START);
  const cache = new TokenCache({ clock });
  let signed = 0;
  const sign = () => Promise.resolve(`token-${++signed}`);
  assert.equal(await cache.getOrSign(KEY, sign), "token-1");
  await clock.advance(DEFAULT_TOKEN_TTL_MS - DEFAULT_TOKEN_LEEWAY_MS - 1);
  assert.equal(await cache.getOrSign(KEY, sign), "token-1");
  await clock.advance(1);
  assert.equal(cache.peek(KEY), undefined);
  assert.equal(await cache.getOrSign(KEY, sign), "token-2");
});

Deno.test("TokenCache keys by audience, subject, issuer and key id", () => {
  const cache = new TokenCache({ clock: new ManualClock(START) });
  cache.set(KEY, "t");
  assert.equal(cache.peek({ ...KEY }), "t");
  for (
    const change of [{ audience: "/" }, { subject: "eve" }, { issuer: "k2" }, {
      keyId: "k2",
    }]
  ) {
    assert.equal(
      cache.peek({ ...KEY, ...change }),
      undefined,
      JSON.stringify(change),
    );
  }
  // No ambiguity from plain concatenation.
  cache.set({ audience: "/a", subject: "b", issuer: "c", keyId: "d" }, "x");
  assert.equal(
    cache.peek({ audience: "/", subject: "ab", issuer: "c", keyId: "d" }),
    undefined,
  );
});

Deno.test("TokenCache.getOrSign() forces a new token and shares concurrent signing", async () => {
  const cache = new TokenCache({ clock: new ManualClock(START) });
  let signed = 0;
  const sign = () => Promise.resolve(`token-${++signed}`);
  const [a, b] = await Promise.all([
    cache.getOrSign(KEY, sign),
    cache.getOrSign(KEY, sign),
  ]);
  assert.equal(a, "token-1");
  assert.equal(b, "token-1");
  assert.equal(await cache.getOrSign(KEY, sign, { force: true }), "token-2");
  assert.equal(await cache.getOrSign(KEY, sign), "token-2");
});

Deno.test("TokenCache.get() signs on a miss and returns the cached string after", async () => {
  const clock = new ManualClock(START);
  const cache = new TokenCache({
    clock,
    ttlMs: 3_600_000,
    leewayMs: 60_000,
    noNbf: true,
  });
  const request = { ...KEY, privateKeyPem: PKCS1 };
  const first = await cache.get(request);
  const { claims } = decodeJwt(first);
  assert.equal(claims.aud, KEY.audience);
  assert.equal(claims.sub, KEY.subject);
  assert.equal(claims.iss, KEY.issuer);
  assert.equal(claims.nbf, undefined);
  assert.equal(claims.exp! - claims.iat!, 3600 + 120);
  await clock.advance(60_000);
  assert.equal(await cache.get(request), first);
  assert.notEqual(await cache.get({ ...request, force: true }), first);
  await clock.advance(3_600_000);
  const later = decodeJwt(await cache.get(request)).claims;
  assert.equal(later.iat, Math.floor(clock.now() / 1000) - 60);
});

Deno.test("TokenCache refuses a TTL not above the leeway", () => {
  assert.throws(
    () => new TokenCache({ ttlMs: 1000, leewayMs: 1000 }),
    RangeError,
  );
});

Deno.test("TokenCache keeps at most maxEntries tokens, the newest", () => {
  const cache = new TokenCache({
    clock: new ManualClock(START),
    maxEntries: 2,
  });
  for (const subject of ["a", "b", "c"]) {
    cache.set({ ...KEY, subject }, subject);
  }
  assert.equal(cache.size, 2);
  assert.equal(cache.peek({ ...KEY, subject: "a" }), undefined);
  assert.equal(cache.peek({ ...KEY, subject: "c" }), "c");
});
