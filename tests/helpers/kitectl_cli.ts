/**
 * `deno task kitectl …` as a child process for tests: run it to completion,
 * or start it and read its output while it runs (`watch`).
 *
 * @module
 */
import { assertEquals } from "./assert.ts";
import { spawnTask, START_MS } from "./kontrol_task.ts";

/** What a finished kitectl printed, and its exit status. */
export interface KitectlRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** A running kitectl. */
export interface RunningKitectl {
  /** stdout and stderr so far. */
  output(): { stdout: string; stderr: string };
  /** Resolves when it exits (killed and failed after `START_MS`). */
  done(): Promise<KitectlRun>;
}

/** Starts `deno task kitectl …args` with only `env` (plus PATH, HOME, the Deno cache). */
export function startKitectl(
  args: string[],
  env: Record<string, string>,
): RunningKitectl {
  const run = spawnTask(args, env, "kitectl");
  const done = async (): Promise<KitectlRun> => {
    const status = await run.exited(START_MS);
    if (!status) {
      await run.kill();
      const out = run.output();
      throw new Error(
        `kitectl ${args.join(" ")} did not exit:\n${out.stdout}${out.stderr}`,
      );
    }
    return { code: status.code, ...run.output() };
  };
  return { output: run.output, done };
}

/** Runs `deno task kitectl …args` to completion. */
export function kitectl(
  args: string[],
  env: Record<string, string>,
): Promise<KitectlRun> {
  return startKitectl(args, env).done();
}

/** A line of stderr, no more: kitectl's errors are one line. */
export function oneLine(stderr: string): string {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, `expected one line, got:\n${stderr}`);
  return lines[0];
}
