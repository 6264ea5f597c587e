/**
 * The malformed inputs the fuzzer sends, each with the answer it must get:
 * a close with a given code, an error reply of a given type, an exact
 * result (inputs that are odd but valid, e.g. deep nesting within the
 * limit), no reply at all (messages Go drops too: unknown callback ids,
 * calls without a response callback), or an HTTP status.
 *
 * @module
 */
import type { Rng } from "./prng.ts";

/** Which server an input goes to. */
export type Target = "kite" | "kontrol";

/** What the server must answer. */
export type Expect =
  /** The session closes: SockJS `c[code,…]` frame then close, or a raw WebSocket close code. */
  | { type: "close"; code: number; reason: RegExp }
  /** The response callback gets an error of one of these types. */
  | { type: "error"; errorTypes: readonly string[]; message?: RegExp }
  /** The response callback gets exactly this result (as JSON text). */
  | { type: "result"; json: string }
  /** Nothing comes back, and the connection keeps serving. */
  | { type: "silent" }
  /** An HTTP answer with one of these statuses (0: the server closed without one). */
  | { type: "http"; status: readonly number[]; body?: RegExp };

/**
 * A message or frame sent over a WebSocket. Every random draw happens when
 * the input is made, never in `build`: inputs run concurrently, and a draw
 * made while running would make the sequence depend on timing.
 */
export interface WsInput {
  /** Discriminant. */
  kind: "ws";
  /** Server. */
  target: Target;
  /** Category name for the summary. */
  category: string;
  /** True when the input ends its connection, so it gets one of its own. */
  closing: boolean;
  /** Sent over the raw (kite.js) WebSocket instead of SockJS. */
  raw?: boolean;
  /** The frame, given the response callback id to use. */
  build(cb: number): string | Uint8Array;
  /** The expected answer. */
  expect: Expect;
}

/** Where HTTP inputs go. */
export interface HttpBase {
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** The port. */
  port: number;
}

/** One HTTP exchange (possibly a few requests, e.g. open a session first). */
export interface HttpInput {
  /** Discriminant. */
  kind: "http";
  /** Server. */
  target: Target;
  /** Category name for the summary. */
  category: string;
  /** Performs the exchange; returns the status and body of the last answer. */
  run(base: HttpBase): Promise<{ status: number; body: string }>;
  /** The expected answer. */
  expect: Expect;
}

/** Any input. */
export type Input = WsInput | HttpInput;

/** What input generation needs to know about the targets. */
export interface GenContext {
  /** A kite.key Kontrol trusts, for calls that must pass authentication. */
  kiteKey: string;
  /** The targets' `maxMessageBytes`. */
  maxMessageBytes: number;
  /** The targets' `maxJsonDepth`. */
  maxJsonDepth: number;
  /** Methods each target serves (random names must avoid them). */
  methods: Record<Target, ReadonlySet<string>>;
  /** Performs a fetch, bounded in time. */
  fetch(url: string, init?: RequestInit): Promise<Response>;
  /** Sends raw bytes and reads the answer, bounded in time. */
  rawHttp(
    port: number,
    request: string | Uint8Array,
    options?: { oneResponse?: boolean },
  ): Promise<{ status: number; text: string }>;
}

const IDENTITY = {
  name: "fuzzer",
  username: "fuzzer",
  id: "00000000-0000-4000-8000-00000000f022",
  environment: "fuzz",
  region: "local",
  version: "1.0.0",
  hostname: "fuzz",
};

const BROKEN_FRAMING = /^Broken framing: expected a JSON array of strings$/;
const INVALID_MESSAGE = /^invalid message: /;
const MALFORMED =
  /^invalid request for ".*": arguments must hold exactly one options object$/s;
const ARG_ERRORS = ["argumentError", "genericError"] as const;

/** Options of {@linkcode call}. */
interface CallOptions {
  /** `authentication` value; `undefined` leaves the key out. */
  auth?: unknown;
  /** `kite` value. @default {the fuzzer's identity} */
  kite?: unknown;
  /** More callbacks entries, next to the response callback. */
  extra?: Record<string, unknown>;
  /** Leave the response callback out of `callbacks`. */
  noCallback?: boolean;
}

/** A Go-shaped call: one options object, response callback `cb`. */
export function call(
  method: unknown,
  withArgs: unknown,
  cb: number,
  o: CallOptions = {},
): string {
  const options: Record<string, unknown> = {
    kite: "kite" in o ? o.kite : IDENTITY,
  };
  if (o.auth !== undefined) options.authentication = o.auth;
  options.responseCallback = "[Function]";
  options.withArgs = withArgs;
  const callbacks: Record<string, unknown> = o.noCallback
    ? {}
    : { [cb]: [0, "responseCallback"] };
  Object.assign(callbacks, o.extra);
  return JSON.stringify({ method, arguments: [options], callbacks });
}

