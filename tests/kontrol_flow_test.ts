/**
 * Kontrol flows on real sockets, once per storage engine (memory, Deno KV):
 * register → `kite.heartbeat` → getKites → a token that opens an
 * auth-required method → getToken (cached) → getKey, and the refusals of
 * docs/protocol.md §8.2 and §8.4.
 */
import { KiteError } from "../mod.ts";
import type { Kite } from "../mod.ts";
import { makeIdentity, makeQuery } from "../kite/protocol.ts";
import { signKiteKey, signToken } from "../kontrol/tokens.ts";
import { Kontrol } from "../kontrol/kontrol.ts";
import { MemoryStorage } from "../storage/memory.ts";
import type { KeyPair } from "../storage/storage.ts";
import { secretKite } from "../examples/secret/server.ts";
import { fixtureKey } from "./fixtures/jwt.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
} from "./helpers/assert.ts";
import { MemoryLogger, testKite } from "./helpers/kite_harness.ts";
import {
  ENGINES,
  eventually,
  jwtParts,
  KONTROL_PUBLIC,
  kontrolKite,
  startTestKontrol,
  type TestKontrol,
  verifiesWith,
  withKontrol,
} from "./helpers/kontrol_harness.ts";

/** Calls a Kontrol method with the caller's Kontrol connection (kiteKey auth). */
async function callKontrol(
  kite: Kite,
  method: string,
  ...args: unknown[]
): Promise<unknown> {
  const client = await kite.kontrol.connection();
  return client.tellWithTimeout(method, 5_000, ...args);
}

/** A client dialed to Kontrol with the given credentials. */
async function dialKontrol(
  owner: Kite,
  tk: TestKontrol,
  auth: { type: string; key: string } | null,
) {
  const client = owner.newClient(tk.url, { auth });
  await client.dial();
  return client;
}

