/**
 * The browser build against kite.js 1.0.13's browser bundle, in the same
 * headless Chromium: bundle sizes (minified + gzip) and calls/s from the
 * page to one Deno kite over raw WebSocket (`square(4)`, 50 calls in
 * flight), rounds alternating so the ratio is a same-run ratio. Ours runs
 * twice: with batch frames (docs/protocol.md §1.8, what a page gets) and
 * with one message per frame (the offer taken off the URL), which is
 * where kite.js stays. Each also gets the CPU time per call of every
 * process: Chromium's renderer, browser and network service (from
 * `/proc`), and this Deno process (the kite and the Playwright driver).
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import {
  bundleBrowser,
  CONTRACT_BUNDLE,
} from "../../tests/helpers/browser_bundle.ts";
import { launchChromium } from "../../tests/helpers/chromium.ts";
import { ensureKitejs } from "../../tests/helpers/kitejs.ts";
import process from "node:process";
import { cpuMicros } from "./process.ts";
import { median, round } from "./stats.ts";

const KITEJS_BUNDLE = new URL(
  "../../tests/kitejs/node_modules/kite.js/dist/bundle.min.js",
  import.meta.url,
);

/** What {@linkcode benchBrowser} measured. */
export interface BrowserBenchResult {
  /** Bundle sizes, KiB. */
  sizes: Record<string, { "KiB min": number; "KiB min+gzip": number }>;
  /** Median calls/s over the rounds, and the ratios to kite.js. */
  calls: {
    ours: number;
    unbatched: number;
    kitejs: number;
    ratio: number;
    unbatchedRatio: number;
  };
  /** Median CPU µs per call, per contender and process. */
  cpu: Record<Contender, Record<string, number>>;
}

/** The three runs of each round. */
type Contender = "ours" | "unbatched" | "kitejs";
const CONTENDERS: Contender[] = ["ours", "unbatched", "kitejs"];

const PAGE = `<!doctype html><meta charset="utf-8"><title>bench</title>
<script src="/kitejs.js"></script>
<script type="module">
import { Kite } from "/kite.browser.js";
const INFLIGHT = 50;
async function pump(call, ms) {
  let done = 0;
  const end = performance.now() + ms;
  async function lane() {
    while (performance.now() < end) { await call(); done++; }
  }
  await Promise.all(Array.from({ length: INFLIGHT }, lane));
  return done / (ms / 1000);
}
async function ours(url, ms) {
  const kite = new Kite("bench-page", "1.0.0");
  const c = kite.newClient(url, { transport: "raw-websocket" });
  await c.dial();
  try { return await pump(() => c.tell("square", 4), ms); } finally { kite.close(); }
}
window.ours = ours;
// The same client without the batch offer: one message per frame.
const Native = window.WebSocket;
class Unbatched extends Native {
  constructor(url) { const u = new URL(url); u.searchParams.delete("kite-batch"); super(u); }
}
window.unbatched = async (url, ms) => {
  window.WebSocket = Unbatched;
  try { return await ours(url, ms); } finally { window.WebSocket = Native; }
};
window.kitejs = async (url, ms) => {
  const k = new window.Kite({
    url: url.replace(/^http/, "ws"), autoConnect: false, autoReconnect: false,
    logLevel: 0,
  });
  const open = new Promise((resolve) => k.once("open", resolve));
  k.connect();
  await open;
  const call = () => new Promise((resolve, reject) =>
    k.tell("square", [4], (err, r) => err ? reject(err) : resolve(r)));
  try { return await pump(call, ms); } finally { k.disconnect(); }
};
window.ready = true;
</script>`;

async function gzipSize(text: string): Promise<number> {
  const stream = new Blob([text]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return (await new Response(stream).arrayBuffer()).byteLength;
}

const kib = (n: number) => round(n / 1024, 1);

/** Chromium's processes (children of this one), by their `--type`. */
function chromiumProcesses(): Map<number, string> {
  const parent = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(entry.name), ppid);
    } catch { /* gone */ }
  }
  const ours = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined; p = parent.get(p)) {
      if (p === Deno.pid) return true;
    }
    return false;
  };
  const kinds = new Map<number, string>();
  for (const pid of parent.keys()) {
    if (!ours(pid)) continue;
    let cmd = "";
    try {
      cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    } catch { /* gone */ }
    if (!cmd.includes("chrom")) continue;
    const type = /--type=([a-z-]+)/.exec(cmd)?.[1] ?? "browser";
    const sub = /--utility-sub-type=[\w.]*\.(\w+)/.exec(cmd)?.[1];
    kinds.set(pid, sub ?? type);
  }
  return kinds;
}

