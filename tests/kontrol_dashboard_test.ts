/**
 * The Kontrol dashboard (`--dashboard`) in real Chromium: with a token for
 * alice it shows her kites grouped and live — a kite appears within 1 s of
 * registering and goes within 1 s of disconnecting — and its buttons call
 * `kite.ping` and `kite.systemInfo` on the kite selected. It is off unless
 * asked for, and a token Kontrol refuses leaves the page asking for one.
 *
 * `KITE_SCREENSHOT=1` also writes docs/dashboard.png (the README's).
 */
import type { Page } from "playwright-core";
import type { Kite } from "../mod.ts";
import { makeIdentity } from "../kite/protocol.ts";
import { signToken } from "../kontrol/tokens.ts";
import {
  assert,
  assertEquals,
  assertStringIncludes,
} from "./helpers/assert.ts";
import { bundleBrowser, DASHBOARD_ENTRY } from "./helpers/browser_bundle.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { fixtureKey } from "./fixtures/jwt.ts";
import {
  kontrolKite,
  startTestKontrol,
  type TestKontrol,
} from "./helpers/kontrol_harness.ts";

/** The bound the issue sets on showing a change. */
const SHOW_MS = 1_000;
/** How long the test polls before it gives up (far beyond the bound). */
const POLL_MS = 15_000;

/** A dashboard-enabled Kontrol and a kite.key holder for alice. */
async function dashboardKontrol(): Promise<TestKontrol> {
  const { code } = await bundleBrowser({ entry: DASHBOARD_ENTRY });
  return await startTestKontrol({ dashboard: { script: code } });
}

/**
 * Records, in the page, when each kite row appears and disappears (so the
 * times do not include the test's polling).
 */
async function watchRows(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    const appeared = window.appeared = {};
    const vanished = window.vanished = {};
    let shown = new Set();
    const check = () => {
      const now = new Set();
      for (const el of document.querySelectorAll(".row.kite")) {
        if (!el.hidden && el.dataset.id) now.add(el.dataset.id);
      }
      for (const id of now) if (!(id in appeared)) appeared[id] = Date.now();
      for (const id of shown) if (!now.has(id)) vanished[id] = Date.now();
      shown = now;
    };
    new MutationObserver(check).observe(document.getElementById("list"), {
      subtree: true, childList: true, attributes: true, characterData: true,
    });
    check();
  })()`);
}

/**
 * Polls `expression` in the page until it is truthy and returns it. (The
 * dashboard's CSP forbids the eval behind playwright's waitForFunction;
 * evaluate goes through the DevTools protocol.)
 */
async function until<T>(page: Page, expression: string): Promise<T> {
  const deadline = Date.now() + POLL_MS;
  for (;;) {
    const value = await page.evaluate(expression) as T;
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`not true within ${POLL_MS} ms: ${expression}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** When the page saw the row of kite `id` appear or vanish. */
function stamp(page: Page, which: string, id: string): Promise<number> {
  return until(page, `window.${which}[${JSON.stringify(id)}]`);
}

