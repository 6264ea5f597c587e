/**
 * Runs the README's `deno task demo` in a checkout and checks what it
 * prints: Kontrol up, the math kite registered, found, called, watched.
 *
 * @module
 */
import { assert } from "./assert.ts";
import { runCommand } from "./processes.ts";
import { freePort } from "./wait.ts";

/** Runs `deno task demo` in `root` with `env` added; fails with its output. */
export async function assertDemoRuns(
  root: string,
  env: Record<string, string> = {},
  clearEnv = false,
): Promise<void> {
  const { code, stdout: out, stderr } = await runCommand("deno", [
    "task",
    "--quiet",
    "demo",
  ], {
    cwd: root,
    env: { ...env, KONTROL_PORT: String(freePort()) },
    clearEnv,
  });
  const why = `exit ${code}\n${out}\n${stderr}`;
  assert(code === 0, why);
  assert(/wrote .*kite\.key for user demo/.test(out), why);
  assert(
    /\[example:watch\] REGISTER +\/demo\/demo\/math\/1\.0\.0\//.test(out),
    why,
  );
  assert(out.includes("square(7) = 49"), why);
  assert(/\[example:watch\] DEREGISTER +\/demo\/demo\/math\//.test(out), why);
}
