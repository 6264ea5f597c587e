/**
 * Call-path benchmark: `square(4)` over one connection — sequential (with
 * p50/p99 latency) and with 100 calls in flight — and over 50 connections
 * with one call in flight each; `squareCb(4, fn)` (a callback called back
 * once per call); and the cost of token authentication.
 *
 * Contenders: a raw `Deno.serve` WebSocket JSON echo (the floor) with
 * Deno's built-in client and with our own `TcpWebSocket` client, our kite
 * over SockJS websocket and raw websocket, a kite.js 1.0.13 client against
 * a kite.js server (Node) and against our kite. Servers run in their own
 * processes; Deno clients run in this one, kite.js clients in a Node
 * process per round. After one uncounted warm-up round, each round
 * measures the Deno contenders one call at a time side by side (all
 * connected, taking turns in short slices), then runs the other phases
 * contender by contender, in reverse order every other round. Figures are
 * medians over the rounds, latencies quantiles over all samples.
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import type { Auth, Client } from "../../mod.ts";
import { generateKeyPair } from "../../kite/auth/keys.ts";
import { TcpWebSocket } from "../../kite/transport/sockets/deno_websocket.ts";
import { signToken } from "../../kontrol/tokens.ts";
import { ensureKitejs, startKitejsServer } from "../../tests/helpers/kitejs.ts";
import { type BenchServer, pinProcess, startServer } from "./process.ts";
import { median, quantile, round } from "./stats.ts";

/** Settings of one run. */
export interface CallPathOptions {
  /** Rounds; every contender runs once per round. @default {5} */
  rounds?: number;
  /** Length of each timed phase, ms. @default {1000} */
  ms?: number;
  /** Calls in flight on one connection. @default {100} */
  depth?: number;
  /** Connections of the many-connections phase. @default {50} */
  conns?: number;
}

/** One contender's figures (medians over rounds, latency quantiles over all samples). */
export interface CallPathResult {
  name: string;
  sequentialPerSec: number;
  /** Sequential calls/s of each round, in round order. */
  sequentialRounds: number[];
  /** 100-in-flight calls/s of each round, in round order. */
  inFlightRounds: number[];
  p50Us: number;
  p99Us: number;
  inFlightPerSec: number;
  connsPerSec: number;
  /** `squareCb` sequential calls/s, for contenders that do callbacks. */
  callbackPerSec?: number;
  callbackP50Us?: number;
}

/** Figures of the authentication comparison (raw websocket, one connection). */
export interface AuthResult {
  name: string;
  sequentialPerSec: number;
  p50Us: number;
  p99Us: number;
  inFlightPerSec: number;
}

/** Everything the call-path benchmark measured. */
export interface CallPathReport {
  calls: CallPathResult[];
  auth: AuthResult[];
  /** Whether clients ran on CPU 0 and servers on CPU 1. */
  pinned: boolean;
}

interface Caller {
  call(): Promise<unknown>;
  callback?(): Promise<unknown>;
}

interface Group {
  callers: Caller[];
  close(): Promise<void>;
}

/** A Deno contender: opens `n` connections. */
type Opener = (n: number) => Promise<Group>;

interface Samples {
  seq: number[];
  lat: number[];
  fly: number[];
  conns: number[];
  cb: number[];
  cbLat: number[];
}

function emptySamples(): Samples {
  return { seq: [], lat: [], fly: [], conns: [], cb: [], cbLat: [] };
}

/** Built-in WebSocket clients of the echo server. */
function rawBuiltin(port: number): Opener {
  return async (n) => {
    const sockets: WebSocket[] = [];
    const callers = await Promise.all(Array.from({ length: n }, async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      sockets.push(ws);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = reject;
      });
      let next = 0;
      const pending = new Map<number, (v: unknown) => void>();
      ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        pending.get(msg.id)?.(msg.result);
        pending.delete(msg.id);
      };
      return {
        call: () =>
          new Promise((resolve) => {
            const id = next++;
            pending.set(id, resolve);
            ws.send(JSON.stringify({ id, n: 4 }));
          }),
      };
    }));
    return {
      callers,
      close: () =>
        Promise.all(sockets.map((ws) => {
          const closed = new Promise((r) => ws.onclose = r);
          ws.close();
          return closed;
        })).then(() => {}),
    };
  };
}

