#!/usr/bin/env node
// Benchmark driver for a kite.js 1.0.13 client (Node), the counterpart of the
// Deno callers in call_path.ts. `tests/helpers/kitejs.ts` runs one call per
// repetition through a generic script and reports no per-call latency, and
// opens one connection per process; this driver measures latency per call
// and holds many connections in one process, like the Deno side does.
//
//   node kitejs_driver.cjs '{"url":"ws://127.0.0.1:P/kite","ms":1000,
//                            "depth":100,"conns":50,"callbacks":true}'
//
// Prints one JSON line: {seq:{count,elapsedMs,lat:[µs…]}, flight:{count,
// elapsedMs}, conns:{count,elapsedMs}, callback?:{count,elapsedMs,lat}}.
"use strict";

const path = require("node:path");
const { createRequire } = require("node:module");

const kitejsDir = path.join(__dirname, "..", "..", "tests", "kitejs");
const { Kite } = createRequire(path.join(kitejsDir, "package.json"))(
  "kite.js",
);

for (const m of ["log", "info", "warn", "debug"]) console[m] = () => {};

const cfg = JSON.parse(process.argv[2]);

function open() {
  return new Promise((resolve, reject) => {
    const kite = new Kite({
      url: cfg.url,
      autoConnect: false,
      autoReconnect: false,
      logLevel: 0,
      name: "bench",
    });
    kite.on("error", () => {});
    kite.once("open", () => resolve(kite));
    kite.once("close", () => reject(new Error(`cannot connect ${cfg.url}`)));
    kite.connect();
  });
}

function square(kite) {
  return kite.tell("square", [4]);
}

function squareCb(kite) {
  return new Promise((resolve, reject) => {
    let pending = 2;
    const done = () => --pending === 0 && resolve();
    kite.tell("squareCb", [4, () => done()]).then(done, reject);
  });
}

async function sequential(kite, call, ms) {
  const lat = [];
  const start = performance.now();
  const end = start + ms;
  while (performance.now() < end) {
    const t = performance.now();
    await call(kite);
    lat.push(Math.round((performance.now() - t) * 1000));
  }
  return { count: lat.length, elapsedMs: performance.now() - start, lat };
}

async function lanes(kites, depthPerKite, ms) {
  let count = 0;
  const start = performance.now();
  const end = start + ms;
  const lane = async (kite) => {
    while (performance.now() < end) {
      await square(kite);
      count++;
    }
  };
  const all = [];
  for (const k of kites) {
    for (let i = 0; i < depthPerKite; i++) all.push(lane(k));
  }
  await Promise.all(all);
  return { count, elapsedMs: performance.now() - start };
}

async function main() {
  const kite = await open();
  for (let i = 0; i < 200; i++) await square(kite);
  const out = {};
  out.seq = await sequential(kite, square, cfg.ms);
  out.flight = await lanes([kite], cfg.depth, cfg.ms);
  if (cfg.callbacks) {
    for (let i = 0; i < 50; i++) await squareCb(kite);
    out.callback = await sequential(kite, squareCb, cfg.ms);
  }
  kite.disconnect();
  if (cfg.conns > 0) {
    const kites = await Promise.all(Array.from({ length: cfg.conns }, open));
    for (const k of kites) await square(k);
    out.conns = await lanes(kites, 1, cfg.ms);
    for (const k of kites) k.disconnect();
  }
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(`kitejs_driver: ${err && err.stack || err}\n`);
  process.exit(1);
});
