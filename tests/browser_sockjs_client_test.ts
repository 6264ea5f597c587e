/**
 * sockjs-client 1.6.1 (the copy kite.js 1.0.13 installs in tests/kitejs)
 * in real Chromium, on a page served from another origin, opens a session
 * to a Deno kite on every transport Chromium can use and gets
 * `squareCb(4)`: the callback it passed called with 16, and `16` through
 * the response callback. The `iframe-*` transports load the kite's
 * `iframe.html`, which loads sockjs-client back from the page's server
 * (`config.sockjsUrl`): no internet needed.
 */
import { Kite } from "../mod.ts";
import { assertEquals } from "./helpers/assert.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { ensureKitejs } from "./helpers/kitejs.ts";
import { MemoryLogger } from "./helpers/kite_harness.ts";

const SOCKJS = new URL(
  "kitejs/node_modules/sockjs-client/dist/sockjs.min.js",
  import.meta.url,
);

const PAGE = `<!doctype html><meta charset="utf-8"><title>sockjs-client</title>
<script src="/sockjs.min.js"></script>
<script>
window.square = (url, transport) => new Promise((resolve, reject) => {
  const sock = new SockJS(url, null, { transports: [transport] });
  const got = {};
  const timer = setTimeout(
    () => reject(new Error("no reply in 20 s, got " + JSON.stringify(got))),
    20000,
  );
  sock.onopen = () => sock.send(JSON.stringify({
    method: "squareCb",
    arguments: [{
      kite: { name: "sockjs-page" },
      withArgs: [4, "[Function]"],
      responseCallback: "[Function]",
    }],
    callbacks: { "7": ["0", "responseCallback"], "8": ["0", "withArgs", "1"] },
    links: [],
  }));
  sock.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.method === 8) got.callback = m.arguments[0];
    if (m.method === 7) {
      got.result = m.arguments[0].result;
      got.error = m.arguments[0].error;
    }
    if (!("callback" in got && "result" in got)) return;
    clearTimeout(timer);
    got.used = sock.transport;
    sock.onclose = null;
    sock.close();
    resolve(got);
  };
  sock.onclose = (e) => reject(new Error("closed " + e.code + " " + e.reason));
});
window.ready = true;
</script>`;

Deno.test({
  name:
    "sockjs-client in Chromium, from another origin, calls a kite on every transport Chromium can use",
  // playwright-core keeps its pipe to Chromium open between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await ensureKitejs();
    const sockjs = await Deno.readTextFile(SOCKJS);
    const pages = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) =>
        new URL(req.url).pathname === "/sockjs.min.js"
          ? new Response(sockjs, {
            headers: { "content-type": "text/javascript; charset=utf-8" },
          })
          : new Response(PAGE, {
            headers: { "content-type": "text/html; charset=utf-8" },
          }),
    );
    const kite = new Kite("math", "1.0.0", {
      env: false,
      kiteKey: false,
      logger: new MemoryLogger(),
      config: {
        disableAuthentication: true,
        // The iframe page loads the same sockjs-client as the page.
        sockjsUrl: `http://127.0.0.1:${pages.addr.port}/sockjs.min.js`,
      },
    });
    kite.handle("squareCb", (r) => {
      const [n, callback] = r.args.sliceOfLength(2);
      callback.func()(n.number() ** 2);
      return n.number() ** 2;
    });
    const browser = await launchChromium();
    try {
      const { url } = await kite.serve({
        port: 0,
        hostname: "127.0.0.1",
        quiet: true,
      });
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${pages.addr.port}/`);
      await page.waitForFunction("window.ready === true");
      for (
        const transport of [
          "websocket",
          "xhr-streaming",
          "xhr-polling",
          "eventsource",
          "iframe-eventsource",
          "iframe-htmlfile",
          "iframe-xhr-polling",
          "jsonp-polling",
        ]
      ) {
        await t.step(transport, async () => {
          const got = await page.evaluate(
            `window.square(${JSON.stringify(url)}, ${
              JSON.stringify(transport)
            })`,
          );
          assertEquals(got, {
            callback: 16,
            result: 16,
            error: null,
            used: transport,
          });
        });
      }
    } finally {
      await browser.close();
      await kite.close();
      await pages.shutdown();
    }
  },
});