/** Our `TcpWebSocket` (the kite client's socket) on the echo server. */
function rawTcp(port: number): Opener {
  return async (n) => {
    const sockets = await Promise.all(
      Array.from(
        { length: n },
        () =>
          TcpWebSocket.connect(new URL(`ws://127.0.0.1:${port}/`), {
            timeoutMs: 10_000,
            maxMessageBytes: 1 << 20,
            maxBufferedBytes: 16 << 20,
          }),
      ),
    );
    const callers = sockets.map((ws) => {
      let next = 0;
      const pending = new Map<number, (v: unknown) => void>();
      ws.start({
        onText(text) {
          const msg = JSON.parse(text);
          pending.get(msg.id)?.(msg.result);
          pending.delete(msg.id);
        },
        onClose() {},
      });
      return {
        call: () =>
          new Promise((resolve) => {
            const id = next++;
            pending.set(id, resolve);
            ws.send(JSON.stringify({ id, n: 4 }));
          }),
      };
    });
    return {
      callers,
      async close() {
        for (const ws of sockets) ws.close();
        await Promise.all(sockets.map((ws) => ws.finished));
      },
    };
  };
}

/** Kite clients calling `method` with `auth`. */
function kiteClients(
  port: number,
  transport: "websocket" | "raw-websocket",
  method = "square",
  auth: Auth | null = null,
): Opener {
  return async (n) => {
    const kite = new Kite("bench", "1.0.0", {
      env: false,
      kiteKey: false,
      config: { logLevel: "ERROR" },
    });
    const clients: Client[] = Array.from(
      { length: n },
      () =>
        kite.newClient(`http://127.0.0.1:${port}/kite`, { transport, auth }),
    );
    await Promise.all(clients.map((c) => c.dial()));
    return {
      callers: clients.map((client) => ({
        call: () => client.tell(method, 4),
        callback: () =>
          new Promise((resolve, reject) => {
            let left = 2;
            const done = () => --left === 0 && resolve(null);
            client.tell("squareCb", 4, () => done()).then(done, reject);
          }),
      })),
      close: () => kite.close(),
    };
  };
}

async function sequential(
  call: () => Promise<unknown>,
  ms: number,
): Promise<{ elapsedMs: number; lat: number[] }> {
  const lat: number[] = [];
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    const t = performance.now();
    await call();
    lat.push((performance.now() - t) * 1000);
  }
  return { elapsedMs: performance.now() - start, lat };
}

/** `depth` lanes per caller, each making one call after another. */
async function lanes(
  callers: Caller[],
  depth: number,
  ms: number,
): Promise<number> {
  let done = 0;
  const start = performance.now();
  const end = start + ms;
  const lane = async (c: Caller) => {
    while (performance.now() < end) {
      await c.call();
      done++;
    }
  };
  await Promise.all(
    callers.flatMap((c) => Array.from({ length: depth }, () => lane(c))),
  );
  return done / ((performance.now() - start) / 1000);
}

/** Uncounted calls at the start of each slice. */
const SLICE_WARMUP = 20;

/** A Deno contender with its one connection open. */
interface Opened {
  group: Group;
  caller: Caller;
  into: Samples;
  phases: Phases;
  /** One-at-a-time calls and time of this round, summed over slices. */
  seqCount: number;
  seqMs: number;
}

interface Phases {
  conns: boolean;
  callbacks: boolean;
}

async function openDeno(
  open: Opener,
  into: Samples,
  phases: Phases,
): Promise<Opened> {
  const group = await open(1);
  const caller = group.callers[0];
  for (let i = 0; i < 200; i++) await caller.call(); // warm-up
  return { group, caller, into, phases, seqCount: 0, seqMs: 0 };
}

/**
 * One at a time, all contenders in turn, in short slices: what the machine
 * does meanwhile falls on all alike, and each round's ratios are measured
 * side by side. Every contender takes every place in the turn equally
 * often (`2n` slices for `n` contenders, the order rotated by one every
 * other slice and reversed in between): with processes left to move
 * between CPUs, the place alone moved a contender's rate by a quarter (the
 * same contender twice in one turn: 8.4k and 10.9k calls/s).
 */