/** CPU µs used so far by each kind of process. */
function cpuByKind(kinds: Map<number, string>): Record<string, number> {
  const used = process.cpuUsage();
  const out: Record<string, number> = { deno: used.user + used.system };
  for (const [pid, kind] of kinds) {
    out[kind] = (out[kind] ?? 0) + (cpuMicros(pid) ?? 0);
  }
  return out;
}

/** Runs the browser benchmark. */
export async function benchBrowser(
  options: { rounds: number; ms: number },
): Promise<BrowserBenchResult> {
  await ensureKitejs();
  const ours = (await bundleBrowser()).code;
  // What typed contracts add to a page (zod included): kite.contract.js.
  const contracts = (await bundleBrowser(CONTRACT_BUNDLE)).code;
  const theirs = await Deno.readTextFile(KITEJS_BUNDLE);
  const sizes = {
    "@kite/core/browser": {
      "KiB min": kib(ours.length),
      "KiB min+gzip": kib(await gzipSize(ours)),
    },
    "+ kite.contract.js (contracts, zod)": {
      "KiB min": kib(contracts.length),
      "KiB min+gzip": kib(await gzipSize(contracts)),
    },
    "kite.js 1.0.13 bundle.min.js": {
      "KiB min": kib(theirs.length),
      "KiB min+gzip": kib(await gzipSize(theirs)),
    },
  };
  const kite = new Kite("math", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { disableAuthentication: true, logLevel: "ERROR" },
  });
  kite.handle("square", (r) => r.args.one().number() ** 2);
  const js = { "content-type": "text/javascript; charset=utf-8" };
  kite.handleHTTP(
    "/kite.browser.js",
    () => new Response(ours, { headers: js }),
  );
  kite.handleHTTP("/kitejs.js", () => new Response(theirs, { headers: js }));
  kite.handleHTTP("/", () =>
    new Response(PAGE, {
      headers: { "content-type": "text/html; charset=utf-8" },
    }));
  const browser = await launchChromium();
  try {
    const { url } = await kite.serve({
      port: 0,
      hostname: "127.0.0.1",
      quiet: true,
    });
    const page = await browser.newPage();
    await page.goto(new URL("/", url).href);
    await page.waitForFunction("window.ready === true");
    const kinds = chromiumProcesses();
    const rates: Record<Contender, number[]> = {
      ours: [],
      unbatched: [],
      kitejs: [],
    };
    const cpu: Record<Contender, Record<string, number[]>> = {
      ours: {},
      unbatched: {},
      kitejs: {},
    };
    const run = async (fn: Contender, counted: boolean) => {
      const before = cpuByKind(kinds);
      const perSec = await page.evaluate(
        `window.${fn}(${JSON.stringify(url)}, ${options.ms})`,
      ) as number;
      const after = cpuByKind(kinds);
      if (!counted) return;
      rates[fn].push(perSec);
      const calls = perSec * options.ms / 1000;
      for (const kind of Object.keys(after)) {
        (cpu[fn][kind] ??= []).push(
          (after[kind] - (before[kind] ?? 0)) / calls,
        );
      }
    };
    // Warm-up: JIT and connection set-up stay out of the rounds.
    for (const fn of CONTENDERS) await run(fn, false);
    for (let i = 0; i < options.rounds; i++) {
      // Rotate the order so no contender always follows the same one.
      for (let j = 0; j < CONTENDERS.length; j++) {
        await run(CONTENDERS[(i + j) % CONTENDERS.length], true);
      }
    }
    const ratio = (fn: Contender) =>
      round(median(rates[fn].map((x, i) => x / rates.kitejs[i])), 2);
    // Processes idle in every run (zygote, GPU, storage) are left out.
    const busy = Object.keys(cpu.kitejs).filter((kind) =>
      CONTENDERS.some((fn) => median(cpu[fn][kind] ?? [0]) > 0)
    );
    const perCall = (fn: Contender) =>
      Object.fromEntries(
        busy.map((kind) => [kind, round(median(cpu[fn][kind] ?? [0]), 1)]),
      );
    return {
      sizes,
      calls: {
        ours: Math.round(median(rates.ours)),
        unbatched: Math.round(median(rates.unbatched)),
        kitejs: Math.round(median(rates.kitejs)),
        ratio: ratio("ours"),
        unbatchedRatio: ratio("unbatched"),
      },
      cpu: {
        ours: perCall("ours"),
        unbatched: perCall("unbatched"),
        kitejs: perCall("kitejs"),
      },
    };
  } finally {
    await browser.close();
    await kite.close();
  }
}

if (import.meta.main) {
  const result = await benchBrowser({ rounds: 5, ms: 1000 });
  console.table(result.sizes);
  console.log(result.calls);
  console.log("CPU µs per call:");
  console.table(result.cpu);
}
