/**
 * Process-tree helpers on Linux `/proc`: `deno task` starts its command as
 * a child, so tests find `kontrol/main.ts` (and kill it by pid) this way.
 * Also the line reader for child processes' output.
 *
 * @module
 */

/** Parent pid of every process. */
export function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      // pid (comm) state ppid …; comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      out.set(Number(e.name), ppid);
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Every process below `pid`, children first. */
export function descendants(pid: number): number[] {
  const byParent = parents();
  const found: number[] = [];
  const walk = (p: number) => {
    for (const [child, parent] of byParent) {
      if (parent !== p) continue;
      found.push(child);
      walk(child);
    }
  };
  walk(pid);
  return found;
}

/** The command line of `pid`, or `[]` once it has gone. */
export function commandLine(pid: number): string[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(
      Boolean,
    );
  } catch {
    return [];
  }
}

/** Yields the lines of a child's output stream (the last one even without a newline). */
export async function* lines(
  stream: ReadableStream<Uint8Array>,
): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let nl: number;
    while ((nl = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, nl);
      rest = rest.slice(nl + 1);
    }
  }
  if (rest) yield rest;
}

/** Resident set size of `pid` in bytes, from /proc. */
export function residentBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** Options for {@linkcode runCommand}. */
export interface RunCommandOptions {
  /** Working directory. */
  cwd: string;
  /** Environment (added to ours unless `clearEnv`). */
  env?: Record<string, string>;
  /** Start from an empty environment. @default {false} */
  clearEnv?: boolean;
  /** Killed (SIGKILL) after this long. @default {90_000} */
  timeoutMs?: number;
}

/** Runs a command to its end (bounded); its exit code, stdout and stderr. */
export async function runCommand(
  cmd: string,
  args: string[],
  options: RunCommandOptions,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.clearEnv ?? false,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(
    () => child.kill("SIGKILL"),
    options.timeoutMs ?? 90_000,
  );
  try {
    const { code, stdout, stderr } = await child.output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code, stdout: text(stdout), stderr: text(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** The environment for a child run with `clearEnv`: Deno's cache and PATH, `NO_COLOR`, plus `extra`. */
export function childEnv(
  extra: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const v = Deno.env.get(name);
    if (v) env[name] = v;
  }
  return { ...env, ...extra };
}

/** A `deno` child whose stdout is read line by line. */
export interface DenoChild {
  child: Deno.ChildProcess;
  /** The groups of the first stdout line that matched. */
  ready: RegExpExecArray;
  /** Resolves once stdout has been read to its end (the child exited). */
  drained: Promise<void>;
}

/**
 * Runs `deno <args>` in `cwd` with only `env` (see {@linkcode childEnv}),
 * waits up to `ms` for a stdout line matching `ready`, then keeps
 * draining stdout so the child never blocks on a full pipe. A child that
 * exits or does not get ready in time is killed and reported.
 */
export async function spawnDeno(
  args: string[],
  env: Record<string, string>,
  options: { cwd?: string; ready: RegExp; what: string; ms?: number },
): Promise<DenoChild> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: options.cwd,
    env: childEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = lines(child.stdout);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const ready = await Promise.race([
      (async () => {
        for await (const line of out) {
          const m = options.ready.exec(line);
          if (m) return m;
        }
        throw new Error(`${options.what} exited before it was ready`);
      })(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${options.what} not ready in time`)),
          options.ms ?? 30_000,
        );
      }),
    ]);
    const drained = (async () => {
      for await (const _ of out) { /* nothing */ }
    })();
    return { child, ready, drained };
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* exited already */ }
    await child.status;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
