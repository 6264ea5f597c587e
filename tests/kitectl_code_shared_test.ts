/**
 * One-time codes live in Kontrol's storage: a code one `deno task kontrol`
 * printed gets a kite.key from another Kontrol process on the same etcd or
 * PostgreSQL, once (then both refuse it), two `kitectl register`s racing on
 * one code through the two Kontrols get one kite.key between them, and on
 * Deno KV an unused code outlives a Kontrol restart while a used one stays
 * used.
 *
 * @module
 */
import { decodeJwt } from "../kite/auth/jwt.ts";
import { assertEquals, assertMatch } from "./helpers/assert.ts";
import { kitectl } from "./helpers/kitectl_cli.ts";
import {
  KONTROL_KEY_FILES,
  type KontrolProcess,
  SHARED_ENGINES,
  startBackend,
  startKontrolProcess,
} from "./helpers/kontrol_cluster.ts";
import { startOperatedKontrol, startTask } from "./helpers/kontrol_task.ts";
import { eventually, freePort } from "./helpers/wait.ts";

const CODE_LINE =
  /One-time code for `kitectl register --code` \(valid 24 h\): (\S+)/g;

/** The codes a Kontrol printed at start. */
function printedCodes(output: string): string[] {
  return [...output.matchAll(CODE_LINE)].map((m) => m[1]);
}

/** The `n` codes Kontrol prints right after its listening line. */
async function awaitCodes(output: () => string, n: number): Promise<string[]> {
  await eventually(
    () => printedCodes(output()).length === n,
    `Kontrol to print ${n} one-time codes`,
  );
  return printedCodes(output());
}

/** `kitectl register` of `username` through `url` with `code`, in `dir/username`. */
function register(dir: string, url: string, username: string, code: string) {
  return kitectl(
    ["register", "--kontrol", url, "--username", username, "--code", code],
    { KITE_HOME: `${dir}/${username}` },
  );
}

async function keyOwner(dir: string, username: string): Promise<string> {
  const key = await Deno.readTextFile(`${dir}/${username}/kite.key`);
  return String(decodeJwt(key).claims.sub);
}

async function hasKey(dir: string, username: string): Promise<boolean> {
  return await Deno.stat(`${dir}/${username}/kite.key`).then(
    () => true,
    () => false,
  );
}

for (const engine of SHARED_ENGINES) {
  Deno.test(`${engine}: a code printed by one Kontrol process works once on another`, async () => {
    const backend = await startBackend(engine);
    const dir = await Deno.makeTempDir({ prefix: `codes_${engine}_` });
    const processes: KontrolProcess[] = [];
    try {
      const start = async (i: number, codes: number) => {
        const p = await startKontrolProcess({
          ...backend.kontrolEnv(),
          ...KONTROL_KEY_FILES,
          KONTROL_USERNAME: "kontrol",
          KONTROL_IP: "127.0.0.1",
          KONTROL_PORT: String(freePort()),
          KONTROL_DATA: `${dir}/data${i}`,
          KONTROL_MACHINECODES: String(codes),
        });
        processes.push(p);
        return p;
      };
      const a = await start(0, 2);
      const b = await start(1, 0);
      const [code, raced] = await awaitCodes(a.output, 2);
      assertEquals(printedCodes(b.output()), [], "B printed no codes");

      const onB = await register(dir, b.url, "alice", code);
      assertEquals(onB.code, 0, onB.stderr);
      assertEquals(await keyOwner(dir, "alice"), "alice");
      const onA = await register(dir, a.url, "bob", code);
      assertEquals(onA.code, 1, onA.stdout);
      assertMatch(onA.stderr, /this one-time code was already used/);
      const againB = await register(dir, b.url, "bob", code);
      assertEquals(againB.code, 1, againB.stdout);
      assertMatch(againB.stderr, /already used/);
      assertEquals(await hasKey(dir, "bob"), false, "bob got no kite.key");

      // Two registrations racing on one code, one through each Kontrol.
      const [r1, r2] = await Promise.all([
        register(dir, a.url, "carol", raced),
        register(dir, b.url, "dave", raced),
      ]);
      assertEquals([r1.code, r2.code].sort(), [0, 1], r1.stderr + r2.stderr);
      const winner = r1.code === 0 ? "carol" : "dave";
      const loser = r1.code === 0 ? "dave" : "carol";
      assertMatch((r1.code === 0 ? r2 : r1).stderr, /already used/);
      assertEquals(await keyOwner(dir, winner), winner);
      assertEquals(await hasKey(dir, loser), false, `${loser} got no kite.key`);
    } finally {
      for (const p of processes) await p.kill().catch(() => {});
      await backend.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("kv: an unused code outlives a Kontrol restart, a used one stays used", async () => {
  const dir = await Deno.makeTempDir({ prefix: "codes_kv_" });
  const { kontrol, env } = await startOperatedKontrol(dir, {
    KONTROL_STORAGE: "kv",
    KONTROL_MACHINECODES: "2",
  });
  let restarted: Awaited<ReturnType<typeof startTask>> | undefined;
  try {
    const [used, kept] = await awaitCodes(kontrol.output, 2);
    const first = await register(dir, kontrol.url, "alice", used);
    assertEquals(first.code, 0, first.stderr);
    assertEquals(await kontrol.stop(), 0);

    restarted = await startTask({ ...env, KONTROL_MACHINECODES: "0" });
    assertEquals(restarted.url, kontrol.url);
    const reused = await register(dir, restarted.url, "bob", used);
    assertEquals(reused.code, 1, reused.stdout);
    assertMatch(reused.stderr, /already used/);
    const fresh = await register(dir, restarted.url, "carol", kept);
    assertEquals(fresh.code, 0, fresh.stderr);
    assertEquals(await keyOwner(dir, "carol"), "carol");
    assertEquals(await hasKey(dir, "bob"), false, "bob got no kite.key");
  } finally {
    await (restarted ?? kontrol).stop().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
