/**
 * Child processes for the benchmarks: Deno servers that print JSON lines,
 * their memory, and resident set sizes read from `/proc`.
 *
 * @module
 */
import { lines } from "../../tests/helpers/processes.ts";

/** A benchmark server running in its own process. */
export interface BenchServer {
  /** The port it listens on. */
  port: number;
  /** Its process id. */
  pid: number;
  /** Asks for a full GC and returns its memory figures (bytes). */
  memory(): Promise<{ rss: number; heapUsed: number; external: number }>;
  /** Stops it (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Options for {@linkcode startServer}. */
export interface StartServerOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Raise the open-file limit to the hard limit first (for many connections). */
  manyFiles?: boolean;
  /** A command to run `deno` under, with its arguments (e.g. valgrind's). */
  wrapper?: string[];
}

/**
 * The `deno` command line, run through `sh` when the open-file limit must be
 * raised first (`ulimit -n` cannot be changed from inside Deno).
 */
export function denoCommand(
  args: string[],
  manyFiles = false,
): { cmd: string; args: string[] } {
  if (!manyFiles) return { cmd: Deno.execPath(), args };
  return {
    cmd: "sh",
    args: [
      "-c",
      'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"',
      Deno.execPath(),
      ...args,
    ],
  };
}

/** Starts `servers.ts <mode>` and resolves once it listens. */
export async function startServer(
  mode: "raw" | "kite" | "proxy",
  options: StartServerOptions = {},
): Promise<BenchServer> {
  const { cmd, args } = denoCommand([
    "run",
    "--quiet",
    "--allow-net=127.0.0.1",
    "--allow-env",
    "--allow-read",
    "--allow-sys",
    "--v8-flags=--expose-gc",
    new URL("./servers.ts", import.meta.url).pathname,
    mode,
  ], options.manyFiles);
  const [wrapper, ...wrapperArgs] = options.wrapper ?? [];
  const child = new Deno.Command(wrapper ?? cmd, {
    args: wrapper === undefined ? args : [...wrapperArgs, cmd, ...args],
    env: options.env,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = lines(child.stdout);
  const stdin = child.stdin.getWriter();
  const next = async (): Promise<Record<string, number>> => {
    const { value, done } = await out.next();
    if (done) throw new Error(`${mode} server exited`);
    return JSON.parse(value);
  };
  const { port } = await next();
  let queue = Promise.resolve();
  return {
    port,
    pid: child.pid,
    memory() {
      const answer = queue.then(async () => {
        await stdin.write(new TextEncoder().encode("mem\n"));
        const m = await next();
        return { rss: m.rss, heapUsed: m.heapUsed, external: m.external };
      });
      queue = answer.then(() => {}, () => {});
      return answer;
    },
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await stdin.close().catch(() => {});
      await child.status;
      for await (const _ of out) { /* drain */ }
    },
  };
}

/**
 * Runs every thread of process `pid` on the CPUs `cpus` (taskset's list
 * syntax: `"1"`, `"0-3"`); false where taskset is missing or refuses.
 */
export async function pinProcess(pid: number, cpus: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("taskset", {
      args: ["--all-tasks", "--pid", "--cpu-list", cpus, String(pid)],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Resident set size of a process in bytes, from `/proc/<pid>/status`. */
export async function rssOf(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** CPU time a process has used so far (user + system, all threads), µs. */
export function cpuMicros(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime, in clock ticks of 10 ms (USER_HZ on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return undefined;
  }
}

/**
 * CPU time process `pid` has used so far, µs, with nanosecond resolution
 * (each thread's `schedstat` under `/proc/<pid>/task`): its main (JavaScript) thread and all
 * its threads; `undefined` without `/proc`.
 */
export function threadCpuMicros(
  pid: number,
): { main: number; all: number } | undefined {
  const read = (tid: string) =>
    Number(
      Deno.readTextFileSync(`/proc/${pid}/task/${tid}/schedstat`).split(" ")[0],
    ) / 1000;
  try {
    const main = read(String(pid));
    let all = 0;
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        all += read(task.name);
      } catch {
        // The thread ended between listing and reading.
      }
    }
    return { main, all };
  } catch {
    return undefined;
  }
}
