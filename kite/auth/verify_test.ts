import assert from "node:assert/strict";
import { CompactSign } from "jose";
import {
  audienceProblem,
  Authenticator,
  TrustedKeys,
  type VerifierOptions,
} from "./verify.ts";
import { KeyCache, type RsaAlg } from "./keys.ts";
import { KiteError } from "../errors.ts";
import { ManualClock } from "../clock.ts";
import { type Auth, type KiteIdentity, makeIdentity } from "../protocol.ts";
import {
  CAPTURE_TIME_MS,
  ETCD_TOKEN,
  KONTROL_PUBLIC_KEY,
  KONTROL_USER,
  POSTGRES_TOKEN,
  RECORDED_ERRORS,
  TESTKITE,
  TRUSTED_KITE_KEY,
  UNTRUSTED_KITE_KEY,
  UNTRUSTED_PUBLIC_KEY,
} from "../../tests/fixtures/go_kite_auth.ts";
import {
  b64url,
  fixtureKey,
  forgeJwt,
  goTokenClaims,
  signJwt,
} from "../../tests/fixtures/jwt.ts";

const KONTROL_PRIVATE = fixtureKey("kontrol_pkcs1.pem");
const KONTROL_PUBLIC = fixtureKey("kontrol_public.pem");
const FOREIGN_PRIVATE = fixtureKey("foreign_pkcs8.pem");
const FOREIGN_PUBLIC = fixtureKey("foreign_public.pem");
const NOW = Date.UTC(2026, 10, 1);

const LOCAL: KiteIdentity = makeIdentity({
  name: "math",
  username: "alice",
  id: "7d1b2a3b-0000-4000-8000-000000000001",
  environment: "prod",
  region: "eu",
  version: "1.0.0",
  hostname: "h1",
});

function setup(
  options: Partial<VerifierOptions> & { trusted?: string[]; now?: number } = {},
): { auth: Authenticator; clock: ManualClock; trustedKeys: TrustedKeys } {
  const clock = new ManualClock(options.now ?? NOW);
  const trustedKeys = new TrustedKeys(options.trusted ?? [KONTROL_PUBLIC]);
  const auth = new Authenticator({
    localKite: () => LOCAL,
    kontrolUser: () => "kontrol",
    trustedKeys,
    clock,
    ...options,
  });
  return { auth, clock, trustedKeys };
}

/** Asserts `authenticate` fails with an authenticationError of exactly `message`. */
async function refused(
  auth: Authenticator,
  credential: Auth | null | undefined,
  message: string,
): Promise<void> {
  await assert.rejects(auth.authenticate(credential), (error: unknown) => {
    assert.ok(error instanceof KiteError, `expected KiteError, got ${error}`);
    assert.equal(error.type, "authenticationError");
    assert.equal(error.message, message);
    return true;
  });
}

function token(
  claims: Record<string, unknown>,
  key = KONTROL_PRIVATE,
): Promise<string> {
  return signJwt(claims, key);
}

function aliceToken(nowMs = NOW, aud = "/alice/prod/math"): Promise<string> {
  return token(goTokenClaims(nowMs, { aud, iss: "kontrol", sub: "bob" }));
}

function kiteKeyClaims(pem: string, sub = "bob"): Record<string, unknown> {
  return {
    jti: crypto.randomUUID(),
    iat: Math.floor(NOW / 1000) - 300,
    iss: "kontrol",
    sub,
    kontrolKey: pem.trim(),
    kontrolURL: "http://127.0.0.1:4000/kite",
  };
}

// --- Recorded Go credentials -------------------------------------------------

function recordedSetup(trusted: string) {
  return setup({
    now: CAPTURE_TIME_MS,
    trusted: [trusted],
    kontrolUser: () => KONTROL_USER,
    localKite: () => makeIdentity({ ...LOCAL, ...TESTKITE }),
  });
}

