/**
 * `deno task test [deno test arguments]`: the set-up step
 * (scripts/setup_test_env.ts), then `deno test --allow-all --parallel` with
 * the given arguments.
 *
 * The tests get an environment of their own: no `KITE_*` or `KONTROL_*`
 * variable of the user's shell (`KITE_TEST_*` knobs excepted), and a
 * `KITE_HOME` in an empty temporary directory, so a kite.key in
 * `~/.kite` or a `KITE_KONTROL_URL` never reaches a test.
 *
 * @module
 */
import { setUpTestEnv } from "./setup_test_env.ts";

/** The environment the tests run in, from `env` and their `kiteHome`. */
export function testEnv(
  env: Record<string, string>,
  kiteHome: string,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    const kites = /^(KITE|KONTROL)_/.test(name) &&
      !name.startsWith("KITE_TEST_");
    if (!kites) out[name] = value;
  }
  out.KITE_HOME = kiteHome;
  return out;
}

async function main(args: string[]): Promise<number> {
  const setUp = await setUpTestEnv();
  if (setUp !== 0) return setUp;
  const kiteHome = await Deno.makeTempDir({ prefix: "kite-test-home-" });
  // Ctrl-C reaches deno test too; wait for it, then clean up.
  const ignore = () => {};
  Deno.addSignalListener("SIGINT", ignore);
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-all", "--parallel", ...args],
      env: testEnv(Deno.env.toObject(), kiteHome),
      clearEnv: true,
    }).spawn();
    return (await child.status).code;
  } finally {
    Deno.removeSignalListener("SIGINT", ignore);
    await Deno.remove(kiteHome, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
