// Replays what a Go client sent in go-kite/01, 02, 03 and 10 (the exact
// frame and body bytes) against our kite, and checks that our replies read
// like the recorded Go kite's: same dnode text, field order, null
// conventions and error texts. Only request ids are masked. Our kites take
// the recorded identity, so the kite.log call in 01 can be compared as is.
import { Kite, type Request } from "../mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { TRUSTED_KITE_KEY } from "./fixtures/go_kite_auth.ts";
import { asSockjsNodeAnswers, readRecording } from "./helpers/vectors.ts";

type Rec = Record<string, unknown>;

/** Records of one TCP connection of a go-kite recording. */
function connection(file: string, conn: number): Rec[] {
  return readRecording(`go-kite/${file}`).filter((r) => r.conn === conn);
}

/** dnode texts inside a server SockJS frame (`a[...]`), none for `o`/`h`/``. */
function frameMessages(frame: string): string[] {
  if (!frame.startsWith("a")) return [];
  const list = JSON.parse(frame.slice(1));
  assert(
    Array.isArray(list) && list.every((m) => typeof m === "string"),
    `not a SockJS message frame: ${frame}`,
  );
  return list;
}

const REQUEST_ID = /"id":"[0-9a-f]{16}"/g;

/**
 * Masks what differs on every run: the 16-hex request id in error objects
 * (a reply with any other id shape stays unmasked and so fails to match).
 */
function mask(text: string): string {
  return text.replaceAll(REQUEST_ID, '"id":"<request id>"');
}

/** Also masks the jwt library's own cause after Go's `token: ` prefix. */
function maskTokenCause(text: string): string {
  return mask(text).replace(
    /"message":"token: (?:[^"\\]|\\.)+"/,
    '"message":"token: <cause>"',
  );
}

/** Go's `encoding/json` name for the JSON kind of a value. */
function goKind(value: unknown): string {
  if (typeof value === "boolean") return "bool";
  if (Array.isArray(value)) return "array";
  return typeof value === "object" ? "object" : typeof value;
}

/** What Go's handler-side `Unmarshal` failure reads like (docs/protocol.md §3.3). */
function unmarshalError(value: unknown, goType: string): Error {
  return new Error(
    `json: cannot unmarshal ${
      goKind(value)
    } into Go value of type ${goType}. Data: ${JSON.stringify(value)}`,
  );
}

/** The recorded identity of the Go math kite (from its kite.log call). */
function recordedMathIdentity(): Record<string, string> {
  for (const r of connection("01-math-kite-call.jsonl", 1)) {
    if (r.type !== "ws" || r.dir !== "s2c") continue;
    for (const text of frameMessages(r.frame as string)) {
      const msg = JSON.parse(text);
      if (msg.method === "kite.log") return msg.arguments[0].kite;
    }
  }
  throw new Error("no kite.log call in 01-math-kite-call.jsonl");
}

/**
 * Mimics examples/math/math-kite (Go): `square({number, name})` calls
 * `kite.log` back on the caller without waiting, then answers. It holds a
 * kite.key, as a registered Go kite would: calls back over an accepted
 * connection must still go out with `authentication:null` (docs/protocol.md §6.9).
 */
function goMathKite(): { kite: Kite; logs: Promise<unknown>[] } {
  const id = recordedMathIdentity();
  const kite = new Kite(id.name, id.version, {
    env: false,
    kiteKey: TRUSTED_KITE_KEY,
    config: {
      disableAuthentication: true,
      username: id.username,
      id: id.id,
      environment: id.environment,
      region: id.region,
      hostname: id.hostname,
      logLevel: "ERROR",
    },
  });
  const logs: Promise<unknown>[] = [];
  kite.handle("square", (r: Request) => {
    const arg = r.args.at(0).raw;
    if (arg === null || goKind(arg) !== "object") {
      throw unmarshalError(arg, "math.Request");
    }
    const n = r.args.at(0).get("number").number();
    const log = r.client.tell(
      "kite.log",
      `Message from ${kite.name}: "You have requested square of ${n}"`,
    );
    log.catch(() => {}); // the test inspects it; a disconnect is not a failure here
    logs.push(log);
    return n * n;
  });
  return { kite, logs };
}

const TESTKITE_ARG =
  'struct { Number float64 "json:\\"number\\""; Callback dnode.Function "json:\\"callback\\"" }';