Deno.test("authenticate() accepts the recorded Go kite.key as kiteKey auth", async () => {
  const { auth } = recordedSetup(KONTROL_PUBLIC_KEY);
  const result = await auth.authenticate({
    type: "kiteKey",
    key: TRUSTED_KITE_KEY,
  });
  assert.equal(result.username, "testuser");
  assert.equal(result.type, "kiteKey");
  assert.equal(result.claims.jti, "abfe4d70-9e05-49df-93dc-13174a5b453d");
});

Deno.test("authenticate() accepts the recorded Kontrol tokens for the testkite", async () => {
  const { auth } = recordedSetup(KONTROL_PUBLIC_KEY);
  for (const key of [POSTGRES_TOKEN, ETCD_TOKEN]) {
    const result = await auth.authenticate({ type: "token", key });
    assert.equal(result.username, "testuser");
    assert.equal(result.type, "token");
    assert.equal(result.claims.aud, "/testuser/interop/testkite");
  }
});

Deno.test("authenticate() reports recorded tokens under an untrusted key as expired", async () => {
  const { auth } = recordedSetup(UNTRUSTED_PUBLIC_KEY);
  await refused(
    auth,
    { type: "token", key: POSTGRES_TOKEN },
    RECORDED_ERRORS.untrustedToken,
  );
  await refused(
    auth,
    { type: "token", key: ETCD_TOKEN },
    RECORDED_ERRORS.untrustedToken,
  );
});

Deno.test("authenticate() refuses the recorded kite.key when its Kontrol key is not trusted", async () => {
  const { auth } = recordedSetup(UNTRUSTED_PUBLIC_KEY);
  await refused(
    auth,
    { type: "kiteKey", key: TRUSTED_KITE_KEY },
    RECORDED_ERRORS.untrustedKiteKey,
  );
});

Deno.test("authenticate() gives the recorded Go texts for the recorded failures", async () => {
  const { auth } = recordedSetup(KONTROL_PUBLIC_KEY);
  // go-kite/04 conn 1: a kite.key signed by the rogue key, sent as a token.
  await refused(
    auth,
    { type: "token", key: UNTRUSTED_KITE_KEY },
    RECORDED_ERRORS.untrustedToken,
  );
  // go-kite/04 conn 2: the trusted kite.key sent as a token.
  await refused(
    auth,
    { type: "token", key: TRUSTED_KITE_KEY },
    RECORDED_ERRORS.kiteKeyAsToken,
  );
  // go-kite/04 conn 3: the rogue kite.key as kiteKey.
  await refused(
    auth,
    { type: "kiteKey", key: UNTRUSTED_KITE_KEY },
    RECORDED_ERRORS.untrustedKiteKey,
  );
  // go-kite/03: no auth, an unknown type, and a key that is not a JWT.
  await refused(auth, null, RECORDED_ERRORS.noAuth);
  await refused(auth, { type: "bogus", key: "x" }, RECORDED_ERRORS.unknownType);
  await refused(
    auth,
    { type: "token", key: "not.a.jwt" },
    RECORDED_ERRORS.notAJwt,
  );
});

// --- Forged credentials ------------------------------------------------------

Deno.test("authenticate() accepts an honest token and returns its subject", async () => {
  const { auth } = setup();
  const result = await auth.authenticate({
    type: "token",
    key: await aliceToken(),
  });
  assert.equal(result.username, "bob");
  assert.equal(result.claims.iss, "kontrol");
});

Deno.test("authenticate() refuses missing authentication", async () => {
  const { auth } = setup();
  await refused(auth, undefined, "No authentication information is provided");
  await refused(auth, null, "No authentication information is provided");
});

Deno.test("authenticate() refuses an unknown authentication type", async () => {
  const { auth } = setup();
  await refused(
    auth,
    { type: "sessionID", key: "abc" },
    "Unknown authentication type: sessionID",
  );
  await refused(
    auth,
    { type: "__proto__", key: "abc" },
    "Unknown authentication type: __proto__",
  );
});

