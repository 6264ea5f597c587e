/**
 * The set-up step of `deno task test` (scripts/setup_test_env.ts): silent
 * when everything is there, and one line naming what is missing and the
 * `apt-get install` command otherwise. These runs never install anything
 * (`KITE_TEST_INSTALL=0`).
 */
import { missingLine, REQUIREMENTS } from "../scripts/setup_test_env.ts";
import { testEnv } from "../scripts/test.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { runCommand } from "./helpers/processes.ts";

const SCRIPT = new URL("../scripts/setup_test_env.ts", import.meta.url);

function runSetup(
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const permissions = ["--allow-read", "--allow-env", "--allow-run"];
  return runCommand(
    Deno.execPath(),
    ["run", "--quiet", ...permissions, "--allow-sys=uid", SCRIPT.href],
    {
      cwd: new URL("../", import.meta.url).pathname,
      env: { NO_COLOR: "1", KITE_TEST_INSTALL: "0", ...env },
    },
  );
}

Deno.test("set-up: on this machine everything is there, and it says nothing", async () => {
  const run = await runSetup({});
  assertEquals(run, { code: 0, stdout: "", stderr: "" });
});

Deno.test("set-up: with the programs off PATH it stops with one line naming the packages", async () => {
  const bin = await Deno.makeTempDir({ prefix: "kite-setup-" });
  try {
    // Only Deno itself on PATH: everything found through PATH is missing.
    await Deno.symlink(Deno.execPath(), `${bin}/deno`);
    const run = await runSetup({ PATH: bin });
    assertEquals(run.code, 1);
    assertEquals(run.stdout, "");
    const lines = run.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, run.stderr);
    for (const pkg of ["etcd-server", "chromium", "prometheus", "nodejs"]) {
      assert(lines[0].includes(pkg), lines[0]);
    }
    assert(lines[0].includes("apt-get install -y "), lines[0]);
  } finally {
    await Deno.remove(bin, { recursive: true });
  }
});

Deno.test("set-up: the line says sudo, or that root gets it installed", () => {
  const missing = REQUIREMENTS.filter((r) => r.what === "etcd");
  assertEquals(
    missingLine(missing, false),
    "deno task test: missing etcd; install with `sudo apt-get install -y etcd-server` (as root, `deno task test` installs them itself)",
  );
  assertEquals(
    missingLine(missing, true),
    "deno task test: missing etcd; install with `apt-get install -y etcd-server`",
  );
});

Deno.test("deno task test: the tests see none of the user's KITE_*/KONTROL_* and their own KITE_HOME", () => {
  const env = testEnv({
    PATH: "/usr/bin",
    HOME: "/home/alice",
    KITE_HOME: "/home/alice/.kite",
    KITE_KONTROL_URL: "http://kontrol.example/kite",
    KONTROL_STORAGE: "postgres",
    KITE_TEST_OUTAGE_MS: "10000",
  }, "/tmp/kite-test-home-1");
  assertEquals(env, {
    PATH: "/usr/bin",
    HOME: "/home/alice",
    KITE_HOME: "/tmp/kite-test-home-1",
    KITE_TEST_OUTAGE_MS: "10000",
  });
});