/** One dnode message in a SockJS client frame. */
export function frame(...messages: string[]): string {
  return JSON.stringify(messages);
}

function nested(rng: Rng, depth: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = rng.chance(0.5) ? [v] : { d: v };
  return v;
}

/**
 * A JWT of about `size` characters whose `kontrolKey` claim is filler and
 * whose signature matches nothing; `nonce` makes each one distinct.
 */
function forgedJwt(nonce: number, size: number): string {
  const b64u = (text: string) =>
    btoa(text).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  const claims = {
    sub: "mallory",
    iss: "kontrol",
    jti: String(nonce),
    kontrolKey: `-----BEGIN PUBLIC KEY-----${"A".repeat(size * 3 / 4 | 0)}`,
  };
  return `${b64u(JSON.stringify({ alg: "RS256", typ: "JWT" }))}.${
    b64u(JSON.stringify(claims))
  }.AAAA`;
}

function closeOn(code: number, reason: RegExp): Expect {
  return { type: "close", code, reason };
}

function errorOf(types: readonly string[], message?: RegExp): Expect {
  return { type: "error", errorTypes: types, message };
}

function resultOf(value: unknown): Expect {
  return { type: "result", json: JSON.stringify(value) };
}

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A random method name that neither target serves. */
function unknownMethod(rng: Rng, ctx: GenContext): string {
  for (;;) {
    const name = rng.pick([
      () => rng.string(rng.range(1, 20)),
      () => rng.nastyString(rng.range(0, 30)),
      () => "kite." + rng.string(rng.range(1, 10)),
      () =>
        rng.pick([
          "__proto__",
          "constructor",
          "toString",
          "hasOwnProperty",
          "",
          " ",
          "kite.",
          "square ",
          "SQUARE",
        ]),
      () => rng.string(rng.range(1000, 10_000)),
    ])();
    if (!ctx.methods.kite.has(name) && !ctx.methods.kontrol.has(name)) {
      return name;
    }
  }
}

/** Authentication for calls that must pass Kontrol's check. */
function kontrolAuth(ctx: GenContext): unknown {
  return { type: "kiteKey", key: ctx.kiteKey };
}

// ---------------------------------------------------------------- framing

function framing(rng: Rng, target: Target, ctx: GenContext): WsInput {
  const kinds = {
    garbage: 3,
    nonArrayJson: 2,
    nonStringArray: 2,
    truncated: 2,
    binaryGarbage: 2,
    oversize: 1,
  };
  const kind = rng.weighted(kinds);
  const expect = closeOn(4002, BROKEN_FRAMING);
  const input = (build: () => string | Uint8Array, e = expect): WsInput => ({
    kind: "ws",
    target,
    category: `frame:${kind}`,
    closing: true,
    build,
    expect: e,
  });
  switch (kind) {
    case "garbage": {
      // Never starts with `[` or `"`, so it is never a JSON array or string.
      const text = rng.pick(["x", "}", "a[", "'", "\\", "-", "{"]) +
        rng.nastyString(rng.range(0, 200));
      return input(() => text);
    }
    case "nonArrayJson": {
      const text = JSON.stringify(
        rng.pick([
          () => rng.range(-9, 9),
          () => null,
          () => true,
          () => ({ [rng.string(3)]: rng.jsonValue(2) }),
        ])(),
      );
      return input(() => text);
    }
    case "nonStringArray": {
      const items: unknown[] = [];
      const n = rng.range(1, 5);
      const bad = rng.int(n);
      for (let i = 0; i < n; i++) {
        items.push(
          i === bad
            ? rng.pick([1, null, true, {}, [], ["x"], 0.5])
            : call("square", [i], i),
        );
      }
      const text = JSON.stringify(items);
      return input(() => text);
    }
    case "truncated": {
      const whole = frame(call("square", [rng.int(100)], 1));
      const text = whole.slice(0, rng.range(1, whole.length - 1));
      return input(() => text);
    }
    case "binaryGarbage": {
      const bytes = rng.bytes(rng.range(1, 300));
      bytes[0] = rng.pick([0x78, 0x7d, 0xff, 0xc3, 0x80, 0x00]);
      return input(() => bytes);
    }
    default: {
      const size = ctx.maxMessageBytes + rng.range(1, 4096);
      const limit = new RegExp(
        `^Message too big: limit is ${ctx.maxMessageBytes} bytes$`,
      );
      const text = rng.chance(0.5)
        ? frame(call("echo", ["y".repeat(size)], 1))
        : "z".repeat(size);
      return input(() => text, closeOn(4009, limit));
    }
  }
}