Deno.test("authenticate() refuses alg none", async () => {
  const { auth } = setup();
  const claims = goTokenClaims(NOW, {
    aud: "/alice/prod/math",
    iss: "kontrol",
    sub: "bob",
  });
  const forged = forgeJwt({ alg: "none", typ: "JWT" }, claims);
  await refused(
    auth,
    { type: "token", key: forged },
    "token: invalid signing method",
  );
  const kiteKey = forgeJwt({ alg: "none" }, kiteKeyClaims(KONTROL_PUBLIC));
  await refused(
    auth,
    { type: "kiteKey", key: kiteKey },
    "kiteKey: invalid signing method",
  );
});

Deno.test("authenticate() refuses HS256 signed with the public key as secret", async () => {
  const { auth } = setup();
  const claims = goTokenClaims(NOW, {
    aud: "/alice/prod/math",
    iss: "kontrol",
    sub: "bob",
  });
  for (const secret of [KONTROL_PUBLIC, KONTROL_PUBLIC.trim()]) {
    const forged = await new CompactSign(
      new TextEncoder().encode(JSON.stringify(claims)),
    )
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .sign(new TextEncoder().encode(secret));
    await refused(
      auth,
      { type: "token", key: forged },
      "token: invalid signing method",
    );
  }
});

Deno.test("authenticate() refuses algorithms jwt-go does not know", async () => {
  const { auth } = setup();
  const claims = goTokenClaims(NOW, {
    aud: "/alice/prod/math",
    iss: "kontrol",
    sub: "bob",
  });
  await refused(
    auth,
    { type: "token", key: forgeJwt({ alg: "EdDSA" }, claims, "AAAA") },
    "token: signing method (alg) is unavailable.",
  );
  await refused(
    auth,
    { type: "token", key: forgeJwt({ typ: "JWT" }, claims, "AAAA") },
    "token: signing method (alg) is unspecified.",
  );
});

Deno.test("authenticate() reports an expired token with Go's text", async () => {
  const { auth } = setup();
  const key = await aliceToken(NOW - (48 * 3600 + 300 + 3600) * 1000);
  await refused(
    auth,
    { type: "token", key },
    "token: token is expired by 1h0m0s",
  );
});

Deno.test("authenticate() refuses a token whose nbf is in the future", async () => {
  const { auth } = setup();
  const claims = goTokenClaims(NOW, {
    aud: "/alice/prod/math",
    iss: "kontrol",
    sub: "bob",
  });
  claims.nbf = Math.floor(NOW / 1000) + 301; // beyond the 5 min skew
  await refused(
    auth,
    { type: "token", key: await token(claims) },
    "token: token is not valid yet",
  );
});

Deno.test("authenticate() refuses a token issued in the future", async () => {
  const { auth } = setup();
  const claims = goTokenClaims(NOW, {
    aud: "/alice/prod/math",
    iss: "kontrol",
    sub: "bob",
  });
  delete claims.nbf;
  claims.iat = Math.floor(NOW / 1000) + 360;
  await refused(
    auth,
    { type: "token", key: await token(claims) },
    "token: Token used before issued",
  );
});

Deno.test("authenticate() accepts iat and nbf up to 5 min ahead (a Kontrol's clock skew)", async () => {
  const { auth } = setup();
  const claims = goTokenClaims(NOW, {
    aud: "/alice/prod/math",
    iss: "kontrol",
    sub: "bob",
  });
  claims.iat = claims.nbf = Math.floor(NOW / 1000) + 300;
  const result = await auth.authenticate({
    type: "token",
    key: await token(claims),
  });
  assert.equal(result.username, "bob");
});

