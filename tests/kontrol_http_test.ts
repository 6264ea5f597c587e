/**
 * Kontrol's HTTP routes (docs/protocol.md §8.3): `POST /register` with Go's body,
 * `GET /heartbeat?id=`, their exact answers, and `kite.registerHTTP()`
 * end to end, including `registeragain` after Kontrol forgot the kite.
 */
import { ManualClock } from "../kite/clock.ts";
import { makeQuery } from "../kite/protocol.ts";
import { signKiteKey } from "../kontrol/tokens.ts";
import { fixtureKey } from "./fixtures/jwt.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  ENGINES,
  eventually,
  kontrolKite,
  startTestKontrol,
  type TestKontrol,
} from "./helpers/kontrol_harness.ts";

interface Answer {
  status: number;
  type: string | null;
  body: string;
}

async function post(tk: TestKontrol, body: unknown): Promise<Answer> {
  const res = await fetch(`${tk.base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    body: await res.text(),
  };
}

async function heartbeat(tk: TestKontrol, query: string): Promise<Answer> {
  const res = await fetch(`${tk.base}/heartbeat${query}`);
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    body: await res.text(),
  };
}

/** Go's http.Error answer: text/plain, `{"err":"…"}` and a newline. */
function goError(status: number, message: string): Answer {
  return {
    status,
    type: "text/plain; charset=utf-8",
    body: JSON.stringify({ err: message }) + "\n",
  };
}

const IDENTITY = {
  name: "math",
  username: "someone-else",
  id: "c0a8e1f2-0b7d-4f6e-9a51-3d2c1b0a9f8e",
  environment: "test",
  region: "eu",
  version: "1.0.3",
  hostname: "worker-3",
};

for (const engine of ENGINES) {
  Deno.test(`${engine}: POST /register with Go's body answers {url, heartbeatInterval: 10} and a newline`, async () => {
    const clock = new ManualClock(Date.now());
    const tk = await startTestKontrol({ engine, clock });
    try {
      const key = await tk.kiteKey("alice");
      const url = "http://10.0.0.5:6000/kite";
      const ok = await post(tk, {
        url,
        kite: IDENTITY,
        auth: { type: "kiteKey", key },
      });
      assertEquals(ok.status, 200);
      assertEquals(ok.body, `{"url":"${url}","heartbeatInterval":10}\n`);
      // The kite is stored under the key's user, not the claimed one.
      const [stored] = await tk.storage.get(makeQuery({ username: "alice" }));
      assertEquals(stored.kite, { ...IDENTITY, username: "alice" });
      assertEquals(stored.url, url);
      assertEquals(stored.keyId, tk.kontrol.selfPair.id);
      assertEquals(
        await tk.storage.get(makeQuery({ username: "someone-else" })),
        [],
      );

      const pong = await heartbeat(tk, `?id=${IDENTITY.id}`);
      assertEquals([pong.status, pong.body], [200, "pong"]);
      assertEquals(
        (await heartbeat(tk, `?id=${crypto.randomUUID()}`)).body,
        "registeragain",
      );
      const noId = await heartbeat(tk, "");
      assertEquals([noId.status, noId.body], [400, "query id is empty\n"]);

      // Silent for 30 s: forgotten (and deleted), so the next heartbeat
      // asks for a new registration.
      await clock.advance(29_000);
      assertEquals((await heartbeat(tk, `?id=${IDENTITY.id}`)).body, "pong");
      await clock.advance(29_000);
      assertEquals((await heartbeat(tk, `?id=${IDENTITY.id}`)).body, "pong");
      await clock.advance(30_001);
      await eventually(
        async () =>
          (await tk.storage.get(makeQuery({ username: "alice" }))).length ===
            0,
        "the silent HTTP kite to be deleted",
      );
      assertEquals(
        (await heartbeat(tk, `?id=${IDENTITY.id}`)).body,
        "registeragain",
      );
    } finally {
      await tk.close();
    }
  });

  Deno.test(`${engine}: POST /register errors are {"err": …} with 400/401`, async () => {
    const tk = await startTestKontrol({ engine });
    try {
      const key = await tk.kiteKey("alice");
      const url = "http://10.0.0.5:6000/kite";
      assertEquals(
        await post(tk, { url, kite: IDENTITY, auth: { type: "token", key } }),
        goError(400, "Unexpected authentication type: token"),
      );
      assertEquals(
        await post(tk, { url, kite: IDENTITY }),
        goError(400, "Unexpected authentication type: none"),
      );
      assertEquals(
        await post(tk, { kite: IDENTITY, auth: { type: "kiteKey", key } }),
        goError(400, "empty url"),
      );
      const foreign = await signKiteKey({
        username: "alice",
        kontrolUser: "kontrol",
        kontrolURL: tk.url,
        publicKeyPem: fixtureKey("foreign_public.pem"),
        privateKeyPem: fixtureKey("foreign_pkcs8.pem"),
      });
      assertEquals(
        await post(tk, {
          url,
          kite: IDENTITY,
          auth: { type: "kiteKey", key: foreign },
        }),
        goError(401, "kiteKey: not found"),
      );
      assertEquals(
        await post(tk, {
          url,
          kite: { ...IDENTITY, region: "" },
          auth: { type: "kiteKey", key },
        }),
        goError(400, "Empty Kite field: region"),
      );
      assertEquals(
        await post(tk, {
          url,
          kite: { ...IDENTITY, hostname: "a/b" },
          auth: { type: "kiteKey", key },
        }),
        goError(400, `Field "hostname" must not contain '/'`),
      );
      const notJson = await post(tk, "{nope");
      assertEquals([notJson.status, notJson.type], [
        400,
        "text/plain; charset=utf-8",
      ]);
      assert(JSON.parse(notJson.body).err.startsWith("invalid JSON body"));
      assertEquals(
        await tk.storage.get(makeQuery({ username: "alice" })),
        [],
        "no failed attempt stored anything",
      );
    } finally {
      await tk.close();
    }
  });

  Deno.test(`${engine}: registerHTTP heartbeats, and re-registers on registeragain`, async () => {
    // Kontrol's clock and the kite's move separately, so the test decides
    // when the kite beats and when Kontrol's 30 s run out.
    const kontrolClock = new ManualClock(Date.now());
    const kiteClock = new ManualClock(Date.now());
    // What Kontrol answered over HTTP, e.g. "GET /heartbeat pong".
    const http: string[] = [];
    const tk = await startTestKontrol({
      engine,
      clock: kontrolClock,
      beforeServe: (kontrol) => {
        const inner = kontrol.kite.fetch;
        kontrol.kite.fetch = async (req, info) => {
          const res = await inner(req, info);
          const path = new URL(req.url).pathname;
          if (path === "/register" || path === "/heartbeat") {
            const body = (await res.clone().text()).trim();
            http.push(`${req.method} ${path} ${body}`);
          }
          return res;
        };
      },
    });
    const kite = await kontrolKite(tk, "math", "alice", {}, kiteClock);
    const id = kite.identity.id;
    const stored = async () =>
      (await tk.storage.get(makeQuery({ username: "alice" }))).map((k) =>
        k.url
      );
    // The kite arms its next heartbeat only after it read Kontrol's answer;
    // its clock has no other timer, so one pending timer means "armed".
    const beat = async () => {
      await eventually(
        () => kiteClock.pending === 1,
        "the kite to arm its next heartbeat",
      );
      await kiteClock.advance(10_000);
    };
    const answered = (line: string) =>
      eventually(() => http.includes(line), `Kontrol to answer ${line}`);
    try {
      await kite.serve();
      const result = await kite.registerHTTP();
      assertEquals(result, { url: kite.url, heartbeatInterval: 10 });
      assertEquals(http, [
        `POST /register {"url":"${kite.url}","heartbeatInterval":10}`,
      ]);
      assert(tk.kontrol.registry.has(id));
      assertEquals(await stored(), [kite.url]);

      await beat();
      await answered("GET /heartbeat pong");

      // Kontrol hears nothing more for 30 s and forgets the kite.
      await kontrolClock.advance(29_000);
      assert(tk.kontrol.registry.has(id), "still known at 29 s");
      await kontrolClock.advance(2_000);
      await eventually(
        async () =>
          !tk.kontrol.registry.has(id) && (await stored()).length === 0,
        "Kontrol to forget the silent kite",
      );

      // The next heartbeat is told to register again, and the kite does.
      await beat();
      await answered("GET /heartbeat registeragain");
      await eventually(
        () => http.filter((l) => l.startsWith("POST /register")).length === 2,
        "the kite to register again",
      );
      await eventually(
        () => tk.kontrol.registry.has(id),
        "Kontrol to supervise the kite again",
      );
      assertEquals(await stored(), [kite.url]);

      // And it keeps beating on the new registration.
      const pongs = http.filter((l) => l === "GET /heartbeat pong").length;
      await beat();
      await eventually(
        () => http.filter((l) => l === "GET /heartbeat pong").length > pongs,
        "a heartbeat after re-registering",
      );
    } finally {
      await kite.close();
      await tk.close();
    }
  });
}
