/**
 * Typed contracts in a page, in real Chromium: the browser build
 * (`kite.browser.js`) plus the contracts entry (`kite.contract.js`, zod
 * included) call a Deno kite serving the contract — typed calls, a
 * callback whose arguments are checked, the kite's argumentError for a bad
 * argument, and a version mismatch found when the page dials.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { bundleBrowser, CONTRACT_BUNDLE } from "./helpers/browser_bundle.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { serveContract } from "./contract/serve.ts";

// The page writes the same contract as tests/contract/math_contract.ts
// (the part it calls), with the `z` the contracts entry brings.
const PAGE = `<!doctype html><meta charset="utf-8"><title>typed page</title>
<script type="module">
import { Kite, KiteError } from "/kite.browser.js";
import { defineContract, dialTyped, fn, typed, z } from "/kite.contract.js";
const mathAt = (version) => defineContract({
  name: "math",
  version,
  methods: {
    square: { args: [z.number()], result: z.number() },
    add: { args: [z.object({ a: z.number(), b: z.number() })], result: z.number() },
    countdown: {
      args: [z.number().int().min(0).max(10), fn([z.number()])],
      result: z.null(),
    },
  },
});
const failure = (e) => e instanceof KiteError ? e.type + ": " + e.message : String(e);
window.run = async (transport) => {
  const kite = new Kite("page", "1.0.0");
  const client = kite.newClient(location.origin + "/kite", { transport });
  try {
    const m = await dialTyped(client, mathAt("1.0.0"));
    const square = await m.square(4);
    const sum = await m.add({ a: 2, b: 40 });
    const ticks = [];
    await m.countdown(2, (n) => ticks.push(n));
    const bad = await m.add({ a: 1, b: "2" }).then(() => "accepted", failure);
    const newer = kite.newClient(location.origin + "/kite", { transport });
    const mismatch = await dialTyped(newer, mathAt("2.0.0")).then(
      () => "accepted",
      failure,
    );
    newer.close();
    return { square, sum, ticks, bad, mismatch };
  } finally {
    kite.close();
  }
};
window.ready = true;
</script>`;

Deno.test({
  name:
    "a page calls a Deno kite through a typed contract, and gets a validation error for a bad argument",
  // playwright-core keeps its pipe to Chromium open between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const server = await serveContract("1.2.0");
    // One after the other: each build stops esbuild's service when done.
    const kiteJs = await bundleBrowser();
    const contractJs = await bundleBrowser(CONTRACT_BUNDLE);
    const js = (code: string) => () =>
      new Response(code, {
        headers: { "content-type": "text/javascript; charset=utf-8" },
      });
    server.handleHTTP("/kite.browser.js", js(kiteJs.code));
    server.handleHTTP("/kite.contract.js", js(contractJs.code));
    server.handleHTTP("/page", () =>
      new Response(PAGE, {
        headers: { "content-type": "text/html; charset=utf-8" },
      }));
    const browser = await launchChromium();
    try {
      const origin = new URL(server.url).origin;
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${origin}/page`);
      await page.waitForFunction(() => "ready" in globalThis);
      for (const transport of ["raw-websocket", "websocket"]) {
        await t.step(transport, async () => {
          const report = await page.evaluate(
            (tr) =>
              (globalThis as unknown as { run(t: string): Promise<unknown> })
                .run(tr),
            transport,
          );
          assertEquals(report, {
            square: 16,
            sum: 42,
            ticks: [2, 1, 0],
            bad: "argumentError: withArgs[0].b: expected number, got string",
            mismatch:
              "genericError: contract mismatch: kite math serves contract math@1.2.0, which a client built against 2.0.0 cannot call (needs ^2.0.0)",
          });
        });
      }
      assertEquals(errors, []);
    } finally {
      await browser.close();
      await server.close();
    }
  },
});

Deno.test("the contracts entry holds zod and the typed client, shares KiteError with kite.browser.js, and holds no Deno-only file", async () => {
  const bundle = await bundleBrowser({ ...CONTRACT_BUNDLE, minify: false });
  assert(!/\bDeno\./.test(bundle.code), "the bundle calls Deno");
  for (const left of ["kite/kite.ts", "kite/client.ts", "kite/errors.ts"]) {
    assert(!bundle.inputs.includes(left), `bundle includes ${left}`);
  }
  assert(
    /from\s*"\.\/kite\.browser\.js"/.test(bundle.code),
    "KiteError comes from the main browser bundle",
  );
  assert(
    bundle.inputs.includes("kite/contract/typed_client.ts"),
    "typed_client.ts is in",
  );
  assert(
    bundle.inputs.some((i) => /\/zod\/[^/]+\/v4\//.test(i)),
    "zod is bundled from Deno's npm cache",
  );
});