Deno.test("authenticate() checks exp with no leeway", async () => {
  const { auth, clock } = setup();
  const now = Math.floor(NOW / 1000);
  const claims = {
    aud: "/alice",
    exp: now + 10,
    iat: now,
    nbf: now,
    iss: "kontrol",
    sub: "bob",
  };
  const key = await token(claims);
  await auth.authenticate({ type: "token", key });
  await clock.advance(10_999);
  await auth.authenticate({ type: "token", key });
  await clock.advance(1);
  await refused(auth, { type: "token", key }, "token: token is expired by 1s");
});

Deno.test("authenticate() refuses a token with the wrong audience", async () => {
  const { auth } = setup();
  await refused(
    auth,
    { type: "token", key: await aliceToken(NOW, "/alice/staging/math") },
    'token: audience: environment "staging" not allowed (/alice/staging/math)',
  );
  await refused(
    auth,
    { type: "token", key: await aliceToken(NOW, "alice/prod/math") },
    "token: invalid audience: invalid kite string (alice/prod/math)",
  );
});

Deno.test("authenticate() refuses a token for another kite", async () => {
  const { auth } = setup();
  await refused(
    auth,
    { type: "token", key: await aliceToken(NOW, "/carol/prod/math") },
    'token: audience: username "carol" not allowed (/carol/prod/math)',
  );
  await refused(
    auth,
    { type: "token", key: await aliceToken(NOW, "/alice/prod/fs") },
    'token: audience: kite "fs" not allowed (/alice/prod/fs)',
  );
});

Deno.test("authenticate() accepts the super-audience and partial audiences", async () => {
  const { auth } = setup();
  for (
    const aud of [
      "/",
      "/alice",
      "/alice/prod",
      "/alice/prod/math/9.9.9/xx/yy/zz",
    ]
  ) {
    const result = await auth.authenticate({
      type: "token",
      key: await aliceToken(NOW, aud),
    });
    assert.equal(result.username, "bob", aud);
  }
});

Deno.test("authenticate() refuses a token from the wrong issuer", async () => {
  const { auth } = setup();
  const claims = goTokenClaims(NOW, {
    aud: "/alice/prod/math",
    iss: "mallory",
    sub: "bob",
  });
  await refused(
    auth,
    { type: "token", key: await token(claims) },
    "token: issuer is not trusted: mallory",
  );
});

Deno.test("authenticate() accepts any issuer when kontrolUser is undefined", async () => {
  const { auth } = setup({ kontrolUser: () => undefined });
  const claims = goTokenClaims(NOW, {
    aud: "/alice/prod/math",
    iss: "other",
    sub: "bob",
  });
  const result = await auth.authenticate({
    type: "token",
    key: await token(claims),
  });
  assert.equal(result.username, "bob");
});

Deno.test("authenticate() refuses a token signed by a foreign Kontrol as expired", async () => {
  const { auth } = setup();
  const claims = goTokenClaims(NOW, {
    aud: "/alice/prod/math",
    iss: "kontrol",
    sub: "bob",
  });
  await refused(
    auth,
    { type: "token", key: await token(claims, FOREIGN_PRIVATE) },
    "token: token is expired",
  );
});

Deno.test("authenticate() refuses a kite.key embedding a foreign Kontrol's key", async () => {
  const { auth } = setup();
  const key = await token(kiteKeyClaims(FOREIGN_PUBLIC), FOREIGN_PRIVATE);
  await refused(
    auth,
    { type: "kiteKey", key },
    "kiteKey: kontrol key is not trusted",
  );
});

Deno.test("authenticate() refuses a kite.key signed by another key than it embeds", async () => {
  const { auth } = setup();
  const key = await token(kiteKeyClaims(KONTROL_PUBLIC), FOREIGN_PRIVATE);
  await refused(
    auth,
    { type: "kiteKey", key },
    "kiteKey: crypto/rsa: verification error",
  );
});

