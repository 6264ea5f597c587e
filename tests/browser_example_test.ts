/**
 * `examples/browser`: in real Chromium, the page the example serves dials
 * its Deno kite, and the Deno kite calls the page's `alert` and `log`.
 */
import { browserExampleKite } from "../examples/browser/server.ts";
import { assertEquals } from "./helpers/assert.ts";
import { bundleBrowser } from "./helpers/browser_bundle.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { MemoryLogger } from "./helpers/kite_harness.ts";

Deno.test({
  name: "the browser example's Deno kite calls log and alert on its page",
  // playwright-core keeps its pipe to Chromium open between calls.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { code } = await bundleBrowser();
    const kite = await browserExampleKite({
      bundle: code,
      tickMs: 20,
      kite: {
        env: false,
        kiteKey: false,
        logger: new MemoryLogger(),
        config: { port: 0 },
      },
    });
    const browser = await launchChromium();
    try {
      const { url } = await kite.serve({ hostname: "127.0.0.1", quiet: true });
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(new URL("/", url).href);
      // Strings, not functions: they run in the page, where `document` is.
      await page.waitForFunction(
        `document.querySelectorAll("#log .line").length >= 3 &&
          document.getElementById("alert").textContent !== ""`,
      );
      const seen = await page.evaluate(`({
        alert: document.getElementById("alert").textContent,
        first: document.querySelector("#log .line").textContent.slice(0, 17),
        status: document.getElementById("status").textContent.slice(0, 25),
      })`);
      assertEquals(seen, {
        alert: "alert: hello from browser-demo (Deno)",
        first: "tick 1 from Deno ",
        status: "connected to browser-demo",
      });
      assertEquals(errors, []);
    } finally {
      await browser.close();
      await kite.close();
    }
  },
});