for (const engine of ENGINES) {
  Deno.test(`${engine}: register → kite.heartbeat → getKites → token call → getToken → getKey`, () =>
    withKontrol(engine, async (tk, own) => {
      const secret = own(secretKite({
        env: false,
        kiteKey: await tk.kiteKey("alice"),
        logger: new MemoryLogger(),
        config: { ip: "127.0.0.1", port: 0, environment: "test" },
      }));
      const served: string[] = [];
      secret.preHandle((r) => void served.push(r.method));
      await secret.serve();

      const registered = await secret.register();
      // dnode register answers heartbeatInterval 0, nothing else (docs/protocol.md §8.2).
      assertEquals(registered, { url: secret.url, heartbeatInterval: 0 });
      assertEquals(Object.keys(registered), ["url", "heartbeatInterval"]);
      await eventually(
        () => served.includes("kite.heartbeat"),
        "Kontrol to call kite.heartbeat on the registered kite",
      );
      assert(tk.kontrol.registry.has(secret.identity.id));

      const bob = own(await kontrolKite(tk, "caller", "bob"));
      for (
        const query of [
          { username: "alice" },
          { username: "alice", environment: "test" },
          { username: "alice", environment: "test", name: "secret" },
        ]
      ) {
        const found = await bob.getKites(query);
        assertEquals(found.length, 1, JSON.stringify(query));
        assertEquals(found[0].kite, { ...secret.identity, username: "alice" });
        assertEquals(found[0].url, secret.url);
        assertEquals(found[0].keyId, tk.kontrol.selfPair.id);
      }

      // The raw reply: exactly {kites: [{kite, url, keyId, token}]}.
      const raw = await callKontrol(bob, "getKites", {
        query: makeQuery({
          username: "alice",
          environment: "test",
          name: "secret",
        }),
        watchCallback: null,
        who: null,
      }) as { kites: Record<string, unknown>[] };
      assertEquals(Object.keys(raw), ["kites"]);
      assertEquals(Object.keys(raw.kites[0]), [
        "kite",
        "url",
        "keyId",
        "token",
      ]);
      const token = raw.kites[0].token as string;

      assert(await verifiesWith(token, KONTROL_PUBLIC), "token signature");
      const { claims } = jwtParts(token);
      assertEquals(claims.aud, "/alice/test/secret");
      assertEquals(claims.sub, "bob");
      assertEquals(claims.iss, "kontrol");

      const [found] = await bob.getKites({
        username: "alice",
        environment: "test",
        name: "secret",
      });
      assertEquals(found.token, token, "getKites reuses the cached token");
      await found.client.dial();
      assertEquals(await found.client.tell("secret"), "hello bob");
      // Without the token the same method is refused.
      const anonymous = bob.newClient(secret.url, { auth: null });
      await anonymous.dial();
      await assertRejects(
        () => anonymous.tell("secret"),
        KiteError,
        "No authentication information is provided",
      );

      assertEquals(await bob.kontrol.getToken(found.kite), token);
      assertEquals(await bob.kontrol.getKey(), KONTROL_PUBLIC);
    }));

  Deno.test(`${engine}: getKites shuffles its matches, as Go's Kontrol does`, () =>
    withKontrol(engine, async (tk, own) => {
      for (let i = 0; i < 6; i++) {
        await tk.storage.upsert({
          kite: makeIdentity({
            name: "math",
            username: "alice",
            id: `id-${i}`,
            environment: "test",
            region: "r",
            version: "1.0.0",
            hostname: "h",
          }),
          url: `http://127.0.0.1:${9000 + i}/kite`,
          keyId: tk.kontrol.selfPair.id,
        });
      }
      const bob = own(await kontrolKite(tk, "caller", "bob"));
      const orders = new Set<string>();
      const firsts = new Set<string>();
      for (let i = 0; i < 30; i++) {
        const found = await bob.getKites({
          username: "alice",
          environment: "test",
          name: "math",
        });
        assertEquals(found.length, 6);
        for (const f of found) f.renewer.stop();
        orders.add(found.map((f) => f.kite.id).join(","));
        firsts.add(found[0].kite.id);
      }
      // 30 draws of 720 orders all equal has odds of 720^-29: never.
      assert(orders.size > 1, `one order every time: ${[...orders]}`);
      assert(firsts.size > 1, "the same kite came first every time");
    }));

  Deno.test(`${engine}: an empty match is {kites: []}`, () =>
    withKontrol(engine, async (tk, own) => {
      const bob = own(await kontrolKite(tk, "caller", "bob"));
      assertEquals(
        await callKontrol(bob, "getKites", {
          query: makeQuery({ username: "nobody", environment: "test" }),
          watchCallback: null,
          who: null,
        }),
        { kites: [] },
      );
      assertEquals(await bob.getKites({ username: "nobody" }), []);
    }));

  Deno.test(`${engine}: invalid queries get the errors of docs/protocol.md §8.4`, () =>
    withKontrol(engine, async (tk, own) => {
      const bob = own(await kontrolKite(tk, "caller", "bob"));
      const cases: [unknown, string][] = [
        [{ query: { name: "math" } }, "Empty username field"],
        [
          { query: { username: "alice", name: "math" } },
          "Invalid query. Query option is not set: environment",
        ],
        [
          {
            query: { username: "alice", environment: "test", version: "1.0.0" },
          },
          "Invalid query. Query option is not set: name",
        ],
      ];
      for (const [args, message] of cases) {
        const err = await assertRejects(
          () => callKontrol(bob, "getKites", args),
          KiteError,
        ) as KiteError;
        assertEquals([err.type, err.message], ["genericError", message]);
      }
      const err = await assertRejects(
        () => callKontrol(bob, "getToken", { name: "math" }),
        KiteError,
      ) as KiteError;
      assertEquals([err.type, err.message], [
        "genericError",
        "Empty username field",
      ]);
    }));

  Deno.test(`${engine}: register refuses a missing url and token auth`, () =>
    withKontrol(engine, async (tk, own) => {
      const alice = own(await kontrolKite(tk, "math", "alice"));
      let err = await assertRejects(
        () => callKontrol(alice, "register", {}),
        KiteError,
      ) as KiteError;
      assertEquals([err.type, err.message], ["genericError", "empty url"]);

      // A valid token (audience Kontrol's user) gets past authentication and
      // is refused by register itself.
      const token = await signToken({
        audience: "/kontrol",
        subject: "alice",
        issuer: "kontrol",
        privateKeyPem: fixtureKey("kontrol_pkcs8.pem"),
      });
      const withToken = await dialKontrol(alice, tk, {
        type: "token",
        key: token,
      });
      err = await assertRejects(
        () => withToken.tell("register", { url: "http://127.0.0.1:1/kite" }),
        KiteError,
      ) as KiteError;
      assertEquals(
        [err.type, err.message],
        ["genericError", "Unexpected authentication type: token"],
      );
      // Nor getKey: only a Kontrol with tokenRegister answers a page's token.
      err = await assertRejects(
        () => withToken.tell("getKey"),
        KiteError,
      ) as KiteError;
      assertEquals(
        [err.type, err.message],
        ["genericError", "Unexpected authentication type: token"],
      );
      // The token itself is fine: getKites accepts it.
      assertEquals(
        await withToken.tell("getKites", {
          query: makeQuery({ username: "x" }),
        }),
        { kites: [] },
      );
      assertEquals(
        await tk.storage.get(makeQuery({ username: "alice" })),
        [],
        "nothing was registered",
      );
    }));

  Deno.test(`${engine}: calls without auth and with a foreign kite.key are refused`, () =>
    withKontrol(engine, async (tk, own) => {
      const caller = own(testKite("caller"));
      const anonymous = await dialKontrol(caller, tk, null);
      for (const method of ["getKites", "getToken", "getKey", "register"]) {
        const err = await assertRejects(
          () => anonymous.tell(method, { query: makeQuery({ username: "a" }) }),
          KiteError,
        ) as KiteError;
        assertEquals(
          [err.type, err.message],
          ["authenticationError", "No authentication information is provided"],
          method,
        );
        assertMatch(err.id, /^[0-9a-f]{16}$/);
      }

      const foreignKey = await signKiteKey({
        username: "mallory",
        kontrolUser: "kontrol",
        kontrolURL: tk.url,
        publicKeyPem: fixtureKey("foreign_public.pem"),
        privateKeyPem: fixtureKey("foreign_pkcs8.pem"),
      });
      const foreign = await dialKontrol(caller, tk, {
        type: "kiteKey",
        key: foreignKey,
      });
      for (const method of ["getKites", "register", "getKey"]) {
        const err = await assertRejects(
          () => foreign.tell(method, { url: "http://127.0.0.1:1/kite" }),
          KiteError,
        ) as KiteError;
        // Go's Kontrol: the key pair is unknown to its store (docs/protocol.md §6.5).
        assertEquals(
          [err.type, err.message],
          ["authenticationError", "kiteKey: not found"],
          method,
        );
      }

      // A kite.key naming our Kontrol's public key but signed by another key.
      const forged = await signKiteKey({
        username: "mallory",
        kontrolUser: "kontrol",
        kontrolURL: tk.url,
        publicKeyPem: KONTROL_PUBLIC,
        privateKeyPem: fixtureKey("foreign_pkcs8.pem"),
      });
      const forger = await dialKontrol(caller, tk, {
        type: "kiteKey",
        key: forged,
      });
      const err = await assertRejects(
        () => forger.tell("getKey"),
        KiteError,
      ) as KiteError;
      assertEquals(
        [err.type, err.message],
        ["authenticationError", "kiteKey: crypto/rsa: verification error"],
      );
    }));

  Deno.test(`${engine}: registerMachine is refused without a machineAuthenticate hook`, () =>
    withKontrol(engine, async (tk, own) => {
      const caller = own(testKite("caller"));
      // Auth is off for this method: even an anonymous caller reaches it.
      const anonymous = await dialKontrol(caller, tk, null);
      const err = await assertRejects(
        () => anonymous.tell("registerMachine", { authType: "password" }),
        KiteError,
      ) as KiteError;
      assertEquals(
        [err.type, err.message],
        ["genericError", "no valid authentication key found"],
      );
    }));
}