Deno.test("authenticate() refuses a kite.key without kontrolKey or subject", async () => {
  const { auth } = setup();
  const noKey = kiteKeyClaims(KONTROL_PUBLIC);
  delete noKey.kontrolKey;
  await refused(
    auth,
    { type: "kiteKey", key: await token(noKey) },
    "kiteKey: no kontrol key found",
  );
  const noSub = await token(kiteKeyClaims(KONTROL_PUBLIC, ""));
  await refused(
    auth,
    { type: "kiteKey", key: noSub },
    "kiteKey: token has no username",
  );
});

Deno.test("authenticate() accepts a trusted kite.key whatever its issuer", async () => {
  const { auth } = setup();
  const claims = {
    ...kiteKeyClaims(KONTROL_PUBLIC, "dave"),
    iss: "someone-else",
  };
  const result = await auth.authenticate({
    type: "kiteKey",
    key: await token(claims),
  });
  assert.equal(result.username, "dave");
  assert.equal(result.type, "kiteKey");
});

Deno.test("authenticate() refuses a tampered payload", async () => {
  const { auth } = setup();
  const [h, , s] = (await aliceToken()).split(".");
  const claims = goTokenClaims(NOW, {
    aud: "/alice/prod/math",
    iss: "kontrol",
    sub: "root",
  });
  await refused(
    auth,
    { type: "token", key: `${h}.${b64url(JSON.stringify(claims))}.${s}` },
    "token: token is expired",
  );
  const [kh, , ks] = (await token(kiteKeyClaims(KONTROL_PUBLIC))).split(".");
  const tampered = `${kh}.${
    b64url(JSON.stringify(kiteKeyClaims(KONTROL_PUBLIC, "root")))
  }.${ks}`;
  await refused(
    auth,
    { type: "kiteKey", key: tampered },
    "kiteKey: crypto/rsa: verification error",
  );
});

Deno.test("authenticate() refuses truncated and garbage tokens with clear causes", async () => {
  const { auth } = setup();
  const good = await aliceToken();
  const cases: [string, string][] = [
    ["", "token: token contains an invalid number of segments"],
    [
      good.split(".").slice(0, 2).join("."),
      "token: token contains an invalid number of segments",
    ],
    [good.slice(0, -10), "token: token is expired"],
    [
      good.slice(0, 20) + "." + good.split(".").slice(1).join("."),
      "token: unexpected end of JSON input",
    ],
    ["a*b.c.d", "token: illegal base64 data at input byte 1"],
    ["Bearer " + good, "token: tokenstring should not contain 'bearer '"],
    [
      `${b64url("[1]")}.${b64url("{}")}.x`,
      "token: json: cannot unmarshal array into Go value of type map[string]interface {}",
    ],
    [
      `${b64url('{"alg":"RS256"}')}.${b64url("7")}.x`,
      "token: json: cannot unmarshal number into Go value of type kitekey.KiteClaims",
    ],
    [
      forgeJwt({ alg: "RS256" }, { aud: ["/alice"] }, "x"),
      "token: json: cannot unmarshal array into Go struct field KiteClaims.aud of type string",
    ],
    [
      forgeJwt({ alg: "RS256" }, { exp: 1.5 }, "x"),
      "token: json: cannot unmarshal number 1.5 into Go struct field KiteClaims.exp of type int64",
    ],
  ];
  for (const [key, message] of cases) {
    await refused(auth, { type: "token", key }, message);
  }
});

Deno.test("authenticate() requires aud and sub on tokens", async () => {
  const { auth } = setup();
  const claims = goTokenClaims(NOW, { aud: "/alice", iss: "kontrol", sub: "" });
  delete claims.sub;
  await refused(
    auth,
    { type: "token", key: await token(claims) },
    "token: token has no username",
  );
  const noAud = goTokenClaims(NOW, { aud: "", iss: "kontrol", sub: "bob" });
  await refused(
    auth,
    { type: "token", key: await token(noAud) },
    "token: token has no audience",
  );
});

