/**
 * Our Kontrol against the recorded Go clients: the client frames of
 * go-kite/05 (register + heartbeat), 06 (getKites + getToken) and 08 (error
 * cases) are replayed byte for byte, with the recorded kite.key swapped for
 * one our Kontrol signed (same claims layout), and every reply must match
 * the recorded one except for ids, keys and tokens (docs/protocol.md §8.2, §8.4, §8.5,
 * §6.4). Plus a kite.js client calling getKites.
 */
import { ManualClock } from "../kite/clock.ts";
import { trimPem } from "../kite/auth/keys.ts";
import { makeQuery } from "../kite/protocol.ts";
import { KONTROL_VERSION } from "../kontrol/kontrol.ts";
import { signKiteKey } from "../kontrol/tokens.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { goCall, RawSocket } from "./helpers/kite_harness.ts";
import { kitejsGetKites } from "./helpers/kitejs.ts";
import {
  eventually,
  jwtParts,
  KONTROL_PUBLIC,
  startTestKontrol,
  type TestKontrol,
  verifiesWith,
} from "./helpers/kontrol_harness.ts";
import { readRecording, readVectorText } from "./helpers/vectors.ts";
import { fixtureKey } from "./fixtures/jwt.ts";

/** The Go Kontrol of the recordings is called `testuser`, like its kite.key user. */
const KONTROL_USER = "testuser";
/** The recordings' Kontrol key; read inside a test so a missing file fails that test. */
function recordedKontrolKey(): string {
  return trimPem(readVectorText("go-kite/kontrol-public-key.pem"));
}

interface Frame {
  conn: number;
  dir: string;
  frame: string;
}

function wsFrames(file: string, conn: number, dir: "c2s" | "s2c"): string[] {
  return (readRecording(`go-kite/${file}`) as unknown as (Frame & {
    type: string;
  })[])
    .filter((r) => r.type === "ws" && r.conn === conn && r.dir === dir)
    .map((r) => r.frame);
}

/** The dnode messages of the server's `a[...]` frames (o and h skipped). */
function serverMessages(frames: string[]): string[] {
  return frames.filter((f) => f.startsWith("a[")).flatMap((f) =>
    JSON.parse(f.slice(1)) as string[]
  );
}

/** The kite.key a recorded client frame carries, if any. */
function keyIn(frame: string): string | undefined {
  const [text] = JSON.parse(frame) as string[];
  const msg = JSON.parse(text);
  return msg.arguments?.[0]?.authentication?.key;
}

/**
 * Replaces the kite.key that the recorded Kontrol signed with `ours`; a key
 * from the recordings' untrusted pair is left as it is.
 */
function substitute(frame: string, ours: string): string {
  const key = keyIn(frame);
  if (!key) return frame;
  const claims = jwtParts(key).claims;
  if (claims.kontrolKey !== recordedKontrolKey()) return frame;
  return frame.replaceAll(key, ours);
}

/** Reads server frames until `n` dnode messages arrived; returns them. */
async function readMessages(raw: RawSocket, n: number): Promise<string[]> {
  const out: string[] = [];
  while (out.length < n) {
    const frame = await raw.next(`message ${out.length + 1} of ${n}`);
    if (frame === "o") continue;
    out.push(...serverMessages([frame]));
  }
  return out;
}

function sockjsURL(kontrolURL: string, session: string): string {
  return `${kontrolURL.replace(/^http/, "ws")}/${session}/websocket`;
}

/** Go's request ids are random: compare them as a placeholder after checking the format. */
function normalizeIds(text: string): string {
  return text.replace(/"id":"[0-9a-f]{16}"/g, '"id":"<request id>"');
}

async function withKontrol(
  fn: (tk: TestKontrol, kiteKey: string, clock: ManualClock) => Promise<void>,
): Promise<void> {
  const clock = new ManualClock(Date.now());
  const tk = await startTestKontrol({ username: KONTROL_USER, clock });
  try {
    const kiteKey = await tk.kiteKey("testuser");
    await fn(tk, kiteKey, clock);
  } finally {
    await tk.close();
  }
}