Deno.test("registerMachine with a hook signs a kite.key for the user the hook names, never the claimed one", async () => {
  const seen: string[] = [];
  const tk = await startTestKontrol({
    machineAuthenticate: (authType, r) => {
      seen.push(`${authType} ${r.claimedUsername} ${r.username}`);
      if (authType === "silent") {
        return Promise.resolve(undefined as unknown as string);
      }
      if (authType !== "password") throw new Error("bad auth type");
      return Promise.resolve("dave");
    },
  });
  const caller = testKite("caller", { username: "carol" });
  try {
    const client = caller.newClient(tk.url, { auth: null });
    await client.dial();
    const err = await assertRejects(
      () => client.tell("registerMachine", { authType: "other" }),
      KiteError,
    ) as KiteError;
    assertEquals(
      [err.type, err.message],
      ["authenticationError", "cannot authenticate user: bad auth type"],
    );
    const silent = await assertRejects(
      () => client.tell("registerMachine", { authType: "silent" }),
      KiteError,
    ) as KiteError;
    assertEquals(
      [silent.type, silent.message],
      [
        "authenticationError",
        "cannot authenticate user: machineAuthenticate named no user",
      ],
    );
    const key = await client.tell("registerMachine", { authType: "password" });
    assert(typeof key === "string" && await verifiesWith(key, KONTROL_PUBLIC));
    const { claims } = jwtParts(key);
    assertEquals(claims.sub, "dave", "the caller claimed carol");
    assertEquals(claims.kontrolKey, KONTROL_PUBLIC);
    assertEquals(seen, [
      "other carol undefined",
      "silent carol undefined",
      "password carol undefined",
    ]);
  } finally {
    await caller.close();
    await tk.close();
  }
});

