/**
 * The environment as Go reads it (docs/protocol.md §6.11, §7.1), in a real `deno run`
 * process: `KITE_HOME` (else `~/.kite`) picks the kite.key; `KITE_USERNAME`,
 * `KITE_KONTROL_URL` and `KITE_VERIFY_TTL` override what it says.
 */
import { writeKiteKey } from "../kite/auth/kitekey.ts";
import { trimPem } from "../kite/auth/keys.ts";
import { ManualClock } from "../kite/clock.ts";
import { signKiteKey } from "../kontrol/tokens.ts";
import { fixtureKey } from "./fixtures/jwt.ts";
import { assertEquals } from "./helpers/assert.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PROBE = new URL("./fixtures/kite_env_probe.ts", import.meta.url)
  .pathname;
const KONTROL_URL = "http://127.0.0.1:4000/kite";
const PUBLIC = fixtureKey("kontrol_public.pem");

interface Probed {
  username: string;
  kontrolURL: string;
  kontrolKey: string;
  kontrolUser: string;
  kiteKey: string;
  verifyTtlMs: number;
}

let denoDir: string | undefined;

/** The parent's module cache, so a child with another HOME needs no download. */
async function cacheDir(): Promise<string> {
  if (denoDir) return denoDir;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  denoDir = JSON.parse(new TextDecoder().decode(out.stdout)).denoDir as string;
  return denoDir;
}

/** Runs the probe with exactly `env` (plus PATH and the module cache). */
async function probe(env: Record<string, string>): Promise<Probed> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", "--allow-read", "--allow-sys", PROBE],
    cwd: ROOT,
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      DENO_DIR: await cacheDir(),
      NO_COLOR: "1",
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, `probe failed: ${stderr}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

async function withHome(
  fn: (dir: string, kiteKey: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kite_env_test_" });
  try {
    const kiteKey = await signKiteKey({
      username: "alice",
      kontrolUser: "kontrol",
      kontrolURL: KONTROL_URL,
      publicKeyPem: PUBLIC,
      privateKeyPem: fixtureKey("kontrol_pkcs8.pem"),
      clock: new ManualClock(),
    });
    await fn(dir, kiteKey);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("KITE_HOME picks the kite.key: username, Kontrol URL, key and issuer come from it", () =>
  withHome(async (dir, kiteKey) => {
    await writeKiteKey(kiteKey, `${dir}/kite`);
    assertEquals(await probe({ KITE_HOME: `${dir}/kite` }), {
      username: "alice",
      kontrolURL: KONTROL_URL,
      kontrolKey: trimPem(PUBLIC),
      kontrolUser: "kontrol",
      kiteKey,
      verifyTtlMs: 300_000,
    });
  }));

Deno.test("KITE_USERNAME, KITE_KONTROL_URL and KITE_VERIFY_TTL override the kite.key", () =>
  withHome(async (dir, kiteKey) => {
    await writeKiteKey(kiteKey, dir);
    assertEquals(
      await probe({
        KITE_HOME: dir,
        KITE_USERNAME: "carol",
        KITE_KONTROL_URL: "http://127.0.0.1:4001/kite",
        KITE_VERIFY_TTL: "1m30s",
      }),
      {
        username: "carol",
        kontrolURL: "http://127.0.0.1:4001/kite",
        // Trust and issuer stay with the kite.key.
        kontrolKey: trimPem(PUBLIC),
        kontrolUser: "kontrol",
        kiteKey,
        verifyTtlMs: 90_000,
      },
    );
  }));

Deno.test("without KITE_HOME the kite.key is read from ~/.kite; an empty KITE_HOME dir means no key", () =>
  withHome(async (dir, kiteKey) => {
    await writeKiteKey(kiteKey, `${dir}/.kite`);
    assertEquals((await probe({ HOME: dir })).kiteKey, kiteKey);
    // KITE_HOME wins over HOME even when it holds no kite.key.
    await Deno.mkdir(`${dir}/empty`);
    assertEquals(await probe({ HOME: dir, KITE_HOME: `${dir}/empty` }), {
      username: "unknown",
      kontrolURL: "",
      kontrolKey: "",
      kontrolUser: "",
      kiteKey: "",
      verifyTtlMs: 300_000,
    });
  }));
