/**
 * Capacity benchmarks: memory per idle connection to one kite, the time
 * `deno task kontrol` takes from start to accepting connections, and
 * Kontrol's memory per live kite registered over the wire. Every figure is
 * taken from a separate process (`/proc`, or the server's own
 * `Deno.memoryUsage()` after a full GC).
 *
 * @module
 */
import { generateKeyPair } from "../../kite/auth/keys.ts";
import { signKiteKey } from "../../kontrol/tokens.ts";
import { descendants, lines } from "../../tests/helpers/processes.ts";
import { freePort } from "../../tests/helpers/wait.ts";
import { denoCommand, rssOf, startServer } from "./process.ts";
import { median, round } from "./stats.ts";

const KIB = 1024;
const ROOT = new URL("../../", import.meta.url).pathname;

/** Memory of idle connections to one kite. */
export interface IdleResult {
  /** Connections asked for. */
  asked: number;
  /** Connections that opened and answered `kite.ping`. */
  open: number;
  /** The server's RSS growth per connection, KiB. */
  rssKiBPerConn: number;
  /** The server's V8 heap growth per connection, KiB. */
  heapKiBPerConn: number;
  /** The server's open-file limit (it bounds `open`). */
  fileLimit: number;
}

/** A client child process holding connections until told to stop. */
interface Holder {
  /** Its first stdout line. */
  report: Record<string, number>;
  /** Closes its stdin and waits for it to exit. */
  release(): Promise<void>;
}

