/**
 * Stateful attacks for `deno task fuzz`: peers that stop reading while the
 * server sends on its own — heartbeat ticks, callbacks, watch events — and
 * connections holding many watchers, each drawn from a seeded PRNG and run
 * a few at a time against a math kite and a Kontrol in this process. Every
 * attack must end with only the attacker's session closed (4008) or fully
 * served; meanwhile a well-behaved client keeps calling both servers. An
 * uncaught error or unhandled rejection anywhere is a crash.
 *
 * @module
 */
import { Kite, type Logger } from "../../mod.ts";
import type { Client } from "../../kite/client.ts";
import type { CloseInfo } from "../../kite/transport/session.ts";
import { mathKite } from "../../examples/math/server.ts";
import { Kontrol } from "../../kontrol/kontrol.ts";
import { MemoryStorage } from "../../storage/memory.ts";
import { call, frame } from "./inputs.ts";
import { Rng } from "./prng.ts";
import { DeafSocket } from "./wire.ts";

/** Options for {@linkcode runStateful}. */
export interface StatefulOptions {
  /** Attacks to run. @default {400} */
  rounds?: number;
  /** PRNG seed. @default {1} */
  seed?: number;
  /** Attacks running at once. @default {6} */
  concurrency?: number;
  /** The targets' `maxBufferedBytes`, low to keep attacks quick. @default {65536} */
  maxBufferedBytes?: number;
  /** Progress lines. */
  progress?: (line: string) => void;
}

/** Counts per attack kind. */
export interface AttackCounts {
  /** Runs. */
  runs: number;
  /** Runs that ended as expected. */
  ok: number;
}

/** What {@linkcode runStateful} saw. */
export interface StatefulSummary {
  /** Seed used. */
  seed: number;
  /** Attacks run. */
  rounds: number;
  /** Per attack kind. */
  attacks: Record<string, AttackCounts>;
  /** The first unexpected outcomes. */
  failures: string[];
  /** Uncaught errors and unhandled rejections in the process. */
  crashes: string[];
  /** ERROR lines the servers logged. */
  serverErrors: string[];
  /** Calls of the well-behaved client, and how many failed or were wrong. */
  goodCalls: number;
  /** Its failed or wrong calls. */
  goodFailed: number;
  /** Resident memory before and after the attacks, MiB. */
  rssMiB: { before: number; after: number };
  /** Wall time, ms. */
  elapsedMs: number;
}

const WAIT_MS = 15_000;

/**
 * Records uncaught errors and unhandled rejections of this process into
 * `crashes` (the fuzzer's own bookkeeping; a kite never does this).
 * @returns a function that stops recording.
 */
export function recordCrashes(crashes: string[]): () => void {
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    crashes.push(`unhandled rejection: ${e.reason?.stack ?? e.reason}`);
  };
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    crashes.push(`uncaught error: ${e.error?.stack ?? e.message}`);
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  return () => {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    globalThis.removeEventListener("error", onError);
  };
}

/** Runs `closers` last first; a failing one is recorded in `crashes`. */
export async function closeAll(
  closers: (() => Promise<void> | void)[],
  crashes: string[],
): Promise<void> {
  for (const close of closers.reverse()) {
    try {
      await close();
    } catch (err) {
      crashes.push(`teardown: ${err}`);
    }
  }
}

function errorsOnly(errors: string[], name: string): Logger {
  const drop = () => {};
  return {
    debug: drop,
    info: drop,
    warning: drop,
    error: (m: string) => void errors.push(`${name}: ${m}`),
  };
}

/** Why each accepted session of `kite` closed, by session id. */
function recordCloses(kite: Kite): Map<string, CloseInfo> {
  const closes = new Map<string, CloseInfo>();
  kite.onConnect((client: Client) => {
    const id = client.session?.id;
    if (client.side !== "accepted" || id === undefined) return;
    client.onDisconnect((info) => closes.set(id, info));
  });
  return closes;
}

