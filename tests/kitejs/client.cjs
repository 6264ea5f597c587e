#!/usr/bin/env node
// A real kite.js 1.0.13 client for interop tests and benchmarks.
//
// Configuration comes from flags and/or one JSON document on stdin (read only
// when --calls is not given). The stdin document is either an array of calls
// or an object with any of the keys below; flags win over stdin.
//
//   node client.cjs --url ws://127.0.0.1:P/kite [--transport raw|sockjs]
//       [--sockjs-transport websocket|xhr-streaming|xhr-polling]
//       [--auth-type kiteKey --auth-key KEY] [--timeout 5000]
//       [--calls '[{"method":"square","args":[4]}]'] [--serve '{"m":"echo"}']
//       [--kite '{"username":"alice"}'] [--kontrol --query '{"name":"math"}']
//
// Calls mode (default) prints one JSON line per call:
//   {"method":"square","ok":true,"result":16}
//   {"method":"squareCb","ok":true,"result":16,"callbackArgs":[...],"callbackCalls":[[...]]}
//     ("$callback" in args becomes a recording function; callbackArgs are the
//     arguments of its first invocation, callbackCalls all invocations)
//   {"method":"fail","ok":false,"error":{...raw wire error...}}
//   {"method":"nope","ok":false,"timeout":true,"error":{"type":"timeout",...}}
// plus one line for every method the remote calls on this client:
//   {"served":"kite.log","withArgs":["hi"],"kite":{...},"authentication":...}
//     (kite/authentication are left out when the caller left them out)
// and finally {"done":true}. Exit status 0; 2 = bad usage or cannot connect;
// 3 = kite.js threw.
//
// Kontrol mode (--kontrol) uses kite.js's Kontrol class: fetchKites({query})
// and prints {"getKites":true,"ok":true,"kites":[{kite,url,token}],"result":<raw>}.
"use strict";

const util = require("node:util");

// kite.js logs through console.*; stdout carries only our JSON lines.
for (const m of ["log", "info", "warn", "debug", "error"]) {
  console[m] = (...args) => process.stderr.write(util.format(...args) + "\n");
}

const { Kite, Kontrol } = require("kite.js");

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10000;

process.on("uncaughtException", (err) => {
  process.stderr.write(
    `client.cjs: uncaught exception: ${err && err.stack || err}\n`,
  );
  process.exit(3);
});
process.on("unhandledRejection", (err) => {
  process.stderr.write(
    `client.cjs: unhandled rejection: ${err && err.stack || err}\n`,
  );
  process.exit(3);
});

function die(message) {
  process.stderr.write(`client.cjs: ${message}\n`);
  process.exit(2);
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function parseJson(text, what) {
  try {
    return JSON.parse(text);
  } catch (err) {
    die(`${what} is not valid JSON: ${err.message}`);
  }
}

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (c) => chunks.push(c));
    process.stdin.on(
      "end",
      () => resolve(Buffer.concat(chunks).toString("utf8")),
    );
    process.stdin.on("error", reject);
  });
}

async function loadConfig() {
  const { values: f } = util.parseArgs({
    options: {
      url: { type: "string" },
      transport: { type: "string" },
      "sockjs-transport": { type: "string" },
      "auth-type": { type: "string" },
      "auth-key": { type: "string" },
      timeout: { type: "string" },
      "connect-timeout": { type: "string" },
      calls: { type: "string" },
      serve: { type: "string" },
      kite: { type: "string" },
      kontrol: { type: "boolean" },
      query: { type: "string" },
      "log-level": { type: "string" },
    },
  });
  let cfg = {};
  if (f.calls === undefined) {
    const text = (await readStdin()).trim();
    if (text) {
      const doc = parseJson(text, "stdin");
      cfg = Array.isArray(doc) ? { calls: doc } : doc;
    }
  } else {
    cfg.calls = parseJson(f.calls, "--calls");
  }
  if (f.url !== undefined) cfg.url = f.url;
  if (f.transport !== undefined) cfg.transport = f.transport;
  if (f["sockjs-transport"] !== undefined) {
    cfg.sockjsTransport = f["sockjs-transport"];
  }
  if (f["auth-type"] !== undefined || f["auth-key"] !== undefined) {
    cfg.auth = { type: f["auth-type"] || "kiteKey", key: f["auth-key"] || "" };
  }
  if (f.timeout !== undefined) cfg.timeoutMs = Number(f.timeout);
  if (f["connect-timeout"] !== undefined) {
    cfg.connectTimeoutMs = Number(f["connect-timeout"]);
  }
  if (f.serve !== undefined) cfg.serve = parseJson(f.serve, "--serve");
  if (f.kite !== undefined) cfg.kite = parseJson(f.kite, "--kite");
  if (f.kontrol) cfg.mode = "kontrol";
  if (f.query !== undefined) cfg.query = parseJson(f.query, "--query");
  if (f["log-level"] !== undefined) cfg.logLevel = Number(f["log-level"]);

  if (typeof cfg.url !== "string" || !cfg.url) die("--url is required");
  cfg.transport = cfg.transport || (cfg.mode === "kontrol" ? "sockjs" : "raw");
  if (cfg.transport !== "raw" && cfg.transport !== "sockjs") {
    die(
      `transport must be "raw" or "sockjs", got ${
        JSON.stringify(cfg.transport)
      }`,
    );
  }
  const sockjsTransports = ["websocket", "xhr-streaming", "xhr-polling"];
  if (
    cfg.sockjsTransport !== undefined &&
    !sockjsTransports.includes(cfg.sockjsTransport)
  ) {
    die(`sockjsTransport must be one of ${sockjsTransports.join(", ")}`);
  }
  cfg.timeoutMs = cfg.timeoutMs > 0 ? cfg.timeoutMs : DEFAULT_TIMEOUT_MS;
  cfg.connectTimeoutMs = cfg.connectTimeoutMs > 0
    ? cfg.connectTimeoutMs
    : DEFAULT_CONNECT_TIMEOUT_MS;
  cfg.calls = cfg.calls || [];
  if (!Array.isArray(cfg.calls)) die("calls must be an array");
  // kite.js DebugLevel.CRITICAL: connection errors are reported by this script.
  cfg.logLevel = Number.isInteger(cfg.logLevel) ? cfg.logLevel : 0;
  return cfg;
}

