/**
 * The fuzzing engine behind `deno task fuzz` and `tests/hardening_fuzz_test.ts`:
 * starts a math kite and a Kontrol on 127.0.0.1, sends them malformed
 * inputs from a seeded PRNG (see `inputs.ts`) and checks each answer, while
 * well-behaved clients on their own connections keep calling both servers
 * and check every result. Bounded in count and time; loopback only.
 *
 * @module
 */
import { Kite, type Logger } from "../../mod.ts";
import { DEFAULT_CONFIG, type KiteConfig } from "../../kite/config.ts";
import type { Client } from "../../kite/client.ts";
import { mathKite } from "../../examples/math/server.ts";
import { Kontrol } from "../../kontrol/kontrol.ts";
import { MemoryStorage } from "../../storage/memory.ts";
import {
  call,
  type Expect,
  frame,
  type GenContext,
  type HttpInput,
  type Input,
  nextInput,
  type Target,
  type WsInput,
} from "./inputs.ts";
import { Rng } from "./prng.ts";
import { closeAll, recordCrashes } from "./stateful.ts";
import { FrameSocket, rawHttp } from "./wire.ts";
import { type FloodResult, type PeerCaps, peerFlood } from "./peer_flood.ts";

/** Options for {@linkcode runFuzz}. */
export interface FuzzOptions {
  /** Malformed inputs to send. @default {100000} */
  count?: number;
  /** PRNG seed. @default {1} */
  seed?: number;
  /** Stop generating after this long, ms. @default {900000} */
  timeLimitMs?: number;
  /** Connections opened in parallel for inputs that close theirs. @default {8} */
  closingConcurrency?: number;
  /** Inputs sent back to back on a live connection before a probe. @default {50} */
  batchSize?: number;
  /** HTTP requests in parallel. @default {8} */
  httpConcurrency?: number;
  /** The targets' `maxMessageBytes`. @default {65536} */
  maxMessageBytes?: number;
  /** Progress lines (e.g. `console.log`). */
  progress?: (line: string) => void;
  /**
   * Overrides for both servers' config that the inputs do not know about:
   * for checking that the fuzzer notices a server behaving otherwise.
   */
  targetConfig?: Partial<KiteConfig>;
  /**
   * Per-address caps of both servers, which the flood at the end of the
   * run fills. @default {{ connections: 200, xhrSessions: 60 }}
   */
  peerCaps?: PeerCaps;
}

/** One input whose answer was wrong or missing. */
export interface FuzzFailure {
  /** Input category. */
  category: string;
  /** Server. */
  target: Target;
  /** What was expected. */
  expected: string;
  /** What happened. */
  got: string;
  /** The start of the input. */
  input: string;
}

/** What a run found. */
export interface FuzzSummary {
  /** Seed used. */
  seed: number;
  /** Inputs asked for. */
  planned: number;
  /** Inputs sent. */
  sent: number;
  /** Inputs by category. */
  categories: Record<string, number>;
  /** Inputs by server. */
  targets: Record<Target, number>;
  /** Answers by kind: close, error reply, exact result, silence, HTTP status. */
  outcomes: Record<Expect["type"], number>;
  /** Inputs whose answer was wrong or missing. */
  failureCount: number;
  /** The first failures, in detail. */
  failures: FuzzFailure[];
  /** Uncaught errors and unhandled rejections in the process. */
  crashes: string[];
  /** ERROR lines logged by the servers (e.g. a request handler that threw). */
  serverErrors: string[];
  /** Calls made by the well-behaved clients. */
  goodCalls: number;
  /** Their wrong results. */
  goodWrong: number;
  /** Their failed calls. */
  goodFailed: number;
  /** Accepted connections left once the fuzzing connections had closed. */
  leftover: { kite: number; kontrol: number };
  /** The per-address flood at the end, per server. */
  flood: Partial<Record<Target, FloodResult>>;
  /** Whether the time limit stopped the run early. */
  stoppedByTime: boolean;
  /** Wall time, ms. */
  elapsedMs: number;
}

const WAIT_MS = 15_000;
const ROUND = 2_000;
const MAX_FAILURES_KEPT = 50;