async function interleavedSequential(
  contenders: Opened[],
  ms: number,
): Promise<void> {
  const n = contenders.length;
  const slices = 2 * n;
  for (let slice = 0; slice < slices; slice++) {
    const k = slice >> 1;
    const rotated = [...contenders.slice(k), ...contenders.slice(0, k)];
    for (const c of slice % 2 ? rotated.reverse() : rotated) {
      for (let i = 0; i < SLICE_WARMUP; i++) await c.caller.call();
      const s = await sequential(c.caller.call, ms / slices);
      c.seqCount += s.lat.length;
      c.seqMs += s.elapsedMs;
      c.into.lat.push(...s.lat);
    }
  }
  for (const c of contenders) {
    c.into.seq.push(c.seqCount / (c.seqMs / 1000));
  }
}

/** The phases after the one-at-a-time one; closes the contender. */
async function runDenoRest(
  c: Opened,
  open: Opener,
  o: Required<CallPathOptions>,
): Promise<void> {
  const { caller, into } = c;
  try {
    into.fly.push(await lanes([caller], o.depth, o.ms));
    if (c.phases.callbacks && caller.callback) {
      for (let i = 0; i < 50; i++) await caller.callback();
      const cb = await sequential(caller.callback, o.ms);
      into.cb.push(cb.lat.length / (cb.elapsedMs / 1000));
      into.cbLat.push(...cb.lat);
    }
  } finally {
    await c.group.close();
  }
  if (!c.phases.conns) return;
  const many = await open(o.conns);
  try {
    for (const m of many.callers) await m.call();
    into.conns.push(await lanes(many.callers, 1, o.ms));
  } finally {
    await many.close();
  }
}

interface DriverOutput {
  seq: { count: number; elapsedMs: number; lat: number[] };
  flight: { count: number; elapsedMs: number };
  conns?: { count: number; elapsedMs: number };
  callback?: { count: number; elapsedMs: number; lat: number[] };
}

