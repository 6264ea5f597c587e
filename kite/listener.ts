/**
 * The kite's HTTP listener: `Deno.serve`, kept alive. When accepting a
 * connection fails (most often EMFILE: the process ran out of file
 * descriptors), `Deno.serve` stops accepting for good and rejects its
 * `finished` promise. The listener logs that, waits (longer each time it
 * happens again soon), and listens again on the same port; connections
 * already open (upgraded WebSockets, keep-alive HTTP) go on being served
 * by the stopped server.
 *
 * @module
 */
import type { Logger } from "./log.ts";

/** Options for {@linkcode Listener.start}. */
export interface ListenerOptions {
  /** Port; 0 picks a free one (kept for every restart). */
  port: number;
  /** Address to listen on. */
  hostname: string;
  /** Set SO_REUSEPORT (several processes on one port). @default {false} */
  reusePort?: boolean;
  /** Answers each request. */
  handler: Deno.ServeHandler<Deno.NetAddr>;
  /** Where accept failures are reported. */
  logger: Logger;
  /** Called when a handler throws; answers the request. */
  onError(error: unknown): Response;
  /** Serve HTTPS/WSS with this PEM certificate and key. @default {plain HTTP} */
  tls?: { cert: string; key: string };
  /** First wait before listening again, ms. @default {100} */
  retryMs?: number;
  /** Longest wait before listening again, ms. @default {5000} */
  maxRetryMs?: number;
}

/**
 * Stopped servers kept so that their open connections go on; past this
 * many the oldest is shut down (its remaining connections close).
 */
const MAX_STOPPED = 32;
/** A failure this long after the previous restart starts the backoff over. */
const CALM_MS = 30_000;

/** A `Deno.serve` listener that survives accept errors. */
export class Listener {
  readonly #options: ListenerOptions;
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;
  readonly #stopped: Deno.HttpServer<Deno.NetAddr>[] = [];
  #port: number;
  #closing = false;
  #retryMs: number;
  #restartedAt = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Accept failures survived so far. */
  #failures = 0;
  readonly #finished: Promise<void>;
  #resolveFinished!: () => void;

  private constructor(options: ListenerOptions) {
    this.#options = options;
    this.#port = options.port;
    this.#retryMs = options.retryMs ?? 100;
    this.#finished = new Promise((resolve) => this.#resolveFinished = resolve);
  }

  /**
   * Listens; resolves with the bound port once listening.
   * @throws when the first listen fails (port taken, no permission).
   */
  static async start(options: ListenerOptions): Promise<Listener> {
    prepareSignals();
    const listener = new Listener(options);
    await new Promise<void>((resolve) => listener.#listen(resolve));
    return listener;
  }

  /** The bound port. */
  get port(): number {
    return this.#port;
  }

  /** Accept failures survived so far (each one a restart). */
  get failures(): number {
    return this.#failures;
  }

  /** Resolves once {@linkcode Listener.close} has run. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /** Stops listening and closes every connection, stopped servers' too. */
  async close(): Promise<void> {
    if (this.#closing) return await this.#finished;
    this.#closing = true;
    clearTimeout(this.#retryTimer);
    const servers = [...this.#stopped.splice(0)];
    if (this.#server) servers.push(this.#server);
    this.#server = undefined;
    await Promise.all(servers.map((s) => s.shutdown().catch(() => {})));
    this.#resolveFinished();
  }

  /** Listens once; `first` (set only for the first listen) gets the result. */
  #listen(first?: (value: void) => void): void {
    const o = this.#options;
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        port: this.#port,
        hostname: o.hostname,
        reusePort: o.reusePort,
        ...o.tls,
        onListen: (addr) => {
          this.#port = addr.port;
        },
        onError: o.onError,
      }, o.handler);
    } catch (error) {
      if (first) throw error;
      this.#failed(error);
      return;
    }
    this.#server = server;
    this.#port = server.addr.port;
    server.finished.then(
      () => {},
      (error) => {
        if (this.#server === server) this.#server = undefined;
        this.#keepStopped(server);
        if (!this.#closing) this.#failed(error);
      },
    );
    first?.();
  }

  #keepStopped(server: Deno.HttpServer<Deno.NetAddr>): void {
    this.#stopped.push(server);
    if (this.#stopped.length > MAX_STOPPED) {
      this.#stopped.shift()!.shutdown().catch(() => {});
    }
  }

  #failed(error: unknown): void {
    this.#failures++;
    const now = Date.now();
    if (now - this.#restartedAt > CALM_MS) {
      this.#retryMs = this.#options.retryMs ?? 100;
    }
    const wait = this.#retryMs;
    this.#retryMs = Math.min(wait * 2, this.#options.maxRetryMs ?? 5_000);
    this.#options.logger.error(
      `accepting connections on ${this.#options.hostname}:${this.#port} failed: ${
        describe(error)
      }; listening again in ${wait} ms`,
    );
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#closing) return;
      this.#restartedAt = Date.now();
      this.#listen();
    }, wait);
  }
}

let signalsPrepared = false;

/**
 * Deno sets up its signal handling (a socket pair) the first time anything
 * listens for a signal, and it listens for one itself shortly after the
 * main module has run. If an attack has used up the descriptors by then,
 * Deno panics and the process ends. Listening once, before serving, sets
 * it up while descriptors are free; Ctrl-C still ends the process, since
 * no listener is left.
 */
function prepareSignals(): void {
  if (signalsPrepared || Deno.build.os === "windows") return;
  signalsPrepared = true;
  const nothing = () => {};
  try {
    Deno.addSignalListener("SIGINT", nothing);
    Deno.removeSignalListener("SIGINT", nothing);
  } catch {
    // No signals in this runtime (a worker without them): nothing to set up.
  }
}

/** The error, with advice when it is the descriptor limit. */
function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  if (!/Too many open files|EMFILE|os error 24/i.test(text)) return text;
  // The limit itself is in /proc/self/limits, which Deno lets only
  // --allow-all programs read.
  return `${text} — the process holds as many file descriptors as it may; ` +
    `raise the limit (ulimit -n, LimitNOFILE=) or lower maxConnections. ` +
    `Deno.serve has no header-read timeout: connections that never finish ` +
    `their request headers hold a descriptor until their peer closes them`;
}