/** A logger that keeps ERROR lines and drops the rest (the fuzzer makes plenty of warnings). */
function countingLogger(errors: string[], name: string): Logger {
  const drop = () => {};
  return {
    debug: drop,
    info: drop,
    warning: drop,
    error: (m: string) => void errors.push(`${name}: ${m}`),
  };
}

function preview(value: string | Uint8Array): string {
  const text = typeof value === "string"
    ? value
    : `<binary> ${new TextDecoder().decode(value.subarray(0, 200))}`;
  return text.length > 200 ? text.slice(0, 200) + "…" : text;
}

function describe(expect: Expect): string {
  switch (expect.type) {
    case "close":
      return `close ${expect.code} ${expect.reason}`;
    case "error":
      return `error ${expect.errorTypes.join("|")} ${expect.message ?? ""}`;
    case "result":
      return `result ${expect.json.slice(0, 120)}`;
    case "silent":
      return "no reply";
    case "http":
      return `HTTP ${expect.status.join("|")} ${expect.body ?? ""}`;
  }
}

/** Checks one `{error, result}` reply against an error or result expectation. */
function checkReply(expect: Expect, args: unknown): string | undefined {
  const reply = Array.isArray(args) ? args[0] : undefined;
  if (reply === null || typeof reply !== "object") {
    return `reply without {error, result}: ${JSON.stringify(args)}`;
  }
  const { error, result } = reply as { error?: unknown; result?: unknown };
  if (expect.type === "error") {
    if (error === null || typeof error !== "object") {
      return `no error, result ${JSON.stringify(result)?.slice(0, 200)}`;
    }
    const e = error as { type?: unknown; message?: unknown };
    if (!expect.errorTypes.includes(String(e.type))) {
      return `error type ${e.type}: ${e.message}`;
    }
    if (expect.message && !expect.message.test(String(e.message))) {
      return `error message ${JSON.stringify(e.message)}`;
    }
    return undefined;
  }
  if (expect.type === "result") {
    if (error !== null && error !== undefined) {
      return `error ${JSON.stringify(error)}`;
    }
    const got = JSON.stringify(result);
    return got === expect.json ? undefined : `result ${got?.slice(0, 200)}`;
  }
  return `a reply, expected ${describe(expect)}`;
}