/** One kite.js client round in Node (`kitejs_driver.cjs`). */
async function runKitejs(
  url: string,
  into: Samples,
  o: Required<CallPathOptions>,
): Promise<void> {
  const cfg = {
    url,
    ms: o.ms,
    depth: o.depth,
    conns: o.conns,
    callbacks: true,
  };
  const out = await new Deno.Command("node", {
    args: [
      new URL("./kitejs_driver.cjs", import.meta.url).pathname,
      JSON.stringify(cfg),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `kitejs_driver failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  const r: DriverOutput = JSON.parse(new TextDecoder().decode(out.stdout));
  const perSec = (p: { count: number; elapsedMs: number }) =>
    p.count / (p.elapsedMs / 1000);
  into.seq.push(perSec(r.seq));
  into.lat.push(...r.seq.lat);
  into.fly.push(perSec(r.flight));
  if (r.conns) into.conns.push(perSec(r.conns));
  if (r.callback) {
    into.cb.push(perSec(r.callback));
    into.cbLat.push(...r.callback.lat);
  }
}

function summarize(name: string, s: Samples): CallPathResult {
  const out: CallPathResult = {
    name,
    sequentialPerSec: round(median(s.seq)),
    sequentialRounds: s.seq.map((v) => round(v)),
    inFlightRounds: s.fly.map((v) => round(v)),
    p50Us: round(quantile(s.lat, 0.5)),
    p99Us: round(quantile(s.lat, 0.99)),
    inFlightPerSec: round(median(s.fly)),
    connsPerSec: round(median(s.conns)),
  };
  if (s.cb.length > 0) {
    out.callbackPerSec = round(median(s.cb));
    out.callbackP50Us = round(quantile(s.cbLat, 0.5));
  }
  return out;
}

/** A token for `squareAuth` on the bench kite (username `bench`). */
async function benchToken(privateKeyPem: string): Promise<string> {
  return await signToken({
    audience: "/bench",
    subject: "caller",
    issuer: "kontrol",
    privateKeyPem,
  });
}

/** Progress on stderr, so stdout keeps only the tables. */
export function progress(what: string, since: number): void {
  const s = ((performance.now() - since) / 1000).toFixed(1);
  console.error(`  ${what}: ${s} s`);
}

/** Runs the call-path benchmark. */
export async function benchCallPath(
  options: CallPathOptions = {},
): Promise<CallPathReport> {
  const o: Required<CallPathOptions> = {
    rounds: options.rounds ?? 5,
    ms: options.ms ?? 1000,
    depth: options.depth ?? 100,
    conns: options.conns ?? 50,
  };
  await ensureKitejs();
  const pair = await generateKeyPair();
  const token: Auth = { type: "token", key: await benchToken(pair.private) };
  const servers: BenchServer[] = [];
  let pinned = false;
  const kitejs = await startKitejsServer({ transport: "raw", logLevel: 0 });
  try {
    const raw = await startServer("raw");
    servers.push(raw);
    const kite = await startServer("kite", {
      env: { BENCH_KONTROL_KEY: pair.public },
    });
    servers.push(kite);
    // Clients on CPU 0 (kite.js drivers inherit it), servers on CPU 1. Left
    // to the scheduler, a contender's rate depended on which one ran before
    // it by a quarter, as the processes moved between CPUs.
    pinned = navigator.hardwareConcurrency >= 2 &&
      (await Promise.all(
        [raw.pid, kite.pid, kitejs.pid].map((pid) => pinProcess(pid, "1")),
      )).every(Boolean) &&
      await pinProcess(Deno.pid, "0");
    const all = { conns: true, callbacks: true };
    const noCallbacks = { conns: true, callbacks: false };
    const seqOnly = { conns: false, callbacks: false };
    // Deno contenders: the call-path table's, then the authentication ones.
    const deno: [string, Opener, Phases][] = [
      ["raw Deno WebSocket echo", rawBuiltin(raw.port), noCallbacks],
      ["raw echo, TcpWebSocket client", rawTcp(raw.port), noCallbacks],
      ["kite (SockJS websocket)", kiteClients(kite.port, "websocket"), all],
      [
        "kite (raw websocket)",
        kiteClients(kite.port, "raw-websocket"),
        all,
      ],
      ["no credentials", kiteClients(kite.port, "raw-websocket"), seqOnly],
      [
        "token sent, not checked",
        kiteClients(kite.port, "raw-websocket", "square", token),
        seqOnly,
      ],
      [
        "token verified (cached)",
        kiteClients(kite.port, "raw-websocket", "squareAuth", token),
        seqOnly,
      ],
    ];
    const node: [string, string][] = [
      ["kite.js → kite.js (Node)", kitejs.url],
      ["kite.js → kite (Deno)", `ws://127.0.0.1:${kite.port}/kite`],
    ];
    const callNames = [...deno.slice(0, 4), ...node].map(([name]) => name);
    const authNames = deno.slice(4).map(([name]) => name);
    const samples = new Map<string, Samples>();
    // Round 0 is not counted: it lets the JIT compile both sides' code, which
    // would otherwise count against whichever contender comes first. Odd
    // rounds run in reverse order: in a fixed order the first kite contender
    // always met a server that had sat idle through both echo contenders.
    for (let r = 0; r <= o.rounds; r++) {
      const samplesOf = (name: string): Samples => {
        if (r === 0) return emptySamples(); // warm-up: not kept
        let s = samples.get(name);
        if (s === undefined) samples.set(name, s = emptySamples());
        return s;
      };
      const label = `round ${r === 0 ? "0 (warm-up)" : r}/${o.rounds}`;
      let t = performance.now();
      const opened: [string, Opener, Opened][] = [];
      for (const [name, open, phases] of deno) {
        opened.push([
          name,
          open,
          await openDeno(open, samplesOf(name), phases),
        ]);
      }
      await interleavedSequential(opened.map(([, , c]) => c), o.ms);
      progress(`${label} one at a time, all Deno contenders`, t);
      const turns = [
        ...opened.map(([name, open, c]) =>
          [name, () => runDenoRest(c, open, o)] as const
        ),
        ...node.map(([name, url]) =>
          [name, () => runKitejs(url, samplesOf(name), o)] as const
        ),
      ];
      for (const [name, run] of r % 2 ? turns.reverse() : turns) {
        t = performance.now();
        await run();
        progress(`${label} ${name}`, t);
      }
    }
    return {
      calls: callNames.map((name) => summarize(name, samples.get(name)!)),
      auth: authNames.map((name) => {
        const { sequentialPerSec, p50Us, p99Us, inFlightPerSec } = summarize(
          name,
          samples.get(name)!,
        );
        return { name, sequentialPerSec, p50Us, p99Us, inFlightPerSec };
      }),
      pinned,
    };
  } finally {
    if (pinned) {
      await pinProcess(Deno.pid, `0-${navigator.hardwareConcurrency - 1}`);
    }
    for (const s of servers) await s.stop();
    await kitejs.close();
  }
}
