/**
 * Drives a real kite.js 1.0.13 peer (Node.js) from Deno tests and benchmarks.
 *
 * The Node side lives in `tests/kitejs/` (`server.cjs`, `client.cjs`, with
 * its own `package.json` and `package-lock.json`). {@linkcode ensureKitejs}
 * installs it with `npm ci` on first use. Every process is started with
 * `Deno.Command("node", …)`, talks JSON lines on stdout, logs to stderr, and
 * is stopped by PID.
 *
 * @example
 * ```ts
 * const server = await startKitejsServer({ transport: "sockjs" });
 * try {
 *   const [r] = await runKitejsClient({
 *     url: server.url,
 *     transport: "sockjs",
 *     calls: [{ method: "square", args: [4] }],
 *   });
 *   // r => { method: "square", ok: true, result: 16 }
 * } finally {
 *   await server.close();
 * }
 * ```
 *
 * @module
 */
import { lines } from "./processes.ts";

/** How a kite.js peer carries dnode messages (docs/protocol.md §1.7). */
export type KitejsTransport = "raw" | "sockjs";

/** A single sockjs-client transport, to pin the client to it. */
export type SockjsClientTransport =
  | "websocket"
  | "xhr-streaming"
  | "xhr-polling";

/** The `authentication` object a kite.js client sends with every call. */
export interface KitejsAuth {
  /** e.g. `"kiteKey"` or `"token"`. */
  type: string;
  /** The kite.key JWT or the token. */
  key: string;
}

/** Identity fields a kite.js client sends as `kite` (unset ones get kite.js defaults). */
export interface KitejsIdentity {
  /** @default {"kitejs-client" (calls mode) or "kontrol" (getKites mode)} */
  name?: string;
  /** @default {"anonymous"} */
  username?: string;
  /** @default {"browser-environment"} */
  environment?: string;
  /** @default {"1.0.13"} */
  version?: string;
  /** @default {"browser-region"} */
  region?: string;
  /** @default {"browser-hostname"} */
  hostname?: string;
}