async function until(
  condition: () => boolean,
  ms = WAIT_MS,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

interface World {
  rng: Rng;
  limit: number;
  mathBase: string;
  mathPort: number;
  kontrolBase: string;
  kontrolURL: string;
  mathCloses: Map<string, CloseInfo>;
  kontrolCloses: Map<string, CloseInfo>;
  auth: { type: string; key: string };
  kiteKey: string;
  n: number;
}

/** An XHR session driven by hand: opened, then polled only when the attack says. */
async function xhrSession(base: string, id: string) {
  const url = `${base}/kite/000/${id}`;
  const post = async (route: string, body?: string) => {
    const res = await fetch(`${url}/${route}`, {
      method: "POST",
      body,
      signal: AbortSignal.timeout(WAIT_MS),
    });
    return await res.text();
  };
  if (await post("xhr") !== "o\n") throw new Error("xhr session not opened");
  return {
    send: (...messages: string[]) => post("xhr_send", frame(...messages)),
    poll: () => post("xhr"),
  };
}

/** Two replies that together pass the limit; no send is refused yet. */
function overfill(w: World, first: number, auth?: unknown): string[] {
  const size = w.rng.range(Math.floor(w.limit / 2) + 1, w.limit);
  const echo = w.rng.chance(0.5) ? "kite.echo" : "echo";
  const method = auth === undefined ? echo : "kite.echo";
  return [0, 1].map((i) =>
    call(method, ["e".repeat(size)], first + i, auth ? { auth } : {})
  );
}

/** Waits for session `id` to close; "closed <code>" or "open". */
async function closeOf(
  closes: Map<string, CloseInfo>,
  id: string,
): Promise<string> {
  await until(() => closes.has(id));
  const info = closes.get(id);
  return info ? `closed ${info.code}` : "open";
}

type Attack = (w: World) => Promise<string>;

/** The attacks, each resolving with its outcome, and the outcomes expected. */
const ATTACKS: Record<string, { run: Attack; expect: RegExp }> = {
  /** A heartbeat whose tick is the send past the limit (finding 1). */
  heartbeatSlowXhr: {
    expect: /^closed 4008$/,
    run: async (w) => {
      const id = `hb${w.n}`;
      const s = await xhrSession(w.mathBase, id);
      await s.send(
        call("kite.heartbeat", [1, "[Function]"], 1, {
          extra: { 2: [0, "withArgs", 1] },
        }),
      );
      await s.send(...overfill(w, 3));
      return await closeOf(w.mathCloses, id);
    },
  },
  /** A callback call made by a handler, past the limit. */
  callbackSlowXhr: {
    expect: /^closed 4008$/,
    run: async (w) => {
      const id = `cb${w.n}`;
      const s = await xhrSession(w.mathBase, id);
      await s.send(...overfill(w, 1));
      await s.send(
        call("squareCb", [w.rng.range(0, 1000), "[Function]"], 3, {
          extra: { 4: [0, "withArgs", 1] },
        }),
      );
      return await closeOf(w.mathCloses, id);
    },
  },
  /** The same on a WebSocket that never reads. */
  heartbeatDeafSocket: {
    expect: /^closed 4008$/,
    run: async (w) => {
      const id = `deaf${w.n}`;
      const deaf = await DeafSocket.open(
        w.mathPort,
        `/kite/000/${id}/websocket`,
      );
      try {
        await deaf.sendText(frame(
          call("kite.heartbeat", [1, "[Function]"], 1, {
            extra: { 2: [0, "withArgs", 1] },
          }),
        ));
        // Some MiB of replies: the kernel's socket buffers take that first.
        const echo = "d".repeat(w.limit);
        for (let i = 0; i < 8; i++) {
          const sent = await deaf.sendText(frame(
            ...Array.from(
              { length: 12 },
              (_, j) => call("echo", [echo], 10 + 12 * i + j),
            ),
          )).then(() => true, () => false); // reset: the server closed it
          if (!sent) break;
        }
        return await closeOf(w.mathCloses, id);
      } finally {
        deaf.close();
      }
    },
  },
  /** Watch events to a Kontrol session that stopped reading (finding 2). */
  watchSlowXhr: {
    expect: /^closed 4008$/,
    run: async (w) => {
      const id = `watch${w.n}`;
      const s = await xhrSession(w.kontrolBase, id);
      const watches = w.rng.range(1, 5);
      await s.send(
        ...Array.from({ length: watches }, (_, i) =>
          call(
            "getKites",
            [{
              query: { username: "fuzzer", environment: "fuzz" },
              watchCallback: "[Function]",
            }],
            2 * i + 1,
            {
              auth: w.auth,
              extra: { [2 * i + 2]: [0, "withArgs", 0, "watchCallback"] },
            },
          )),
      );
      let seen = 0;
      for (let polls = 0; seen < watches && polls < 20; polls++) {
        seen += (await s.poll()).split("watcherID").length - 1;
      }
      await s.send(...overfill(w, 100, w.auth));
      await register(w);
      return await closeOf(w.kontrolCloses, id);
    },
  },
  /** A connection that reads, with many watchers: served in full or closed 4008. */
  manyWatchersReading: {
    expect: /^(all \d+ events|closed 4008)$/,
    run: async (w) => {
      const watcher = fuzzKite(w, "watcher");
      try {
        const n = w.rng.range(1, 90);
        let events = 0;
        const conn = await watcher.kontrol.connection();
        let closed: CloseInfo | undefined;
        conn.onDisconnect((info) => closed = info);
        try {
          for (let i = 0; i < n; i++) {
            await watcher.watchKites(
              { username: "fuzzer", environment: "fuzz", name: "newcomer" },
              () => void events++,
            );
          }
        } catch (err) {
          // Other attacks' registrations may overflow it meanwhile.
          if (closed) return `closed ${closed.code}`;
          throw err;
        }
        await register(w);
        await until(() => events >= n || closed !== undefined);
        return closed ? `closed ${closed.code}` : `all ${events} events`;
      } finally {
        await watcher.close();
      }
    },
  },
  /** A cancel dropped unawaited, then the connection closed (finding 11). */
  cancelThenClose: {
    expect: /^settled$/,
    run: async (w) => {
      const watcher = fuzzKite(w, "canceller");
      try {
        const cancel = await watcher.watchKites(
          { username: "fuzzer" },
          () => {},
        );
        const done = cancel();
        await watcher.close();
        await done;
        return "settled";
      } finally {
        await watcher.close();
      }
    },
  },
};

function fuzzKite(w: World, name: string): Kite {
  return new Kite(name, "1.0.0", {
    env: false,
    kiteKey: w.kiteKey,
    logger: errorsOnly([], name),
    config: { ip: "127.0.0.1", environment: "fuzz" },
  });
}

/** A kite registers and leaves: one REGISTER and one DEREGISTER event. */
async function register(w: World): Promise<void> {
  const kite = fuzzKite(w, "newcomer");
  try {
    await kite.register(`http://127.0.0.1:1/kite/${w.n}`);
  } finally {
    await kite.close();
  }
}

/** Runs the stateful attacks; never throws for a wrong outcome (see the summary). */
export async function runStateful(
  options: StatefulOptions = {},
): Promise<StatefulSummary> {
  const rounds = options.rounds ?? 400;
  const seed = options.seed ?? 1;
  const limit = options.maxBufferedBytes ?? 65_536;
  const progress = options.progress ?? (() => {});
  const started = Date.now();
  const crashes: string[] = [];
  const serverErrors: string[] = [];
  const stopRecording = recordCrashes(crashes);
  const config = {
    ip: "127.0.0.1",
    port: 0,
    maxBufferedBytes: limit,
    // Longer than a heartbeat period: an unpolled session must live until
    // the tick that overflows it.
    sockjsDisconnectDelayMs: 5_000,
  };
  const math = mathKite({
    env: false,
    kiteKey: false,
    logger: errorsOnly(serverErrors, "kite"),
    config,
  });
  const kontrol = new Kontrol({
    storage: new MemoryStorage(),
    kiteConfig: { ...config, logLevel: "FATAL" },
  });
  Object.assign(kontrol.kite.logger, errorsOnly(serverErrors, "kontrol"));
  const summary: StatefulSummary = {
    seed,
    rounds,
    attacks: {},
    failures: [],
    crashes,
    serverErrors,
    goodCalls: 0,
    goodFailed: 0,
    rssMiB: { before: mib(Deno.memoryUsage().rss), after: 0 },
    elapsedMs: 0,
  };
  const closers: (() => Promise<void> | void)[] = [];
  try {
    await kontrol.init();
    closers.push(() => kontrol.kite.close());
    const k = await kontrol.kite.serve({ hostname: "127.0.0.1" });
    closers.push(() => math.close());
    const m = await math.serve({ hostname: "127.0.0.1" });
    const kiteKey = await kontrol.signKiteKey("fuzzer");
    const rng = new Rng(seed);
    const base = {
      rng,
      limit,
      mathBase: `http://127.0.0.1:${m.port}`,
      mathPort: m.port,
      kontrolBase: `http://127.0.0.1:${k.port}`,
      kontrolURL: k.url,
      mathCloses: recordCloses(math),
      kontrolCloses: recordCloses(kontrol.kite),
      auth: { type: "kiteKey", key: kiteKey },
      kiteKey,
    };
    // The well-behaved side: calls both servers throughout.
    const good = fuzzKite({ ...base, n: 0 }, "good");
    closers.push(() => good.close());
    const toMath = good.newClient(m.url);
    await toMath.dial();
    let stop = false;
    const goodLoop = (async () => {
      for (let i = 0; !stop; i++) {
        summary.goodCalls++;
        try {
          if (await toMath.tell("square", i) !== i * i) summary.goodFailed++;
          const found = await good.getKites({ username: "fuzzer" });
          if (!Array.isArray(found)) summary.goodFailed++;
        } catch {
          summary.goodFailed++;
        }
      }
    })();
    const names = Object.keys(ATTACKS);
    // Draws happen here, in order, so a seed replays the same attacks.
    const plan = Array.from({ length: rounds }, (_, n) => ({
      n: n + 1,
      name: names[rng.range(0, names.length - 1)],
      rng: new Rng(rng.range(1, 2 ** 30)),
    }));
    let next = 0;
    const worker = async () => {
      while (next < plan.length) {
        const { n, name, rng } = plan[next++];
        const counts = summary.attacks[name] ??= { runs: 0, ok: 0 };
        counts.runs++;
        let outcome: string;
        try {
          outcome = await ATTACKS[name].run({ ...base, rng, n });
        } catch (err) {
          outcome = `threw ${(err as Error).message}`;
        }
        if (ATTACKS[name].expect.test(outcome)) counts.ok++;
        else if (summary.failures.length < 20) {
          summary.failures.push(`${name} #${n}: ${outcome}`);
        }
        if (n % 50 === 0) {
          progress(
            `${n}/${rounds} stateful attacks, ${crashes.length} crashes`,
          );
        }
      }
    };
    await Promise.all(
      Array.from({ length: options.concurrency ?? 6 }, worker),
    );
    stop = true;
    await goodLoop;
  } finally {
    await closeAll(closers, crashes);
    await kontrol.storage.close();
    await new Promise((r) => setTimeout(r, 50));
    stopRecording();
    summary.rssMiB.after = mib(Deno.memoryUsage().rss);
    summary.elapsedMs = Date.now() - started;
  }
  return summary;
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}
