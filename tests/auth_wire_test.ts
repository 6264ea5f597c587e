/**
 * Forged and foreign credentials against a served secret kite, end to end:
 * each gets an `authenticationError` with Go's text, the connection stays
 * usable and the handler never runs. Plus the honest paths: a Go-shaped
 * call with `"authentication":null` to a method without auth, a kite.key as
 * `kiteKey` auth, and the recorded Go credentials (go-kite/04, 06, 07).
 */
import { type Auth, type Client, type Kite, KiteError } from "../mod.ts";
import { ManualClock } from "../kite/clock.ts";
import { decodeJwt } from "../kite/auth/jwt.ts";
import { signKiteKey, signToken } from "../kontrol/tokens.ts";
import { secretKite } from "../examples/secret/server.ts";
import {
  b64url,
  FOREIGN_PAIR,
  forgeJwt,
  KONTROL_PAIR,
} from "./fixtures/jwt.ts";
import {
  CAPTURE_TIME_MS,
  KONTROL_PUBLIC_KEY,
  KONTROL_USER,
  POSTGRES_TOKEN,
  RECORDED_ERRORS,
  TRUSTED_KITE_KEY,
  UNTRUSTED_KITE_KEY,
  UNTRUSTED_PUBLIC_KEY,
} from "./fixtures/go_kite_auth.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  goCall,
  MemoryLogger,
  RawSocket,
  settle,
  sockjsMessages,
  sockjsSend,
  testKite,
} from "./helpers/kite_harness.ts";

const START = Date.UTC(2026, 10, 1);
const HOUR = 3_600_000;
const KONTROL = KONTROL_PAIR;
const FOREIGN = FOREIGN_PAIR;
const AUDIENCE = "/alice/test/secret";

/** A kite.key for `username` from the fixture Kontrol (or `pair`), at `clock`'s time. */
function kiteKeyFor(
  username: string,
  clock: ManualClock,
  pair = KONTROL,
): Promise<string> {
  return signKiteKey({
    username,
    kontrolUser: "kontrol",
    kontrolURL: "http://127.0.0.1:1/kite",
    publicKeyPem: pair.public,
    privateKeyPem: pair.private,
    clock,
  });
}

/** A Kontrol token for bob, issued `offsetMs` from `clock`'s time. */
function tokenFor(
  clock: ManualClock,
  fields: { audience?: string; issuer?: string; offsetMs?: number } = {},
  privateKeyPem = KONTROL.private,
): Promise<string> {
  return signToken({
    audience: fields.audience ?? AUDIENCE,
    subject: "bob",
    issuer: fields.issuer ?? "kontrol",
    privateKeyPem,
    clock: new ManualClock(clock.now() + (fields.offsetMs ?? 0)),
  });
}

/** Replaces the payload of a JWT, keeping its header and signature. */
function withPayload(jwt: string, change: Record<string, unknown>): string {
  const [header, , signature] = jwt.split(".");
  const claims = { ...decodeJwt(jwt).claims, ...change };
  return `${header}.${b64url(JSON.stringify(claims))}.${signature}`;
}

/** An HS256 JWT keyed with the Kontrol *public* key, the classic confusion attack. */
async function hs256WithPublicKey(claims: Record<string, unknown>) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify(claims));
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(KONTROL.public),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign(
    "HMAC",
    key,
    new TextEncoder().encode(`${header}.${payload}`),
  );
  return `${header}.${payload}.${b64url(new Uint8Array(mac))}`;
}

interface Served {
  kite: Kite;
  client: Client;
  url: string;
  /** How often the `secret` handler ran to completion. */
  ran: () => number;
}

/**
 * The example secret kite as alice (kite.key from the fixture Kontrol,
 * environment `test`), with `whoami` (no auth) added, and a dialed caller
 * that sends no credentials until a test sets `client.auth`.
 */
async function withSecret(
  clock: ManualClock,
  fn: (s: Served) => Promise<void>,
): Promise<void> {
  const kite = secretKite({
    env: false,
    kiteKey: await kiteKeyFor("alice", clock),
    clock,
    logger: new MemoryLogger(),
    config: { ip: "127.0.0.1", port: 0, environment: "test" },
  });
  let ran = 0;
  kite.method("secret")!.postHandle(() => void ran++);
  kite.handle("whoami", (r) => r.claimedUsername).disableAuthentication();
  const caller = testKite("caller", {}, { clock });
  try {
    const { url } = await kite.serve();
    const client = caller.newClient(url);
    await client.dial();
    assertEquals(client.auth, null);
    await fn({ kite, client, url, ran: () => ran });
  } finally {
    await caller.close();
    await kite.close();
  }
}