async function hold(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Holder> {
  const { cmd, args: argv } = denoCommand([
    "run",
    "--quiet",
    "--allow-net=127.0.0.1",
    "--allow-env",
    "--allow-read",
    "--allow-sys",
    new URL(script, import.meta.url).pathname,
    ...args,
  ], true);
  const child = new Deno.Command(cmd, {
    args: argv,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = lines(child.stdout);
  const first = await out.next();
  if (first.done) throw new Error(`${script} exited early`);
  return {
    report: JSON.parse(first.value),
    async release() {
      await child.stdin.close();
      await child.status;
      for await (const _ of out) { /* drain */ }
    },
  };
}

function settle(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function fileLimitOf(pid: number): Promise<number> {
  const text = await Deno.readTextFile(`/proc/${pid}/limits`);
  const m = /^Max open files\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

/**
 * Opens `n` SockJS websocket sessions (each makes one `kite.ping`) to a
 * kite in another process and reports the kite's memory growth per
 * connection. The kite's open-file limit is raised to its hard limit; with
 * fewer files than `n` the figure is over the connections that opened.
 */
export async function benchIdleConnections(n: number): Promise<IdleResult> {
  const kite = await startServer("kite", {
    manyFiles: true,
    env: { BENCH_MAX_CONNECTIONS: String(n + 1000) },
  });
  try {
    const fileLimit = await fileLimitOf(kite.pid);
    // Warm-up: code paths compiled, pools allocated, before the baseline.
    const warm = await hold("./idle_clients.ts", ["200", String(kite.port)]);
    await warm.release();
    await settle(500);
    const before = await kite.memory();
    const clients = await hold("./idle_clients.ts", [
      String(n),
      String(kite.port),
    ]);
    await settle(1000);
    const after = await kite.memory();
    await clients.release();
    const open = clients.report.open;
    return {
      asked: n,
      open,
      rssKiBPerConn: round((after.rss - before.rss) / open / KIB, 1),
      heapKiBPerConn: round((after.heapUsed - before.heapUsed) / open / KIB, 1),
      fileLimit,
    };
  } finally {
    await kite.stop();
  }
}

/** A `deno task kontrol` process. */
interface KontrolProcess {
  url: string;
  /** ms from spawn to the first answered HTTP request. */
  readyMs: number;
  /** ms from spawn until Kontrol reports its signing pair (it may serve before). */
  signingMs(): Promise<number>;
  /** The Kontrol process itself (`kontrol/main.ts`, below the task and launcher). */
  kontrolPid(): Promise<number>;
  stop(): Promise<void>;
}

async function startKontrolTask(
  env: Record<string, string>,
): Promise<KontrolProcess> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}/kite`;
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "kontrol"],
    cwd: ROOT,
    env: {
      // Without it the Kontrol process (no permission to read HOME) stops
      // at start-up looking for a kite.key.
      KITE_HOME: env.KONTROL_DATA,
      KONTROL_IP: "127.0.0.1",
      KONTROL_PORT: String(port),
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const errText = new Response(child.stderr).text();
  // Resolves when the line is printed (NaN if it never is); reads on to EOF.
  const signed = Promise.withResolvers<number>();
  const stdout = (async () => {
    for await (const line of lines(child.stdout)) {
      if (line.startsWith("Kontrol signing with key pair")) {
        signed.resolve(performance.now() - started);
      }
    }
    signed.resolve(NaN);
  })();
  let exited = false;
  child.status.then(() => exited = true);
  let readyMs = NaN;
  const deadline = started + 30_000;
  while (performance.now() < deadline && !exited) {
    try {
      const res = await fetch(url);
      await res.body?.cancel();
      if (res.ok) {
        readyMs = performance.now() - started;
        break;
      }
    } catch {
      // Not listening yet.
    }
    await settle(2);
  }
  const stop = async () => {
    const tree = await descendants(child.pid);
    for (const pid of [child.pid, ...tree]) {
      try {
        Deno.kill(pid, "SIGTERM");
      } catch {
        // Already gone.
      }
    }
    await child.status;
    await errText;
    await stdout;
  };
  if (Number.isNaN(readyMs)) {
    await stop();
    throw new Error(`deno task kontrol did not start: ${await errText}`);
  }
  return {
    url,
    readyMs,
    signingMs: () => signed.promise,
    async kontrolPid() {
      for (const pid of await descendants(child.pid)) {
        const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
        if (cmdline.includes("kontrol/main.ts")) return pid;
      }
      throw new Error("kontrol/main.ts process not found");
    },
    stop,
  };
}

/** How fast `deno task kontrol` accepts connections. */
export interface KontrolReadyResult {
  /** Median ms with an empty data directory (key pair generated). */
  firstStartMs: number;
  /**
   * Median ms, on a first start, until the generated pair is stored and
   * signing (serving starts before: only minting kite keys waits for it).
   */
  firstSigningMs: number;
  /** Median ms with the data directory of an earlier run. */
  restartMs: number;
  runs: number;
}

/**
 * Spawns `deno task kontrol` on a fresh temp `KONTROL_DATA`, then again on
 * the same directory, polling its `/kite` URL until it answers.
 */
export async function benchKontrolReady(
  runs: number,
): Promise<KontrolReadyResult> {
  const first: number[] = [];
  const signing: number[] = [];
  const again: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = await Deno.makeTempDir({ prefix: "kite-bench-kontrol-" });
    try {
      for (const into of [first, again]) {
        const k = await startKontrolTask({ KONTROL_DATA: dir });
        into.push(k.readyMs);
        if (into === first) signing.push(await k.signingMs());
        await k.stop();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  return {
    firstStartMs: round(median(first)),
    firstSigningMs: round(median(signing)),
    restartMs: round(median(again)),
    runs,
  };
}

/** Kontrol's memory per live registered kite. */
export interface KontrolMemoryResult {
  storage: string;
  /** Kites registered (each on its own connection). */
  kites: number;
  /** Kontrol's RSS growth per registered kite, KiB. */
  rssKiBPerKite: number;
}

/**
 * Starts `deno task kontrol` with a key pair generated here, registers `n`
 * kites over the wire from another process and reports Kontrol's RSS growth
 * per kite while they stay connected.
 */
export async function benchKontrolMemory(
  n: number,
  storage: "kv" | "memory" = "kv",
): Promise<KontrolMemoryResult> {
  const dir = await Deno.makeTempDir({ prefix: "kite-bench-kontrol-" });
  try {
    const pair = await generateKeyPair();
    await Deno.writeTextFile(`${dir}/public.pem`, pair.public);
    await Deno.writeTextFile(`${dir}/private.pem`, pair.private);
    const kontrol = await startKontrolTask({
      KONTROL_DATA: dir,
      KONTROL_STORAGE: storage,
      KONTROL_PUBLICKEYFILE: `${dir}/public.pem`,
      KONTROL_PRIVATEKEYFILE: `${dir}/private.pem`,
      // Every kite registers from 127.0.0.1 as user bench.
      KONTROL_MAXCONNECTIONSPERADDRESS: String(n + 100),
      KONTROL_MAXKITESPERUSER: String(n + 100),
    });
    try {
      const kiteKey = await signKiteKey({
        username: "bench",
        kontrolUser: "kontrol",
        kontrolURL: kontrol.url,
        publicKeyPem: pair.public,
        privateKeyPem: pair.private,
      });
      const pid = await kontrol.kontrolPid();
      const env = { BENCH_KITE_KEY: kiteKey };
      const warm = await hold(
        "./register_clients.ts",
        ["50", kontrol.url],
        env,
      );
      await warm.release();
      await settle(1000);
      const before = await rssOf(pid);
      const clients = await hold(
        "./register_clients.ts",
        [String(n), kontrol.url],
        env,
      );
      await settle(1000);
      const after = await rssOf(pid);
      await clients.release();
      const registered = clients.report.registered;
      return {
        storage,
        kites: registered,
        rssKiBPerKite: round((after - before) / registered / KIB, 1),
      };
    } finally {
      await kontrol.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
