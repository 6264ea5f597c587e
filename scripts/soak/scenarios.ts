/**
 * Load, soak and fault scenarios. `main.ts` runs them at full size against
 * child processes; `tests/hardening_soak_test.ts` runs them small against
 * servers in the test process. Every loop is bounded in count and time.
 *
 * @module
 */
import { Kite, KiteError } from "../../mod.ts";
import type { Client } from "../../kite/client.ts";
import { Rng } from "../fuzz/prng.ts";
import type { KiteServer, KontrolServer } from "./servers.ts";
import { SILENT } from "./servers.ts";
import { mib, type ServerStats } from "./stats.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client-side kite with a silent logger. */
function clientKite(name: string, kiteKey: string | false = false): Kite {
  return new Kite(name, "1.0.0", {
    env: false,
    kiteKey,
    logger: SILENT,
    config: { ip: "127.0.0.1", environment: "soak" },
  });
}

/**
 * Waits for `promises` up to `ms`; returns how many had not settled by then.
 * Their outcomes are counted by the callers' own handlers.
 */
async function unsettledAfter(
  promises: Promise<unknown>[],
  ms: number,
): Promise<number> {
  let settled = 0;
  const all = Promise.all(
    promises.map((p) => p.then(() => settled++, () => settled++)),
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([all, new Promise((r) => timer = setTimeout(r, ms))]);
  clearTimeout(timer);
  return promises.length - settled;
}

/** Polls `condition` until it holds or `ms` pass; returns whether it held. */
async function until(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  every = 50,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) return false;
    await sleep(every);
  }
  return true;
}

// -------------------------------------------------------------- many clients

/** Options for {@linkcode manyClients}. */
export interface ManyClientsOptions {
  /** Connections. */
  clients: number;
  /** Calls per connection. */
  calls: number;
  /** Calls in flight per connection. @default {10} */
  window?: number;
  /** A call still unanswered this long counts as lost. @default {60000} */
  lostAfterMs?: number;
}

/** What {@linkcode manyClients} measured. */
export interface ManyClientsResult {
  clients: number;
  calls: number;
  ok: number;
  wrong: number;
  errors: number;
  lost: number;
  firstErrors: string[];
  elapsedMs: number;
  callsPerSec: number;
  /** Server stats: before, with every client connected, after they left. */
  server: { baseline: ServerStats; loaded: ServerStats; after: ServerStats };
  /** Callbacks and pending calls left on the client side. */
  clientLeft: { callbacks: number; pending: number };
}

/**
 * `clients` connections each make `calls` calls (`square`, every tenth an
 * `echo`), checking each result; then all leave and the server's
 * connections, callbacks and memory are read again.
 */
export async function manyClients(
  server: KiteServer,
  options: ManyClientsOptions,
): Promise<ManyClientsResult> {
  const window = options.window ?? 10;
  const lostAfterMs = options.lostAfterMs ?? 60_000;
  const baseline = await server.stats(true);
  const kite = clientKite("soak-clients");
  const result: ManyClientsResult = {
    clients: options.clients,
    calls: options.clients * options.calls,
    ok: 0,
    wrong: 0,
    errors: 0,
    lost: 0,
    firstErrors: [],
    elapsedMs: 0,
    callsPerSec: 0,
    server: { baseline, loaded: baseline, after: baseline },
    clientLeft: { callbacks: 0, pending: 0 },
  };
  const error = (err: unknown) => {
    result.errors++;
    if (result.firstErrors.length < 10) result.firstErrors.push(String(err));
  };
  try {
    const clients: Client[] = [];
    for (let i = 0; i < options.clients; i += 100) {
      const batch = Array.from(
        { length: Math.min(100, options.clients - i) },
        () => kite.newClient(server.url),
      );
      await Promise.all(batch.map((c) => c.dial()));
      clients.push(...batch);
    }
    const started = Date.now();
    await Promise.all(clients.map(async (client, c) => {
      for (let i = 0; i < options.calls; i += window) {
        const batch: Promise<unknown>[] = [];
        for (let j = i; j < Math.min(options.calls, i + window); j++) {
          const n = c * options.calls + j;
          const p = j % 10 === 9
            ? client.tell("echo", { c, j }).then((v) => {
              const o = v as { c?: number; j?: number };
              return o?.c === c && o?.j === j;
            })
            : client.tell("square", n).then((v) => v === n * n);
          batch.push(p.then((right) => {
            if (right) result.ok++;
            else result.wrong++;
          }, error));
        }
        result.lost += await unsettledAfter(batch, lostAfterMs);
      }
    }));
    result.elapsedMs = Date.now() - started;
    result.callsPerSec = Math.round(result.calls / (result.elapsedMs / 1000));
    result.server.loaded = await server.stats(false);
    for (const c of clients) {
      result.clientLeft.callbacks += c.callbackCount;
      result.clientLeft.pending += c.pendingCalls;
    }
  } finally {
    await kite.close();
  }
  await until(
    async () => (await server.stats(false)).connections === 0,
    30_000,
    200,
  );
  // Let the collector see the freed sessions, then read memory.
  await sleep(1_000);
  result.server.after = await server.stats(true);
  return result;
}