Deno.test("authenticate() accepts RS384 and RS512 tokens", async () => {
  const { auth } = setup();
  for (const alg of ["RS384", "RS512"] as RsaAlg[]) {
    const claims = goTokenClaims(NOW, {
      aud: "/alice",
      iss: "kontrol",
      sub: alg,
    });
    const result = await auth.authenticate({
      type: "token",
      key: await signJwt(claims, KONTROL_PRIVATE, alg),
    });
    assert.equal(result.username, alg);
  }
});

Deno.test("authenticate() refuses tokens when no Kontrol key is trusted", async () => {
  const { auth } = setup({ trusted: [] });
  await refused(
    auth,
    { type: "token", key: await aliceToken() },
    "token: no trusted kontrol key is configured",
  );
});

// --- Trust, rotation, caching -------------------------------------------------

Deno.test("authenticate() accepts tokens signed by any of several trusted keys", async () => {
  const { auth } = setup({ trusted: [FOREIGN_PUBLIC, KONTROL_PUBLIC] });
  const claims = goTokenClaims(NOW, {
    aud: "/alice",
    iss: "kontrol",
    sub: "bob",
  });
  await auth.authenticate({
    type: "token",
    key: await token(claims, KONTROL_PRIVATE),
  });
  await auth.authenticate({
    type: "token",
    key: await token(claims, FOREIGN_PRIVATE),
  });
});

Deno.test("authenticate() stops accepting a cached token once its key is removed", async () => {
  const { auth, trustedKeys } = setup({ trusted: [] });
  trustedKeys.add(KONTROL_PUBLIC, "old");
  trustedKeys.add(FOREIGN_PUBLIC, "new");
  const key = await aliceToken();
  await auth.authenticate({ type: "token", key });
  assert.equal(trustedKeys.remove("old"), true);
  await refused(auth, { type: "token", key }, "token: token is expired");
});

/** Counts key lookups, i.e. signature verifications that were not cached. */
class CountingKeyCache extends KeyCache {
  calls = 0;
  override publicKey(pem: string, alg?: RsaAlg): Promise<CryptoKey> {
    this.calls++;
    return super.publicKey(pem, alg);
  }
}

Deno.test("authenticate() verifies an identical token string only once", async () => {
  const keyCache = new CountingKeyCache();
  const { auth, clock } = setup({ keyCache });
  const key = await aliceToken();
  for (let i = 0; i < 5; i++) await auth.authenticate({ type: "token", key });
  assert.equal(keyCache.calls, 1);
  // The cache entry ends with the verify TTL; then the signature is checked again.
  await clock.advance(5 * 60_000);
  await auth.authenticate({ type: "token", key });
  assert.equal(keyCache.calls, 2);
});

Deno.test("authenticate() re-checks the audience of a cached token", async () => {
  let local = LOCAL;
  const { auth } = setup({ localKite: () => local });
  const key = await aliceToken();
  await auth.authenticate({ type: "token", key });
  local = makeIdentity({ ...LOCAL, name: "fs" });
  await refused(
    auth,
    { type: "token", key },
    'token: audience: kite "math" not allowed (/alice/prod/math)',
  );
});

Deno.test("authenticate() caches kite-key trust decisions for verifyTtlMs", async () => {
  const asked: string[] = [];
  const { auth, clock } = setup({
    trusted: [],
    verifyTtlMs: 60_000,
    verifyKontrolKey: (pem) => {
      asked.push(pem);
      return Promise.resolve(pem === KONTROL_PUBLIC.trim());
    },
  });
  const good = await token(kiteKeyClaims(KONTROL_PUBLIC));
  const rogue = await token(kiteKeyClaims(FOREIGN_PUBLIC), FOREIGN_PRIVATE);
  await auth.authenticate({ type: "kiteKey", key: good });
  await auth.authenticate({ type: "kiteKey", key: good });
  await refused(
    auth,
    { type: "kiteKey", key: rogue },
    "kiteKey: kontrol key is not trusted",
  );
  await refused(
    auth,
    { type: "kiteKey", key: rogue },
    "kiteKey: kontrol key is not trusted",
  );
  assert.equal(asked.length, 2);
  await clock.advance(60_000);
  await auth.authenticate({ type: "kiteKey", key: good });
  assert.equal(asked.length, 3);
});

