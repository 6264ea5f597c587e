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
 * process per round. Contenders alternate within each round, in reverse
 * order every other round, after one uncounted warm-up round; figures are
 * medians over the rounds, latencies are quantiles over all samples.
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import type { Auth, Client } from "../../mod.ts";
import { generateKeyPair } from "../../kite/auth/keys.ts";
import { TcpWebSocket } from "../../kite/transport/websocket_client.ts";
import { signToken } from "../../kontrol/tokens.ts";
import { ensureKitejs, startKitejsServer } from "../../tests/helpers/kitejs.ts";
import { type BenchServer, startServer } from "./process.ts";
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
): Promise<{ perSec: number; lat: number[] }> {
  const lat: number[] = [];
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    const t = performance.now();
    await call();
    lat.push((performance.now() - t) * 1000);
  }
  return { perSec: lat.length / ((performance.now() - start) / 1000), lat };
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

async function runDeno(
  open: Opener,
  into: Samples,
  o: Required<CallPathOptions>,
  phases: { conns: boolean; callbacks: boolean },
): Promise<void> {
  const one = await open(1);
  const [c] = one.callers;
  try {
    for (let i = 0; i < 200; i++) await c.call(); // warm-up
    const s = await sequential(c.call, o.ms);
    into.seq.push(s.perSec);
    into.lat.push(...s.lat);
    into.fly.push(await lanes([c], o.depth, o.ms));
    if (phases.callbacks && c.callback) {
      for (let i = 0; i < 50; i++) await c.callback();
      const cb = await sequential(c.callback, o.ms);
      into.cb.push(cb.perSec);
      into.cbLat.push(...cb.lat);
    }
  } finally {
    await one.close();
  }
  if (!phases.conns) return;
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
  const kitejs = await startKitejsServer({ transport: "raw", logLevel: 0 });
  try {
    const raw = await startServer("raw");
    servers.push(raw);
    const kite = await startServer("kite", {
      env: { BENCH_KONTROL_KEY: pair.public },
    });
    servers.push(kite);
    const all = { conns: true, callbacks: true };
    const noCallbacks = { conns: true, callbacks: false };
    const calls: [string, (s: Samples) => Promise<void>][] = [
      [
        "raw Deno WebSocket echo",
        (s) => runDeno(rawBuiltin(raw.port), s, o, noCallbacks),
      ],
      [
        "raw echo, TcpWebSocket client",
        (s) => runDeno(rawTcp(raw.port), s, o, noCallbacks),
      ],
      [
        "kite (SockJS websocket)",
        (s) => runDeno(kiteClients(kite.port, "websocket"), s, o, all),
      ],
      [
        "kite (raw websocket)",
        (s) => runDeno(kiteClients(kite.port, "raw-websocket"), s, o, all),
      ],
      ["kite.js → kite.js (Node)", (s) => runKitejs(kitejs.url, s, o)],
      [
        "kite.js → kite (Deno)",
        (s) => runKitejs(`ws://127.0.0.1:${kite.port}/kite`, s, o),
      ],
    ];
    const seqOnly = { conns: false, callbacks: false };
    const auth: [string, (s: Samples) => Promise<void>][] = [
      [
        "no credentials",
        (s) => runDeno(kiteClients(kite.port, "raw-websocket"), s, o, seqOnly),
      ],
      [
        "token sent, not checked",
        (s) =>
          runDeno(
            kiteClients(kite.port, "raw-websocket", "square", token),
            s,
            o,
            seqOnly,
          ),
      ],
      [
        "token verified (cached)",
        (s) =>
          runDeno(
            kiteClients(kite.port, "raw-websocket", "squareAuth", token),
            s,
            o,
            seqOnly,
          ),
      ],
    ];
    const samples = new Map<string, Samples>();
    // Round 0 is not counted: it lets the JIT compile both sides' code, which
    // would otherwise count against whichever contender comes first. Odd
    // rounds run in reverse order: in a fixed order the first kite contender
    // always met a server that had sat idle through both echo contenders.
    const order = [...calls, ...auth];
    for (let r = 0; r <= o.rounds; r++) {
      for (const [name, run] of r % 2 ? [...order].reverse() : order) {
        let s = samples.get(name);
        if (s === undefined || r === 0) {
          s = emptySamples();
          if (r > 0) samples.set(name, s);
        }
        const t = performance.now();
        await run(s);
        progress(`round ${r === 0 ? "0 (warm-up)" : r}/${o.rounds} ${name}`, t);
      }
    }
    return {
      calls: calls.map(([name]) => summarize(name, samples.get(name)!)),
      auth: auth.map(([name]) => {
        const { sequentialPerSec, p50Us, p99Us, inFlightPerSec } = summarize(
          name,
          samples.get(name)!,
        );
        return { name, sequentialPerSec, p50Us, p99Us, inFlightPerSec };
      }),
    };
  } finally {
    for (const s of servers) await s.stop();
    await kitejs.close();
  }
}