// ----------------------------------------------------------- callback flood

/** Options for {@linkcode callbackFlood}. */
export interface CallbackFloodOptions {
  /** Calls, each passing a fresh callback. */
  calls: number;
  /** Calls in flight. @default {100} */
  window?: number;
  /** Stats are read every this many calls. @default {calls / 10} */
  sampleEvery?: number;
}

/** What {@linkcode callbackFlood} measured. */
export interface CallbackFloodResult {
  calls: number;
  ok: number;
  wrong: number;
  errors: number;
  lost: number;
  callbacksRun: number;
  /** Largest local callback table seen on the calling side. */
  maxClientCallbacks: number;
  /** Callback table size after the last call. */
  finalClientCallbacks: number;
  /** Server samples (callbacks held by the server side, heap, RSS). */
  samples: { at: number; callbacks: number; heapMiB: number; rssMiB: number }[];
  elapsedMs: number;
  callsPerSec: number;
}

/**
 * One connection makes `calls` calls of `squareCb`, each with a fresh
 * function the server calls back; each function is released once its call
 * is answered. The caller's table stays within the window, the server's at
 * zero, and memory flat.
 */
export async function callbackFlood(
  server: KiteServer,
  options: CallbackFloodOptions,
): Promise<CallbackFloodResult> {
  const window = options.window ?? 100;
  const sampleEvery = options.sampleEvery ??
    Math.max(window, Math.floor(options.calls / 10));
  const kite = clientKite("soak-callbacks");
  const result: CallbackFloodResult = {
    calls: options.calls,
    ok: 0,
    wrong: 0,
    errors: 0,
    lost: 0,
    callbacksRun: 0,
    maxClientCallbacks: 0,
    finalClientCallbacks: 0,
    samples: [],
    elapsedMs: 0,
    callsPerSec: 0,
  };
  const sample = async (at: number) => {
    const s = await server.stats(false);
    result.samples.push({
      at,
      callbacks: s.callbacks,
      heapMiB: mib(s.heapUsed),
      rssMiB: mib(s.rss),
    });
  };
  try {
    const client = kite.newClient(server.url);
    await client.dial();
    await sample(0);
    const started = Date.now();
    for (let i = 0; i < options.calls; i += window) {
      const batch: Promise<void>[] = [];
      for (let j = i; j < Math.min(options.calls, i + window); j++) {
        const n = j % 1000;
        let got: unknown;
        const fn = (v: unknown) => {
          got = v;
          result.callbacksRun++;
        };
        batch.push(
          client.tell("squareCb", n, fn).then((v) => {
            if (v === n * n && got === n * n) result.ok++;
            else result.wrong++;
          }, () => void result.errors++).finally(() =>
            client.releaseCallback(fn)
          ),
        );
      }
      result.maxClientCallbacks = Math.max(
        result.maxClientCallbacks,
        client.callbackCount,
      );
      result.lost += await unsettledAfter(batch, 60_000);
      if ((i + window) % sampleEvery < window) await sample(i + window);
    }
    result.elapsedMs = Date.now() - started;
    result.callsPerSec = Math.round(options.calls / (result.elapsedMs / 1000));
    result.finalClientCallbacks = client.callbackCount;
  } finally {
    await kite.close();
  }
  return result;
}

