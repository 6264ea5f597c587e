#!/usr/bin/env node
// A real kite.js 1.0.13 KiteServer for interop tests and benchmarks.
//
//   node server.cjs [--transport raw|sockjs] [--port 0] [--host 127.0.0.1]
//                   [--prefix /kite] [--name kitejs-server] [--log-level 1]
//
// Prints exactly one JSON line on stdout once listening:
//   {"ready":true,"port":N,"url":"ws://127.0.0.1:N/kite","transport":"raw"}
// Everything kite.js logs goes to stderr. Exits 0 on SIGTERM/SIGINT and when
// stdin (if it is a pipe or a terminal) is closed.
"use strict";

const fs = require("node:fs");
const { parseArgs } = require("node:util");

// kite.js logs through console.info/console.log; stdout is reserved for the
// one JSON "ready" line, so every console method goes to stderr.
for (const m of ["log", "info", "warn", "debug", "error"]) {
  console[m] = (...args) =>
    process.stderr.write(require("node:util").format(...args) + "\n");
}

const { KiteServer } = require("kite.js");

const { values: opts } = parseArgs({
  options: {
    transport: { type: "string", default: "raw" },
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
    prefix: { type: "string", default: "/kite" },
    name: { type: "string", default: "kitejs-server" },
    "log-level": { type: "string", default: "1" },
  },
});

if (opts.transport !== "raw" && opts.transport !== "sockjs") {
  fail(
    `--transport must be "raw" or "sockjs", got ${
      JSON.stringify(opts.transport)
    }`,
  );
}
const port = Number(opts.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  fail(`--port must be an integer 0..65535, got ${JSON.stringify(opts.port)}`);
}

function fail(message) {
  process.stderr.write(`server.cjs: ${message}\n`);
  process.exit(2);
}

// ---- the exposed API -------------------------------------------------------
// Each handler is called by kite.js as fn(...withArgs, callback, {kite, authentication}).
// Splitting from the end keeps handlers correct for any number of withArgs.
function splitArgs(all) {
  const meta = all.pop();
  const callback = all.pop();
  return { args: all, callback, meta };
}

/** Connections by the id of the kite that last sent a request on them (for callClient). */
const connectionsByKiteId = new Map();

/** This server's URL, known once it listens. */
let selfUrl = "";

const api = {
  // number -> n*n; anything else -> argumentError (same text as the recorded probe).
  square(...all) {
    const { args: [n], callback } = splitArgs(all);
    if (typeof n !== "number") {
      callback({
        type: "argumentError",
        message: `square expects a number, got ${typeof n}`,
      });
      return;
    }
    callback(null, n * n);
  },
  // (n, fn): calls fn node-style with n*n, then replies n*n. The kite.js server
  // rewrites every outgoing call's (a, b) into {error: a, result: b}, so fn
  // arrives as [{"error":null,"result":n*n}] on the wire.
  squareCb(...all) {
    const { args: [n, fn], callback } = splitArgs(all);
    if (typeof n !== "number") {
      callback({
        type: "argumentError",
        message: `squareCb expects a number, got ${typeof n}`,
      });
      return;
    }
    if (typeof fn !== "function") {
      callback({
        type: "argumentError",
        message: "squareCb expects a function as second argument",
      });
      return;
    }
    fn(null, n * n);
    callback(null, n * n);
  },
  // Replies with the first argument unchanged.
  echo(...all) {
    const { args, callback } = splitArgs(all);
    callback(null, args[0]);
  },
  // Always replies with an error: the given error object, or a genericError.
  fail(...all) {
    const { args: [err], callback } = splitArgs(all);
    callback(
      err !== undefined && err !== null
        ? err
        : { type: "genericError", message: "fail always fails" },
    );
  },
  // Throws: exercises kite.js's thrown-error path (needs the getKiteInfo patch
  // below); the reply looks like a success: {error:null,result:{error:{message}}}.
  throws(...all) {
    const { args: [message] } = splitArgs(all);
    throw new Error(
      typeof message === "string" ? message : "throws always throws",
    );
  },
  // (value?, fn): calls fn(null, value) and replies true (as the recorded probe).
  callMeBack(...all) {
    const { args, callback } = splitArgs(all);
    const fn = args.find((a) => typeof a === "function");
    if (!fn) {
      callback({
        type: "argumentError",
        message: "callMeBack expects a function argument",
      });
      return;
    }
    fn(null, args.find((a) => typeof a !== "function"));
    callback(null, true);
  },
  // (method, ...args): calls `method` on the calling client over the same
  // connection (kite.js Kite.tell) and replies with what the client answered.
  callClient(...all) {
    const { args: [method, ...rest], callback, meta } = splitArgs(all);
    const remote = meta && meta.kite && connectionsByKiteId.get(meta.kite.id);
    if (!remote) {
      callback({
        type: "genericError",
        message: "no connection known for the calling kite",
      });
      return;
    }
    remote.tell(method, rest, (err, result) => {
      callback(
        err ? { type: err.type, message: err.message, code: err.code } : null,
        result,
      );
    });
  },
  // Not a Kontrol: a stub so the kite.js Kontrol client can be exercised
  // without one. Answers in Go Kontrol's shape (docs/protocol.md §8.2) with one
  // descriptor built from the query and this server's URL, and adds
  // `received` (the argument kite.js sent) so tests can inspect it.
  getKites(...all) {
    const { args: [received], callback } = splitArgs(all);
    const q = (received && received.query) || {};
    const kite = {
      name: q.name || "stub",
      username: q.username || "stub",
      id: q.id || "00000000-0000-4000-8000-000000000000",
      environment: q.environment || "interop",
      region: q.region || "local",
      version: q.version || "1.0.0",
      hostname: q.hostname || "localhost",
    };
    callback(null, {
      kites: [{
        kite,
        url: selfUrl,
        keyId: "stub-key-id",
        token: "stub-token",
      }],
      received,
    });
  },
};