/**
 * Replays 05's register (sent before `o`, as the Go kite does) and answers
 * the heartbeat as recorded. Returns the open socket and the messages.
 */
async function replayRegister(
  tk: TestKontrol,
  kiteKey: string,
): Promise<{ raw: RawSocket; got: string[] }> {
  const c2s = wsFrames("05-kontrol-register-heartbeat.jsonl", 1, "c2s");
  const raw = await RawSocket.open(
    sockjsURL(tk.url, "910/38db078ef3dd1471971d"),
  );
  raw.send(substitute(c2s[0], kiteKey));
  const got = await readMessages(raw, 2);
  raw.send(c2s[1]); // the first ping
  raw.send(c2s[2]); // null reply to kite.heartbeat
  return { raw, got };
}

/** A round trip on the socket: everything sent before it has been processed. */
async function barrier(raw: RawSocket, cb: number): Promise<void> {
  raw.send(JSON.stringify([goCall("kite.ping", null, cb)]));
  const [reply] = await readMessages(raw, 1);
  assertEquals(
    reply,
    `{"method":${cb},"arguments":[{"error":null,"result":"pong"}],"callbacks":{}}`,
  );
}

Deno.test("our kite.key has the recorded claims layout", async () => {
  await withKontrol((_tk, kiteKey) => {
    const c2s = wsFrames("05-kontrol-register-heartbeat.jsonl", 1, "c2s");
    const recorded = jwtParts(keyIn(c2s[0])!);
    const ours = jwtParts(kiteKey);
    assertEquals(ours.header, recorded.header);
    assertEquals(Object.keys(ours.claims), Object.keys(recorded.claims));
    assertEquals(
      [ours.claims.iss, ours.claims.sub],
      [recorded.claims.iss, recorded.claims.sub],
    );
    assertEquals(ours.claims.kontrolKey, KONTROL_PUBLIC);
    return Promise.resolve();
  });
});

Deno.test("go-kite/05: register answers as recorded, kite.heartbeat first; the recorded pings keep it alive", () =>
  withKontrol(async (tk, kiteKey, clock) => {
    const s2c = serverMessages(
      wsFrames("05-kontrol-register-heartbeat.jsonl", 1, "s2c"),
    );
    const c2s = wsFrames("05-kontrol-register-heartbeat.jsonl", 1, "c2s");
    const { raw, got } = await replayRegister(tk, kiteKey);
    try {
      // kite.heartbeat [10, fn] comes before the register reply (docs/protocol.md §8.2).
      const recordedIdentity = JSON.parse(s2c[0]).arguments[0].kite;
      const ourIdentity = JSON.parse(got[0]).arguments[0].kite;
      assertEquals(Object.keys(ourIdentity), Object.keys(recordedIdentity));
      for (const field of ["name", "username"]) {
        assertEquals(ourIdentity[field], recordedIdentity[field], field);
      }
      // Go's Kontrol says 0.0.1; ours says its package version (no peer
      // checks it, docs/protocol.md §8.1).
      assertEquals(ourIdentity.version, KONTROL_VERSION);
      // Ours also carries the caller's time left, which Go skips
      // (docs/protocol.md §3.1): the rest is byte for byte Go's.
      assertEquals(
        got[0].replace(',"timeout":4000}]', "}]"),
        s2c[0].replace(
          JSON.stringify(recordedIdentity),
          JSON.stringify(ourIdentity),
        ),
      );
      assertEquals(got[1], s2c[1]);
      assertEquals(
        got[1],
        '{"method":0,"arguments":[{"error":null,"result":{"url":"http://127.0.0.1:16001/kite","heartbeatInterval":0}}],"callbacks":{}}',
      );

      const recordedKite = JSON.parse(JSON.parse(c2s[0])[0]).arguments[0].kite;
      const [stored] = await tk.storage.get(
        makeQuery({ username: "testuser" }),
      );
      assertEquals(stored.kite, recordedKite);
      assertEquals(stored.url, "http://127.0.0.1:16001/kite");
      assertEquals(stored.keyId, tk.kontrol.selfPair.id);

      // The recorded later pings ({"method":1,"arguments":[]}) re-arm the 30 s timer.
      await barrier(raw, 1);
      await clock.advance(20_000);
      raw.send(c2s[3]);
      await barrier(raw, 2);
      await clock.advance(20_000);
      assert(tk.kontrol.registry.has(recordedKite.id), "alive at 40 s");
      await clock.advance(11_000);
      await eventually(
        async () =>
          (await tk.storage.get(makeQuery({ username: "testuser" }))).length ===
            0,
        "deregistration 30 s after the last ping",
      );
    } finally {
      await raw.close();
    }
  }));