/** Runs `worker` over `items` with at most `limit` running at once. */
async function pool<T>(
  items: T[],
  limit: number,
  worker: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const run = async () => {
    while (next < items.length) await worker(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
}

interface Target_ {
  name: Target;
  kite: Kite;
  url: string;
  port: number;
  origin: string;
}

/**
 * Fuzzes a math kite and a Kontrol. Never throws for a wrong answer: every
 * problem is counted in the summary.
 */
export async function runFuzz(options: FuzzOptions = {}): Promise<FuzzSummary> {
  const count = options.count ?? 100_000;
  const seed = options.seed ?? 1;
  const timeLimitMs = options.timeLimitMs ?? 900_000;
  const maxMessageBytes = options.maxMessageBytes ?? 65_536;
  const progress = options.progress ?? (() => {});
  const started = Date.now();
  const serverErrors: string[] = [];
  const crashes: string[] = [];
  const stopRecording = recordCrashes(crashes);

  const peerCaps = options.peerCaps ?? { connections: 200, xhrSessions: 60 };
  const serverConfig = {
    ip: "127.0.0.1",
    port: 0,
    maxMessageBytes,
    // Short, so the sessions fuzz inputs leave unpolled soon free their
    // slots; the poll that must find a closed session is sent before the
    // close (inputs.ts, xhrBadMessage), not after this delay can run out.
    sockjsDisconnectDelayMs: 2_000,
    maxConnectionsPerAddress: peerCaps.connections,
    maxXhrSessionsPerAddress: peerCaps.xhrSessions,
    ...options.targetConfig,
  };
  const math = mathKite({
    env: false,
    kiteKey: false,
    logger: countingLogger(serverErrors, "kite"),
    config: serverConfig,
  });
  const kontrol = new Kontrol({
    storage: new MemoryStorage(),
    kiteConfig: { ...serverConfig, logLevel: "FATAL" },
  });
  Object.assign(kontrol.kite.logger, countingLogger(serverErrors, "kontrol"));
  const closers: (() => Promise<void> | void)[] = [];
  const summary: FuzzSummary = {
    seed,
    planned: count,
    sent: 0,
    categories: {},
    targets: { kite: 0, kontrol: 0 },
    outcomes: { close: 0, error: 0, result: 0, silent: 0, http: 0 },
    failureCount: 0,
    failures: [],
    crashes,
    serverErrors,
    goodCalls: 0,
    goodWrong: 0,
    goodFailed: 0,
    leftover: { kite: -1, kontrol: -1 },
    flood: {},
    stoppedByTime: false,
    elapsedMs: 0,
  };
  const fail = (
    input: { category: string; target: Target },
    expect: Expect,
    got: string,
    sent: string | Uint8Array | string[],
  ) => {
    summary.failureCount++;
    if (summary.failures.length < MAX_FAILURES_KEPT) {
      summary.failures.push({
        category: input.category,
        target: input.target,
        expected: describe(expect),
        got,
        input: Array.isArray(sent) ? sent.join(" ") : preview(sent),
      });
    }
  };

  try {
    await kontrol.init();
    closers.push(() => kontrol.kite.close());
    const servedKontrol = await kontrol.kite.serve({ hostname: "127.0.0.1" });
    closers.push(() => math.close());
    const servedMath = await math.serve({ hostname: "127.0.0.1" });
    const targets: Record<Target, Target_> = {
      kite: {
        name: "kite",
        kite: math,
        url: servedMath.url,
        port: servedMath.port,
        origin: `http://127.0.0.1:${servedMath.port}`,
      },
      kontrol: {
        name: "kontrol",
        kite: kontrol.kite,
        url: servedKontrol.url,
        port: servedKontrol.port,
        origin: `http://127.0.0.1:${servedKontrol.port}`,
      },
    };
    const ctx: GenContext = {
      kiteKey: await kontrol.signKiteKey("fuzzer"),
      maxMessageBytes,
      maxJsonDepth: DEFAULT_CONFIG.maxJsonDepth,
      methods: {
        kite: knownMethods(math),
        kontrol: knownMethods(kontrol.kite),
      },
      fetch: (url, init) =>
        fetch(url, { ...init, signal: AbortSignal.timeout(WAIT_MS) }),
      rawHttp: (port, request, options) =>
        rawHttp(port, request, { timeoutMs: 3_000, ...options }),
    };

    // The well-behaved side: a registered kite, and a caller of both servers.
    const goodKey = await kontrol.signKiteKey("fuzzgood");
    const registered = new Kite("goodkite", "1.0.0", {
      env: false,
      kiteKey: goodKey,
      logger: countingLogger([], "goodkite"),
      config: { ip: "127.0.0.1", environment: "fuzz" },
    });
    closers.push(() => registered.close());
    await registered.serve({ hostname: "127.0.0.1" });
    await registered.register();
    const caller = new Kite("goodcaller", "1.0.0", {
      env: false,
      kiteKey: goodKey,
      logger: countingLogger([], "goodcaller"),
      config: { ip: "127.0.0.1", environment: "fuzz" },
    });
    closers.push(() => caller.close());
    const toMath = caller.newClient(targets.kite.url);
    const toKontrol = caller.newClient(targets.kontrol.url);
    await toMath.dial();
    await toKontrol.dial();
    let stopGood = false;
    const good = goodLoop(
      seed,
      toMath,
      toKontrol,
      registered,
      summary,
      () => stopGood,
    );

    const live: Record<Target, LiveConnection> = {
      kite: new LiveConnection(targets.kite, fail, summary),
      kontrol: new LiveConnection(targets.kontrol, fail, summary),
    };
    closers.push(() => live.kite.close(), () => live.kontrol.close());
    const rng = new Rng(seed);
    const opts = {
      closing: options.closingConcurrency ?? 8,
      batch: options.batchSize ?? 50,
      http: options.httpConcurrency ?? 8,
    };
    while (summary.sent < count) {
      if (Date.now() - started > timeLimitMs) {
        summary.stoppedByTime = true;
        break;
      }
      const n = Math.min(ROUND, count - summary.sent);
      const closing: WsInput[] = [];
      const liveInputs: Record<Target, WsInput[]> = { kite: [], kontrol: [] };
      const http: HttpInput[] = [];
      for (let i = 0; i < n; i++) {
        const input: Input = nextInput(rng, ctx);
        summary.categories[input.category] =
          (summary.categories[input.category] ?? 0) + 1;
        summary.outcomes[input.expect.type]++;
        summary.targets[input.target]++;
        if (input.kind === "http") http.push(input);
        else if (input.closing) closing.push(input);
        else liveInputs[input.target].push(input);
      }
      await Promise.all([
        pool(
          closing,
          opts.closing,
          (input) => runClosing(targets[input.target], input, fail),
        ),
        pool(
          http,
          opts.http,
          (input) => runHttp(targets[input.target], input, fail),
        ),
        live.kite.run(liveInputs.kite, opts.batch),
        live.kontrol.run(liveInputs.kontrol, opts.batch),
      ]);
      summary.sent += n;
      progress(
        `${summary.sent}/${count} inputs, ${summary.failureCount} failures, ` +
          `${summary.goodCalls} good calls (${summary.goodWrong} wrong, ${summary.goodFailed} failed), ` +
          `${Math.round((Date.now() - started) / 1000)} s`,
      );
    }
    await live.kite.close();
    await live.kontrol.close();
    // One peer takes every slot it may, while the good clients go on.
    // Sessions the fuzz inputs left behind go first: one expiring during
    // the flood would free a slot, and the session that must be refused
    // with every slot held would get it.
    for (const target of [targets.kite, targets.kontrol]) {
      await onlyGoodConnections(target);
      const flood = await peerFlood(
        target.origin,
        peerCaps,
        () => new Promise((r) => setTimeout(r, 200)),
        WAIT_MS,
      );
      summary.flood[target.name] = flood;
      const category = "peer:flood";
      summary.categories[category] = (summary.categories[category] ?? 0) +
        flood.xhrAccepted + flood.wsAccepted;
      for (const problem of flood.problems) {
        fail(
          { category, target: target.name },
          { type: "http", status: [503] },
          problem,
          "one peer opening sessions until refused",
        );
      }
    }
    stopGood = true;
    await good;
    // Once the fuzzing connections are gone, only the good ones may remain.
    await onlyGoodConnections(targets.kite);
    await onlyGoodConnections(targets.kontrol);
    summary.leftover = {
      kite: math.connections.size - GOOD_CONNECTIONS.kite,
      kontrol: kontrol.kite.connections.size - GOOD_CONNECTIONS.kontrol,
    };
  } finally {
    await closeAll(closers, crashes);
    await kontrol.storage.close();
    // Let late events of closed sockets land before the listeners go.
    await new Promise((r) => setTimeout(r, 50));
    stopRecording();
    summary.elapsedMs = Date.now() - started;
  }
  return summary;
}

/**
 * The good clients' connections: the caller's on each server, and the
 * registered kite's on Kontrol.
 */
const GOOD_CONNECTIONS: Record<Target, number> = { kite: 1, kontrol: 2 };

/** Waits (at most `WAIT_MS`) until `target` holds only the good clients' connections. */
async function onlyGoodConnections(target: Target_): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (
    Date.now() < deadline &&
    target.kite.connections.size > GOOD_CONNECTIONS[target.name]
  ) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

function knownMethods(kite: Kite): ReadonlySet<string> {
  const names = [
    "square",
    "squareCb",
    "echo",
    "register",
    "getKites",
    "getToken",
    "getKey",
    "registerMachine",
    "cancelWatcher",
    "kite.ping",
    "kite.systemInfo",
    "kite.heartbeat",
    "kite.log",
    "kite.print",
    "kite.echo",
    "kite.prompt",
    "kite.getPass",
  ];
  return new Set(names.filter((n) => kite.method(n) !== undefined));
}

/** Keeps calling both servers until told to stop, checking every answer. */
async function goodLoop(
  seed: number,
  toMath: Client,
  toKontrol: Client,
  registered: Kite,
  summary: FuzzSummary,
  stopped: () => boolean,
): Promise<void> {
  const rng = new Rng(seed ^ 0x5eed);
  const query = {
    username: "fuzzgood",
    environment: "fuzz",
    name: "goodkite",
  };
  const check = async (
    p: Promise<unknown>,
    ok: (v: unknown) => boolean,
  ) => {
    summary.goodCalls++;
    try {
      if (!ok(await p)) summary.goodWrong++;
    } catch {
      summary.goodFailed++;
    }
  };
  for (let i = 0; !stopped(); i++) {
    const n = rng.range(-1_000_000, 1_000_000);
    const value = rng.jsonValue(4);
    const text = JSON.stringify(value);
    await Promise.all([
      check(toMath.tell("square", n), (v) => v === n * n),
      check(toMath.tell("echo", value), (v) => JSON.stringify(v) === text),
      i % 4 === 0
        ? check(toKontrol.tell("getKites", { query }), (v) => {
          const kites = (v as { kites?: { kite: { id: string } }[] }).kites;
          return kites?.length === 1 &&
            kites[0].kite.id === registered.identity.id;
        })
        : Promise.resolve(),
    ]);
  }
}

/** Sends one input that must close its connection, on a connection of its own. */
async function runClosing(
  target: Target_,
  input: WsInput,
  fail: FailFn,
): Promise<void> {
  const sent = input.build(0);
  const expect = input.expect as Extract<Expect, { type: "close" }>;
  const url = target.url.replace(/^http/, "ws") +
    (input.raw
      ? ""
      : `/${100 + (Math.random() * 900 | 0)}/${
        crypto.randomUUID().slice(0, 20)
      }/websocket`);
  let ws: FrameSocket;
  try {
    ws = await FrameSocket.open(url, WAIT_MS);
  } catch (err) {
    return fail(input, expect, `connect failed: ${err}`, sent);
  }
  try {
    const deadline = Date.now() + WAIT_MS;
    if (!input.raw) {
      const open = await ws.next(deadline);
      if (open !== "o") {
        return fail(input, expect, `no "o" frame: ${open}`, sent);
      }
    }
    ws.send(sent);
    if (!input.raw) {
      const frame = await ws.next(deadline);
      const m = frame ? /^c\[(\d+),(".*")\]$/s.exec(frame) : null;
      if (!m) {
        return fail(input, expect, `frame ${preview(frame ?? "<none>")}`, sent);
      }
      const reason = JSON.parse(m[2]) as string;
      if (Number(m[1]) !== expect.code || !expect.reason.test(reason)) {
        return fail(input, expect, `c[${m[1]},${m[2]}]`, sent);
      }
    }
    const closed = await ws.waitClosed(deadline);
    if (!closed) return fail(input, expect, "still open", sent);
    if (closed.code !== expect.code) {
      return fail(
        input,
        expect,
        `closed ${closed.code} ${closed.reason}`,
        sent,
      );
    }
    if (input.raw && ws.frames.length > 0) {
      return fail(input, expect, `frames ${preview(ws.frames[0])}`, sent);
    }
  } finally {
    await ws.close();
  }
}

async function runHttp(
  target: Target_,
  input: HttpInput,
  fail: FailFn,
): Promise<void> {
  const expect = input.expect as Extract<Expect, { type: "http" }>;
  let answer: { status: number; body: string };
  try {
    answer = await input.run({ origin: target.origin, port: target.port });
  } catch (err) {
    return fail(input, expect, `request failed: ${err}`, input.category);
  }
  if (
    !expect.status.includes(answer.status) ||
    (expect.body && !expect.body.test(answer.body))
  ) {
    fail(
      input,
      expect,
      `HTTP ${answer.status} ${preview(answer.body)}`,
      input.category,
    );
  }
}

type FailFn = (
  input: { category: string; target: Target },
  expect: Expect,
  got: string,
  sent: string | Uint8Array | string[],
) => void;

/**
 * One SockJS connection per server that takes the inputs that must not end
 * it, in batches followed by a probe call. Reopened (and counted as a
 * failure) if the server closes it.
 */
class LiveConnection {
  #target: Target_;
  #fail: FailFn;
  #ws: FrameSocket | undefined;
  #nextCb = 1;
  #probe = 0;

  constructor(target: Target_, fail: FailFn, _summary: FuzzSummary) {
    this.#target = target;
    this.#fail = fail;
  }

  async close(): Promise<void> {
    await this.#ws?.close();
    this.#ws = undefined;
  }

  async #socket(): Promise<FrameSocket> {
    if (this.#ws && !this.#ws.closeInfo) return this.#ws;
    await this.#ws?.close();
    const url = this.#target.url.replace(/^http/, "ws") +
      `/999/live${crypto.randomUUID().slice(0, 12)}/websocket`;
    const ws = await FrameSocket.open(url, WAIT_MS);
    const open = await ws.next(Date.now() + WAIT_MS);
    if (open !== "o") throw new Error(`no "o" frame on the live connection`);
    this.#ws = ws;
    return ws;
  }

  async run(inputs: WsInput[], batch: number): Promise<void> {
    for (let i = 0; i < inputs.length; i += batch) {
      await this.#batch(inputs.slice(i, i + batch));
    }
  }

  async #batch(inputs: WsInput[]): Promise<void> {
    let ws: FrameSocket;
    try {
      ws = await this.#socket();
    } catch (err) {
      for (const input of inputs) {
        this.#fail(input, input.expect, `live connection: ${err}`, "");
      }
      return;
    }
    const waiting = new Map<number, WsInput>();
    const silent = new Map<number, WsInput>();
    const sentText = new Map<number, string | Uint8Array>();
    for (const input of inputs) {
      const cb = this.#nextCb++;
      const sent = input.build(cb);
      sentText.set(cb, sent);
      if (input.expect.type === "silent") silent.set(cb, input);
      else waiting.set(cb, input);
      ws.send(sent);
    }
    const probeCb = this.#nextCb++;
    const n = ++this.#probe;
    const probeIsKite = this.#target.name === "kite";
    ws.send(frame(
      probeIsKite
        ? call("square", [n], probeCb)
        : call("kite.ping", [], probeCb),
    ));
    const probeExpect: Expect = {
      type: "result",
      json: JSON.stringify(probeIsKite ? n * n : "pong"),
    };
    const probeInput = {
      category: "probe",
      target: this.#target.name,
    };
    let probeDone = false;
    const deadline = Date.now() + WAIT_MS;
    while (!probeDone || waiting.size > 0) {
      const f = await ws.next(deadline);
      if (f === undefined) break;
      if (!f.startsWith("a[")) {
        // A close frame on the live connection: no input here may cause one.
        const all = [...waiting.values(), ...silent.values()];
        this.#fail(
          all[0] ?? probeInput,
          all[0]?.expect ?? probeExpect,
          `live connection got ${preview(f)}`,
          [...sentText.values()].map((s) => preview(s)),
        );
        break;
      }
      for (const text of JSON.parse(f.slice(1)) as string[]) {
        const msg = JSON.parse(text) as { method: unknown; arguments: unknown };
        const id = msg.method;
        if (id === probeCb) {
          probeDone = true;
          const problem = checkReply(probeExpect, msg.arguments);
          if (problem) {
            this.#fail(probeInput, probeExpect, problem, "probe");
          }
          continue;
        }
        const input = typeof id === "number" ? waiting.get(id) : undefined;
        if (!input) {
          const s = typeof id === "number" ? silent.get(id) : undefined;
          this.#fail(
            s ?? probeInput,
            s?.expect ?? { type: "silent" },
            `unexpected message ${preview(text)}`,
            s ? sentText.get(id as number)! : "",
          );
          continue;
        }
        waiting.delete(id as number);
        const problem = checkReply(input.expect, msg.arguments);
        if (problem) {
          this.#fail(input, input.expect, problem, sentText.get(id as number)!);
        }
      }
    }
    if (!probeDone) {
      this.#fail(probeInput, probeExpect, "no answer to the probe", "probe");
    }
    for (const [cb, input] of waiting) {
      this.#fail(input, input.expect, "no answer", sentText.get(cb)!);
    }
  }
}