/** Calls `secret` with `auth` and returns the refusal message. */
async function refusal(client: Client, auth: Auth | null): Promise<string> {
  client.auth = auth;
  const r = await settle(client.tell("secret"));
  assert(!r.ok, `accepted ${JSON.stringify(auth)}`);
  const err = r.error;
  assert(err instanceof KiteError, `not a KiteError: ${err}`);
  assertEquals(err.type, "authenticationError", err.message);
  return err.message;
}

Deno.test("forged credentials get authenticationError, the connection stays usable, the handler never runs", async () => {
  const clock = new ManualClock(START);
  await withSecret(clock, async ({ client, ran }) => {
    const valid = await tokenFor(clock);
    const claims = decodeJwt(valid).claims;
    const cases: [string, Auth | null, string][] = [
      [
        "alg none",
        { type: "token", key: forgeJwt({ alg: "none", typ: "JWT" }, claims) },
        "token: invalid signing method",
      ],
      [
        "HS256 keyed with the public key",
        { type: "token", key: await hs256WithPublicKey(claims) },
        "token: invalid signing method",
      ],
      [
        "expired 55 min ago",
        { type: "token", key: await tokenFor(clock, { offsetMs: -49 * HOUR }) },
        "token: token is expired by 55m0s",
      ],
      [
        "nbf in the future",
        { type: "token", key: await tokenFor(clock, { offsetMs: HOUR }) },
        "token: token is not valid yet",
      ],
      [
        "wrong audience (another user)",
        {
          type: "token",
          key: await tokenFor(clock, { audience: "/carol/test/secret" }),
        },
        'token: audience: username "carol" not allowed (/carol/test/secret)',
      ],
      [
        "token for another kite",
        {
          type: "token",
          key: await tokenFor(clock, { audience: "/alice/test/other" }),
        },
        'token: audience: kite "other" not allowed (/alice/test/other)',
      ],
      [
        "token for another environment",
        {
          type: "token",
          key: await tokenFor(clock, { audience: "/alice/prod" }),
        },
        'token: audience: environment "prod" not allowed (/alice/prod)',
      ],
      [
        "wrong issuer",
        { type: "token", key: await tokenFor(clock, { issuer: "mallory" }) },
        "token: issuer is not trusted: mallory",
      ],
      [
        "token signed by a foreign Kontrol",
        { type: "token", key: await tokenFor(clock, {}, FOREIGN.private) },
        "token: token is expired",
      ],
      [
        "tampered token payload",
        { type: "token", key: withPayload(valid, { sub: "admin" }) },
        "token: token is expired",
      ],
      [
        "kite.key of a foreign Kontrol (its own kontrolKey)",
        { type: "kiteKey", key: await kiteKeyFor("bob", clock, FOREIGN) },
        "kiteKey: kontrol key is not trusted",
      ],
      [
        "tampered kite.key payload",
        {
          type: "kiteKey",
          key: withPayload(await kiteKeyFor("bob", clock), { sub: "alice" }),
        },
        "kiteKey: crypto/rsa: verification error",
      ],
      [
        "kite.key sent as a token",
        { type: "token", key: await kiteKeyFor("bob", clock) },
        "token: token has no audience",
      ],
      [
        "token sent as a kite.key",
        { type: "kiteKey", key: valid },
        "kiteKey: no kontrol key found",
      ],
      [
        "truncated token",
        { type: "token", key: valid.slice(0, valid.lastIndexOf(".")) },
        "token: token contains an invalid number of segments",
      ],
      [
        "garbage",
        { type: "token", key: "not.a.jwt" },
        RECORDED_ERRORS.notAJwt,
      ],
      [
        "empty key",
        { type: "token", key: "" },
        "token: token contains an invalid number of segments",
      ],
      [
        "unknown auth type",
        { type: "bogus", key: valid },
        RECORDED_ERRORS.unknownType,
      ],
      ["no authentication", null, RECORDED_ERRORS.noAuth],
    ];
    for (const [name, auth, message] of cases) {
      assertEquals(await refusal(client, auth), message, name);
      assert(client.connected, `${name}: connection dropped`);
      assertEquals(await client.tell("kite.ping"), "pong", name);
    }
    assertEquals(ran(), 0);

    // The honest token, on the same connection, goes through.
    client.auth = { type: "token", key: valid };
    assertEquals(await client.tell("secret"), "hello bob");
    assertEquals(ran(), 1);
  });
});

