/**
 * Child processes for the benchmarks: Deno servers that print JSON lines,
 * their memory, and resident set sizes read from `/proc`.
 *
 * @module
 */

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
}

/** Yields the lines of a text stream. */
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
  mode: "raw" | "kite",
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
  const child = new Deno.Command(cmd, {
    args,
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

/** Resident set size of a process in bytes, from `/proc/<pid>/status`. */
export async function rssOf(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

/** Every descendant of a process (children first), from `/proc`. */
export async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    for await (const t of Deno.readDir(`/proc/${pid}/task`)) tasks.push(t.name);
  } catch {
    tasks = [];
  }
  for (const t of tasks) {
    let text = "";
    try {
      text = await Deno.readTextFile(`/proc/${pid}/task/${t}/children`);
    } catch {
      continue;
    }
    for (const c of text.trim().split(/\s+/).filter(Boolean)) {
      const child = Number(c);
      out.push(child, ...await descendants(child));
    }
  }
  return out;
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}
