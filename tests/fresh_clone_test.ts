/**
 * The README's quick start on a fresh machine: the repository's committed
 * state (HEAD), cloned into an empty temporary directory with nothing
 * beside it, runs `deno task demo` and `deno task test` on a few files,
 * one of them reading the recorded Go kite traffic in tests/fixtures/.
 * Deno's and npm's caches are shared with this run, so nothing is
 * downloaded twice; the set-up step may not install anything.
 */
import { assert } from "./helpers/assert.ts";
import { assertDemoRuns } from "./helpers/demo.ts";
import { runCommand } from "./helpers/processes.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Fast test files, one using the vector fixtures, run in the clone. */
const SELECTION = [
  "tests/self_contained_test.ts",
  "tests/interop_go_vectors_test.ts",
  "kite/transport/sockjs_frames_test.ts",
];

/** PATH and the caches: what a user's shell would have, nothing more. */
function userEnv(): Record<string, string> {
  const env: Record<string, string> = {
    NO_COLOR: "1",
    KITE_TEST_INSTALL: "0",
  };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value) env[name] = value;
  }
  return env;
}

async function run(
  cmd: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; out: string }> {
  const { code, stdout, stderr } = await runCommand(cmd, args, {
    cwd,
    env: userEnv(),
    clearEnv: true,
    timeoutMs: 240_000,
  });
  return { code, out: stdout + stderr };
}

Deno.test("a fresh clone with nothing beside it runs the demo and its tests", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite-clone-" });
  try {
    const clone = `${dir}/kite`;
    const cloned = await run(
      "git",
      ["clone", "-q", "--no-local", ROOT, clone],
      dir,
    );
    assert(
      cloned.code === 0,
      `git clone of ${ROOT} failed (this test needs a git checkout):\n${cloned.out}`,
    );
    const beside = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert(beside.join() === "kite", `beside the clone: ${beside}`);

    await assertDemoRuns(clone, userEnv(), true);

    const tested = await run("deno", ["task", "test", ...SELECTION], clone);
    const why = `exit ${tested.code}\n${tested.out}`;
    assert(tested.code === 0, why);
    // Nothing ignored, nothing filtered: the summary has no more fields.
    const summary = tested.out.match(/^ok \| (\d+) passed \| 0 failed \(/m);
    assert(summary !== null && Number(summary[1]) > 10, why);
    for (const file of SELECTION) {
      assert(tested.out.includes(`./${file} => `), why); // it ran
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
