/**
 * Runs a `deno` command as a user would, with exactly the environment
 * given (plus PATH and the module cache), and returns what it printed.
 * A child that does not exit within the bound is killed and the run fails.
 *
 * @module
 */
import { childEnv, ROOT, START_MS } from "./kontrol_task.ts";

/** What a finished child printed. */
export interface RunResult {
  /** Exit code. */
  code: number;
  /** Everything on stdout. */
  stdout: string;
  /** Everything on stderr. */
  stderr: string;
}

/**
 * Runs `deno <args>` in the repository with `env` (and nothing else of the
 * test's environment but PATH, HOME and the Deno cache; pass `HOME: ""` to
 * drop HOME). Killed after `ms`.
 */
export async function runDeno(
  args: string[],
  env: Record<string, string> = {},
  ms = START_MS * 2,
): Promise<RunResult> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    clearEnv: true,
    env: Object.fromEntries(
      Object.entries(childEnv(env)).filter(([, v]) => v !== ""),
    ),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  const out = await child.output();
  clearTimeout(timer);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}