// ------------------------------------------------ dnode messages that close

function badMessage(rng: Rng, target: Target, ctx: GenContext): WsInput {
  const kind = rng.weighted({
    notJson: 3,
    notObject: 2,
    badField: 5,
    tooDeep: 2,
    tooManyCallbacks: 1,
  });
  let message: string;
  let reason = INVALID_MESSAGE;
  switch (kind) {
    case "notJson":
      message = rng.chance(0.5)
        ? rng.pick(["x", "{", "'", "}"]) + rng.nastyString(rng.range(0, 100))
        : call("square", [2], 1).slice(0, rng.range(1, 40));
      break;
    case "notObject":
      message = JSON.stringify(
        rng.pick([[], [1, 2], 42, "square", null, true, -0.5]),
      );
      break;
    case "badField": {
      const m: Record<string, unknown> = {
        method: "square",
        arguments: [],
        callbacks: {},
      };
      switch (rng.int(4)) {
        case 0:
          m.method = rng.pick([
            null,
            true,
            {},
            [],
            -1,
            1.5,
            2 ** 53,
            1e300,
            "x".length - 10,
          ]);
          break;
        case 1:
          m.arguments = rng.pick([{}, "x", 5, true, { 0: {} }]);
          break;
        case 2:
          m.callbacks = rng.pick([[], "x", 5, true]);
          break;
        default:
          m.callbacks = {
            [
              rng.pick([
                "x",
                "-1",
                "01",
                "1.5",
                " 1",
                "1e3",
                "",
                "99999999999999999",
              ])
            ]: [0],
          };
          if (rng.chance(0.5)) {
            m.callbacks = {
              "1": rng.pick([
                [],
                "p",
                5,
                [{}],
                [null],
                [true],
                [[0]],
                Array(65).fill(0),
              ]),
            };
          }
      }
      if (rng.chance(0.2)) delete m.method;
      message = JSON.stringify(m);
      break;
    }
    case "tooDeep": {
      const depth = ctx.maxJsonDepth + rng.range(1, 200);
      message = call("echo", [nested(rng, depth, 1)], 1);
      reason = new RegExp(
        `^invalid message: nesting deeper than ${ctx.maxJsonDepth} levels$`,
      );
      break;
    }
    default: {
      const extra: Record<string, unknown> = {};
      for (let i = 0; i < 1001; i++) extra[i + 2] = [0, "withArgs", 0];
      message = call("square", [2], 1, { extra });
      break;
    }
  }
  const raw = rng.chance(0.2);
  return {
    kind: "ws",
    target,
    category: `message:${kind}${raw ? ":raw" : ""}`,
    closing: true,
    raw,
    build: () => raw ? message : frame(message),
    expect: closeOn(3400, reason),
  };
}

// ------------------------------------- dnode messages answered on a live connection