// kite.js turns a wire error into a KiteError keeping only type/message/code.
// Keep the object exactly as it arrived so tests can see the wire shape.
const KiteError = Kite.Error;
const makeProperError = KiteError.makeProperError;
KiteError.makeProperError = function (raw) {
  const err = makeProperError.call(this, raw);
  Object.defineProperty(err, "raw", { value: raw, enumerable: false });
  return err;
};

function wireError(err) {
  if (err && err.raw !== undefined) return err.raw;
  if (err instanceof Error) {
    const out = { name: err.name, message: err.message };
    if (err.type !== undefined) out.type = err.type;
    if (err.code !== undefined) out.code = err.code;
    return out;
  }
  return err;
}

/** JSON-safe copy for reporting: functions become "[Function]". */
function printable(value) {
  return JSON.parse(
    JSON.stringify(
      value === undefined ? null : value,
      (_k, v) => typeof v === "function" ? "[Function]" : v,
    ),
  );
}

function transportOptions(cfg) {
  if (cfg.transport !== "sockjs") return {};
  const transportClass = Kite.transport.SockJS;
  const transportOptions = cfg.sockjsTransport
    ? { transports: [cfg.sockjsTransport] }
    : {};
  return { transportClass, transportOptions };
}

function identity(cfg, fallbackName) {
  const k = cfg.kite || {};
  return {
    name: k.name || fallbackName,
    username: k.username,
    environment: k.environment,
    version: k.version,
    region: k.region,
    hostname: k.hostname,
  };
}

// ---- serving ----------------------------------------------------------------
// A behaviour for a method this client serves to the remote:
//   "echo"                       reply with the first argument
//   {"result": v}                reply (null, v)
//   {"error": e}                 reply (e)
//   {"throw": "msg"}             throw new Error(msg)
//   {"noReply": true}            never reply
//   {"callFunctions": [args..]}  first call every function argument with args,
//                                then reply as above (result defaults to null)
function buildServeApi(serve) {
  const api = {};
  for (const [name, behaviour] of Object.entries(serve || {})) {
    api[name] = (...all) => {
      all.pop(); // {kite, authentication}
      const callback = typeof all[all.length - 1] === "function"
        ? all.pop()
        : undefined;
      const args = all;
      if (behaviour === "echo") return callback && callback(null, args[0]);
      const b = behaviour && typeof behaviour === "object" ? behaviour : {};
      if (Array.isArray(b.callFunctions)) {
        for (const a of args) {
          if (typeof a === "function") a(...b.callFunctions);
        }
      }
      if (typeof b.throw === "string") throw new Error(b.throw);
      if (b.noReply) return;
      if (!callback) return;
      if (b.error !== undefined) callback(b.error);
      else callback(null, b.result === undefined ? null : b.result);
    };
  }
  return api;
}

// Record every incoming call, default kite.* methods included. The dnode
// instance is kite.api.methods itself, so wrapping its entries in place works.
function recordServed(kite, state) {
  const methods = kite.api.methods;
  for (const name of Object.keys(methods)) {
    const inner = methods[name];
    methods[name] = function (options, ...rest) {
      const o = options || {};
      state.served++;
      // kite/authentication are left out when the caller left them out.
      const line = { served: name, withArgs: printable(o.withArgs) };
      if (o.kite !== undefined) line.kite = printable(o.kite);
      if (o.authentication !== undefined) {
        line.authentication = printable(o.authentication);
      }
      emit(line);
      for (const w of state.servedWaiters.splice(0)) w();
      return inner.call(this, options, ...rest);
    };
  }
}

