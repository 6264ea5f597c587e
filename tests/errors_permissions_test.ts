/**
 * A permission Deno was not given is named as such, with the flag to add:
 * programs run as a user runs them, with `--allow-env` or `--allow-read`
 * left out (docs/troubleshooting.md).
 */
import { writeKiteKey } from "../kite/auth/kitekey.ts";
import { signKiteKey } from "../kontrol/tokens.ts";
import { fixtureKey } from "./fixtures/jwt.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { runDeno } from "./helpers/deno_run.ts";
import { KONTROL_PUBLIC } from "./helpers/kontrol_harness.ts";
import { freePort } from "./helpers/wait.ts";

const QUERY = "examples/query/main.ts";

async function withKiteHome(
  fn: (home: string, url: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kite_perm_" });
  const url = `http://127.0.0.1:${freePort()}/kite`;
  try {
    await writeKiteKey(
      await signKiteKey({
        username: "alice",
        kontrolUser: "kontrol",
        kontrolURL: url,
        publicKeyPem: KONTROL_PUBLIC,
        privateKeyPem: fixtureKey("kontrol_pkcs8.pem"),
      }),
      `${dir}/home`,
    );
    await fn(`${dir}/home`, url);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("without --allow-env a Kontrol program names --allow-env=KITE_*,HOME, not an unset HOME", () =>
  withKiteHome(async (home) => {
    const run = await runDeno(
      ["run", "--allow-net", "--allow-read", QUERY],
      { KITE_HOME: home },
    );
    assert(run.code !== 0, run.stdout);
    assert(!run.stderr.includes("set KITE_HOME or HOME"), run.stderr);
    assert(
      run.stderr.includes(
        "cannot read the KITE_* variables (no --allow-env for them), so their settings are ignored: run deno with --allow-env=KITE_*,HOME",
      ),
      run.stderr,
    );
    assert(
      run.stderr.includes(
        "no Kontrol URL, because no kite.key: cannot locate the kite home: no permission to read KITE_HOME or HOME; run deno with --allow-env=KITE_*,HOME",
      ),
      run.stderr,
    );
  }));

Deno.test("without --allow-read for the kite.key the error names the file and --allow-read", () =>
  withKiteHome(async (home) => {
    const run = await runDeno(
      ["run", "--allow-net", "--allow-env", "--allow-sys", QUERY],
      { KITE_HOME: home },
    );
    assert(run.code !== 0, run.stdout);
    const hint =
      `no permission to read the kite.key at ${home}/kite.key: run deno with --allow-read=${home}/kite.key`;
    // Said once when the kite starts, and again when Kontrol is needed.
    assert(run.stderr.includes(`WARNING ${hint}`), run.stderr);
    assert(
      run.stderr.includes(`no Kontrol URL, because no kite.key: ${hint}`),
      run.stderr,
    );
  }));

Deno.test("with the documented permissions the same program gets past its kite.key", () =>
  withKiteHome(async (home, url) => {
    const run = await runDeno(
      [
        "run",
        "--allow-net",
        "--allow-env=KITE_*,HOME",
        `--allow-read=${home}`,
        "--allow-sys=hostname,networkInterfaces",
        QUERY,
      ],
      { KITE_HOME: home, KITE_TIMEOUT: "500ms" },
    );
    // No Kontrol runs at the kite.key's URL: the next problem is that one.
    assert(run.code !== 0, run.stdout);
    assert(!run.stderr.includes("permission"), run.stderr);
    assert(run.stderr.includes(`cannot reach Kontrol at ${url}`), run.stderr);
  }));

Deno.test("writing a kite.key without --allow-write names the directory and the flags", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite_perm_write_" });
  try {
    const run = await runDeno([
      "run",
      "--allow-env",
      `--allow-read=${dir}`,
      "tests/fixtures/write_kite_key.ts",
      "a.b.c",
    ], { KITE_HOME: `${dir}/home` });
    assertEquals(run.code, 0, run.stderr);
    assertEquals(
      run.stdout.trim(),
      `KiteKeyError: no permission to write the kite.key at ${dir}/home/kite.key: ` +
        `run deno with --allow-read=${dir}/home --allow-write=${dir}/home`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