function liveKite(rng: Rng, ctx: GenContext): WsInput {
  const kind = rng.weighted({
    notOneObject: 3,
    unknownCallback: 2,
    numericMethod: 2,
    unknownMethod: 2,
    wrongArgs: 4,
    badPaths: 2,
    badIdentity: 2,
    noCallback: 1,
    deepWithin: 2,
    huge: 1,
    badUtf8: 2,
    oddJson: 2,
  });
  const ws = (
    build: (cb: number) => string | Uint8Array,
    expect: Expect,
  ): WsInput => ({
    kind: "ws",
    target: "kite",
    category: `live:${kind}`,
    closing: false,
    build,
    expect,
  });
  const msg = (text: (cb: number) => string) => (cb: number) => frame(text(cb));
  switch (kind) {
    case "notOneObject": {
      const args = rng.pick<unknown[]>([
        [],
        [1],
        ["x"],
        [null],
        [[]],
        [{}, {}],
        [true],
        [[{ withArgs: [1] }]],
      ]);
      const method = rng.chance(0.5) ? "square" : unknownMethod(rng, ctx);
      return ws(
        msg((cb) =>
          JSON.stringify({
            method,
            arguments: args,
            callbacks: { [cb]: [0, "responseCallback"] },
          })
        ),
        errorOf(["argumentError"], MALFORMED),
      );
    }
    case "unknownCallback": {
      const id = rng.range(1_000_000, 2 ** 40);
      const args = rng.jsonValue(3);
      const callbacks = rng.chance(0.3) ? { "5": [0] } : {};
      return ws(
        msg(() =>
          JSON.stringify({
            method: id,
            arguments: Array.isArray(args) ? args : [args],
            callbacks,
          })
        ),
        { type: "silent" },
      );
    }
    case "numericMethod": {
      const name = String(rng.int(1000));
      return ws(
        msg((cb) => call(name, [1], cb)),
        errorOf(["methodNotFound"], new RegExp(`^Method not found: ${name}$`)),
      );
    }
    case "unknownMethod": {
      const name = unknownMethod(rng, ctx);
      return ws(
        msg((cb) => call(name, [1], cb)),
        errorOf(
          ["methodNotFound"],
          new RegExp(`^Method not found: ${escapeRe(name)}$`, "s"),
        ),
      );
    }
    case "wrongArgs": {
      const [method, withArgs] = rng.pick<[string, unknown]>([
        ["square", "x"],
        ["square", []],
        ["square", {}],
        ["square", [null]],
        ["square", ["4"]],
        ["square", [[4]]],
        ["square", [true]],
        ["square", [{ number: "x" }]],
        ["square", [1e309 /* Infinity: arrives as null */]],
        ["squareCb", [3]],
        ["squareCb", [3, 4]],
        ["echo", []],
        ["echo", [1, 2]],
        ["kite.heartbeat", [0, "[Function]"]],
        ["kite.heartbeat", ["x"]],
        ["kite.log", [5]],
        ["kite.echo", []],
      ]);
      return ws(msg((cb) => call(method, withArgs, cb)), errorOf(ARG_ERRORS));
    }
    case "badPaths": {
      const n = rng.range(-50, 50);
      const extra: Record<string, unknown> = {};
      const paths = [
        [0, "withArgs", 99],
        [7],
        [0, "nope", "deeper"],
        ["__proto__", "x"],
        [0, "constructor", "prototype"],
        [0, "__proto__", "polluted"],
        ["0", "withArgs", "-1"],
        [0, "kite", "name"],
      ];
      for (let i = 0; i < rng.range(1, 5); i++) {
        // Far above the response callback ids a live connection hands out.
        extra[1_000_000_000_000 + i] = rng.pick(paths);
      }
      return ws(
        msg((cb) => call("square", [n], cb, { extra })),
        resultOf(n * n),
      );
    }
    case "badIdentity": {
      const n = rng.range(-50, 50);
      const kite = rng.pick<unknown>([
        5,
        "x",
        [],
        null,
        { name: [] },
        { name: 5, id: {} },
        { username: "root", name: "kontrol" },
      ]);
      const auth = rng.pick<unknown>([undefined, null, 5, "x", { type: 1 }]);
      return ws(
        msg((cb) => call("square", [n], cb, { kite, auth })),
        resultOf(n * n),
      );
    }
    case "noCallback": {
      return ws(
        msg((cb) => call("square", [2], cb, { noCallback: true })),
        { type: "silent" },
      );
    }
    case "deepWithin": {
      // The envelope {arguments:[{withArgs:[…]}]} takes 4 levels.
      const value = nested(rng, rng.range(1, ctx.maxJsonDepth - 4), "leaf");
      return ws(msg((cb) => call("echo", [value], cb)), resultOf(value));
    }
    case "huge": {
      const room = ctx.maxMessageBytes - 2048;
      const value = rng.chance(0.5)
        ? "h".repeat(rng.range(1024, room))
        : Array.from({ length: rng.range(100, Math.floor(room / 8)) }, () =>
          rng.range(0, 999_999));
      return ws(msg((cb) => call("echo", [value], cb)), resultOf(value));
    }
    case "badUtf8": {
      // A valid frame sent as binary, with invalid UTF-8 inside a string:
      // decoded with U+FFFD replacements, like Go's decoder.
      const bad = rng.pick([
        [0xff],
        [0xc3],
        [0xe2, 0x82],
        [0xed, 0xa0, 0x80],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
        [0xc0, 0xaf],
      ]);
      const marker = "MARKER";
      return ws((cb) => {
        const text = frame(call("echo", [`a${marker}b`], cb));
        const bytes = new TextEncoder().encode(text);
        const at = text.indexOf(marker);
        const out = new Uint8Array(bytes.length - marker.length + bad.length);
        out.set(bytes.subarray(0, at));
        out.set(bad, at);
        out.set(bytes.subarray(at + marker.length), at + bad.length);
        return out;
      }, resultOf(`a${new TextDecoder().decode(new Uint8Array(bad))}b`));
    }
    default: {
      // Valid but odd JSON: lone surrogates, extra fields, links garbage,
      // a scalar withArgs (kite.js style).
      const value = rng.jsonValue(4);
      const variant = rng.int(3);
      if (variant === 0) {
        return ws(
          msg((cb) => call("echo", [value], cb)),
          resultOf(value),
        );
      }
      if (variant === 1) {
        const links = rng.pick([5, "x", [{}], null]);
        return ws(
          msg((cb) =>
            JSON.stringify({
              links,
              extra: value,
              method: "square",
              arguments: [{
                responseCallback: "[Function]",
                withArgs: [3],
              }],
              callbacks: { [cb]: ["0", "responseCallback"] },
            })
          ),
          resultOf(9),
        );
      }
      return ws(msg((cb) => call("square", 5, cb)), resultOf(25));
    }
  }
}