// ---- calls ------------------------------------------------------------------
function replacePlaceholders(value, makeCallback) {
  if (value === "$callback") return makeCallback();
  if (Array.isArray(value)) {
    return value.map((v) => replacePlaceholders(v, makeCallback));
  }
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = replacePlaceholders(v, makeCallback);
    }
    return out;
  }
  return value;
}

function tellOnce(kite, state, call, timeoutMs) {
  return new Promise((resolve) => {
    const callbackCalls = [];
    let callbackWaiter = null;
    let recorders = 0;
    const makeCallback = () => {
      recorders++;
      return (...args) => {
        callbackCalls.push(printable(args));
        if (callbackWaiter) callbackWaiter();
      };
    };
    const args = replacePlaceholders(
      call.args === undefined ? [] : call.args,
      makeCallback,
    );
    let done = false;
    const finish = (out) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      state.pending.delete(onDisconnect);
      if (recorders) {
        if (callbackCalls.length) out.callbackArgs = callbackCalls[0];
        out.callbackCalls = callbackCalls;
      }
      resolve(out);
    };
    const timer = setTimeout(() => {
      finish({
        ok: false,
        timeout: true,
        error: {
          type: "timeout",
          message: `no reply to ${call.method} within ${timeoutMs} ms`,
        },
      });
    }, timeoutMs);
    const onDisconnect = () => {
      finish({
        ok: false,
        error: {
          type: "disconnect",
          message: "connection closed before the reply",
        },
      });
    };
    if (state.closed) return onDisconnect();
    state.pending.add(onDisconnect);
    kite.tell(call.method, args, (err, result) => {
      const out = err
        ? { ok: false, error: wireError(err) }
        : { ok: true, result: printable(result) };
      if (err == null && result === undefined) delete out.result;
      // Callbacks invoked after the reply (e.g. heartbeats) can be awaited.
      if (call.waitForCallback && recorders && callbackCalls.length === 0) {
        callbackWaiter = () => finish(out);
      } else {
        finish(out);
      }
    });
  });
}

function waitServed(state, count, timeoutMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      resolve({
        ok: false,
        timeout: true,
        error: {
          type: "timeout",
          message:
            `only ${state.served} of ${count} served calls within ${timeoutMs} ms`,
        },
      });
    }, timeoutMs);
    const check = () => {
      if (state.served >= count) {
        clearTimeout(timer);
        resolve({ ok: true, result: state.served });
      } else {
        state.servedWaiters.push(check);
      }
    };
    check();
  });
}

async function runCall(kite, state, call, defaultTimeoutMs) {
  if (!call || typeof call.method !== "string") {
    return {
      method: call && call.method,
      ok: false,
      error: { type: "usage", message: "call.method must be a string" },
    };
  }
  const timeoutMs = call.timeoutMs > 0 ? call.timeoutMs : defaultTimeoutMs;
  if (call.method === "$waitServed") {
    const n = Array.isArray(call.args) && typeof call.args[0] === "number"
      ? call.args[0]
      : 1;
    return { method: call.method, ...(await waitServed(state, n, timeoutMs)) };
  }
  const repeat = Number.isInteger(call.repeat) && call.repeat > 0
    ? call.repeat
    : 0;
  if (!repeat) {
    return {
      method: call.method,
      ...(await tellOnce(kite, state, call, timeoutMs)),
    };
  }

  // Benchmark form: `repeat` calls, at most `concurrency` in flight.
  const concurrency = Number.isInteger(call.concurrency) && call.concurrency > 0
    ? call.concurrency
    : 1;
  const stats = { count: repeat, ok: 0, failed: 0, timeouts: 0, elapsedMs: 0 };
  let next = 0;
  let last = null;
  let firstError = null;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (next < repeat) {
      next++;
      const r = await tellOnce(kite, state, call, timeoutMs);
      if (r.ok) {
        stats.ok++;
        last = r;
      } else {
        stats.failed++;
        if (r.timeout) stats.timeouts++;
        if (!firstError) firstError = r.error;
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(concurrency, repeat) }, worker),
  );
  stats.elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const out = { method: call.method, ok: stats.failed === 0, stats };
  if (last && "result" in last) out.result = last.result;
  if (firstError) out.error = firstError;
  return out;
}

function connect(kite, cfg) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `could not connect to ${cfg.url} within ${cfg.connectTimeoutMs} ms`,
          ),
        ),
      cfg.connectTimeoutMs,
    );
    kite.once("open", () => {
      clearTimeout(timer);
      resolve();
    });
    kite.once("close", (ev) => {
      clearTimeout(timer);
      const why = ev && (ev.reason || ev.code)
        ? ` (${ev.code} ${ev.reason || ""})`
        : "";
      reject(
        new Error(`connection to ${cfg.url} closed before it opened${why}`),
      );
    });
  });
}

