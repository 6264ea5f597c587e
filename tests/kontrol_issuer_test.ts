/**
 * Tokens a Go kite accepts: Kontrol's issuer comes from its own kite.key
 * as in Go's Kontrol, and `--initial --username U` writes `iss` = `sub` = U
 * (docs/protocol.md §6.3, §6.6). Checked against the kite.key and token
 * recorded from the Go Kontrol (tests/fixtures/vectors/go-kite).
 */
import { writeKiteKey } from "../kite/auth/kitekey.ts";
import { KiteError } from "../kite/errors.ts";
import { trimPem } from "../kite/auth/keys.ts";
import {
  KONTROL_USER,
  POSTGRES_TOKEN,
  TRUSTED_KITE_KEY,
} from "./fixtures/go_kite_auth.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { testKite } from "./helpers/kite_harness.ts";
import {
  jwtParts,
  KONTROL_PUBLIC,
  startTestKontrol,
} from "./helpers/kontrol_harness.ts";
import {
  FIXTURES,
  type RunningKontrol,
  runTask,
  startTask,
} from "./helpers/kontrol_task.ts";
import { freePort } from "./helpers/wait.ts";
import type { Kite } from "../mod.ts";

const GO_KITE_KEY = jwtParts(TRUSTED_KITE_KEY).claims;

/**
 * A kite that checks tokens as a Go kite holding the recorded Go kite.key
 * does: the issuer must be that key's `iss` (`testuser`). The key pair is
 * ours, as when a Go Kontrol and ours share one (no Go private key was
 * recorded).
 */
async function goLikeKite(kiteKey: string): Promise<Kite> {
  const kite = testKite("testkite", {
    username: KONTROL_USER,
    environment: "interop",
    kontrolUser: GO_KITE_KEY.iss as string,
    kontrolKey: trimPem(KONTROL_PUBLIC),
  }, { kiteKey });
  kite.handle("secret", (r) => `hello ${r.username}`);
  await kite.serve();
  return kite;
}

Deno.test("Kontrol with the recorded Go kite.key as its own issues tokens a Go kite accepts", async () => {
  assertEquals([GO_KITE_KEY.iss, GO_KITE_KEY.sub], [
    KONTROL_USER,
    KONTROL_USER,
  ]);
  const dir = await Deno.makeTempDir({ prefix: "kontrol_issuer_" });
  const keys = {
    KONTROL_PUBLICKEYFILE: `${FIXTURES}kontrol_public.pem`,
    KONTROL_PRIVATEKEYFILE: `${FIXTURES}kontrol_pkcs8.pem`,
    KONTROL_DATA: `${dir}/data`,
    KONTROL_IP: "127.0.0.1",
    KONTROL_PORT: String(freePort()),
  };
  let running: RunningKontrol | undefined;
  const kites: Kite[] = [];
  try {
    // Our --initial writes what Go's -initial wrote: same claims, iss = sub.
    const initial = await runTask(["--initial", "--username", KONTROL_USER], {
      ...keys,
      KITE_HOME: `${dir}/kites`,
    });
    assertEquals(initial.code, 0, initial.stderr);
    const kiteKey = (await Deno.readTextFile(`${dir}/kites/kite.key`)).trim();
    const ours = jwtParts(kiteKey).claims;
    assertEquals(Object.keys(ours), Object.keys(GO_KITE_KEY));
    assertEquals([ours.iss, ours.sub], [GO_KITE_KEY.iss, GO_KITE_KEY.sub]);

    // Kontrol's own kite.key is the one the Go Kontrol wrote.
    await writeKiteKey(TRUSTED_KITE_KEY, `${dir}/kontrol`);
    running = await startTask({ ...keys, KITE_HOME: `${dir}/kontrol` });
    // One line says where it listens (the kite's own "serving" line is off).
    assertEquals(running.output().match(/listening on|serving/g), [
      "listening on",
    ]);
    assert(
      running.banner.includes(
        `issuer: ${KONTROL_USER} from ${dir}/kontrol/kite.key`,
      ),
      running.banner,
    );

    const target = await goLikeKite(kiteKey);
    kites.push(target);
    await target.register();
    const caller = testKite("caller", {}, { kiteKey });
    kites.push(caller);
    const [found] = await caller.getKites({
      username: KONTROL_USER,
      environment: "interop",
      name: "testkite",
    });
    const claims = jwtParts(found.token).claims;
    assertEquals(
      Object.keys(claims),
      Object.keys(jwtParts(POSTGRES_TOKEN).claims),
    );
    assertEquals(claims.iss, jwtParts(POSTGRES_TOKEN).claims.iss);
    await found.client.dial();
    assertEquals(await found.client.tell("secret"), `hello ${KONTROL_USER}`);
  } finally {
    for (const k of kites) await k.close();
    if (running) assertEquals(await running.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a token whose issuer is not the Go kite.key's is refused: issuer is not trusted", async () => {
  // What our Kontrol did before: every token signed as "kontrol".
  const tk = await startTestKontrol({ username: "kontrol" });
  const kites: Kite[] = [];
  try {
    const target = await goLikeKite(await tk.kiteKey(KONTROL_USER));
    kites.push(target);
    await target.register();
    const caller = testKite("caller", {}, {
      kiteKey: await tk.kiteKey(KONTROL_USER),
    });
    kites.push(caller);
    const [found] = await caller.getKites({
      username: KONTROL_USER,
      environment: "interop",
      name: "testkite",
    });
    assertEquals(jwtParts(found.token).claims.iss, "kontrol");
    await found.client.dial();
    const err = await assertRejects(
      () => found.client.tell("secret"),
      KiteError,
    ) as KiteError;
    assertEquals(
      [err.type, err.message],
      ["authenticationError", "token: issuer is not trusted: kontrol"],
    );
  } finally {
    for (const k of kites) await k.close();
    await tk.close();
  }
});