Deno.test("authenticate() sends the verifyKontrolKey error text and does not cache it", async () => {
  let calls = 0;
  const { auth } = setup({
    trusted: [],
    verifyKontrolKey: () => {
      calls++;
      return Promise.reject(new Error("not found"));
    },
  });
  const key = await token(kiteKeyClaims(KONTROL_PUBLIC));
  await refused(auth, { type: "kiteKey", key }, "kiteKey: not found");
  await refused(auth, { type: "kiteKey", key }, "kiteKey: not found");
  assert.equal(calls, 2);
});

Deno.test("authenticate() forgets trust decisions when the trusted keys change", async () => {
  const { auth, trustedKeys } = setup({ trusted: [] });
  const key = await token(kiteKeyClaims(KONTROL_PUBLIC));
  await refused(
    auth,
    { type: "kiteKey", key },
    "kiteKey: kontrol key is not trusted",
  );
  trustedKeys.add(KONTROL_PUBLIC);
  assert.equal(
    (await auth.authenticate({ type: "kiteKey", key })).username,
    "bob",
  );
  trustedKeys.remove(KONTROL_PUBLIC);
  await refused(
    auth,
    { type: "kiteKey", key },
    "kiteKey: kontrol key is not trusted",
  );
});

Deno.test("authenticate() uses a custom verifyAudience", async () => {
  const { auth } = setup({
    verifyAudience: (_local, aud) => aud === "/special",
  });
  await auth.authenticate({
    type: "token",
    key: await aliceToken(NOW, "/special"),
  });
  await refused(
    auth,
    { type: "token", key: await aliceToken(NOW, "/alice/prod/math") },
    "token: audience not allowed (/alice/prod/math)",
  );
});

Deno.test("register() adds a custom authentication type with prefixed failures", async () => {
  const { auth } = setup();
  auth.register("sessionID", (key) => {
    if (key !== "s3cret") return Promise.reject(new Error("session not found"));
    return Promise.resolve({ username: "erin", type: "sessionID", claims: {} });
  });
  const result = await auth.authenticate({ type: "sessionID", key: "s3cret" });
  assert.equal(result.username, "erin");
  await refused(
    auth,
    { type: "sessionID", key: "nope" },
    "sessionID: session not found",
  );
});

// --- TrustedKeys, audienceProblem --------------------------------------------

Deno.test("TrustedKeys compares PEMs after trimming and removes by id or PEM", () => {
  const keys = new TrustedKeys();
  keys.add(`\n${KONTROL_PUBLIC}\n\n`, "k1");
  keys.add(FOREIGN_PUBLIC);
  assert.equal(keys.has(KONTROL_PUBLIC.trim()), true);
  assert.equal(keys.has(KONTROL_PUBLIC.trim().replace("\n", "\r\n")), false);
  assert.deepEqual(keys.list().map((k) => k.id)[0], "k1");
  assert.equal(keys.size, 2);
  const before = keys.revision;
  assert.equal(keys.remove("k1"), true);
  assert.equal(keys.remove(FOREIGN_PUBLIC), true);
  assert.equal(keys.remove("k1"), false);
  assert.equal(keys.size, 0);
  assert.equal(keys.revision, before + 2);
  assert.throws(
    () => keys.add("-----BEGIN RSA PUBLIC KEY-----\nAA\n"),
    TypeError,
  );
});

Deno.test("TrustedKeys moves a re-added PEM to its new id", () => {
  const keys = new TrustedKeys([{ id: "a", pem: KONTROL_PUBLIC }]);
  keys.add(KONTROL_PUBLIC);
  assert.deepEqual(keys.list().map((k) => k.id), ["a"]);
  keys.add(KONTROL_PUBLIC, "b");
  assert.deepEqual(keys.list().map((k) => k.id), ["b"]);
});

