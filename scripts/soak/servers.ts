/**
 * The servers the soak scenarios run against, behind one interface: in
 * this process (fast, for the CI versions) or in a child process (for the
 * full runs: its memory is its own, and a restart is a SIGKILL).
 *
 * @module
 */
import { Kite, type Logger } from "../../mod.ts";
import type { Client } from "../../kite/client.ts";
import { mathKite } from "../../examples/math/server.ts";
import { Kontrol } from "../../kontrol/kontrol.ts";
import { KvStorage } from "../../storage/kv.ts";
import { freePort } from "../../tests/helpers/wait.ts";
import { kiteStats, type ServerStats } from "./stats.ts";

/** A logger that drops everything (restarts make a lot of expected noise). */
/** Every soak client dials from 127.0.0.1: no per-address cap. */
const LOOPBACK_CLIENTS = { maxConnectionsPerAddress: 1_000_000 };

export const SILENT: Logger = {
  debug: () => {},
  info: () => {},
  warning: () => {},
  error: () => {},
};

/** A math kite under soak. */
export interface KiteServer {
  /** `http://127.0.0.1:<port>/kite`. */
  readonly url: string;
  /** Memory and bookkeeping; `gc` collects garbage first when possible. */
  stats(gc?: boolean): Promise<ServerStats>;
  /** Stops the server, waits `downMs`, and starts it again on the same port. */
  restart(downMs: number): Promise<void>;
  /** Stops it for good. */
  close(): Promise<void>;
}

