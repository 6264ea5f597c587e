/**
 * A page finds kites through Kontrol, in real Chromium: the browser build's
 * Kontrol client (the same `KontrolClient` Deno kites use) calls
 * `getKites` and `watchKites` with a token the page's server handed it —
 * never a kite.key — renews that token from the server's endpoint when
 * Kontrol says it expired, dials the kite it found with the token Kontrol
 * gave for it, and cannot turn its token into a new one.
 */
import type { Kite } from "../mod.ts";
import { ManualClock } from "../kite/clock.ts";
import { audienceFor, signToken } from "../kontrol/tokens.ts";
import { assertEquals } from "./helpers/assert.ts";
import { bundleBrowser } from "./helpers/browser_bundle.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { fixtureKey } from "./fixtures/jwt.ts";
import { kontrolKite, startTestKontrol } from "./helpers/kontrol_harness.ts";

const DAY = 86_400_000;

const PAGE = `<!doctype html><meta charset="utf-8"><title>finder</title>
<script type="module">
import { Kite } from "/kite.browser.js";
let renewals = 0;
const kite = new Kite("finder", "1.0.0", {
  kontrol: {
    url: location.origin + "/kite",
    key: new URLSearchParams(location.hash.slice(1)).get("token"),
    // The page's server hands out a fresh token for Kontrol.
    renew: async () => (renewals++, await (await fetch("/kontrol-token")).text()),
  },
});
const events = [];
window.find = async () => {
  const found = await kite.getKites({ username: "alice", environment: "test", name: "math" });
  const math = found[0].client;
  await math.dial();
  const square = await math.tell("square", 4);
  math.close();
  return { found: found.length, square, renewals };
};
window.watch = () => kite.watchKites({ username: "alice", environment: "test", name: "math" },
  (e) => events.push(e.action + " " + e.kite.id));
window.events = () => events;
window.selfToken = () => kite.kontrol.getToken({ username: "kontrol", name: "kontrol" })
  .then(() => "issued", (e) => e.type + ": " + e.message);
window.ready = true;
</script>`;

Deno.test({
  name:
    "a page calls getKites and watchKites through Kontrol with a token its server handed it",
  // playwright-core keeps its pipe to Chromium open between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { code } = await bundleBrowser();
    const tk = await startTestKontrol({
      beforeServe: (k) => {
        k.kite.handleHTTP("/kite.browser.js", () =>
          new Response(code, {
            headers: { "content-type": "text/javascript; charset=utf-8" },
          }));
        k.kite.handleHTTP("/finder", () =>
          new Response(PAGE, {
            headers: { "content-type": "text/html; charset=utf-8" },
          }));
        // The app's token endpoint (its server holds the kite.key).
        k.kite.handleHTTP("/kontrol-token", async () =>
          new Response(
            await server.kontrol.getToken({
              username: "kontrol",
              name: "kontrol",
            }),
          ));
      },
    });
    const kites: Kite[] = [];
    const browser = await launchChromium();
    let server: Kite;
    try {
      server = await kontrolKite(tk, "app", "alice");
      kites.push(server);
      const math = await kontrolKite(tk, "math", "alice");
      kites.push(math);
      math.handle("square", (r) => r.args.one().number() ** 2);
      await math.serve({ quiet: true });
      await math.register();
      // Expired two days ago: the page renews it from /kontrol-token.
      const expired = await signToken({
        audience: audienceFor(tk.kontrol.kite.identity),
        subject: "alice",
        issuer: "kontrol",
        privateKeyPem: fixtureKey("kontrol_pkcs8.pem"),
        clock: new ManualClock(Date.now() - 3 * DAY),
      });
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${tk.base}/finder#token=${expired}`);
      await page.waitForFunction(() => "ready" in globalThis);
      const call = (fn: string) =>
        page.evaluate(`window.${fn}()`) as Promise<unknown>;

      assertEquals(await call("find"), { found: 1, square: 16, renewals: 1 });

      await call("watch");
      const second = await kontrolKite(tk, "math", "alice");
      kites.push(second);
      await second.serve({ quiet: true });
      await second.register();
      const id = second.identity.id;
      await page.waitForFunction(
        (id) =>
          (globalThis as unknown as { events(): string[] }).events()
            .includes(`REGISTER ${id}`),
        id,
      );
      await second.close();
      await page.waitForFunction(
        (id) =>
          (globalThis as unknown as { events(): string[] }).events()
            .includes(`DEREGISTER ${id}`),
        id,
      );
      assertEquals(await call("events"), [
        `REGISTER ${id}`,
        `DEREGISTER ${id}`,
      ]);

      // Only a kite.key gets a token for Kontrol: a token cannot extend itself.
      assertEquals(
        await call("selfToken"),
        "genericError: Unexpected authentication type: token",
      );
      assertEquals(errors, []);
    } finally {
      await browser.close();
      for (const k of kites.reverse()) await k.close();
      await tk.close();
    }
  },
});
