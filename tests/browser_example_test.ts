/**
 * The browser examples in real Chromium: `examples/browser`'s page dials
 * its Deno kite, which calls the page's `alert` and `log`; the
 * `examples/contracts` page imports the shared `contract.ts` (bundled
 * against the browser build) and shows typed results, a callback's calls
 * and the contract's check of a bad argument.
 */
import type { Page } from "playwright-core";
import type { Kite, KiteOptions } from "../mod.ts";
import { browserExampleKite } from "../examples/browser/server.ts";
import {
  calculatorPageKite,
  PAGE_SCRIPTS,
} from "../examples/contracts/browser.ts";
import { assertEquals } from "./helpers/assert.ts";
import {
  bundleBrowser,
  type BundleOptions,
  CONTRACT_BUNDLE,
  CONTRACTS_PAGE_BUNDLE,
} from "./helpers/browser_bundle.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { MemoryLogger } from "./helpers/kite_harness.ts";

const quiet = (): KiteOptions => ({
  env: false,
  kiteKey: false,
  logger: new MemoryLogger(),
  config: { port: 0 },
});

/**
 * Serves `kite` on 127.0.0.1, opens its `/` in Chromium and runs `check`
 * on the page; the page must throw nothing meanwhile.
 */
async function onPage(kite: Kite, check: (page: Page) => Promise<void>) {
  const browser = await launchChromium();
  try {
    const { url } = await kite.serve({ hostname: "127.0.0.1", quiet: true });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(new URL("/", url).href);
    await check(page);
    assertEquals(errors, []);
  } finally {
    await browser.close();
    await kite.close();
  }
}

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
      kite: quiet(),
    });
    await onPage(kite, async (page) => {
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
    });
  },
});

const CONTRACTS_BUILDS: Record<
  (typeof PAGE_SCRIPTS)[number],
  BundleOptions
> = {
  "kite.browser.js": {},
  "kite.contract.js": CONTRACT_BUNDLE,
  "contracts_page.js": CONTRACTS_PAGE_BUNDLE,
};

Deno.test({
  name:
    "examples/contracts: the page calls the calculator through the shared contract and shows a bad argument's error",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const scripts: Record<string, string> = {};
    const inputs: Record<string, string[]> = {};
    // One after the other: each build stops esbuild's service when done.
    for (const name of PAGE_SCRIPTS) {
      const bundle = await bundleBrowser(CONTRACTS_BUILDS[name]);
      scripts[name] = bundle.code;
      inputs[name] = bundle.inputs;
    }
    // The very contract.ts the Deno client imports; zod, fn and dialTyped
    // come from kite.contract.js, not bundled again.
    assertEquals(inputs["contracts_page.js"].sort(), [
      "examples/contracts/contract.ts",
      "examples/contracts/page.ts",
    ]);
    const kite = await calculatorPageKite(scripts, quiet());
    await onPage(kite, async (page) => {
      // Done when the last line is shown, or the page reports a failure.
      await page.waitForFunction(
        `document.getElementById("invalid").textContent !== "" ||
          !["connected", "connecting…"].includes(
            document.getElementById("status").textContent)`,
      );
      const seen = await page.evaluate(`Object.fromEntries(
        ["status", "square", "divide", "countdown", "invalid"].map((id) =>
          [id, document.getElementById(id).textContent]))`);
      assertEquals(seen, {
        status: "connected",
        square: "square(4) = 16",
        divide: "17 / 5 = 3 remainder 2",
        countdown: "countdown(3) called back 3, 2, 1, 0, then liftoff",
        invalid: "countdown(1000) → argumentError: withArgs[0]: " +
          "Too big: expected number to be <=100",
      });
    });
  },
});