Deno.test({
  name:
    "the dashboard shows alice's kites live and calls kite.ping and kite.systemInfo",
  // playwright-core keeps its pipe to Chromium open between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const tk = await dashboardKontrol();
    const kites: Kite[] = [];
    const browser = await launchChromium();
    try {
      const alice = await kontrolKite(tk, "viewer", "alice");
      kites.push(alice);
      const token = await alice.kontrol.getToken({
        username: "kontrol",
        name: "kontrol",
      });
      // Bob's kite: not alice's to see.
      const bobs = await kontrolKite(tk, "ledger", "bob");
      kites.push(bobs);
      await bobs.serve({ quiet: true });
      await bobs.register();

      const page = await browser.newPage({
        viewport: { width: 1200, height: 560 },
      });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${tk.base}/dashboard#token=${token}`);
      await until(page, "window.kontrolDashboard?.firstRenderMs !== undefined");
      // The token left the address bar.
      assertEquals(new URL(page.url()).hash, "");
      await watchRows(page);

      const math = await kontrolKite(tk, "math", "alice", {
        environment: "production",
        region: "eu-west",
      });
      kites.push(math);
      await math.serve({ quiet: true });
      const id = math.identity.id;

      await t.step("a kite shows within 1 s of registering", async () => {
        await math.register();
        const registered = Date.now();
        const shown = await stamp(page, "appeared", id);
        assert(
          shown - registered <= SHOW_MS,
          `shown ${shown - registered} ms after registering`,
        );
        const text = await page.textContent(`[data-id="${id}"]`);
        assertStringIncludes(text ?? "", math.registerURL);
        assertStringIncludes(text ?? "", "eu-west");
        const group = await page.textContent(
          `[data-group="alice/production/math/1.0.0"]`,
        );
        assertStringIncludes(group ?? "", "(1)");
        const status = await page.textContent("#status");
        assertStringIncludes(status ?? "", "1 kites in 1 groups · alice");
        assertEquals(await page.$(`[data-id="${bobs.identity.id}"]`), null);
      });

      await t.step(
        "the details panel calls kite.ping and kite.systemInfo",
        async () => {
          await page.click(`[data-id="${id}"]`);
          const details = await page.textContent("#fields");
          assertStringIncludes(details ?? "", math.registerURL);
          assertStringIncludes(details ?? "", "eu-west");
          await page.click("#ping");
          await until(
            page,
            `document.getElementById("output").textContent.includes("(")`,
          );
          assertStringIncludes(
            await page.textContent("#output") ?? "",
            'kite.ping → "pong"',
          );
          await page.click("#systemInfo");
          await until(
            page,
            `document.getElementById("output").textContent.startsWith("kite.systemInfo ") &&
           !document.getElementById("output").textContent.endsWith("…")`,
          );
          const info = await page.textContent("#output") ?? "";
          assertStringIncludes(info, "kite.systemInfo →");
          assertStringIncludes(info, '"homeDir"');
        },
      );

      if (Deno.env.get("KITE_SCREENSHOT") === "1") {
        await screenshot(tk, page, kites);
      }

      await t.step("a kite goes within 1 s of disconnecting", async () => {
        const closing = Date.now();
        await math.close();
        const gone = await stamp(page, "vanished", id);
        assert(
          gone - closing <= SHOW_MS,
          `removed ${gone - closing} ms after disconnecting`,
        );
        assert(await page.isVisible("#gone"), "the details say it is gone");
      });
      await t.step(
        "with 2,000 kites the list holds only the rows in sight",
        async () => {
          const before =
            await until<number>(page, "window.kontrolDashboard.kites + 1") - 1;
          for (let i = 0; i < 2_000; i++) {
            await tk.storage.add({
              kite: makeIdentity({
                username: "alice",
                environment: "load",
                name: `service-${i % 20}`,
                version: "1.0.0",
                id: `bulk-${i}`,
              }),
              url: `http://127.0.0.1:1/kite`,
              keyId: tk.kontrol.selfPair.id,
            });
          }
          await until(
            page,
            `window.kontrolDashboard.kites === ${before + 2_000}`,
          );
          const rendered = await page.evaluate(
            `document.querySelectorAll(".row:not([hidden])").length`,
          ) as number;
          assert(rendered < 100, `${rendered} rows in the DOM`);
          // Scrolled to the end, the last group's (service-9) last kite is drawn.
          await page.evaluate(
            `(() => { const l = document.getElementById("list"); l.scrollTop = l.scrollHeight; })()`,
          );
          await until(
            page,
            `document.querySelector('[data-id="bulk-1989"]') !== null`,
          );
        },
      );
      await t.step("Kontrol going away shows as such", async () => {
        await tk.kontrol.kite.close();
        await until(
          page,
          `document.getElementById("status").textContent.includes("reconnecting")`,
        );
      });
      assertEquals(errors, []);
    } finally {
      await browser.close();
      for (const k of kites.reverse()) await k.close();
      await tk.close();
    }
  },
});

/** A few more kites, a selected one pinged: docs/dashboard.png. */
async function screenshot(
  tk: TestKontrol,
  page: Page,
  kites: Kite[],
): Promise<void> {
  const more: [string, string, string][] = [
    ["math", "production", "us-east"],
    ["math", "production", "ap-south"],
    ["auth", "production", "eu-west"],
    ["search", "staging", "eu-west"],
    ["search", "staging", "eu-west"],
  ];
  for (const [name, environment, region] of more) {
    const k = await kontrolKite(tk, name, "alice", { environment, region });
    kites.push(k);
    await k.serve({ quiet: true });
    await k.register();
  }
  await until(page, `document.querySelectorAll(".row.kite").length >= 6`);
  await page.screenshot({ path: "docs/dashboard.png" });
}

Deno.test({
  name: "the dashboard is off by default, and a refused token asks again",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const plain = await startTestKontrol();
    try {
      const res = await fetch(`${plain.base}/dashboard`);
      await res.body?.cancel();
      assertEquals(res.status, 404);
    } finally {
      await plain.close();
    }
    const tk = await dashboardKontrol();
    const browser = await launchChromium();
    try {
      const res = await fetch(`${tk.base}/dashboard`);
      assertEquals(res.status, 200);
      assertStringIncludes(
        res.headers.get("content-security-policy") ?? "",
        "script-src 'self'",
      );
      await res.body?.cancel();
      // Signed by a key pair this Kontrol does not know.
      const forged = await signToken({
        audience: "/kontrol",
        subject: "alice",
        issuer: "kontrol",
        privateKeyPem: fixtureKey("foreign_pkcs8.pem"),
      });
      const page = await browser.newPage();
      await page.goto(`${tk.base}/dashboard#token=${forged}`);
      await until(
        page,
        `document.getElementById("problem").textContent !== ""`,
      );
      assertStringIncludes(
        await page.textContent("#problem") ?? "",
        "Kontrol refused",
      );
      assert(await page.isHidden("#main"), "no kites shown");
    } finally {
      await browser.close();
      await tk.close();
    }
  },
});

Deno.test("the dashboard is built on the browser build and reaches no Deno code", async () => {
  const bundle = await bundleBrowser({ entry: DASHBOARD_ENTRY, minify: false });
  assert(!/\bDeno\b/.test(bundle.code), "the dashboard bundle names Deno");
  for (const shared of ["kite/browser/kite.ts", "kite/kontrol_client.ts"]) {
    assert(bundle.inputs.includes(shared), `the dashboard misses ${shared}`);
  }
  const denoSide = /^kite\/(transport\/(server\/|sockets\/deno_)|kite\.ts$)/;
  assertEquals(bundle.inputs.filter((f) => denoSide.test(f)), []);
});
