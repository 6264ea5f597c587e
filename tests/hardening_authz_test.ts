/**
 * Attacks on authorization and on what credentials make a server hold
 * (issue #15, findings 5, 8, 12, 13, 14), each written as an attacker and
 * checked against a real server: forged kite.keys of every size, quotas,
 * kite id squatting, broad tokens, claimed usernames.
 */
import { KiteError } from "../mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { settle, testKite, waitFor } from "./helpers/kite_harness.ts";
import { residentBytes } from "./helpers/processes.ts";
import { forgeJwt, signJwt } from "./fixtures/jwt.ts";
import {
  jwtParts,
  kontrolKite,
  startTestKontrol,
} from "./helpers/kontrol_harness.ts";

const MIB = 1024 * 1024;

/** A kite serving `secret` in its own process; see `fixtures/secret_kite.ts`. */
async function spawnSecretKite(): Promise<
  { url: string; pid: number; stop(): Promise<void> }
> {
  const fixture = new URL("./fixtures/secret_kite.ts", import.meta.url);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-sys=hostname",
      fixture.pathname,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let out = "";
  const reading = child.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (out += chunk) }),
  ).catch(() => {});
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    await reading;
  };
  try {
    await waitFor(() => /\{"port":\d+/.test(out), "the secret kite", 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  const { port, pid } = JSON.parse(out.split("\n")[0]);
  return { url: `http://127.0.0.1:${port}/kite`, pid, stop };
}

/** A kite.key whose Kontrol key is `size` random characters and whose signature matches nothing. */
function forgedKiteKey(size: number): string {
  const kontrolKey = crypto.randomUUID() + "A".repeat(size);
  return forgeJwt({ alg: "RS256", typ: "JWT" }, {
    iss: "kontrol",
    sub: "mallory",
    kontrolKey,
  }, "AAAA");
}

Deno.test("authz: 200 forged kite.keys with 700 KB Kontrol keys leave the kite's RSS within 48 MiB", async () => {
  const target = await spawnSecretKite();
  const attacker = testKite("attacker");
  try {
    const client = attacker.newClient(target.url);
    await client.dial();
    const attack = async (n: number) => {
      for (let i = 0; i < n; i++) {
        client.auth = { type: "kiteKey", key: forgedKiteKey(700 * 1024) };
        const r = await settle(client.tell("secret"));
        assert(!r.ok && r.error instanceof KiteError, "a forged key worked");
        assertEquals(r.error.type, "authenticationError");
      }
    };
    await attack(20); // warm-up: buffers and code the kite needs anyway
    const before = residentBytes(target.pid);
    await attack(200);
    const grown = residentBytes(target.pid) - before;
    // Before the fix each message kept its 700 KB Kontrol key in the trust
    // cache: +140 MB here.
    assert(
      grown < 48 * MIB,
      `RSS grew by ${(grown / MIB).toFixed(1)} MiB after 200 forged keys`,
    );
    // It still serves an honest caller.
    client.auth = {
      type: "kiteKey",
      key: await aliceKiteKey(),
    };
    assertEquals(await client.tell("secret"), "hello alice");
  } finally {
    await attacker.close();
    await target.stop();
  }
});

async function aliceKiteKey(): Promise<string> {
  const { fixtureKey } = await import("./fixtures/jwt.ts");
  return signJwt({
    jti: crypto.randomUUID(),
    iat: Math.floor(Date.now() / 1000) - 60,
    iss: "kontrol",
    sub: "alice",
    kontrolKey: fixtureKey("kontrol_public.pem").trim(),
    kontrolURL: "http://127.0.0.1:4000/kite",
  }, fixtureKey("kontrol_pkcs8.pem"));
}

Deno.test("authz: a token Kontrol signs for one kite by id is refused by the user's other kites", async () => {
  const tk = await startTestKontrol();
  const math = await kontrolKite(tk, "math", "alice");
  const files = await kontrolKite(tk, "files", "alice");
  const mallory = await kontrolKite(tk, "probe", "mallory");
  for (const k of [math, files]) k.handle("secret", () => `${k.name} secret`);
  try {
    for (const k of [math, files]) {
      await k.serve();
      await k.register();
    }
    const kontrol = mallory.newClient(tk.url);
    await kontrol.dial();
    const byId = await kontrol.tell("getKites", {
      query: { id: math.identity.id },
    }) as { kites: { token: string }[] };
    const byToken = await kontrol.tell("getToken", { id: math.identity.id });
    const byUser = await kontrol.tell("getKites", {
      query: { username: "alice" },
    }) as { kites: { kite: { name: string }; token: string }[] };
    const tokens: [string, string][] = [
      ["getKites({id})", byId.kites[0].token],
      ["getToken({id})", byToken as string],
      [
        "getKites({username})",
        byUser.kites.find((k) => k.kite.name === "math")!.token,
      ],
    ];
    for (const [how, token] of tokens) {
      assertEquals(jwtParts(token).claims.aud, "/alice/test/math", how);
      // Good for the kite it was asked for...
      const toMath = mallory.newClient(math.url);
      toMath.auth = { type: "token", key: token };
      await toMath.dial();
      assertEquals(await toMath.tell("secret"), "math secret", how);
      toMath.close();
      // ...and for no other.
      const toFiles = mallory.newClient(files.url);
      toFiles.auth = { type: "token", key: token };
      await toFiles.dial();
      const r = await settle(toFiles.tell("secret"));
      toFiles.close();
      assert(!r.ok && r.error instanceof KiteError, `${how} opened files`);
      assertEquals(
        r.error.message,
        'token: audience: kite "math" not allowed (/alice/test/math)',
      );
    }
  } finally {
    for (const k of [mallory, files, math]) await k.close();
    await tk.close();
  }
});

Deno.test("authz: a claimed username never shows as the authenticated one", async () => {
  const victim = testKite("victim");
  const attacker = testKite("attacker", { username: "alice" });
  const seen: [string | undefined, string][] = [];
  const record = (r: { username?: string; claimedUsername: string }) =>
    void seen.push([r.username, r.claimedUsername]);
  victim.handle("open", record).disableAuthentication();
  victim.handle("closed", record);
  // Calls back over the connection the victim dialed: not authenticated (docs/protocol.md §6.9).
  attacker.handle("callMeBack", (r) => r.client.tell("closed"))
    .disableAuthentication();
  try {
    const { url } = await victim.serve();
    const toVictim = attacker.newClient(url);
    await toVictim.dial();
    await toVictim.tell("open");
    const { url: attackerUrl } = await attacker.serve();
    const toAttacker = victim.newClient(attackerUrl);
    await toAttacker.dial();
    await toAttacker.tell("callMeBack");
    assertEquals(seen, [[undefined, "alice"], [undefined, "alice"]]);
  } finally {
    await attacker.close();
    await victim.close();
  }
});