// ------------------------------------------------------------ kite restart

/** Options for {@linkcode kiteRestart}. */
export interface KiteRestartOptions {
  /** `dialForever` clients calling in a loop. */
  clients: number;
  /** Restarts. @default {1} */
  restarts?: number;
  /** How long the kite stays down. @default {500} */
  downMs?: number;
  /** Load time before each restart. @default {1000} */
  loadMs?: number;
  /** A call unanswered this long counts as hung. @default {30000} */
  hangAfterMs?: number;
}

/** What {@linkcode kiteRestart} measured. */
export interface KiteRestartResult {
  clients: number;
  restarts: number;
  calls: number;
  ok: number;
  wrong: number;
  /** Calls in flight when the kite went away. */
  disconnect: number;
  /** Calls refused while not connected. */
  sendError: number;
  other: number;
  otherErrors: string[];
  hung: number;
  /** Clients that had a successful call after every restart. */
  resumed: number;
  /** Longest time from the kite listening again to the last client's first success, ms. */
  maxResumeMs: number;
}

/**
 * `clients` clients (each `dialForever`) call `square` in a loop while the
 * kite is restarted `restarts` times. Calls in flight fail with
 * `disconnect`, calls in the gap with `sendError`; none hangs, and every
 * client resumes.
 */
export async function kiteRestart(
  server: KiteServer,
  options: KiteRestartOptions,
): Promise<KiteRestartResult> {
  const restarts = options.restarts ?? 1;
  const downMs = options.downMs ?? 500;
  const loadMs = options.loadMs ?? 1_000;
  const hangAfterMs = options.hangAfterMs ?? 30_000;
  const result: KiteRestartResult = {
    clients: options.clients,
    restarts,
    calls: 0,
    ok: 0,
    wrong: 0,
    disconnect: 0,
    sendError: 0,
    other: 0,
    otherErrors: [],
    hung: 0,
    resumed: 0,
    maxResumeMs: 0,
  };
  const kite = clientKite("soak-restart");
  let stop = false;
  const lastOk: number[] = new Array(options.clients).fill(0);
  const loops: Promise<void>[] = [];
  try {
    for (let c = 0; c < options.clients; c++) {
      const client = kite.newClient(server.url, {
        reconnect: { initialMs: 100, maxMs: 1_000 },
      });
      await client.dialForever();
      loops.push((async () => {
        for (let i = 0; !stop; i++) {
          const n = c * 1_000_000 + i;
          result.calls++;
          const call = client.tell("square", n);
          let timer: ReturnType<typeof setTimeout> | undefined;
          const outcome = await Promise.race([
            call.then((v) => v === n * n ? "ok" : "wrong", (err) => err),
            new Promise((r) =>
              timer = setTimeout(() => r("hung"), hangAfterMs)
            ),
          ]);
          clearTimeout(timer);
          if (outcome === "ok") {
            result.ok++;
            lastOk[c] = Date.now();
          } else if (outcome === "wrong") result.wrong++;
          else if (outcome === "hung") result.hung++;
          else if (
            outcome instanceof KiteError && outcome.type === "disconnect"
          ) {
            result.disconnect++;
          } else if (
            outcome instanceof KiteError && outcome.type === "sendError"
          ) {
            result.sendError++;
            await sleep(20); // not connected: do not spin
          } else {
            result.other++;
            if (result.otherErrors.length < 10) {
              result.otherErrors.push(String(outcome));
            }
            await sleep(20);
          }
        }
      })());
    }
    const resumedEveryTime = new Array(options.clients).fill(true);
    for (let r = 0; r < restarts; r++) {
      await sleep(loadMs);
      await server.restart(downMs);
      const back = Date.now();
      await until(() => lastOk.every((t) => t > back), 30_000);
      const latest = Math.max(...lastOk.map((t) => t - back));
      result.maxResumeMs = Math.max(result.maxResumeMs, latest);
      lastOk.forEach((t, c) => {
        if (t <= back) resumedEveryTime[c] = false;
      });
    }
    result.resumed = resumedEveryTime.filter(Boolean).length;
  } finally {
    stop = true;
    await unsettledAfter(loops, hangAfterMs + 5_000);
    await kite.close();
  }
  return result;
}