Deno.test("audienceProblem() follows Go's rules", () => {
  assert.equal(audienceProblem(LOCAL, "/"), undefined);
  assert.equal(audienceProblem(LOCAL, "/alice//math"), undefined);
  assert.equal(audienceProblem(LOCAL, ""), "invalid empty audience");
  assert.equal(
    audienceProblem(LOCAL, "//prod"),
    'audience: username "" not allowed (//prod)',
  );
});

Deno.test("Authenticator rejects a NaN verify TTL", () => {
  assert.throws(() => setup({ verifyTtlMs: NaN }), RangeError);
});

Deno.test("authenticate() verifies every time when caching is disabled", async () => {
  const keyCache = new CountingKeyCache();
  const { auth } = setup({ verifyTtlMs: -1, keyCache });
  const key = await aliceToken();
  await auth.authenticate({ type: "token", key });
  await auth.authenticate({ type: "token", key });
  assert.equal(keyCache.calls, 2);
});

Deno.test("authenticate() caches a kite.key signature check too", async () => {
  const keyCache = new CountingKeyCache();
  const { auth } = setup({ keyCache });
  const key = await token(kiteKeyClaims(KONTROL_PUBLIC));
  await auth.authenticate({ type: "kiteKey", key });
  await auth.authenticate({ type: "kiteKey", key });
  assert.equal(keyCache.calls, 1);
});

// --- Credentials chosen by an attacker (issue #15, finding 5) ---------------

/** A kite.key carrying `pem` as its Kontrol key and a signature that matches nothing. */
function forgedKiteKey(pem: string): string {
  return forgeJwt({ alg: "RS256", typ: "JWT" }, kiteKeyClaims(pem), "AAAA");
}

Deno.test("authenticate() refuses an oversized credential before parsing it", async () => {
  let asked = 0;
  const { auth } = setup({
    trusted: [],
    verifyKontrolKey: () => Promise.resolve(++asked > 0),
  });
  const key = forgedKiteKey("x".repeat(700 * 1024));
  await refused(
    auth,
    { type: "kiteKey", key },
    `kiteKey: credential is too long (${key.length} characters, at most 16384)`,
  );
  await refused(
    auth,
    { type: "token", key },
    `token: credential is too long (${key.length} characters, at most 16384)`,
  );
  assert.equal(asked, 0);
});

Deno.test("authenticate() checks a kite.key's signature before asking or caching anything about its key", async () => {
  const asked: string[] = [];
  const keyCache = new CountingKeyCache();
  const { auth } = setup({
    trusted: [],
    keyCache,
    maxCredentialLength: 1 << 20,
    verifyKontrolKey: (pem) => {
      asked.push(pem);
      return Promise.resolve(false);
    },
  });
  // A real public key with a signature that does not match it.
  await refused(
    auth,
    { type: "kiteKey", key: forgedKiteKey(FOREIGN_PUBLIC) },
    "kiteKey: crypto/rsa: verification error",
  );
  // Not a key at all, of every size.
  for (const size of [0, 1, 100, 4096, 700 * 1024]) {
    await refused(
      auth,
      { type: "kiteKey", key: forgedKiteKey("-".repeat(size) + "junk") },
      "kiteKey: kontrol key is not trusted",
    );
  }
  assert.deepEqual(asked, [], "verifyKontrolKey ran for an unproven key");
  assert.equal(keyCache.size, 0, "a stranger's key went into the key cache");
  // A properly self-signed but untrusted key is asked about once, then cached.
  const rogue = await token(kiteKeyClaims(FOREIGN_PUBLIC), FOREIGN_PRIVATE);
  for (let i = 0; i < 2; i++) {
    await refused(
      auth,
      { type: "kiteKey", key: rogue },
      "kiteKey: kontrol key is not trusted",
    );
  }
  assert.equal(asked.length, 1);
});