function liveKontrol(rng: Rng, ctx: GenContext): WsInput {
  const kind = rng.weighted({
    notOneObject: 2,
    unknownCallback: 1,
    numericMethod: 1,
    unknownMethod: 1,
    badAuth: 4,
    forgedCredential: 2,
    wrongArgs: 5,
    registerMachine: 1,
  });
  const ws = (
    build: (cb: number) => string | Uint8Array,
    expect: Expect,
  ): WsInput => ({
    kind: "ws",
    target: "kontrol",
    category: `kontrol:${kind}`,
    closing: false,
    build,
    expect,
  });
  const msg = (text: (cb: number) => string) => (cb: number) => frame(text(cb));
  const auth = kontrolAuth(ctx);
  switch (kind) {
    case "notOneObject": {
      const args = rng.pick<unknown[]>([[], [1], ["x"], [null], [{}, {}]]);
      const method = rng.pick(["register", "getKites", "getToken", "getKey"]);
      return ws(
        msg((cb) =>
          JSON.stringify({
            method,
            arguments: args,
            callbacks: { [cb]: [0, "responseCallback"] },
          })
        ),
        errorOf(["argumentError"], MALFORMED),
      );
    }
    case "unknownCallback": {
      const id = rng.range(1_000_000, 2 ** 40);
      const args = [rng.jsonValue(2)];
      return ws(
        msg(() => JSON.stringify({ method: id, arguments: args })),
        { type: "silent" },
      );
    }
    case "numericMethod": {
      const name = String(rng.int(1000));
      return ws(
        msg((cb) => call(name, [{}], cb, { auth })),
        errorOf(["methodNotFound"], new RegExp(`^Method not found: ${name}$`)),
      );
    }
    case "unknownMethod": {
      const name = unknownMethod(rng, ctx);
      return ws(
        msg((cb) => call(name, [{}], cb, { auth })),
        errorOf(
          ["methodNotFound"],
          new RegExp(`^Method not found: ${escapeRe(name)}$`, "s"),
        ),
      );
    }
    case "badAuth": {
      const [bad, message] = rng.pick<[unknown, RegExp]>([
        [null, /^No authentication information is provided$/],
        [5, /^No authentication information is provided$/],
        ["kiteKey", /^No authentication information is provided$/],
        [{ type: "bogus", key: "x" }, /^Unknown authentication type: bogus$/],
        [{ type: 5 }, /^Unknown authentication type: $/],
        [{ type: "token", key: "x.y.z" }, /^token: /],
        [{ type: "token", key: rng.nastyString(40) }, /^token: /],
        [{ type: "kiteKey", key: rng.string(60, "ab.") }, /^kiteKey: /],
        [{ type: "kiteKey" }, /^kiteKey: /],
      ]);
      const method = rng.pick(["register", "getKites", "getToken", "getKey"]);
      return ws(
        msg((cb) =>
          call(method, [{ query: { username: "x" } }], cb, { auth: bad })
        ),
        errorOf(["authenticationError"], message),
      );
    }
    case "forgedCredential": {
      // Every size up to most of a message: the server must refuse each one
      // without keeping anything of it (issue #15, finding 5).
      const most = Math.floor(ctx.maxMessageBytes * 0.6);
      const size = rng.pick(
        [0, 1, 100, 4096, 16_000, 16_384, 16_385, 65_536, most]
          .filter((n) => n <= most),
      );
      const type = rng.pick(["kiteKey", "token"]);
      const key = rng.chance(0.7)
        ? forgedJwt(rng.int(1e9), size)
        : `${rng.int(1e9)}${"A".repeat(size)}`;
      const method = rng.pick(["register", "getKites", "getToken", "getKey"]);
      return ws(
        msg((cb) =>
          call(method, [{ query: { username: "x" } }], cb, {
            auth: { type, key },
          })
        ),
        errorOf(["authenticationError"], new RegExp(`^${type}: `)),
      );
    }
    case "wrongArgs": {
      const [method, withArgs] = rng.pick<[string, unknown]>([
        ["register", [{ url: 5 }]],
        ["register", [{}]],
        ["register", ["x"]],
        ["register", []],
        ["register", [{ url: "" }]],
        ["register", [{ url: "not a url" }]],
        ["getKites", []],
        ["getKites", [{}]],
        ["getKites", [{ query: 5 }]],
        ["getKites", [{ query: [] }]],
        ["getKites", [{ query: { username: 5 } }]],
        ["getKites", [{ query: { username: "x", name: {} } }]],
        ["getToken", []],
        ["getToken", [5]],
        ["getToken", ["x"]],
        ["getToken", [{ username: 5 }]],
        ["cancelWatcher", [5]],
        ["cancelWatcher", ["no-such-watcher"]],
        ["cancelWatcher", []],
        ["kite.heartbeat", [10]],
      ]);
      return ws(
        msg((cb) => call(method, withArgs, cb, { auth })),
        errorOf(ARG_ERRORS),
      );
    }
    default: {
      const withArgs = [rng.jsonValue(2)];
      const machineAuth = rng.pick([undefined, null, auth]);
      return ws(
        msg((cb) =>
          call("registerMachine", withArgs, cb, { auth: machineAuth })
        ),
        errorOf(["genericError"], /^no valid authentication key found$/),
      );
    }
  }
}