/** A running kite.js `KiteServer` (see `tests/kitejs/server.cjs` for its methods). */
export interface KitejsServer {
  /** `ws://127.0.0.1:N/kite` (raw) or `http://127.0.0.1:N/kite` (SockJS). */
  url: string;
  /** The TCP port it listens on. */
  port: number;
  /** Its process id. */
  pid: number;
  /** What kite.js logged on stderr so far (last 64 KiB). */
  stderr(): string;
  /** Stops the process (SIGTERM by PID) and waits for it to exit. Idempotent. */
  close(): Promise<void>;
  /** Same as `close`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for {@linkcode startKitejsServer}. */
export interface StartKitejsServerOptions {
  /** `raw` = kite.js' `ws` WebSocket server (any path); `sockjs` = sockjs-node under `prefix`. */
  transport: KitejsTransport;
  /** @default {0 (a free port)} */
  port?: number;
  /** SockJS prefix; also the path part of `url`. @default {"/kite"} */
  prefix?: string;
  /** kite.js log level (0 critical … 5 debug), logged to stderr. @default {1} */
  logLevel?: number;
  /** @default {30_000} */
  readyTimeoutMs?: number;
}

/** One call for the kite.js client to make. */
export interface KitejsCall {
  /** Method name, or `"$waitServed"` with `args: [n]` to wait until the remote has called this client n times. */
  method: string;
  /** `withArgs`. Every `"$callback"` (at any depth) becomes a function that records its arguments. */
  args: unknown[];
  /** Per-call timeout (a kite.js call to an unknown method never returns). @default {the client's `timeoutMs`} */
  timeoutMs?: number;
  /** If the reply comes before any `"$callback"` was called, wait for the first invocation too. */
  waitForCallback?: boolean;
  /** Benchmark form: make the call this many times and report one result with `stats`. */
  repeat?: number;
  /** With `repeat`: calls in flight at once. @default {1} */
  concurrency?: number;
}

/** Statistics of a call made with `repeat`. */
export interface KitejsRepeatStats {
  /** Calls made. */
  count: number;
  /** Calls that got a success reply. */
  ok: number;
  /** Calls that got an error, a timeout or a disconnect. */
  failed: number;
  /** Of `failed`, the timeouts. */
  timeouts: number;
  /** Wall time of all repetitions, measured in Node. */
  elapsedMs: number;
}

/** What the kite.js client saw for one call. */
export interface KitejsCallResult {
  /** The method called. */
  method: string;
  /** True for a reply whose `error` was null or missing. */
  ok: boolean;
  /** `result` as kite.js passed it on (absent when the wire had none). */
  result?: unknown;
  /**
   * The error object exactly as it came over the wire, or
   * `{type:"timeout"|"disconnect", message}` made up by the client script.
   */
  error?: unknown;
  /** Set when the call timed out. */
  timeout?: boolean;
  /** Arguments of the first invocation of a `"$callback"`, if any was invoked. */
  callbackArgs?: unknown[];
  /** Arguments of every `"$callback"` invocation, in order (present when the call had one). */
  callbackCalls?: unknown[][];
  /** Present for `repeat` calls. */
  stats?: KitejsRepeatStats;
}

/**
 * How the kite.js client answers a method it serves to the remote:
 * `"echo"` replies with the first argument; otherwise, in this order,
 * `callFunctions` calls every function argument with those arguments,
 * `throw` throws, `noReply` stays silent, `error` replies `(error)`, and
 * else `(null, result ?? null)`. kite.js clients reply positionally
 * (`"arguments":[err, result]`), not with an `{error, result}` object.
 */
export type KitejsServeBehaviour = "echo" | {
  result?: unknown;
  error?: unknown;
  throw?: string;
  noReply?: boolean;
  callFunctions?: unknown[];
};

/** A call the remote made to the kite.js client (default `kite.*` methods included). */
export interface KitejsServedCall {
  /** The method the remote called. */
  method: string;
  /** `withArgs` as received (functions shown as `"[Function]"`). */
  withArgs: unknown;
  /** The caller's `kite` field; absent when the caller sent none. */
  kite?: Record<string, unknown>;
  /** The caller's `authentication`; absent when the key was missing, `null` when null. */
  authentication?: unknown;
}

/** Options for {@linkcode runKitejsClient}. */
export interface RunKitejsClientOptions {
  /** Where to connect: `ws://…` for raw, `http://…/kite` for SockJS. */
  url: string;
  /** `raw` = a plain WebSocket on `url`; `sockjs` = sockjs-client. */
  transport: KitejsTransport;
  /** Restrict sockjs-client to one transport (its `transports` option). */
  sockjsTransport?: SockjsClientTransport;
  /** Sent as `authentication` with every call. */
  auth?: KitejsAuth;
  /** Calls to make, one after another. */
  calls: KitejsCall[];
  /** Methods this client serves to the remote (kite.js `Kite` `api` option). */
  serve?: Record<string, KitejsServeBehaviour>;
  /** The client's own identity. */
  kite?: KitejsIdentity;
  /** Default per-call timeout. @default {5_000} */
  timeoutMs?: number;
  /** @default {10_000} */
  connectTimeoutMs?: number;
  /** kite.js log level for its stderr. @default {0} */
  logLevel?: number;
}

/** Everything one client run produced. */
export interface KitejsClientRun {
  /** One result per call, in order. */
  calls: KitejsCallResult[];
  /** Calls the remote made to the client, in order of arrival. */
  served: KitejsServedCall[];
  /** The client's stderr (last 64 KiB). */
  stderr: string;
}

/** Options for {@linkcode kitejsGetKites}. */
export interface KitejsGetKitesOptions {
  /** Kontrol's URL, e.g. `http://127.0.0.1:4000/kite`. */
  kontrolUrl: string;
  /** Sent as `{type: "kiteKey", key}`; `""` sends no `authentication` at all. */
  kiteKey: string;
  /** Sent as is: kite.js does not fill in the missing query fields. */
  query: Record<string, string>;
  /** @default {"sockjs"} */
  transport?: KitejsTransport;
  /** Restrict sockjs-client to one transport. */
  sockjsTransport?: SockjsClientTransport;
  /** Identity of the kite.js Kontrol client (its `name` defaults to "kontrol"). */
  kite?: KitejsIdentity;
  /** @default {5_000} */
  timeoutMs?: number;
}

/** A kite as kite.js' `Kontrol.fetchKites` hands it back (a `Kite` object, flattened). */
export interface KitejsFoundKite {
  /** `getKiteInfo()` of the created Kite: kite.js gives it a fresh random `id`. */
  kite: Record<string, string>;
  /** The descriptor's `url`. */
  url: string;
  /** The descriptor's `token` (kite.js stores it as `auth: {type: "token", key}`). */
  token: string;
}

/** What `kitejsGetKites` reports. */
export interface KitejsGetKitesResult {
  /** True when fetchKites resolved normally. */
  ok: boolean;
  /** The kites as kite.js sees them (when `ok`). */
  kites?: KitejsFoundKite[];
  /** The raw `getKites` result object as it arrived (e.g. `{kites:[{kite,url,keyId,token}]}`). */
  result?: unknown;
  /** The wire error, or `{type:"timeout"|"disconnect"|"kitejsThrew", message}`. */
  error?: unknown;
  /** Set when no reply came in time. */
  timeout?: boolean;
}

const KITEJS_DIR = urlToPath(new URL("../kitejs/", import.meta.url));
const STDERR_LIMIT = 64 * 1024;
const DEFAULT_READY_TIMEOUT_MS = 30_000;
const DEFAULT_CALL_TIMEOUT_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
// Node start-up plus slack for a loaded machine, on top of the call timeouts.
const PROCESS_SLACK_MS = 30_000;

function urlToPath(url: URL): string {
  const path = decodeURIComponent(url.pathname);
  return Deno.build.os === "windows"
    ? path.slice(1).replaceAll("/", "\\")
    : path;
}

async function mtime(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? 0;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/** True when node_modules holds a finished install of the current lock file. */
async function installed(): Promise<boolean> {
  // npm writes node_modules/.package-lock.json last, so it marks a finished
  // install; an older one means package-lock.json changed since.
  const done = await mtime(`${KITEJS_DIR}node_modules/.package-lock.json`);
  const lock = await mtime(`${KITEJS_DIR}package-lock.json`);
  return done !== undefined && lock !== undefined && done >= lock &&
    await mtime(`${KITEJS_DIR}node_modules/kite.js/package.json`) !== undefined;
}

const MISSING_NODE_HINT =
  "install Node.js 18+ with npm to run the kite.js interop tests";

async function toolOutput(
  tool: string,
  args: string[],
): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(tool, {
      args,
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success
      ? new TextDecoder().decode(out.stdout).trim()
      : undefined;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

async function requireNode(): Promise<void> {
  // When `node` is not on PATH, Deno puts its own `node` shim there for
  // subprocesses; that would run kite.js under Deno's Node compatibility
  // layer instead of a real Node.js peer.
  const probe =
    "process.stdout.write(process.versions.deno ? 'deno' : process.versions.node)";
  const version = await toolOutput("node", ["-e", probe]);
  if (version === undefined) {
    throw new Error(
      `the kite.js peer needs Node.js, but \`node\` is not on PATH (${MISSING_NODE_HINT})`,
    );
  }
  if (version === "deno") {
    throw new Error(
      `the kite.js peer needs Node.js, but \`node\` runs Deno's Node shim (${MISSING_NODE_HINT})`,
    );
  }
}

async function requireNpm(): Promise<void> {
  if (await toolOutput("npm", ["--version"]) === undefined) {
    throw new Error(
      `the kite.js peer needs npm to install, but \`npm\` is not on PATH (${MISSING_NODE_HINT})`,
    );
  }
}

async function install(): Promise<void> {
  await requireNode();
  if (await installed()) return;
  await requireNpm();
  // Test files run in parallel processes; an exclusive lock on the lock file
  // keeps two `npm ci` runs from racing in one node_modules.
  using lockFile = await Deno.open(`${KITEJS_DIR}package-lock.json`, {
    read: true,
  });
  await lockFile.lock(true);
  try {
    if (await installed()) return;
    const out = await new Deno.Command("npm", {
      args: ["ci", "--no-audit", "--no-fund", "--loglevel=error"],
      cwd: KITEJS_DIR,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const text = new TextDecoder().decode(out.stdout) +
        new TextDecoder().decode(out.stderr);
      throw new Error(
        `\`npm ci\` in ${KITEJS_DIR} failed (exit ${out.code}):\n${text.trim()}`,
      );
    }
  } finally {
    await lockFile.unlock();
  }
}

let ensuring: Promise<void> | undefined;

/**
 * Makes sure `tests/kitejs/node_modules` is installed, running `npm ci`
 * (quietly) once if it is missing. Safe to call from many tests and
 * processes at once.
 *
 * @throws {Error} if `node` or `npm` is missing, or `npm ci` fails.
 */
export function ensureKitejs(): Promise<void> {
  ensuring ??= install().catch((err) => {
    ensuring = undefined; // let a later call try again
    throw err;
  });
  return ensuring;
}

/** Keeps the tail of a byte stream as text. */
class TailBuffer {
  #text = "";
  append(chunk: string): void {
    this.#text += chunk;
    if (this.#text.length > STDERR_LIMIT) {
      this.#text = this.#text.slice(-STDERR_LIMIT);
    }
  }
  toString(): string {
    return this.#text;
  }
}

async function drainText(
  stream: ReadableStream<Uint8Array>,
  into: TailBuffer,
): Promise<void> {
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    into.append(chunk);
  }
}

function killQuietly(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already exited: nothing to stop.
  }
}

function withStderr(message: string, stderr: TailBuffer): Error {
  const text = stderr.toString().trim();
  return new Error(
    text ? `${message}\n--- kite.js stderr ---\n${text}` : message,
  );
}

function spawnNode(script: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command("node", {
    args: [`${KITEJS_DIR}${script}`, ...args],
    cwd: KITEJS_DIR,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * Starts `tests/kitejs/server.cjs`: a kite.js `KiteServer` on 127.0.0.1
 * serving `square`, `squareCb`, `echo`, `fail`, `throws`, `callMeBack`,
 * `callClient`, a `getKites` stub and kite.js' default `kite.*` methods.
 * Resolves once it prints its ready line.
 *
 * @throws {Error} with the server's stderr if it exits or is not ready in time.
 */
export async function startKitejsServer(
  opts: StartKitejsServerOptions,
): Promise<KitejsServer> {
  await ensureKitejs();
  const args = [
    "--transport",
    opts.transport,
    "--port",
    String(opts.port ?? 0),
  ];
  if (opts.prefix !== undefined) args.push("--prefix", opts.prefix);
  if (opts.logLevel !== undefined) {
    args.push("--log-level", String(opts.logLevel));
  }
  const child = spawnNode("server.cjs", args);
  const stderr = new TailBuffer();
  const stderrDone = drainText(child.stderr, stderr);
  const stdin = child.stdin.getWriter(); // held open: closing it also stops the server
  const stdout = lines(child.stdout);

  let closed: Promise<void> | undefined;
  const stdoutRest = async (): Promise<void> => {
    for await (
      const _ of stdout
    ) { /* nothing else is printed; keep the pipe drained */ }
  };
  const close = (): Promise<void> => {
    closed ??= (async () => {
      killQuietly(child, "SIGTERM");
      await stdin.close().catch(() => {});
      await child.status;
      await Promise.all([stdoutRest(), stderrDone]);
    })();
    return closed;
  };

  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), readyTimeoutMs);
  });
  try {
    const first = await Promise.race([stdout.next(), timedOut]);
    if (first === "timeout") {
      throw withStderr(
        `kite.js server was not ready within ${readyTimeoutMs} ms`,
        stderr,
      );
    }
    if (first.done) {
      const { code } = await child.status;
      await stderrDone;
      throw withStderr(
        `kite.js server exited (code ${code}) before it was ready`,
        stderr,
      );
    }
    let ready: { ready?: boolean; port?: number; url?: string };
    try {
      ready = JSON.parse(first.value);
    } catch {
      throw withStderr(
        `kite.js server printed a non-JSON line: ${first.value}`,
        stderr,
      );
    }
    if (
      !ready.ready || typeof ready.port !== "number" ||
      typeof ready.url !== "string"
    ) {
      throw withStderr(
        `unexpected ready line from kite.js server: ${first.value}`,
        stderr,
      );
    }
    const { port, url } = ready;
    return {
      url,
      port,
      pid: child.pid,
      stderr: () => stderr.toString(),
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    await close();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

interface ClientLine {
  done?: boolean;
  served?: string;
  method?: string;
  getKites?: boolean;
  [key: string]: unknown;
}

async function runClientScript(
  config: Record<string, unknown>,
  overallTimeoutMs: number,
): Promise<{
  lines: ClientLine[];
  stderr: string;
}> {
  await ensureKitejs();
  const child = spawnNode("client.cjs", []);
  const stderr = new TailBuffer();
  const stderrDone = drainText(child.stderr, stderr);
  const stdoutDone = (async () => {
    const out: string[] = [];
    for await (const line of lines(child.stdout)) {
      if (line.trim()) out.push(line);
    }
    return out;
  })();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(config)));
  await writer.close();

  let killedForTimeout = false;
  const watchdog = setTimeout(() => {
    killedForTimeout = true;
    killQuietly(child, "SIGKILL");
  }, overallTimeoutMs);
  try {
    const [status, rawLines] = await Promise.all([
      child.status,
      stdoutDone,
      stderrDone,
    ]);
    if (killedForTimeout) {
      throw withStderr(
        `kite.js client did not finish within ${overallTimeoutMs} ms and was killed`,
        stderr,
      );
    }
    const parsed: ClientLine[] = [];
    for (const line of rawLines) {
      try {
        parsed.push(JSON.parse(line));
      } catch {
        throw withStderr(
          `kite.js client printed a non-JSON line: ${line}`,
          stderr,
        );
      }
    }
    if (!status.success) {
      throw withStderr(
        `kite.js client exited with code ${status.code}`,
        stderr,
      );
    }
    if (!parsed.some((l) => l.done === true)) {
      throw withStderr(
        'kite.js client exited without its final {"done":true} line',
        stderr,
      );
    }
    return { lines: parsed, stderr: stderr.toString() };
  } finally {
    clearTimeout(watchdog);
  }
}

/**
 * Like {@linkcode runKitejsClient}, but also returns the calls the remote
 * made to the client (its `serve` methods and the default `kite.*` ones) and
 * the client's stderr.
 *
 * @throws {Error} with the client's stderr if it cannot connect, crashes or hangs.
 */
export async function runKitejsClientDetailed(
  opts: RunKitejsClientOptions,
): Promise<KitejsClientRun> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let budget = connectTimeoutMs + PROCESS_SLACK_MS;
  for (const call of opts.calls) {
    const rounds = call.repeat
      ? Math.ceil(call.repeat / Math.max(1, call.concurrency ?? 1))
      : 1;
    budget += (call.timeoutMs ?? timeoutMs) * rounds;
  }
  const { lines, stderr } = await runClientScript({
    url: opts.url,
    transport: opts.transport,
    sockjsTransport: opts.sockjsTransport,
    auth: opts.auth,
    calls: opts.calls,
    serve: opts.serve,
    kite: opts.kite,
    timeoutMs,
    connectTimeoutMs,
    logLevel: opts.logLevel,
  }, budget);
  const calls: KitejsCallResult[] = [];
  const served: KitejsServedCall[] = [];
  for (const line of lines) {
    if (typeof line.served === "string") {
      const { served: method, ...rest } = line;
      served.push({ method, ...rest } as KitejsServedCall);
    } else if (typeof line.method === "string") {
      calls.push(line as unknown as KitejsCallResult);
    }
  }
  return { calls, served, stderr };
}

/**
 * Runs `tests/kitejs/client.cjs`: a kite.js `Kite` client that connects to
 * `url`, makes `calls` one after another and disconnects. Resolves with one
 * result per call; errors and timeouts of single calls are results
 * (`ok: false`), not rejections.
 *
 * @throws {Error} with the client's stderr if it cannot connect, crashes or hangs.
 */
export async function runKitejsClient(
  opts: RunKitejsClientOptions,
): Promise<KitejsCallResult[]> {
  return (await runKitejsClientDetailed(opts)).calls;
}

/**
 * Asks a Kontrol for kites through kite.js' own `Kontrol` class
 * (`fetchKites({query})`, which sends `getKites` with `[{query}]`).
 *
 * @throws {Error} with the client's stderr if the script crashes or hangs;
 * a Kontrol error, a timeout or a disconnect is a result with `ok: false`.
 */
export async function kitejsGetKites(
  opts: KitejsGetKitesOptions,
): Promise<KitejsGetKitesResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const { lines } = await runClientScript({
    mode: "kontrol",
    url: opts.kontrolUrl,
    transport: opts.transport ?? "sockjs",
    sockjsTransport: opts.sockjsTransport,
    auth: opts.kiteKey === ""
      ? undefined
      : { type: "kiteKey", key: opts.kiteKey },
    query: opts.query,
    kite: opts.kite,
    timeoutMs,
  }, timeoutMs + PROCESS_SLACK_MS);
  const line = lines.find((l) => l.getKites === true);
  if (!line) throw new Error("kite.js client printed no getKites result");
  const { getKites: _, ...result } = line;
  return result as unknown as KitejsGetKitesResult;
}
