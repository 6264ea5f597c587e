/**
 * Batch frames in real Chromium (docs/protocol.md §1.8): a page's calls to a
 * Deno kite over raw WebSocket leave in one frame per tick and come back
 * correct, callbacks included; the Deno kite's calls of the page's methods
 * come batched too. A kite.js server ignores the offer: the page then
 * sends one message per frame, as before.
 */
import { Kite } from "../mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { bundleBrowser } from "./helpers/browser_bundle.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { startKitejsServer } from "./helpers/kitejs.ts";

/** What the page reports: results, and every frame its WebSocket carried. */
interface PageReport {
  url: string;
  squares: number[];
  viaCallback: unknown[];
  fromDeno: number[];
  sent: string[];
  received: string[];
}

// The page records its WebSocket's frames by wrapping the constructor the
// browser build uses (the page's `WebSocket`).
const PAGE = `<!doctype html><meta charset="utf-8"><title>batch page</title>
<script type="module">
import { Kite } from "/kite.browser.js";
const frames = { url: "", sent: [], received: [] };
class Recording extends WebSocket {
  constructor(url) {
    super(url);
    frames.url = String(url);
    this.addEventListener("message", (e) => frames.received.push(e.data));
  }
  send(data) { frames.sent.push(data); super.send(data); }
}
window.WebSocket = Recording;
window.run = async (url, deno) => {
  frames.sent = []; frames.received = [];
  const kite = new Kite("page", "1.0.0");
  kite.handle("twice", (r) => 2 * r.args.one().number());
  const math = kite.newClient(url, { transport: "raw-websocket" });
  await math.dial();
  try {
    await math.tell("square", 1); // by its reply, a Deno kite's [] is here
    const n = Array.from({ length: 20 }, (_, i) => i);
    const squares = await Promise.all(n.map((i) => math.tell("square", i)));
    const viaCallback = await Promise.all(n.map((i) =>
      new Promise((resolve, reject) => {
        math.tell("squareCb", i, (r) => resolve(r)).catch(reject);
      })));
    const fromDeno = deno ? await math.tell("callPage", 10) : [];
    return { url: frames.url, squares, viaCallback, fromDeno, ...frames };
  } finally {
    kite.close();
  }
};
window.ready = true;
</script>`;

function denoKite(bundle: string): Kite {
  const kite = new Kite("math", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { disableAuthentication: true, logLevel: "ERROR" },
  });
  kite.handle("square", (r) => r.args.one().number() ** 2);
  kite.handle("squareCb", (r) => {
    const [n, cb] = r.args.sliceOfLength(2);
    cb.func()(n.number() ** 2);
    return null;
  });
  // The kite calls the page's method, many calls at once.
  kite.handle("callPage", (r) => {
    const n = r.args.one().number();
    return Promise.all(
      Array.from({ length: n }, (_, i) => r.client.tell("twice", i)),
    );
  });
  kite.handleHTTP("/kite.browser.js", () =>
    new Response(bundle, {
      headers: { "content-type": "text/javascript; charset=utf-8" },
    }));
  kite.handleHTTP("/page", () =>
    new Response(PAGE, {
      headers: { "content-type": "text/html; charset=utf-8" },
    }));
  return kite;
}

/** The dnode messages a frame carries (one, or a batch's elements). */
const messagesOf = (frame: string): { method: unknown }[] => {
  const value = JSON.parse(frame);
  return Array.isArray(value) ? value : [value];
};

Deno.test({
  name:
    "a page batches its calls to a Deno kite and is called back batched; a kite.js server ignores the offer",
  // playwright-core keeps its pipe to Chromium open between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const kite = denoKite((await bundleBrowser()).code);
    await using kitejs = await startKitejsServer({ transport: "raw" });
    const browser = await launchChromium();
    try {
      const { url } = await kite.serve({ quiet: true });
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(new URL("/page", url).href);
      await page.waitForFunction(() => "ready" in globalThis);
      const run = (target: string, deno: boolean) =>
        page.evaluate(
          ([u, d]) =>
            (globalThis as unknown as {
              run(u: string, d: boolean): Promise<PageReport>;
            }).run(u as string, d as boolean),
          [target, deno] as const,
        );
      const n = Array.from({ length: 20 }, (_, i) => i);
      await t.step("to a Deno kite", async () => {
        const report = await run(url, true);
        assertEquals(report.squares, n.map((i) => i * i));
        assertEquals(report.viaCallback, n.map((i) => i * i));
        assertEquals(report.fromDeno, n.slice(0, 10).map((i) => 2 * i));
        assert(report.url.endsWith("/kite?kite-batch=1"), report.url);
        assertEquals(report.received[0], "[]");
        // The 20 calls of one tick left in one frame, and so did their
        // replies and the kite's 10 calls of the page.
        const sentBatches = report.sent.filter((f) => f.startsWith("["));
        assert(
          sentBatches.some((f) =>
            messagesOf(f).filter((m) => m.method === "square").length === 20
          ),
          `no frame with the 20 calls: ${sentBatches.length} batches sent`,
        );
        assert(
          report.received.some((f) =>
            f.startsWith("[") &&
            messagesOf(f).filter((m) => m.method === "twice").length === 10
          ),
          "the kite's 10 calls of the page came in more than one frame",
        );
        const calls = report.sent.flatMap(messagesOf)
          .filter((m) => m.method === "square").length;
        assertEquals(calls, 21);
        assert(report.sent.length < calls, "one frame per call: no batching");
      });
      await t.step("to a kite.js server", async () => {
        const report = await run(kitejs.url, false);
        assertEquals(report.squares, n.map((i) => i * i));
        // kite.js servers wrap a callback's (err, result) in one object.
        assertEquals(
          report.viaCallback,
          n.map((i) => ({ error: null, result: i * i })),
        );
        // Offered, not answered: one message per frame each way.
        assert(report.url.includes("kite-batch=1"), report.url);
        for (const frame of [...report.sent, ...report.received]) {
          assert(frame.startsWith("{"), `not a plain message: ${frame}`);
        }
      });
      assertEquals(errors, []);
    } finally {
      await browser.close();
      await kite.close();
    }
  },
});