// ------------------------------------------------------------------ HTTP

function http(rng: Rng, target: Target, ctx: GenContext): HttpInput {
  const kind = rng.weighted({
    sendBody: 4,
    unknownSession: 2,
    oversizeSend: 1,
    oversizeDeclared: 2,
    oversizeChunked: 1,
    wrongMethod: 3,
    randomPath: 3,
    xhrBadMessage: 1,
    rawGarbage: 1,
    badUpgrade: 1,
    kontrolRoutes: target === "kontrol" ? 3 : 0,
  });
  const session = rng.string(rng.range(1, 30));
  const input = (
    run: HttpInput["run"],
    expect: Expect,
  ): HttpInput => ({
    kind: "http",
    target,
    category: `http:${kind}`,
    run,
    expect,
  });
  const fetchText = async (url: string, init?: RequestInit) => {
    const r = await ctx.fetch(url, init);
    return { status: r.status, body: await r.text() };
  };
  switch (kind) {
    case "sendBody": {
      const [body, expect] = rng.pick<[string, RegExp]>([
        ["", /^Payload expected\.$/],
        ["   ", /^Payload expected\.$/],
        [
          rng.pick(["x", "{", "]", "'"]) + rng.nastyString(rng.range(0, 100)),
          /^Broken JSON encoding\.$/,
        ],
        ["[1]", /^Broken JSON encoding\.$/],
        ['{"a":1}', /^Broken JSON encoding\.$/],
        ['["x",null]', /^Broken JSON encoding\.$/],
      ]);
      return input(
        (b) =>
          fetchText(`${b.origin}/kite/1/${session}/xhr_send`, {
            method: "POST",
            body,
          }),
        { type: "http", status: [500], body: expect },
      );
    }
    case "unknownSession":
      return input(
        (b) =>
          fetchText(`${b.origin}/kite/1/nosuch${session}/xhr_send`, {
            method: "POST",
            body: frame(call("square", [2], 1)),
          }),
        { type: "http", status: [404], body: /^404 page not found\n$/ },
      );
    case "oversizeSend": {
      const body = frame("q".repeat(ctx.maxMessageBytes + rng.range(1, 999)));
      return input(
        (b) =>
          fetchText(`${b.origin}/kite/1/${session}/xhr_send`, {
            method: "POST",
            body,
          }),
        {
          type: "http",
          status: [413],
          body: new RegExp(
            `^Message too big: limit is ${ctx.maxMessageBytes} bytes$`,
          ),
        },
      );
    }
    case "oversizeDeclared": {
      // Every route: a body declared over the limit is refused before it
      // is read (only a few bytes of it are ever sent).
      const routes: [string, string][] = [
        ["POST", `/kite/1/${session}/xhr_send`],
        ["POST", `/kite/1/${session}/xhr`],
        ["POST", `/kite/1/${session}/xhr_streaming`],
        ["POST", `/kite/1/${session}/jsonp_send`],
        ["GET", `/kite/1/${session}/jsonp?c=x`],
        ["GET", `/kite/1/${session}/eventsource`],
        ["GET", `/kite/1/${session}/htmlfile?c=x`],
        ["GET", "/kite/iframe.html"],
        ["OPTIONS", `/kite/1/${session}/xhr`],
        ["GET", "/kite/info"],
        ["GET", "/kite"],
        ["GET", "/kite/websocket"],
        ["POST", `/${rng.string(rng.range(1, 20), "abc")}`],
      ];
      if (target === "kontrol") {
        routes.push(["POST", "/register"], ["GET", "/heartbeat?id=x"]);
      }
      const [method, path] = rng.pick(routes);
      const declared = ctx.maxMessageBytes + rng.range(1, 2 ** 30);
      return input(async (b) => {
        const r = await ctx.rawHttp(
          b.port,
          `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${declared}\r\n\r\n["x`,
          { oneResponse: true },
        );
        return { status: r.status, body: r.text };
      }, { type: "http", status: [413], body: /limit is \d+ bytes/ });
    }
    case "oversizeChunked": {
      // The routes that read a body count a chunked one while it streams.
      const path = target === "kontrol" && rng.chance(0.5)
        ? "/register"
        : `/kite/1/${session}/${rng.pick(["xhr_send", "jsonp_send"])}`;
      const chunk = "q".repeat(rng.range(1_000, 16_000));
      const chunks = Math.ceil((ctx.maxMessageBytes + 1) / chunk.length) + 1;
      const body = `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(
        chunks,
      ) + "0\r\n\r\n";
      return input(async (b) => {
        const r = await ctx.rawHttp(
          b.port,
          `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
          { oneResponse: true },
        );
        return { status: r.status, body: r.text };
      }, { type: "http", status: [413], body: /limit is \d+ bytes/ });
    }
    case "wrongMethod": {
      const [path, method, status] = rng.pick<[string, string, number]>([
        ["xhr", "GET", 405],
        ["xhr", "PUT", 405],
        ["xhr_send", "DELETE", 405],
        ["xhr_send", "PATCH", 405],
        ["xhr_streaming", "GET", 405],
        ["websocket", "POST", 405],
        ["websocket", "GET", 400],
        ["xhr", "OPTIONS", 204],
        ["eventsource", "POST", 405],
        ["htmlfile?c=x", "POST", 405],
        ["jsonp?c=x", "POST", 405],
        ["jsonp_send", "GET", 405],
        ["jsonp_send", "OPTIONS", 204],
      ]);
      return input(
        (b) => fetchText(`${b.origin}/kite/1/${session}/${path}`, { method }),
        { type: "http", status: [status] },
      );
    }
    case "randomPath": {
      const path = rng.pick([
        () => `/kite/${rng.string(3)}.${rng.string(5)}`,
        () =>
          `/${rng.string(rng.range(1, 40), "abc/._-%")}`.replace(
            /^\/(register|heartbeat)$/,
            "/x",
          ),
        () => `/kite/a/b/${rng.string(6)}`,
        () => `/kite/${"x/".repeat(rng.range(5, 200))}`,
        () => `/kite/%00/%ff/${rng.string(4)}`,
      ])();
      const method = rng.pick(["GET", "POST", "PUT", "DELETE"]);
      return input(
        (b) => fetchText(`${b.origin}${path}`, { method }),
        { type: "http", status: [404] },
      );
    }
    case "xhrBadMessage": {
      const bad = rng.pick(["not json", "[]", '{"method":null}', "42"]);
      return input(async (b) => {
        const base = `${b.origin}/kite/1/bad${session}`;
        const open = await fetchText(`${base}/xhr`, { method: "POST" });
        if (open.body !== "o\n") return open;
        // The poll goes out first and waits for the close: a poll sent
        // after it could come later than the disconnect delay on a loaded
        // machine, and find the session gone.
        const poll = fetchText(`${base}/xhr`, { method: "POST" });
        const sent = await fetchText(`${base}/xhr_send`, {
          method: "POST",
          body: frame(bad),
        });
        if (sent.status !== 204) {
          await poll.catch(() => {});
          return sent;
        }
        return await poll;
      }, {
        type: "http",
        status: [200],
        body: /^c\[3400,"invalid message: [^\n]*"\]\n$/,
      });
    }
    case "rawGarbage": {
      const request = rng.pick([
        () => "GARBAGE\r\n\r\n",
        () => rng.bytes(rng.range(1, 200)),
        () => `GET / HTTP/1.1\r\nHost: x\r\n${"X-A: b\r\n".repeat(2000)}\r\n`,
        () => `POST /kite/1/x/xhr_send HTTP/1.1\r\nContent-Length: -5\r\n\r\n`,
        () => `GET /${"a".repeat(100_000)} HTTP/1.1\r\n\r\n`,
      ])();
      return input(async (b) => {
        const r = await ctx.rawHttp(b.port, request);
        return { status: r.status, body: r.text };
      }, { type: "http", status: [0, 400, 404, 413, 414, 431] });
    }
    case "badUpgrade": {
      const headers = rng.pick([
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n",
        "Upgrade: h2c\r\nConnection: Upgrade\r\n",
      ]);
      return input(async (b) => {
        const r = await ctx.rawHttp(
          b.port,
          `GET /kite/1/${session}/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`,
        );
        return { status: r.status, body: r.text };
      }, { type: "http", status: [400] });
    }
    default: {
      const [path, init, status, body] = rng.pick<
        [string, RequestInit, number, RegExp | undefined]
      >([
        ["/register", { method: "GET" }, 405, /method not allowed/],
        [
          "/register",
          { method: "POST", body: rng.nastyString(50) },
          400,
          /invalid JSON body/,
        ],
        ["/register", { method: "POST", body: "[]" }, 400, /invalid JSON body/],
        [
          "/register",
          { method: "POST", body: "{}" },
          400,
          /Unexpected authentication type: none/,
        ],
        [
          "/register",
          {
            method: "POST",
            body: JSON.stringify({
              auth: { type: "kiteKey", key: "a.b.c" },
              url: "http://127.0.0.1:1/kite",
              kite: IDENTITY,
            }),
          },
          401,
          /kiteKey: /,
        ],
        [
          // A forged kite.key of some size up to the credential limit and past it.
          "/register",
          {
            method: "POST",
            body: JSON.stringify({
              auth: {
                type: "kiteKey",
                key: forgedJwt(
                  rng.int(1e9),
                  rng.pick([10, 1000, 16_000, 16_385, 40_000]),
                ),
              },
              url: "http://127.0.0.1:1/kite",
              kite: IDENTITY,
            }),
          },
          401,
          /^\{"err":"kiteKey: /,
        ],
        [
          "/register",
          {
            method: "POST",
            body: JSON.stringify({
              auth: { type: "kiteKey", key: ctx.kiteKey },
              url: `http://127.0.0.1:1/${"u".repeat(rng.range(2100, 30_000))}`,
              kite: IDENTITY,
            }),
          },
          400,
          /^\{"err":"url is too long \(\d+ characters, at most 2048\)"\}\n$/,
        ],
        [
          "/register",
          {
            method: "POST",
            body: JSON.stringify({
              auth: { type: "kiteKey", key: ctx.kiteKey },
              url: "http://127.0.0.1:1/kite",
              kite: { ...IDENTITY, hostname: "h".repeat(rng.range(256, 5000)) },
            }),
          },
          400,
          /kite field hostname is too long/,
        ],
        [
          "/register",
          {
            method: "POST",
            body: JSON.stringify({
              auth: { type: "kiteKey", key: ctx.kiteKey },
              url: 5,
            }),
          },
          400,
          /empty url/,
        ],
        [
          "/register",
          {
            method: "POST",
            body: JSON.stringify({
              auth: { type: "kiteKey", key: ctx.kiteKey },
              url: "http://127.0.0.1:1/kite",
              kite: rng.pick([5, "x", { name: "a/b" }]),
            }),
          },
          400,
          undefined,
        ],
        ["/heartbeat", { method: "GET" }, 400, /query id is empty/],
        [
          `/heartbeat?id=${rng.string(10)}`,
          { method: "GET" },
          200,
          /^registeragain$/,
        ],
      ]);
      return input(
        (b) => fetchText(`${b.origin}${path}`, init),
        { type: "http", status: [status], body },
      );
    }
  }
}

/** Weights of the input families. */
const FAMILIES = {
  framing: 20,
  badMessage: 15,
  live: 45,
  http: 20,
};

/** Draws one input for a random target. */
export function nextInput(rng: Rng, ctx: GenContext): Input {
  const target: Target = rng.chance(0.7) ? "kite" : "kontrol";
  switch (rng.weighted(FAMILIES)) {
    case "framing":
      return framing(rng, target, ctx);
    case "badMessage":
      return badMessage(rng, target, ctx);
    case "live":
      return target === "kite" ? liveKite(rng, ctx) : liveKontrol(rng, ctx);
    default:
      return http(rng, target, ctx);
  }
}
