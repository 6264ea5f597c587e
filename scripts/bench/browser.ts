/**
 * The browser build against kite.js 1.0.13's browser bundle, in the same
 * headless Chromium: bundle sizes (minified + gzip) and calls/s from the
 * page to one Deno kite over raw WebSocket (`square(4)`, 50 calls in
 * flight), rounds alternating so the ratio is a same-run ratio.
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
import { median, round } from "./stats.ts";

const KITEJS_BUNDLE = new URL(
  "../../tests/kitejs/node_modules/kite.js/dist/bundle.min.js",
  import.meta.url,
);

/** What {@linkcode benchBrowser} measured. */
export interface BrowserBenchResult {
  /** Bundle sizes, KiB. */
  sizes: Record<string, { "KiB min": number; "KiB min+gzip": number }>;
  /** Median calls/s over the rounds, and the ratio. */
  calls: { ours: number; kitejs: number; ratio: number };
}

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
window.ours = async (url, ms) => {
  const kite = new Kite("bench-page", "1.0.0");
  const c = kite.newClient(url, { transport: "raw-websocket" });
  await c.dial();
  try { return await pump(() => c.tell("square", 4), ms); } finally { kite.close(); }
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
    const run = (fn: string) =>
      page.evaluate(
        `window.${fn}(${JSON.stringify(url)}, ${options.ms})`,
      ) as Promise<number>;
    // Warm-up: JIT and connection set-up stay out of the rounds.
    await run("ours");
    await run("kitejs");
    const a: number[] = [];
    const b: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < options.rounds; i++) {
      const x = await run("ours");
      const y = await run("kitejs");
      a.push(x);
      b.push(y);
      ratios.push(x / y);
    }
    return {
      sizes,
      calls: {
        ours: Math.round(median(a)),
        kitejs: Math.round(median(b)),
        ratio: round(median(ratios), 2),
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
}