// ---- the patch --------------------------------------------------------------
class InteropKiteServer extends KiteServer {
  // Quirk: KiteServer's error path (auth rejected, handler threw) builds a
  // `kite.echo` request from this.getKiteInfo(), which KiteServer lacks, so a
  // stock server sends no reply at all (docs/protocol.md §3.4, §12 #26). This is
  // the minimal patch that makes those errors reach the caller.
  getKiteInfo() {
    const o = this.options;
    return {
      id: this.id,
      username: o.username,
      environment: o.environment,
      name: o.name,
      version: o.version,
      region: o.region,
      hostname: o.hostname,
    };
  }

  // Same as KiteServer#listen, but passes a bind host (stock binds 0.0.0.0)
  // and allows port 0.
  listen(port, hostname) {
    if (this.server != null) throw new Error("Already listening!");
    this.port = port;
    const Server = this.getServerClass();
    this.server = new Server({
      // kite.js' SockJS server rejects a falsy port; node treats "0" as 0.
      port: port === 0 ? "0" : port,
      hostname,
      prefix: this.getPrefix(),
      name: this.options.name,
      logLevel: this.options.logLevel,
    });
    this.server.on("connection", this.bound("onConnection"));
  }

  // Remember which connection each calling kite uses, so callClient can reach it.
  onConnection(ws) {
    super.onConnection(ws);
    ws.on("message", (raw) => {
      let msg;
      try {
        msg = JSON.parse(raw);
      } catch {
        return;
      }
      const id = msg && Array.isArray(msg.arguments) && msg.arguments[0] &&
        msg.arguments[0].kite &&
        msg.arguments[0].kite.id;
      if (typeof id === "string") connectionsByKiteId.set(id, ws.kite);
    });
    ws.on("close", () => {
      for (const [id, k] of connectionsByKiteId) {
        if (k === ws.kite) connectionsByKiteId.delete(id);
      }
    });
  }

  /** The node http.Server underneath either transport. */
  httpServer() {
    const s = this.server.server; // ws.Server or http.Server
    return s._server || s;
  }
}

const server = new InteropKiteServer({
  name: opts.name,
  username: "kitejs",
  environment: "interop",
  version: "1.0.0",
  region: "local",
  hostname: "localhost",
  logLevel: Number(opts["log-level"]),
  prefix: opts.transport === "sockjs" ? opts.prefix : "",
  transportClass: opts.transport === "sockjs"
    ? KiteServer.transport.SockJS
    : KiteServer.transport.WebSocket,
  api,
});

server.listen(port, opts.host);
const http = server.httpServer();
http.once("error", (err) => fail(`listen failed: ${err.message}`));
http.once("listening", () => {
  const actual = http.address().port;
  const scheme = opts.transport === "sockjs" ? "http" : "ws";
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  const url = `${scheme}://${host}:${actual}${opts.prefix}`;
  selfUrl = url;
  process.stdout.write(
    JSON.stringify({
      ready: true,
      port: actual,
      url,
      transport: opts.transport,
    }) + "\n",
  );
});

let closing = false;
function shutdown() {
  if (closing) return;
  closing = true;
  try {
    server.close();
  } catch (err) {
    process.stderr.write(`server.cjs: close failed: ${err && err.message}\n`);
  }
  process.exit(0);
}
// Quirk: kite.js' `kite.heartbeat` interval outlives the connection, and its
// next ping throws "not opened" from a timer, which would kill the server for
// every later test. Log such errors and keep serving.
process.on("uncaughtException", (err) => {
  process.stderr.write(
    `server.cjs: uncaught exception (still serving): ${
      err && err.stack || err
    }\n`,
  );
});
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

// Lifeline: a parent that holds our stdin pipe can stop us by closing it. Skip
// it when stdin is /dev/null or a file (e.g. `node server.cjs &` in a script).
let stdinStat;
try {
  stdinStat = fs.fstatSync(0);
} catch {
  stdinStat = null;
}
if (
  stdinStat &&
  (stdinStat.isFIFO() || stdinStat.isSocket() || process.stdin.isTTY)
) {
  process.stdin.on("end", shutdown);
  process.stdin.on("error", shutdown);
  process.stdin.resume();
}
