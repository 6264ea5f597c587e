/**
 * Finding and running the external servers integration tests depend on
 * (etcd, PostgreSQL).
 *
 * A missing binary fails the tests that need it, never skips them:
 * `deno task test` installs what is missing first, or stops with what to
 * install (scripts/setup_test_env.ts).
 *
 * @module
 */

/** Options for {@linkcode findBinary}. */
export interface FindBinaryOptions {
  /** Directories searched after `PATH`. @default {[]} */
  extraDirs?: string[];
}

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Looks `name` up on `PATH`, then in `extraDirs`; `undefined` if absent. */
export function findBinary(
  name: string,
  options: FindBinaryOptions = {},
): string | undefined {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d);
  for (const dir of [...dirs, ...(options.extraDirs ?? [])]) {
    const candidate = `${dir}/${name}`;
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** The `bin` directories of installed Debian PostgreSQL versions, newest first. */
export function postgresBinDirs(): string[] {
  const root = "/usr/lib/postgresql";
  const versions: number[] = [];
  try {
    for (const entry of Deno.readDirSync(root)) {
      const v = Number(entry.name);
      if (entry.isDirectory && Number.isFinite(v)) versions.push(v);
    }
  } catch {
    return [];
  }
  return versions.sort((a, b) => b - a).map((v) => `${root}/${v}/bin`);
}

export { freePort } from "./wait.ts";

/** Options for {@linkcode ManagedProcess}. */
export interface ManagedProcessOptions {
  /** Arguments. */
  args: string[];
  /** Run as this user id (root only). */
  uid?: number;
  /** Run as this group id (root only). */
  gid?: number;
  /** Working directory. */
  cwd?: string;
  /** Environment additions. */
  env?: Record<string, string>;
}

const STDERR_TAIL_BYTES = 8192;

/**
 * Runs the server as a child of a small shell that holds our end of a pipe
 * on its stdin. Each line we write names a signal to send to the server's
 * PID; end of input — also when the test process dies without cleaning up —
 * sends SIGTERM, so a crashed or killed test run leaves no server behind.
 * The shell exits with the server.
 */
const LIFELINE_SCRIPT = `
exec 3<&0
"$@" 3<&- </dev/null &
server=$!
(
  while read -r sig; do kill -s "$sig" "$server" 2>/dev/null; done
  kill -s TERM "$server" 2>/dev/null
) <&3 &
lifeline=$!
exec 3<&-
wait "$server"
status=$?
kill "$lifeline" 2>/dev/null
exit "$status"
`;

/**
 * A server process whose stderr tail is kept for error messages. Signals
 * go to its own PID only, and it is stopped when the test process exits,
 * even abnormally.
 */
export class ManagedProcess {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #reader: Promise<void>;
  #tail = "";
  #exited = false;
  readonly #status: Promise<Deno.CommandStatus>;

  /** Spawns `binary` with `options`. */
  constructor(binary: string, options: ManagedProcessOptions) {
    this.#child = new Deno.Command("/bin/sh", {
      args: ["-c", LIFELINE_SCRIPT, "sh", binary, ...options.args],
      uid: options.uid,
      gid: options.gid,
      cwd: options.cwd,
      env: options.env,
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#status = this.#child.status.then((s) => {
      this.#exited = true;
      return s;
    });
    // stderr only feeds error messages, so a read failure just ends the tail.
    this.#reader = this.#readStderr().catch(() => {});
  }

  async #readStderr(): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of this.#child.stderr) {
      this.#tail = (this.#tail + decoder.decode(chunk, { stream: true }))
        .slice(-STDERR_TAIL_BYTES);
    }
  }

  /** Sends `signal` to the server's PID (through the lifeline shell). */
  async signal(signal: Deno.Signal): Promise<void> {
    if (this.#exited) return;
    const line = signal.replace(/^SIG/, "") + "\n";
    // Fails only when the shell is gone, i.e. the server exited already.
    await this.#stdin.write(new TextEncoder().encode(line)).catch(() => {});
  }

  /** True once the server has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** The last few KiB the process wrote to stderr. */
  get stderrTail(): string {
    return this.#tail;
  }

  /**
   * Sends `signal` to the server and waits for it to exit; after `graceMs`
   * it is killed with SIGKILL.
   */
  async stop(
    signal: Deno.Signal = "SIGTERM",
    graceMs = 10_000,
  ): Promise<Deno.CommandStatus> {
    await this.signal(signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.signal("SIGKILL").then(resolve);
      }, graceMs);
    });
    try {
      const status = await Promise.race([
        this.#status,
        killed.then(() => this.#status),
      ]);
      await this.#stdin.close().catch(() => {});
      await this.#reader;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves with the exit status when the server exits by itself. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }
}

/**
 * Polls `check` every 100 ms until it returns true, failing after
 * `timeoutMs` or as soon as `process` exits.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  process: ManagedProcess,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (process.exited) {
      throw new Error(`${what}: process exited early\n${process.stderrTail}`);
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${what}: not ready after ${timeoutMs} ms\n${process.stderrTail}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A TCP server that accepts connections and never answers. */
export interface Blackhole {
  /** Its port on 127.0.0.1. */
  port: number;
  /** Closes the listener and every accepted connection. */
  close(): Promise<void>;
}

/**
 * Starts a {@linkcode Blackhole}: a stand-in for a hung server, to check
 * that clients time out instead of waiting forever.
 */
export function startBlackhole(): Blackhole {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const accepting = (async () => {
    try {
      for await (const conn of listener) conns.add(conn);
    } catch { /* listener closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* already closed by the peer */ }
      }
      await accepting;
    },
  };
}