Deno.test("go-kite/06: getKites and getToken answer as recorded, with Go's token claims", () =>
  withKontrol(async (tk, kiteKey) => {
    const { raw: kite } = await replayRegister(tk, kiteKey);
    const c2s = wsFrames("06-kontrol-getkites-gettoken.jsonl", 1, "c2s");
    const s2c = serverMessages(
      wsFrames("06-kontrol-getkites-gettoken.jsonl", 1, "s2c"),
    );
    const client = await RawSocket.sockjs(tk.url);
    try {
      client.send(substitute(c2s[0], kiteKey));
      const [kites] = await readMessages(client, 1);
      const recorded = JSON.parse(s2c[0]).arguments[0].result.kites[0];
      const ours = JSON.parse(kites).arguments[0].result.kites[0];
      assertEquals(ours.keyId, tk.kontrol.selfPair.id);
      assertEquals(
        kites,
        s2c[0].replace(recorded.keyId, ours.keyId).replace(
          recorded.token,
          ours.token,
        ),
      );

      // Token: Go's header bytes, claim order and lifetime (docs/protocol.md §6.4).
      const token: string = ours.token;
      assertEquals(token.split(".")[0], recorded.token.split(".")[0]);
      assert(await verifiesWith(token, KONTROL_PUBLIC));
      const claims = jwtParts(token).claims as Record<string, number | string>;
      const recordedClaims = jwtParts(recorded.token).claims;
      assertEquals(Object.keys(claims), Object.keys(recordedClaims));
      assertEquals(Object.keys(claims), [
        "aud",
        "exp",
        "jti",
        "iat",
        "iss",
        "nbf",
        "sub",
      ]);
      assertEquals(claims.aud, "/testuser/interop/testkite");
      assertEquals([claims.iss, claims.sub], ["testuser", "testuser"]);
      assertEquals(
        (claims.exp as number) - (claims.iat as number),
        (recordedClaims.exp as number) - (recordedClaims.iat as number),
      );
      assertEquals((claims.exp as number) - (claims.iat as number), 173400);
      assertEquals(claims.nbf, claims.iat);

      // getToken with Go's plain identity argument: the same cached token.
      client.send(substitute(c2s[1], kiteKey));
      const [tokenReply] = await readMessages(client, 1);
      assertEquals(tokenReply, s2c[1].replace(recorded.token, token));
    } finally {
      await client.close();
      await kite.close();
    }
  }));

