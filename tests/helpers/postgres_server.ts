/**
 * Starts a throwaway PostgreSQL cluster (`initdb` + `postgres`) on a free
 * 127.0.0.1 port for integration tests.
 *
 * PostgreSQL refuses to run as root, so when the tests run as root the
 * cluster directory is owned by, and the server runs as, the `postgres`
 * user. The superuser `postgres` logs in over TCP with a random password
 * (SCRAM), so the password path of the client is exercised too.
 *
 * @example
 * ```ts
 * const pg = await startPostgres();
 * try {
 *   // new PostgresStorage({ ...pg.connection })
 *   await pg.stop(); // outage
 *   await pg.start(); // back, same data
 * } finally {
 *   await pg.close();
 * }
 * ```
 *
 * @module
 */
import {
  findBinary,
  freePort,
  ManagedProcess,
  postgresBinDirs,
  waitUntil,
} from "./binaries.ts";

/** How to connect to a test server. */
export interface PostgresConnectionSettings {
  /** Always `127.0.0.1`. */
  host: string;
  /** TCP port. */
  port: number;
  /** Superuser name (`postgres`). */
  username: string;
  /** Its password. */
  password?: string;
  /** Database name (`postgres`). */
  database: string;
}

/** A running (or deliberately stopped) PostgreSQL test server. */
export interface PostgresServer extends PostgresConnectionSettings {
  /** The settings alone, to spread into adapter options. */
  readonly connection: PostgresConnectionSettings;
  /** The temp directory holding the cluster (removed by `close`). */
  readonly dir: string;
  /** True between a successful start and the next stop. */
  readonly running: boolean;
  /**
   * Stops the server by PID, keeping the data, to simulate an outage:
   * `fast` (SIGINT) shuts down cleanly; `immediate` (SIGQUIT) is a crash,
   * after which PostgreSQL recovers and empties UNLOGGED tables.
   */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** Stops the server and removes the directory. */
  close(): Promise<void>;
  /** Same as `close`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for {@linkcode startPostgres}. */
export interface StartPostgresOptions {
  /** Directory with `initdb` and `postgres`. @default {PATH, then /usr/lib/postgresql/<newest>/bin} */
  binDir?: string;
  /** Time allowed to accept connections. @default {30_000} */
  readyTimeoutMs?: number;
}

const DEFAULT_READY_TIMEOUT_MS = 30_000;
const START_ATTEMPTS = 3;

interface RunAs {
  uid?: number;
  gid?: number;
}

async function postgresUser(): Promise<RunAs> {
  if (Deno.uid() !== 0) return {};
  const passwd = await Deno.readTextFile("/etc/passwd");
  for (const line of passwd.split("\n")) {
    const [name, , uid, gid] = line.split(":");
    if (name === "postgres") return { uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(
    "running as root but there is no `postgres` user to run PostgreSQL as",
  );
}

async function run(binary: string, args: string[], as: RunAs): Promise<void> {
  const out = await new Deno.Command(binary, {
    args,
    ...as,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) +
      new TextDecoder().decode(out.stdout);
    throw new Error(`${binary} failed (${out.code}):\n${text}`);
  }
}

/** True once postmaster.pid says the server accepts connections. */
async function ready(dataDir: string, port: number): Promise<boolean> {
  const pidFile = await Deno.readTextFile(`${dataDir}/postmaster.pid`);
  // Line 8 of postmaster.pid is the server status, "ready" when accepting.
  if (pidFile.split("\n")[7]?.trim() !== "ready") return false;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.close();
  return true;
}

class PostgresTestServer implements PostgresServer {
  readonly host = "127.0.0.1";
  readonly username = "postgres";
  readonly database = "postgres";
  readonly password: string;
  readonly dir: string;
  port = 0;
  readonly #postgres: string;
  readonly #as: RunAs;
  readonly #readyTimeoutMs: number;
  #process: ManagedProcess | undefined;
  #initialized = false;

  constructor(
    postgres: string,
    dir: string,
    as: RunAs,
    password: string,
    readyTimeoutMs: number,
  ) {
    this.#postgres = postgres;
    this.dir = dir;
    this.#as = as;
    this.password = password;
    this.#readyTimeoutMs = readyTimeoutMs;
  }

  get connection(): PostgresConnectionSettings {
    return {
      host: this.host,
      port: this.port,
      username: this.username,
      password: this.password,
      database: this.database,
    };
  }

  get running(): boolean {
    return this.#process !== undefined && !this.#process.exited;
  }

  async start(): Promise<void> {
    if (this.running) throw new Error("postgres is already running");
    const attempts = this.#initialized ? 1 : START_ATTEMPTS;
    for (let attempt = 1;; attempt++) {
      if (!this.#initialized) this.port = freePort();
      const process = new ManagedProcess(this.#postgres, {
        ...this.#as,
        cwd: this.dir,
        args: [
          "-D",
          `${this.dir}/data`,
          "-p",
          String(this.port),
          "-k",
          this.dir,
          "-c",
          "listen_addresses=127.0.0.1",
          // Throwaway data: trade durability for speed on a shared machine.
          "-c",
          "fsync=off",
          "-c",
          "synchronous_commit=off",
          "-c",
          "full_page_writes=off",
          "-c",
          "shared_buffers=16MB",
          "-c",
          "max_connections=60",
        ],
      });
      this.#process = process;
      try {
        await waitUntil(
          `postgres on port ${this.port}`,
          () => ready(`${this.dir}/data`, this.port),
          process,
          this.#readyTimeoutMs,
        );
        this.#initialized = true;
        return;
      } catch (err) {
        await process.stop("SIGQUIT");
        this.#process = undefined;
        if (attempt >= attempts) throw err;
      }
    }
  }

  async stop(mode: "fast" | "immediate" = "fast"): Promise<void> {
    const process = this.#process;
    this.#process = undefined;
    // SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients rather
    // than waiting for them as SIGTERM ("smart") does.
    if (process) await process.stop(mode === "fast" ? "SIGINT" : "SIGQUIT");
  }

  async close(): Promise<void> {
    try {
      await this.stop();
    } finally {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function binary(name: string, binDir: string | undefined): string | undefined {
  if (binDir) return findBinary(name, { extraDirs: [binDir] });
  return findBinary(name, { extraDirs: postgresBinDirs() });
}

/**
 * Runs `initdb` in a new temp directory and starts `postgres` on a free
 * 127.0.0.1 port, waiting until it accepts connections.
 * @throws {Error} when PostgreSQL is not installed or does not start.
 */
export async function startPostgres(
  options: StartPostgresOptions = {},
): Promise<PostgresServer> {
  const initdb = binary("initdb", options.binDir);
  const postgres = binary("postgres", options.binDir);
  if (!initdb || !postgres) {
    throw new Error(
      "PostgreSQL (initdb, postgres) not found on PATH or in /usr/lib/postgresql: " +
        "install it with `apt-get install postgresql`",
    );
  }
  const as = await postgresUser();
  const dir = await Deno.makeTempDir({ prefix: "kite-postgres-" });
  const password = crypto.randomUUID();
  const server = new PostgresTestServer(
    postgres,
    dir,
    as,
    password,
    options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
  );
  try {
    const pwfile = `${dir}/pwfile`;
    await Deno.writeTextFile(pwfile, password + "\n");
    if (as.uid !== undefined) {
      await Deno.chown(dir, as.uid, as.gid ?? null);
      await Deno.chown(pwfile, as.uid, as.gid ?? null);
    }
    await run(initdb, [
      "-D",
      `${dir}/data`,
      "-U",
      "postgres",
      `--pwfile=${pwfile}`,
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
      "--encoding=UTF8",
      "--no-locale",
      "--no-sync",
    ], as);
    await Deno.remove(pwfile);
    await server.start();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}