/** Closes the connection politely, waiting a little for the close to finish. */
function disconnect(kite) {
  return new Promise((resolve) => {
    if (kite.readyState !== 1) return resolve();
    const timer = setTimeout(resolve, 500);
    kite.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    kite.disconnect();
  });
}

function exit(code) {
  process.stdout.write("", () => process.exit(code));
}

async function runCalls(cfg) {
  const state = {
    closed: false,
    pending: new Set(),
    served: 0,
    servedWaiters: [],
  };
  const kite = new Kite({
    url: cfg.url,
    auth: cfg.auth,
    autoConnect: false,
    autoReconnect: false,
    logLevel: cfg.logLevel,
    api: buildServeApi(cfg.serve),
    ...identity(cfg, "kitejs-client"),
    ...transportOptions(cfg),
  });
  recordServed(kite, state);
  const errors = [];
  // Kite re-emits socket errors as "error"; without a listener Node would throw.
  kite.on("error", (...args) => errors.push(args.map(String).join(" ")));
  kite.on("close", () => {
    state.closed = true;
    for (const fn of [...state.pending]) fn();
  });
  const opened = connect(kite, cfg);
  kite.connect();
  try {
    await opened;
  } catch (err) {
    die(`${err.message}${errors.length ? `; ${errors.join("; ")}` : ""}`);
  }
  for (const call of cfg.calls) {
    emit(await runCall(kite, state, call, cfg.timeoutMs));
  }
  emit({ done: true });
  await disconnect(kite);
  exit(0);
}

async function runKontrol(cfg) {
  const kontrol = new Kontrol({
    url: cfg.url,
    auth: cfg.auth,
    autoConnect: true,
    logLevel: cfg.logLevel,
    ...identity(cfg, undefined),
    ...transportOptions(cfg),
  });
  kontrol.kite.options.autoReconnect = false;
  const errors = [];
  kontrol.on("error", (...args) => errors.push(args.map(String).join(" ")));
  // fetchKites hands only Kite objects back; keep the reply as it arrived.
  let raw;
  const tell = kontrol.kite.tell;
  kontrol.kite.tell = function (method, params, callback) {
    return tell.call(this, method, params, (err, result) => {
      if (method === "getKites") {
        raw = { err: err ? wireError(err) : null, result };
      }
      return callback(err, result);
    });
  };
  // Quirk: fetchKites does Array.from(result.kites) without a check, so a reply
  // without `kites` (e.g. kite.js's success-shaped auth rejection) would throw
  // inside kite.js's message handler and kill the process. Report it instead.
  let threw = null;
  const createKites = kontrol.createKites;
  kontrol.createKites = function (...args) {
    try {
      return createKites.apply(this, args);
    } catch (err) {
      threw = err;
      return [];
    }
  };
  const timeout = new Promise((resolve) => {
    const message = `no getKites reply within ${cfg.timeoutMs} ms${
      errors.length ? `; ${errors.join("; ")}` : ""
    }`;
    setTimeout(
      () =>
        resolve({
          ok: false,
          timeout: true,
          error: { type: "timeout", message },
        }),
      cfg.timeoutMs,
    )
      .unref();
  });
  const closed = new Promise((resolve) => {
    kontrol.kite.once("close", (ev) => {
      const why = ev && (ev.reason || ev.code)
        ? ` (${ev.code} ${ev.reason || ""})`
        : "";
      const message =
        `connection to ${cfg.url} closed before the getKites reply${why}`;
      resolve({ ok: false, error: { type: "disconnect", message } });
    });
  });
  const fetched = kontrol.fetchKites({ query: cfg.query || {} }).then(
    (kites) => {
      const result = raw ? printable(raw.result) : null;
      if (threw) {
        const message = `kite.js fetchKites threw: ${threw.message}`;
        return { ok: false, error: { type: "kitejsThrew", message }, result };
      }
      return {
        ok: true,
        kites: kites.map((k) => ({
          kite: k.getKiteInfo(),
          url: k.options.url,
          token: k.options.auth && k.options.auth.key,
        })),
        result,
      };
    },
    (err) => ({
      ok: false,
      error: wireError(err),
      result: raw ? printable(raw.result) : null,
    }),
  );
  emit({ getKites: true, ...(await Promise.race([fetched, closed, timeout])) });
  emit({ done: true });
  if (kontrol.kite.readyState === 1) await disconnect(kontrol.kite);
  exit(0);
}

loadConfig().then((
  cfg,
) => (cfg.mode === "kontrol" ? runKontrol(cfg) : runCalls(cfg)));