/** Mimics the recordings' Go `testkite`: square, squareCb, fail, secret. */
function goTestKite(): Kite {
  const kite = new Kite("testkite", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { logLevel: "ERROR" },
  });
  const number = (r: Request): number => {
    const arg = r.args.at(0).raw;
    if (typeof arg === "number") return arg;
    if (arg !== null && goKind(arg) === "object") {
      return r.args.at(0).get("number").number();
    }
    throw unmarshalError(arg, TESTKITE_ARG);
  };
  kite.handle("square", (r) => number(r) ** 2).disableAuthentication();
  kite.handle("squareCb", (r) => {
    const first = r.args.at(0);
    const fn = goKind(first.raw) === "object"
      ? first.get("callback").func()
      : r.args.at(1).func();
    const result = number(r) ** 2;
    fn(result);
    return result;
  }).disableAuthentication();
  kite.handle("fail", () => {
    throw new Error("intentional failure from testkite");
  }).disableAuthentication();
  kite.handle("secret", (r) => `hello ${r.username}`);
  return kite;
}

/** A plain WebSocket to our kite, with a queue of the frames it received. */
class ReplaySocket {
  readonly #ws: WebSocket;
  readonly #frames: string[] = [];
  readonly #messages: string[] = [];
  #waiter: (() => void) | undefined;
  #closed: Promise<void>;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#closed = new Promise((resolve) => {
      ws.onclose = () => {
        resolve();
        this.#wake();
      };
    });
    ws.onmessage = (ev) => {
      this.#frames.push(String(ev.data));
      this.#wake();
    };
  }

  /** Opens `ws://127.0.0.1:<port><path>`. */
  static async open(port: number, path: string): Promise<ReplaySocket> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    const socket = new ReplaySocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (ev) =>
        reject(
          new Error(`WebSocket ${path} failed: ${(ev as ErrorEvent).message}`),
        );
    });
    ws.onerror = null;
    return socket;
  }

  send(frame: string): void {
    this.#ws.send(frame);
  }

  /** The next raw frame. */
  async frame(what: string): Promise<string> {
    await this.#until(() => this.#frames.length > 0, what);
    return this.#frames.shift()!;
  }

  /** The next dnode message, whichever `a[...]` frame carried it; skips `h`. */
  async message(what: string): Promise<string> {
    while (this.#messages.length === 0) {
      const frame = await this.frame(what);
      if (frame === "h") continue;
      assert(
        frame.startsWith("a["),
        `expected a message frame for ${what}, got ${frame}`,
      );
      this.#messages.push(...frameMessages(frame));
    }
    return this.#messages.shift()!;
  }

  async close(): Promise<void> {
    this.#ws.close();
    await this.#closed;
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  async #until(ready: () => boolean, what: string): Promise<void> {
    // A deadline only turns a hang into a readable failure; nothing is timed.
    const deadline = Date.now() + 10_000;
    while (!ready()) {
      if (this.#ws.readyState === WebSocket.CLOSED) {
        throw new Error(`connection closed while waiting for ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`nothing received for ${what}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
  }
}

/** Path of the WebSocket upgrade the Go client made on this connection. */
function upgradePath(records: Rec[]): string {
  const req = records.find((r) => r.type === "http" && r.dir === "c2s");
  const path = String(req?.startLine ?? "").split(" ")[1];
  assertMatch(path, /^\/kite\/\d{3}\/[0-9a-f]{20}\/websocket$/);
  return path;
}

/**
 * Sends the recorded client frames of one connection in order and checks
 * each recorded server message against ours, as dnode text. `o` must come
 * first; the empty frame sockjs-go sends after the Go client dropped TCP is
 * not replayed.
 */
async function replayWebSocket(
  port: number,
  file: string,
  conn: number,
  normalize: (text: string) => string = mask,
): Promise<number> {
  const records = connection(file, conn).filter((r) => r.type === "ws");
  const socket = await ReplaySocket.open(
    port,
    upgradePath(connection(file, conn)),
  );
  let compared = 0;
  try {
    for (const r of records) {
      const frame = r.frame as string;
      if (r.dir === "c2s") {
        socket.send(frame);
      } else if (frame === "o") {
        assertEquals(await socket.frame("o"), "o");
      } else {
        for (const expected of frameMessages(frame)) {
          const what = `${file} conn ${conn} record ${r.i}`;
          const actual = await socket.message(what);
          assertEquals(normalize(actual), normalize(expected), what);
          compared++;
        }
      }
    }
  } finally {
    await socket.close();
  }
  return compared;
}

async function serving(kite: Kite): Promise<number> {
  const { port } = await kite.serve({ port: 0, hostname: "127.0.0.1" });
  return port;
}

Deno.test("Go vectors 01: math kite call, kite.log back on the caller, errors", async () => {
  const { kite, logs } = goMathKite();
  try {
    const port = await serving(kite);
    // ping, kite.log request, square reply, genericError, methodNotFound.
    assertEquals(await replayWebSocket(port, "01-math-kite-call.jsonl", 1), 5);
    // The Go client's answer to kite.log (callback id 0) settled our call.
    assertEquals(logs.length, 1);
    assertEquals(await logs[0], null);
  } finally {
    await kite.close();
  }
});

Deno.test("Go vectors 01: callback replies are matched by numeric id only", async () => {
  const { kite, logs } = goMathKite();
  try {
    const port = await serving(kite);
    const records = connection("01-math-kite-call.jsonl", 1);
    const c2s = records.filter((r) => r.type === "ws" && r.dir === "c2s")
      .map((r) => r.frame as string);
    // c2s: ping, square({number,name}), answer to kite.log, square(4), no.such.method
    const answer = JSON.parse(JSON.parse(c2s[2])[0]);
    assertEquals(answer.method, 0);
    let settled = false;
    const socket = await ReplaySocket.open(port, upgradePath(records));
    try {
      assertEquals(await socket.frame("o"), "o");
      socket.send(c2s[1]);
      const logCall = JSON.parse(await socket.message("kite.log call"));
      assertEquals(logCall.method, "kite.log");
      assertEquals(logCall.callbacks, { "0": [0, "responseCallback"] });
      assertEquals(JSON.parse(await socket.message("square reply")).method, 1);
      logs[0].then(() => settled = true, () => settled = true);

      // "0" as a string is a method name (docs/protocol.md §2.3): no callback is called, and
      // with a responseCallback it gets methodNotFound.
      socket.send(JSON.stringify([JSON.stringify({ ...answer, method: "0" })]));
      const asName = JSON.parse(
        c2s[0].replace("kite.ping", "3").replace(
          '\\"0\\":[0,',
          '\\"7\\":[0,',
        ),
      );
      socket.send(JSON.stringify(asName));
      assertEquals(
        await socket.message('reply to method "3"'),
        '{"method":7,"arguments":[{"error":{"type":"methodNotFound","message":"Method not found: 3","code":"","id":""},"result":null}],"callbacks":{}}',
      );
      // Messages are handled in order, so the string "0" has been seen by now.
      assertEquals(settled, false);

      socket.send(c2s[2]);
      assertEquals(await logs[0], null);
      assertEquals(settled, true);
    } finally {
      await socket.close();
    }
  } finally {
    await kite.close();
  }
});

Deno.test("Go vectors 02: callbacks are called before the response", async () => {
  const kite = goTestKite();
  try {
    const port = await serving(kite);
    // ping, square, callback 3 + reply 2, callback 5 + reply 4.
    assertEquals(await replayWebSocket(port, "02-callbacks.jsonl", 1), 6);
  } finally {
    await kite.close();
  }
});

Deno.test("Go vectors 03: auth, handler, argument and method errors", async () => {
  const kite = goTestKite();
  try {
    const port = await serving(kite);
    // secret without auth, fail, square("four"), no.such.method.
    assertEquals(
      await replayWebSocket(port, "03-errors-auth-and-method.jsonl", 1),
      4,
    );
    // A token that is not a JWT: the cause after "token: " is the JWT library's.
    assertEquals(
      await replayWebSocket(
        port,
        "03-errors-auth-and-method.jsonl",
        2,
        maskTokenCause,
      ),
      1,
    );
    // Unknown authentication type: exact text.
    assertEquals(
      await replayWebSocket(port, "03-errors-auth-and-method.jsonl", 3),
      1,
    );
  } finally {
    await kite.close();
  }
});

Deno.test("Go vectors 03: the masks hide only request ids and the token cause", () => {
  // Guards the comparison itself: a wrong id shape, type or prefix must show.
  const go =
    '{"method":0,"arguments":[{"error":{"type":"authenticationError","message":"token: bad","code":"","id":"52540abe64b55b5e"},"result":null}],"callbacks":{}}';
  assertEquals(
    maskTokenCause(go),
    maskTokenCause(
      go.replace("52540abe64b55b5e", "0123456789abcdef").replace(
        "bad",
        "other",
      ),
    ),
  );
  for (
    const wrong of [
      go.replace("52540abe64b55b5e", "not-a-request-id"),
      go.replace("authenticationError", "genericError"),
      go.replace("token: bad", "kiteKey: bad"),
      go.replace('"result":null', '"result":0'),
      go.replace('"code":"",', ""),
    ]
  ) {
    assert(maskTokenCause(wrong) !== maskTokenCause(go), wrong);
  }
});

// ---- 10: xhr-polling -----------------------------------------------------

/** Header fields compared on every XHR answer (Date and Content-Length vary). */
const XHR_HEADERS = [
  "access-control-allow-credentials",
  "access-control-allow-origin",
  "cache-control",
  "content-type",
];

interface RecordedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function parseHead(
  head: string,
): { status: number; headers: Record<string, string> } {
  const [statusLine, ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(" ")[1]), headers };
}

function pick(
  headers: Record<string, string> | Headers,
): Record<string, string | null> {
  const get = (k: string) =>
    headers instanceof Headers ? headers.get(k) : headers[k] ?? null;
  return Object.fromEntries(XHR_HEADERS.map((k) => [k, get(k)]));
}

/** One recorded HTTP exchange of 10-xhr-polling: request and its answer. */
interface Exchange {
  route: "xhr" | "xhr_send";
  path: string;
  requestBody: string;
  response?: RecordedResponse;
}

/**
 * Pairs requests and responses per TCP connection (each connection carries
 * one request at a time), in the order the requests were sent.
 */
function xhrExchanges(): Exchange[] {
  const records = readRecording("go-kite/10-xhr-polling.jsonl");
  // Per connection: the exchange in progress, and whether its request or its
  // response head came last (a body record belongs to that head).
  const current = new Map<number, { ex: Exchange; part: "req" | "res" }>();
  const out: Exchange[] = [];
  for (const r of records) {
    if (r.type !== "http") continue;
    const conn = r.conn as number;
    if (r.kind === "request") {
      const path = String(r.startLine).split(" ")[1];
      const route = path.endsWith("/xhr_send") ? "xhr_send" : "xhr";
      const ex: Exchange = { route, path, requestBody: "" };
      current.set(conn, { ex, part: "req" });
      out.push(ex);
    } else if (r.kind === "response") {
      const { ex } = current.get(conn)!;
      ex.response = { ...parseHead(String(r.head)), body: "" };
      current.set(conn, { ex, part: "res" });
    } else if (r.body !== undefined) {
      const { ex, part } = current.get(conn)!;
      if (part === "req") ex.requestBody = String(r.body);
      else ex.response!.body = String(r.body);
    }
  }
  return out;
}

Deno.test("Go vectors 10: the recorded xhr-polling exchange, request by request", async () => {
  const exchanges = xhrExchanges();
  // open, 4 polls with answers, 3 sends, and the poll cut off at the end.
  assertEquals(
    exchanges.map((e) => e.route).join(","),
    "xhr,xhr,xhr_send,xhr,xhr_send,xhr,xhr,xhr_send,xhr",
  );
  const kite = goTestKite();
  const aborts = new AbortController();
  try {
    const port = await serving(kite);
    const base = `http://127.0.0.1:${port}`;
    const post = (ex: Exchange) =>
      fetch(base + ex.path, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: ex.requestBody,
        signal: aborts.signal,
      });

    // The open: exactly "o\n" with the recorded headers.
    const [first, ...rest] = exchanges;
    const opened = await post(first);
    assertEquals(opened.status, first.response!.status);
    assertEquals(
      pick(opened.headers),
      asSockjsNodeAnswers(pick(first.response!.headers)),
    );
    assertEquals(await opened.text(), "o\n");

    // Our kite may batch a callback and the reply into one frame where
    // sockjs-go used two polls, so poll answers are compared as one message
    // stream. A message is awaited only once the send that causes it is out.
    const polled = exchanges.find((e) => e.response?.body.startsWith("a"))!;
    const received: string[] = [];
    const expected: string[] = [];
    let poll: Promise<Response> | undefined;
    const nextMessage = async (what: string): Promise<string> => {
      while (received.length === 0) {
        const res = await (poll ??= post(polled));
        poll = undefined;
        assertEquals(res.status, 200, what);
        assertEquals(
          pick(res.headers),
          asSockjsNodeAnswers(pick(polled.response!.headers)),
          what,
        );
        const body = await res.text();
        assertMatch(body, /^[^\n]+\n$/, `one frame per poll: ${body}`);
        if (body !== "h\n") received.push(...frameMessages(body.slice(0, -1)));
      }
      return received.shift()!;
    };
    let compared = 0;
    const drain = async () => {
      for (const want of expected.splice(0)) {
        const actual = await nextMessage(`poll answer ${compared}`);
        assertEquals(mask(actual), mask(want));
        compared++;
      }
    };
    for (const ex of rest) {
      if (ex.route === "xhr") {
        poll ??= post(ex);
        if (ex.response?.body.startsWith("a")) {
          expected.push(...frameMessages(ex.response.body.slice(0, -1)));
        }
        continue;
      }
      const res = await post(ex);
      assertEquals(res.status, ex.response!.status, ex.path);
      assertEquals(
        pick(res.headers),
        asSockjsNodeAnswers(pick(ex.response!.headers)),
        ex.path,
      );
      assertEquals(await res.text(), "");
      await drain();
    }
    await drain();
    // pong, callback [16], squareCb reply, methodNotFound.
    assertEquals(compared, 4);
    assertEquals(received, []);
    // The Go client dropped its poll at the end; so do we.
    poll ??= post(polled);
    aborts.abort();
    await poll.then((r) => r.body?.cancel(), () => {});
  } finally {
    aborts.abort();
    await kite.close();
  }
});
