/**
 * Starts a throwaway single-member etcd (`/usr/bin/etcd` or whatever `etcd`
 * is on `PATH`) on 127.0.0.1 for integration tests.
 *
 * @example
 * ```ts
 * const etcd = await startEtcd();
 * try {
 *   // new EtcdStorage({ endpoints: etcd.endpoints })
 *   await etcd.stop(); // outage
 *   await etcd.start(); // back, same data
 * } finally {
 *   await etcd.close();
 * }
 * ```
 *
 * @module
 */
import { findBinary, freePort, ManagedProcess, waitUntil } from "./binaries.ts";

/** A running (or deliberately stopped) etcd test server. */
export interface EtcdServer {
  /** Client URLs, e.g. `["http://127.0.0.1:40123"]`. */
  readonly endpoints: string[];
  /** The data directory (a temp dir, removed by `close`). */
  readonly dataDir: string;
  /** True between a successful start and the next stop. */
  readonly running: boolean;
  /**
   * Stops the process (by PID), keeping its data, to simulate an outage.
   * `SIGKILL` (the default) is a crash. `SIGTERM` is a graceful shutdown in
   * which etcd sends HTTP/2 GOAWAY to its clients — under Deno 2.9.6 that
   * can abort the whole test process, so use it only on purpose.
   */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Starts it again on the same ports and data directory. */
  start(): Promise<void>;
  /** Stops the process and removes the data directory. */
  close(): Promise<void>;
  /** Same as `close`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for {@linkcode startEtcd}. */
export interface StartEtcdOptions {
  /** The etcd binary. @default {the `etcd` found on PATH} */
  binary?: string;
  /** Time allowed to become healthy. @default {30_000} */
  readyTimeoutMs?: number;
}

const DEFAULT_READY_TIMEOUT_MS = 30_000;
const START_ATTEMPTS = 3;

async function healthy(clientUrl: string): Promise<boolean> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 2000);
  try {
    const res = await fetch(`${clientUrl}/health`, { signal: ac.signal });
    const body = await res.text();
    return res.ok && JSON.parse(body).health === "true";
  } finally {
    clearTimeout(timer);
  }
}

class EtcdTestServer implements EtcdServer {
  readonly dataDir: string;
  readonly #binary: string;
  readonly #readyTimeoutMs: number;
  #clientPort = 0;
  #peerPort = 0;
  #process: ManagedProcess | undefined;
  #initialized = false;

  constructor(binary: string, dataDir: string, readyTimeoutMs: number) {
    this.#binary = binary;
    this.dataDir = dataDir;
    this.#readyTimeoutMs = readyTimeoutMs;
  }

  get endpoints(): string[] {
    return [`http://127.0.0.1:${this.#clientPort}`];
  }

  get running(): boolean {
    return this.#process !== undefined && !this.#process.exited;
  }

  #args(): string[] {
    const client = `http://127.0.0.1:${this.#clientPort}`;
    const peer = `http://127.0.0.1:${this.#peerPort}`;
    return [
      "--name=kite-test",
      `--data-dir=${this.dataDir}/data`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=kite-test=${peer}`,
      "--initial-cluster-state=new",
      "--initial-cluster-token=kite-test",
      "--logger=zap",
      "--log-level=error",
    ];
  }

  async start(): Promise<void> {
    if (this.running) throw new Error("etcd is already running");
    // The first start may race another process for the ports; later starts
    // must reuse them, since the member's peer URL is in the data directory.
    const attempts = this.#initialized ? 1 : START_ATTEMPTS;
    for (let attempt = 1;; attempt++) {
      if (!this.#initialized) {
        this.#clientPort = freePort();
        this.#peerPort = freePort();
      }
      const process = new ManagedProcess(this.#binary, { args: this.#args() });
      this.#process = process;
      try {
        await waitUntil(
          `etcd on ${this.endpoints[0]}`,
          () => healthy(this.endpoints[0]),
          process,
          this.#readyTimeoutMs,
        );
        this.#initialized = true;
        return;
      } catch (err) {
        await process.stop("SIGKILL");
        this.#process = undefined;
        if (attempt >= attempts) throw err;
        await Deno.remove(`${this.dataDir}/data`, { recursive: true })
          .catch(() => {});
      }
    }
  }

  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGKILL"): Promise<void> {
    const process = this.#process;
    this.#process = undefined;
    if (process) await process.stop(signal);
  }

  async close(): Promise<void> {
    try {
      await this.stop();
    } finally {
      await Deno.remove(this.dataDir, { recursive: true }).catch(() => {});
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts etcd on free 127.0.0.1 ports in a new temp directory and waits
 * until `/health` reports healthy.
 * @throws {Error} when etcd is not installed or does not become healthy.
 */
export async function startEtcd(
  options: StartEtcdOptions = {},
): Promise<EtcdServer> {
  const binary = options.binary ?? findBinary("etcd");
  if (!binary) {
    throw new Error(
      "etcd not found on PATH: install it with `apt-get install etcd-server`",
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "kite-etcd-" });
  const server = new EtcdTestServer(
    binary,
    dir,
    options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
  );
  try {
    await server.start();
  } catch (err) {
    await server.close();
    throw err;
  }
  return server;
}
