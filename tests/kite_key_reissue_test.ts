/**
 * `kitectl keys rotate` against a `deno task kontrol` process, with a kite
 * in a process of its own that runs with `$KITE_HOME/kite.key`: when it
 * next registers, Kontrol re-issues its key, and the kite replaces its
 * kite.key with it (a temporary file renamed over it: no leftovers, mode
 * 0400). Restarted, the kite runs with the new key, which Kontrol keeps.
 *
 * @module
 */
import { decodeJwt } from "../kite/auth/jwt.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { kitectl } from "./helpers/kitectl_cli.ts";
import { testKite } from "./helpers/kite_harness.ts";
import { startOperatedKontrol } from "./helpers/kontrol_task.ts";
import { type DenoChild, spawnDeno } from "./helpers/processes.ts";
import { eventually } from "./helpers/wait.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SECRET = "correct horse battery staple";

/** Starts the fixture kite with `home` as its KITE_HOME. */
function startKite(home: string): Promise<DenoChild> {
  return spawnDeno(
    [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env",
      "--allow-sys",
      "--allow-read",
      `--allow-write=${home}`,
      `${ROOT}tests/fixtures/rekey_kite.ts`,
    ],
    { KITE_HOME: home, KITE_LOG_LEVEL: "WARNING" },
    {
      cwd: ROOT,
      ready: /^ready (\S+) (reissued|kept) (\S+)$/,
      what: "rekey kite",
    },
  );
}

async function stop(k: DenoChild): Promise<void> {
  try {
    k.child.kill("SIGTERM");
  } catch { /* exited already */ }
  await k.child.status;
  await k.drained;
}

Deno.test("keys rotate: a running kite saves its re-issued kite.key (atomically), and a restart runs with it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite_reissue_" });
  const { kontrol, admin } = await startOperatedKontrol(dir, {
    KONTROL_MACHINESECRET: SECRET,
  });
  const home = `${dir}/alice`;
  const keyFile = `${home}/kite.key`;
  const caller = testKite("caller");
  let kite: DenoChild | undefined;
  try {
    const reg = await kitectl([
      "register",
      "--kontrol",
      kontrol.url,
      "--username",
      "alice",
      "--secret",
      SECRET,
    ], { KITE_HOME: home });
    assertEquals(reg.code, 0, reg.stderr);
    const oldKey = await Deno.readTextFile(keyFile);
    kite = await startKite(home);
    assertEquals(kite.ready[1], decodeJwt(oldKey).claims.jti);
    assertEquals(kite.ready[2], "kept");

    const rotated = await kitectl(["keys", "rotate", "--json"], admin);
    assertEquals(rotated.code, 0, rotated.stderr);
    const fresh = JSON.parse(rotated.stdout) as { public: string };

    // The kite registers again (as on a reconnect): Kontrol re-issues.
    const client = caller.newClient(kite.ready[3]);
    await client.dial();
    assertEquals(await client.tellWithTimeout("rekey.register", 15_000), {
      reissued: true,
    });
    client.close();
    await eventually(
      async () => (await Deno.readTextFile(keyFile)) !== oldKey,
      `the kite to replace ${keyFile}`,
      10_000,
    );
    const newKey = await Deno.readTextFile(keyFile);
    assertEquals(decodeJwt(newKey).claims.sub, "alice");
    assertEquals(decodeJwt(newKey).claims.kontrolKey, fresh.public);
    assertEquals((await Deno.stat(keyFile)).mode! & 0o777, 0o400);
    const names = [];
    for await (const e of Deno.readDir(home)) names.push(e.name);
    assertEquals(names, ["kite.key"], "no temporary file left beside it");

    // Restarted, it runs with the saved key, and Kontrol keeps it.
    await stop(kite);
    kite = await startKite(home);
    assertEquals(kite.ready[1], decodeJwt(newKey).claims.jti);
    assertEquals(kite.ready[2], "kept", "Kontrol had nothing to re-issue");
    assert(
      (await Deno.readTextFile(keyFile)) === newKey,
      "the key file is unchanged",
    );
  } finally {
    if (kite) await stop(kite);
    await caller.close();
    await kontrol.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
