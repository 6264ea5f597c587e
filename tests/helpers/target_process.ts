/**
 * A kite or Kontrol to attack, in a process of its own
 * (`tests/fixtures/attack_target.ts`): a crash is a dead process, memory
 * is its own RSS, and a descriptor limit can be set for it alone.
 *
 * @module
 */
import type { KiteConfig } from "../../kite/config.ts";
import { lines } from "./processes.ts";
import { within } from "./wait.ts";

const FIXTURE = new URL("../fixtures/attack_target.ts", import.meta.url)
  .pathname;
/** A child Deno process needs more than the in-process guard to start. */
const START_MS = 30_000;

/** Options for {@linkcode startTarget}. */
export interface TargetOptions {
  /** Kite config of the target (Kontrol: of its kite). */
  config?: Partial<KiteConfig>;
  /** Soft and hard open-file limit of the target (`ulimit -n`). */
  fdLimit?: number;
}

/** A running target. */
export interface Target {
  /** Its pid (the `deno` process itself: `sh` execs it). */
  pid: number;
  /** `http://127.0.0.1:<port>/kite`. */
  url: string;
  /** `http://127.0.0.1:<port>`. */
  base: string;
  /** The bound port. */
  port: number;
  /** Kontrol only: a kite.key for user `alice` it signed. */
  kiteKey?: string;
  /** The routes mounted besides `/kite` (`Kite.httpPaths`). */
  httpPaths: string[];
  /** True while the process has not exited. */
  alive(): boolean;
  /** Its resident memory now, bytes (from /proc). */
  rss(): number;
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** SIGKILL (by pid) if still running, then wait for it and its pipes. */
  stop(): Promise<void>;
}

/** Starts the attack target and waits for its ready line. */
export async function startTarget(
  mode: "kite" | "kontrol",
  options: TargetOptions = {},
): Promise<Target> {
  const deno = [
    Deno.execPath(),
    "run",
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-env",
    "--allow-sys",
    "--v8-flags=--expose-gc",
    FIXTURE,
    mode,
    JSON.stringify(options.config ?? {}),
  ];
  const quoted = deno.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const limit = options.fdLimit ? `ulimit -n ${options.fdLimit} && ` : "";
  const child = new Deno.Command("sh", {
    args: ["-c", `${limit}exec ${quoted}`],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  let errText = "";
  const errDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (chunk) => void (errText += chunk) }),
  );
  const out = lines(child.stdout);
  const stop = async () => {
    if (!exited) {
      try {
        Deno.kill(child.pid, "SIGKILL");
      } catch {
        // exited meanwhile
      }
    }
    await status;
    // Drain what is left of stdout so the pipe closes.
    for await (const _ of out) { /* discard */ }
    await errDone;
  };
  let ready: { port: number; kiteKey?: string; httpPaths: string[] };
  try {
    const first = await within(
      out.next(),
      `the ${mode} target to start`,
      START_MS,
    );
    if (first.done) throw new Error(`the ${mode} target exited: ${errText}`);
    ready = JSON.parse(first.value);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${errText}`);
  }
  const base = `http://127.0.0.1:${ready.port}`;
  return {
    pid: child.pid,
    port: ready.port,
    base,
    url: `${base}/kite`,
    kiteKey: ready.kiteKey,
    httpPaths: ready.httpPaths,
    alive: () => !exited,
    rss: () => rssOf(child.pid),
    stderr: () => errText,
    stop,
  };
}

/** Resident memory of `pid` in bytes, 0 once it has gone. */
export function rssOf(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Bytes as MiB with one decimal, for messages. */
export function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
