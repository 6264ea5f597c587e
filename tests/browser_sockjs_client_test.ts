/**
 * sockjs-client 1.6.1 (the copy kite.js 1.0.13 installs in tests/kitejs)
 * in real Chromium, on a page served from another origin, opens a session
 * to a Deno kite on every transport Chromium can use and gets
 * `squareCb(4)`: the callback it passed called with 16, and `16` through
 * the response callback. The `iframe-*` transports load the kite's
 * `iframe.html`, which loads sockjs-client back from the page's server
 * (`config.sockjsUrl`): no internet needed. kite.js 1.0.13's browser
 * bundle calls the same kite over raw WebSocket and over sockjs-client.
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

const KITEJS = new URL(
  "kitejs/node_modules/kite.js/dist/bundle.min.js",
  import.meta.url,
);

const PAGE = `<!doctype html><meta charset="utf-8"><title>sockjs-client</title>
<script src="/sockjs.min.js"></script>
<script src="/kitejs.js"></script>
<script>
// kite.js 1.0.13's browser bundle: raw WebSocket, or SockJS on one transport.
window.kitejs = (url, transport) => new Promise((resolve, reject) => {
  const options = transport
    ? { url, transportClass: window.SockJS, transportOptions: { transports: [transport] } }
    : { url: url.replace(/^http/, "ws") };
  const k = new window.Kite({ ...options, autoConnect: false, autoReconnect: false, logLevel: 0 });
  const timer = setTimeout(() => reject(new Error("no reply in 20 s")), 20000);
  k.once("open", () => k.tell("square", [4], (err, result) => {
    clearTimeout(timer);
    k.disconnect();
    if (err) reject(new Error(JSON.stringify(err))); else resolve(result);
  }));
  k.connect();
});
window.square = (url, transport) => new Promise((resolve, reject) => {
  // No transport named: sockjs-client picks the best one the server offers.
  const sock = new SockJS(url, null, transport ? { transports: [transport] } : {});
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
    const scripts: Record<string, string> = {
      "/sockjs.min.js": await Deno.readTextFile(SOCKJS),
      "/kitejs.js": await Deno.readTextFile(KITEJS),
    };
    const pages = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => {
        const script = scripts[new URL(req.url).pathname];
        return script === undefined
          ? new Response(PAGE, {
            headers: { "content-type": "text/html; charset=utf-8" },
          })
          : new Response(script, {
            headers: { "content-type": "text/javascript; charset=utf-8" },
          });
      },
    );
    const mathKite = (sockjsWebSocket: boolean, sockjsCookie = false) => {
      const kite = new Kite("math", "1.0.0", {
        env: false,
        kiteKey: false,
        logger: new MemoryLogger(),
        config: {
          disableAuthentication: true,
          sockjsWebSocket,
          sockjsCookie,
          // The iframe page loads the same sockjs-client as the page.
          sockjsUrl: `http://127.0.0.1:${pages.addr.port}/sockjs.min.js`,
        },
      });
      kite.handle("square", (r) => r.args.one().number() ** 2);
      kite.handle("squareCb", (r) => {
        const [n, callback] = r.args.sliceOfLength(2);
        callback.func()(n.number() ** 2);
        return n.number() ** 2;
      });
      return kite;
    };
    const kite = mathKite(true);
    const noWebSocket = mathKite(false);
    const withCookie = mathKite(true, true);
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
      await t.step(
        "sockjsWebSocket: false, sockjs-client goes to xhr-streaming",
        async () => {
          const off = await noWebSocket.serve({
            port: 0,
            hostname: "127.0.0.1",
            quiet: true,
          });
          const got = await page.evaluate(
            `window.square(${JSON.stringify(off.url)}, "")`,
          );
          assertEquals(got, {
            callback: 16,
            result: 16,
            error: null,
            used: "xhr-streaming",
          });
          // The same page, told nothing, takes the WebSocket where it is served.
          const on = await page.evaluate(
            `window.square(${JSON.stringify(url)}, "")`,
          );
          assertEquals((on as { used: string }).used, "websocket");
        },
      );
      await t.step(
        "sockjsCookie: credentialed XHR from another origin stores JSESSIONID",
        async () => {
          const cookied = await withCookie.serve({
            port: 0,
            hostname: "127.0.0.1",
            quiet: true,
          });
          assertEquals(await page.evaluate("document.cookie"), "");
          const got = await page.evaluate(
            `window.square(${JSON.stringify(cookied.url)}, "xhr-polling")`,
          );
          assertEquals((got as { result: number }).result, 16);
          // Same host, another port: the cookie the kite set is the page's too.
          assertEquals(
            await page.evaluate("document.cookie"),
            "JSESSIONID=dummy",
          );
        },
      );
      // kite.js 1.0.13's browser bundle still calls the kite, over its
      // default raw WebSocket and over sockjs-client.
      for (const transport of ["", "xhr-polling", "iframe-htmlfile"]) {
        await t.step(
          `kite.js bundle ${transport || "raw websocket"}`,
          async () => {
            const got = await page.evaluate(
              `window.kitejs(${JSON.stringify(url)}, ${
                JSON.stringify(transport)
              })`,
            );
            assertEquals(got, 16);
          },
        );
      }
    } finally {
      await browser.close();
      await kite.close();
      await noWebSocket.close();
      await withCookie.close();
      await pages.shutdown();
    }
  },
});