Deno.test("a trusted kite.key sent as kiteKey auth authenticates as its sub", async () => {
  const clock = new ManualClock(START);
  await withSecret(clock, async ({ client, ran }) => {
    client.auth = { type: "kiteKey", key: await kiteKeyFor("bob", clock) };
    assertEquals(await client.tell("secret"), "hello bob");
    client.auth = { type: "kiteKey", key: await kiteKeyFor("carol", clock) };
    assertEquals(await client.tell("secret"), "hello carol");
    assertEquals(ran(), 2);
  });
});

Deno.test('a Go-shaped call with "authentication":null reaches a method without auth only', async () => {
  const clock = new ManualClock(START);
  await withSecret(clock, async ({ url, ran }) => {
    const raw = await RawSocket.sockjs(url);
    try {
      // Go sends withArgs:null for no arguments (docs/protocol.md §3.1).
      sockjsSend(raw, goCall("whoami", null, 0, null));
      assertEquals(sockjsMessages(await raw.next("the whoami reply")), [{
        method: 0,
        arguments: [{ error: null, result: "unknown" }],
        callbacks: {},
      }]);
      sockjsSend(raw, goCall("secret", null, 1, null));
      const [reply] = sockjsMessages(await raw.next("the secret reply"));
      const { error, result } =
        (reply.arguments as Record<string, unknown>[])[0];
      assertEquals(result, null);
      assertEquals(
        (error as Record<string, unknown>).type,
        "authenticationError",
      );
      assertEquals(
        (error as Record<string, unknown>).message,
        RECORDED_ERRORS.noAuth,
      );
      assertEquals(ran(), 0);
    } finally {
      await raw.close();
    }
  });
});

/** A Go-like `testkite` (testuser/interop) trusting `kontrolKey`, at the capture time of the vectors. */
async function withRecordedTestkite(
  kontrolKey: string,
  fn: (client: Client) => Promise<void>,
): Promise<void> {
  const clock = new ManualClock(CAPTURE_TIME_MS);
  const kite = testKite("testkite", {
    username: KONTROL_USER,
    environment: "interop",
    kontrolKey,
    kontrolUser: KONTROL_USER,
  }, { clock });
  kite.handle("secret", (r) => `hello ${r.username}`);
  const caller = testKite("kiteclient", {}, { clock });
  try {
    const { url } = await kite.serve();
    const client = caller.newClient(url);
    await client.dial();
    await fn(client);
  } finally {
    await caller.close();
    await kite.close();
  }
}

Deno.test("the recorded Go kite.key and token are accepted by a kite trusting kontrol-public-key.pem", () =>
  withRecordedTestkite(KONTROL_PUBLIC_KEY, async (client) => {
    client.auth = { type: "kiteKey", key: TRUSTED_KITE_KEY };
    assertEquals(await client.tell("secret"), "hello testuser");
    // go-kite/07: the getKites token of go-kite/06 at the recorded testkite.
    client.auth = { type: "token", key: POSTGRES_TOKEN };
    assertEquals(await client.tell("secret"), "hello testuser");
    // go-kite/04 connection 3: the rogue kite.key.
    assertEquals(
      await refusal(client, { type: "kiteKey", key: UNTRUSTED_KITE_KEY }),
      RECORDED_ERRORS.untrustedKiteKey,
    );
  }));

Deno.test("the recorded Go kite.key and token are refused by a kite trusting untrusted-public-key.pem", () =>
  withRecordedTestkite(UNTRUSTED_PUBLIC_KEY, async (client) => {
    assertEquals(
      await refusal(client, { type: "kiteKey", key: TRUSTED_KITE_KEY }),
      "kiteKey: kontrol key is not trusted",
    );
    assertEquals(
      await refusal(client, { type: "token", key: POSTGRES_TOKEN }),
      RECORDED_ERRORS.untrustedToken,
    );
    // The rogue kite.key *is* signed by the key this kite trusts.
    client.auth = { type: "kiteKey", key: UNTRUSTED_KITE_KEY };
    assertEquals(await client.tell("secret"), "hello testuser");
  }));