Deno.test("go-kite/08: Kontrol's errors have the recorded shape and text", () =>
  withKontrol(async (tk, kiteKey) => {
    const file = "08-errors-kontrol.jsonl";
    const check = async (
      conn: number,
      beforeOpen: boolean,
      expected: string[],
    ) => {
      const c2s = wsFrames(file, conn, "c2s").map((f) =>
        substitute(f, kiteKey)
      );
      let raw: RawSocket;
      if (beforeOpen) {
        // The Go client's first request went out before `o` (README fact 2).
        raw = await RawSocket.open(
          sockjsURL(tk.url, "726/ad4369c4ce879a03282d"),
        );
        raw.send(c2s[0]);
      } else {
        raw = await RawSocket.sockjs(tk.url);
        raw.send(c2s[0]);
      }
      try {
        const got = await readMessages(raw, 1);
        for (const frame of c2s.slice(1)) {
          raw.send(frame);
          got.push(...await readMessages(raw, 1));
        }
        for (const text of got) {
          if (text.includes('"error":{')) {
            assertMatch(text, /"id":"[0-9a-f]{16}"/);
          }
        }
        assertEquals(got.map(normalizeIds), expected.map(normalizeIds));
      } finally {
        await raw.close();
      }
    };
    const recorded = (conn: number) =>
      serverMessages(wsFrames(file, conn, "s2c"));

    // 1: no authentication.
    await check(1, false, recorded(1));
    // 2: a kite.key from a key pair this Kontrol never had (sent unchanged).
    await check(2, false, recorded(2));
    assertEquals(
      JSON.parse(recorded(2)[0]).arguments[0].error.message,
      "kiteKey: not found",
    );
    // 3: register without url, two invalid queries, then an empty match,
    // where etcd answered "Key not found" and we answer {kites: []}.
    const third = recorded(3);
    assertMatch(third[3], /100: Key not found/);
    await check(3, true, [
      ...third.slice(0, 3),
      '{"method":3,"arguments":[{"error":null,"result":{"kites":[]}}],"callbacks":{}}',
    ]);
    assertEquals(
      third.slice(0, 3).map((t) => JSON.parse(t).arguments[0].error.message),
      [
        "empty url",
        "Invalid query. Query option is not set: environment",
        "Empty username field",
      ],
    );
  }));

Deno.test("kite.js Kontrol client: getKites from our Kontrol", async () => {
  const tk = await startTestKontrol();
  try {
    const kiteKey = await tk.kiteKey("testuser");
    const { raw } = await replayRegister(tk, kiteKey);
    try {
      const res = await kitejsGetKites({
        kontrolUrl: tk.url,
        kiteKey,
        query: {
          username: "testuser",
          environment: "interop",
          name: "testkite",
        },
      });
      assert(res.ok, JSON.stringify(res));
      const result = res.result as { kites: Record<string, unknown>[] };
      assertEquals(Object.keys(result), ["kites"]);
      assertEquals(result.kites.length, 1);
      assertEquals(Object.keys(result.kites[0]), [
        "kite",
        "url",
        "keyId",
        "token",
      ]);
      assertEquals(res.kites?.length, 1);
      const [found] = res.kites!;
      assertEquals(found.url, "http://127.0.0.1:16001/kite");
      assertEquals(found.token, result.kites[0].token);
      assert(await verifiesWith(found.token, KONTROL_PUBLIC));
      assertEquals(
        jwtParts(found.token).claims.aud,
        "/testuser/interop/testkite",
      );

      // Without a kite.key kite.js gets Go's refusal.
      const refused = await kitejsGetKites({
        kontrolUrl: tk.url,
        kiteKey: "",
        query: { username: "testuser" },
      });
      assertEquals(refused.ok, false);
      assertEquals(
        (refused.error as { message?: string }).message,
        "No authentication information is provided",
      );
    } finally {
      await raw.close();
    }
  } finally {
    await tk.close();
  }
});

Deno.test("a foreign Kontrol's kite.key is refused with the Go text", () =>
  withKontrol(async (tk) => {
    const foreign = await signKiteKey({
      username: "testuser",
      kontrolUser: KONTROL_USER,
      kontrolURL: tk.url,
      publicKeyPem: fixtureKey("foreign_public.pem"),
      privateKeyPem: fixtureKey("foreign_pkcs8.pem"),
    });
    const c2s = wsFrames("06-kontrol-getkites-gettoken.jsonl", 1, "c2s");
    const raw = await RawSocket.sockjs(tk.url);
    try {
      raw.send(c2s[0].replaceAll(keyIn(c2s[0])!, foreign));
      const [reply] = await readMessages(raw, 1);
      const error = JSON.parse(reply).arguments[0].error;
      assertEquals(
        [error.type, error.message],
        ["authenticationError", "kiteKey: not found"],
      );
    } finally {
      await raw.close();
    }
  }));
