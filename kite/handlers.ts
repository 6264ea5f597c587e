/**
 * The methods every kite serves (docs/protocol.md §5).
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import { readEnv } from "./config.ts";
import { KiteError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { Handler, Method } from "./method.ts";
import { addHeartbeatHandler } from "./heartbeat.ts";
import { DEFAULT_OUTPUT_QUEUE_BYTES, OutputQueue } from "./output_queue.ts";

/** Shape of `kite.systemInfo` (Go keys, docs/protocol.md §5). */
export interface SystemInfo {
  /** Always `RUNNING`. */
  state: string;
  /** Disk used, KiB (0: Deno has no portable statfs). */
  diskUsage: number;
  /** Disk size, KiB (0, see above). */
  diskTotal: number;
  /** Memory in use on the host, bytes. */
  memoryUsage: number;
  /** Host memory, bytes. */
  totalMemoryLimit: number;
  /** Home directory of the user running the kite. */
  homeDir: string;
  /** Operating system. */
  uname: string;
}

/** Collects `kite.systemInfo`; values Deno may not read (no `--allow-sys`) are 0. */
export function systemInfo(): SystemInfo {
  let total = 0;
  let used = 0;
  try {
    const m = Deno.systemMemoryInfo();
    total = m.total;
    used = m.total - m.available;
  } catch {
    used = Deno.memoryUsage().rss;
  }
  return {
    state: "RUNNING",
    diskUsage: 0,
    diskTotal: 0,
    memoryUsage: used,
    totalMemoryLimit: total,
    homeDir: readEnv("HOME") ?? "",
    uname: Deno.build.os,
  };
}

/** The part of a kite the default handlers use (a `Kite` is one). */
export interface HandlerHost {
  /** Registers a method. */
  handle(name: string, handler: Handler): Method;
  /** Time source for heartbeats. */
  readonly clock: Clock;
  /** Where `kite.log` writes. */
  readonly logger: Logger;
}

/** Registers `kite.ping`, `kite.systemInfo`, `kite.heartbeat`, `kite.log`, `kite.print`, `kite.echo`, `kite.prompt`, `kite.getPass`. */
export function addDefaultHandlers(kite: HandlerHost): void {
  kite.handle("kite.ping", () => "pong").disableAuthentication();
  kite.handle("kite.systemInfo", () => systemInfo());
  addHeartbeatHandler(kite);
  kite.handle("kite.log", (r) => {
    kite.logger.info(`${r.remoteKite.name}: ${r.args.one().string()}`);
    return null;
  });
  kite.handle("kite.print", (r) => {
    const bytes = new TextEncoder().encode(r.args.one().string() + "\n");
    const out = stdout ??= new OutputQueue(Deno.stdout);
    if (!out.push(bytes)) {
      const { writes } = out.dropped;
      throw new KiteError(
        "genericError",
        out.failure !== undefined
          ? `stdout of this kite failed: ${out.failure}`
          : `stdout of this kite is not being read: ${out.queuedBytes} bytes wait (limit ${DEFAULT_OUTPUT_QUEUE_BYTES}); ${writes} prints dropped`,
      );
    }
    return bytes.length;
  });
  kite.handle("kite.echo", (r) => r.args.one().raw);
  kite.handle("kite.prompt", (r) => readLine(r.args.one().string(), true));
  kite.handle("kite.getPass", (r) => readLine(r.args.one().string(), false));
}

/**
 * Output of `kite.print`, one queue per process (there is one stdout):
 * written asynchronously, so a pipe nobody reads cannot freeze the kite.
 */
let stdout: OutputQueue | undefined;

/** True while a `kite.prompt`/`kite.getPass` waits for the terminal. */
let prompting = false;

/**
 * Reads one line from the terminal; refuses when stdin is not a terminal
 * or another prompt is open. Reads asynchronously: the synchronous
 * `prompt()`/`readSync` would freeze the whole kite until someone types,
 * which any caller allowed to use these methods could trigger.
 */
async function readLine(question: string, echo: boolean): Promise<string> {
  if (!Deno.stdin.isTerminal()) {
    throw new KiteError(
      "genericError",
      "this kite has no terminal to prompt on",
    );
  }
  if (prompting) {
    throw new KiteError(
      "genericError",
      "another prompt is waiting for an answer",
    );
  }
  prompting = true;
  const encoder = new TextEncoder();
  try {
    await Deno.stdout.write(encoder.encode(question + " "));
    if (!echo) Deno.stdin.setRaw(true);
    const buf = new Uint8Array(1);
    const bytes: number[] = [];
    while (
      (await Deno.stdin.read(buf)) === 1 && buf[0] !== 13 && buf[0] !== 10
    ) {
      bytes.push(buf[0]);
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  } finally {
    if (!echo) {
      Deno.stdin.setRaw(false);
      await Deno.stdout.write(encoder.encode("\n"));
    }
    prompting = false;
  }
}