Deno.test("Kontrol serves while its key pair is still coming; minting a kite.key waits for it", async () => {
  const pair = Promise.withResolvers<KeyPair>();
  const storage = new MemoryStorage();
  const kontrol = new Kontrol({
    storage,
    machineAuthenticate: () => Promise.resolve("carol"),
    kiteConfig: { ip: "127.0.0.1", logLevel: "FATAL" },
  });
  const initialized = kontrol.init(pair.promise);
  const { url } = await kontrol.kite.serve({ port: 0, hostname: "127.0.0.1" });
  const caller = testKite("caller", { username: "carol" });
  try {
    const client = caller.newClient(url, { auth: null });
    await client.dial();
    let minted: unknown;
    const minting = client.tell("registerMachine", { authType: "password" })
      .then((key) => minted = key);
    assertEquals(await client.tell("kite.ping"), "pong", "served at once");
    assertEquals(minted, undefined, "no kite.key before the pair exists");
    pair.resolve({
      id: "",
      public: KONTROL_PUBLIC,
      private: fixtureKey("kontrol_pkcs8.pem"),
    });
    await initialized;
    await minting;
    assert(typeof minted === "string");
    assert(await verifiesWith(minted, KONTROL_PUBLIC), "signed with the pair");
    assertEquals(jwtParts(minted).claims.sub, "carol");
  } finally {
    await caller.close();
    await kontrol.kite.close();
    await storage.close();
  }
});

Deno.test("Kontrol.init reports a key pair that fails to load; signing then fails clearly", async () => {
  const storage = new MemoryStorage();
  const kontrol = new Kontrol({ storage });
  try {
    await assertRejects(
      () => kontrol.init(Promise.reject(new Error("private.pem: bad PEM"))),
      Error,
      "private.pem: bad PEM",
    );
    await assertRejects(
      () => kontrol.signKiteKey("carol"),
      Error,
      "Kontrol has no key pair",
    );
  } finally {
    await kontrol.kite.close();
    await storage.close();
  }
});