// --------------------------------------------------------- Kontrol restart

/** Options for {@linkcode kontrolRestart}. */
export interface KontrolRestartOptions {
  /** Kites that `registerForever`. */
  kites: number;
  /** Clients calling `getKites` in a loop meanwhile. @default {4} */
  loadClients?: number;
  /** How long Kontrol stays down. @default {500} */
  downMs?: number;
  /** Every kite must be back within this. @default {15000} */
  backWithinMs?: number;
}

/** What {@linkcode kontrolRestart} measured. */
export interface KontrolRestartResult {
  kites: number;
  /** Kites Kontrol supervised before the restart. */
  registeredBefore: number;
  /** Kites back (supervised by the new process) within the bound. */
  back: number;
  /** Time until the last one was back, ms (-1: not all came back). */
  allBackMs: number;
  /** Entries `getKites` returns afterwards, and how many of them are our kites' URLs. */
  listed: number;
  listedOurs: number;
  /** `getKites` calls made by the load clients, and their outcomes. */
  loadCalls: number;
  loadOk: number;
  loadErrors: number;
  loadHung: number;
}

/**
 * `kites` kites `registerForever` with a Kontrol on KV while load clients
 * query it; Kontrol is restarted; every kite must be supervised by the new
 * process within `backWithinMs`, and none may be lost or listed twice.
 */
export async function kontrolRestart(
  kontrol: KontrolServer,
  options: KontrolRestartOptions,
): Promise<KontrolRestartResult> {
  const backWithinMs = options.backWithinMs ?? 15_000;
  const key = await kontrol.kiteKey("soak");
  const kites: Kite[] = [];
  const result: KontrolRestartResult = {
    kites: options.kites,
    registeredBefore: 0,
    back: 0,
    allBackMs: -1,
    listed: 0,
    listedOurs: 0,
    loadCalls: 0,
    loadOk: 0,
    loadErrors: 0,
    loadHung: 0,
  };
  const loader = clientKite("soak-loader", key);
  let stop = false;
  const loops: Promise<void>[] = [];
  const query = { username: "soak", environment: "soak" };
  try {
    for (let i = 0; i < options.kites; i++) {
      const k = clientKite(`worker${i}`, key);
      kites.push(k);
      await k.serve({ hostname: "127.0.0.1" });
    }
    await Promise.all(kites.map((k) => k.registerForever()));
    const ids = kites.map((k) => k.identity.id);
    await until(
      async () => await kontrol.registered(ids) === ids.length,
      30_000,
      200,
    );
    result.registeredBefore = await kontrol.registered(ids);

    const rng = new Rng(7);
    for (let c = 0; c < (options.loadClients ?? 4); c++) {
      const client = loader.newClient(kontrol.url, {
        reconnect: { initialMs: 100, maxMs: 1_000 },
      });
      await client.dialForever();
      loops.push((async () => {
        while (!stop) {
          result.loadCalls++;
          try {
            await client.tellWithTimeout("getKites", 20_000, { query });
            result.loadOk++;
          } catch (err) {
            if (err instanceof KiteError && err.type === "timeout") {
              result.loadHung++;
            } else result.loadErrors++;
            await sleep(20 + rng.int(30));
          }
        }
      })());
    }
    await sleep(500);
    await kontrol.restart(options.downMs ?? 500);
    const back = Date.now();
    await until(
      async () => await kontrol.registered(ids) === ids.length,
      backWithinMs,
      100,
    );
    result.back = await kontrol.registered(ids);
    if (result.back === ids.length) result.allBackMs = Date.now() - back;
    const urls = new Set(kites.map((k) => k.url));
    const found = await loader.getKites(query);
    result.listed = found.length;
    result.listedOurs = found.filter((f) => urls.has(f.url)).length;
  } finally {
    stop = true;
    await unsettledAfter(loops, 30_000);
    await loader.close();
    for (const k of kites) await k.close();
  }
  return result;
}