/** A Kontrol on Deno KV under soak. */
export interface KontrolServer {
  /** `http://127.0.0.1:<port>/kite`. */
  readonly url: string;
  /** A kite.key for `username`, signed by this Kontrol. */
  kiteKey(username: string): Promise<string>;
  /** How many of `ids` this Kontrol process supervises now. */
  registered(ids: string[]): Promise<number>;
  /** Stops Kontrol, waits `downMs`, and starts it again (same KV file, same port). */
  restart(downMs: number): Promise<void>;
  /** Stops it for good and removes its data. */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------ in process

/** A math kite in this process. */
export async function kiteInProcess(): Promise<KiteServer> {
  const port = freePort();
  const start = async () => {
    const k = mathKite({
      env: false,
      kiteKey: false,
      logger: SILENT,
      config: { ip: "127.0.0.1", port, ...LOOPBACK_CLIENTS },
    });
    await k.serve({ hostname: "127.0.0.1", port });
    return k;
  };
  let kite: Kite | undefined = await start();
  return {
    url: `http://127.0.0.1:${port}/kite`,
    stats: (gc) => Promise.resolve(kiteStats(kite!, undefined, gc)),
    async restart(downMs) {
      await kite?.close();
      kite = undefined;
      await sleep(downMs);
      kite = await start();
    },
    async close() {
      await kite?.close();
      kite = undefined;
    },
  };
}

/** A Kontrol on a fresh KV file in this process. */
export async function kontrolInProcess(): Promise<KontrolServer> {
  const dir = await Deno.makeTempDir({ prefix: "soak_kontrol_" });
  const port = freePort();
  const url = `http://127.0.0.1:${port}/kite`;
  let pair: { id: string; public: string; private: string } | undefined;
  const start = async () => {
    const storage = await KvStorage.open(`${dir}/kontrol.kv`);
    const kontrol = new Kontrol({
      storage,
      kontrolURL: url,
      kiteConfig: {
        ip: "127.0.0.1",
        port,
        logLevel: "FATAL",
        ...LOOPBACK_CLIENTS,
      },
    });
    try {
      await kontrol.init(pair);
      pair ??= { ...kontrol.selfPair };
      await kontrol.kite.serve({ hostname: "127.0.0.1", port });
    } catch (err) {
      await kontrol.kite.close();
      await storage.close();
      throw err;
    }
    return kontrol;
  };
  let kontrol: Kontrol | undefined = await start();
  const stop = async () => {
    if (!kontrol) return;
    await kontrol.kite.close();
    await kontrol.storage.close();
    kontrol = undefined;
  };
  return {
    url,
    kiteKey: (username) => kontrol!.signKiteKey(username),
    registered: (ids) =>
      Promise.resolve(ids.filter((id) => kontrol?.registry.has(id)).length),
    async restart(downMs) {
      await stop();
      await sleep(downMs);
      kontrol = await start();
    },
    async close() {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

// --------------------------------------------------------- child process

/** A `child.ts` process and the first JSON line it printed. */
class Child {
  readonly process: Deno.ChildProcess;
  readonly port: number;
  #drained: Promise<void>;

  private constructor(
    process: Deno.ChildProcess,
    port: number,
    drained: Promise<void>,
  ) {
    this.process = process;
    this.port = port;
    this.#drained = drained;
  }

  static async start(args: string[], dataDir: string): Promise<Child> {
    const child = new URL("./child.ts", import.meta.url).pathname;
    const config = new URL("../../deno.json", import.meta.url).pathname;
    // By name, as `--allow-run=deno` grants it (execPath may be a symlink target).
    const process = new Deno.Command("deno", {
      args: [
        "run",
        "--quiet",
        "--config",
        config,
        "--v8-flags=--expose-gc",
        "--allow-net=127.0.0.1",
        `--allow-read`,
        `--allow-write=${dataDir}`,
        "--allow-env",
        "--allow-sys",
        child,
        ...args,
      ],
      env: { KITE_HOME: dataDir, KITE_LOG_LEVEL: "FATAL" },
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = process.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let buffer = "";
    let port = 0;
    const deadline = setTimeout(() => {
      try {
        process.kill("SIGKILL");
      } catch { /* gone */ }
    }, 60_000);
    try {
      while (!port) {
        const { done, value } = await reader.read();
        if (done) throw new Error(`soak child ${args[0]} exited before ready`);
        buffer += value;
        for (const line of buffer.split("\n").slice(0, -1)) {
          if (line.startsWith("{")) port = JSON.parse(line).port;
        }
        buffer = buffer.slice(buffer.lastIndexOf("\n") + 1);
      }
    } finally {
      clearTimeout(deadline);
    }
    // Keep reading so the child never blocks on a full pipe.
    const drained = (async () => {
      try {
        while (!(await reader.read()).done) { /* discard */ }
      } catch { /* killed */ }
    })();
    return new Child(process, port, drained);
  }

  async kill(): Promise<void> {
    try {
      this.process.kill("SIGKILL");
    } catch { /* already gone */ }
    await this.process.status;
    await this.#drained;
  }
}

/** An observer client that follows the server across restarts. */
async function observer(url: string): Promise<{ kite: Kite; client: Client }> {
  const kite = new Kite("soak-observer", "1.0.0", {
    env: false,
    kiteKey: false,
    logger: SILENT,
    config: { ip: "127.0.0.1", ...LOOPBACK_CLIENTS },
  });
  const client = kite.newClient(url, {
    reconnect: { initialMs: 50, maxMs: 500 },
  });
  await client.dialForever();
  return { kite, client };
}

/** Calls `method` on `client`, retrying while it reconnects (bounded). */
async function ask(client: Client, method: string, ...args: unknown[]) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await client.tellWithTimeout(method, 15_000, ...args);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

/** A math kite in a child process (memory measured there). */
export async function kiteChild(): Promise<KiteServer> {
  const dir = await Deno.makeTempDir({ prefix: "soak_kite_" });
  const port = freePort();
  let child: Child | undefined = await Child.start(
    ["kite", "--port", String(port)],
    dir,
  );
  const url = `http://127.0.0.1:${port}/kite`;
  const obs = await observer(url);
  return {
    url,
    stats: async (gc) =>
      await ask(obs.client, "soak.stats", gc === true) as ServerStats,
    async restart(downMs) {
      await child?.kill();
      child = undefined;
      await sleep(downMs);
      child = await Child.start(["kite", "--port", String(port)], dir);
    },
    async close() {
      await obs.kite.close();
      await child?.kill();
      child = undefined;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A Kontrol on KV in a child process; a restart is a SIGKILL. */
export async function kontrolChild(): Promise<KontrolServer> {
  const dir = await Deno.makeTempDir({ prefix: "soak_kontrol_" });
  const port = freePort();
  const args = ["kontrol", "--port", String(port), "--data", dir];
  let child: Child | undefined = await Child.start(args, dir);
  const url = `http://127.0.0.1:${port}/kite`;
  const obs = await observer(url);
  return {
    url,
    kiteKey: async (username) =>
      await ask(obs.client, "soak.kiteKey", username) as string,
    registered: async (ids) =>
      await ask(obs.client, "soak.registered", ids) as number,
    async restart(downMs) {
      await child?.kill();
      child = undefined;
      await sleep(downMs);
      child = await Child.start(args, dir);
    },
    async close() {
      await obs.kite.close();
      await child?.kill();
      child = undefined;
      await Deno.remove(dir, { recursive: true });
    },
  };
}
