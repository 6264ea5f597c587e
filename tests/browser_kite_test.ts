/**
 * A page is a kite, in real Chromium: the browser build
 * (`kite/browser/mod.ts`, bundled by esbuild) dials a Deno kite over raw
 * WebSocket, SockJS WebSocket and xhr-polling, calls `square` (reply and
 * callback) with a Kontrol token the page was handed, and the Deno kite
 * calls the page's `alert` method back over the same connection.
 */
import { Kite } from "../mod.ts";
import { ManualClock } from "../kite/clock.ts";
import { signKiteKey, signToken } from "../kontrol/tokens.ts";
import { fixtureKey } from "./fixtures/jwt.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { bundleBrowser } from "./helpers/browser_bundle.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { runDeno } from "./helpers/deno_run.ts";
import { MemoryLogger } from "./helpers/kite_harness.ts";

const DAY = 86_400_000;
const KONTROL = {
  public: fixtureKey("kontrol_public.pem"),
  private: fixtureKey("kontrol_pkcs8.pem"),
};

/** What the page reports after one round. */
interface PageReport {
  square: number;
  viaCallback: number;
  fromDeno: string;
  whoami: string;
  alerts: string[];
  refused: string;
}

// The page: the bundle, a token handed over by its server, and one round
// of calls each way per transport.
const PAGE = `<!doctype html><meta charset="utf-8"><title>kite page</title>
<script type="module">
import { Kite, KiteError } from "/kite.browser.js";
window.round = async (transport, token) => {
  const kite = new Kite("page", "1.0.0", { auth: { type: "token", key: token } });
  const alerts = [];
  kite.handle("alert", (r) => {
    const text = r.args.one().string();
    alerts.push(text);
    return "page saw " + text;
  });
  const math = kite.newClient(location.origin + "/kite", { transport });
  await math.dial();
  try {
    const square = await math.tell("square", 4);
    const viaCallback = await new Promise((resolve, reject) => {
      math.tell("squareCb", 5, (n) => resolve(n)).catch(reject);
    });
    const fromDeno = await math.tell("callPage", "hello");
    const whoami = await math.tell("whoami");
    math.auth = { type: "token", key: token + "x" };
    const refused = await math.tell("whoami").then(
      () => "accepted",
      (e) => e instanceof KiteError ? e.type : String(e),
    );
    return { square, viaCallback, fromDeno, whoami, alerts, refused };
  } finally {
    kite.close();
  }
};
// An expired token, renewed from an HTTP endpoint of the page's server.
window.renewal = async (expired) => {
  const kite = new Kite("page", "1.0.0", { auth: { type: "token", key: expired } });
  let renewals = 0;
  const math = kite.newClient(location.origin + "/kite", {
    transport: "raw-websocket",
    renewToken: async () => {
      renewals++;
      return await (await fetch("/token")).text();
    },
  });
  await math.dial();
  try {
    return { whoami: await math.tell("whoami"), renewals };
  } finally {
    kite.close();
  }
};
window.ready = true;
</script>`;

function tokenFor(bob: ManualClock): Promise<string> {
  return signToken({
    audience: "/alice/test/math",
    subject: "bob",
    issuer: "kontrol",
    privateKeyPem: KONTROL.private,
    clock: bob,
  });
}

async function mathKite(): Promise<Kite> {
  const clock = new ManualClock(Date.now());
  const kite = new Kite("math", "1.0.0", {
    env: false,
    kiteKey: await signKiteKey({
      username: "alice",
      kontrolUser: "kontrol",
      kontrolURL: "http://127.0.0.1:1/kite",
      publicKeyPem: KONTROL.public,
      privateKeyPem: KONTROL.private,
      clock,
    }),
    logger: new MemoryLogger(),
    config: { ip: "127.0.0.1", port: 0, environment: "test" },
  });
  kite.handle("square", (r) => r.args.one().number() ** 2);
  kite.handle("squareCb", (r) => {
    const [n, cb] = r.args.sliceOfLength(2);
    cb.func()(n.number() ** 2);
    return null;
  });
  // The Deno kite calls a method defined in the page, over the connection
  // the page dialed.
  kite.handle("callPage", (r) => r.client.tell("alert", r.args.one().string()));
  kite.handle("whoami", (r) => r.username);
  const bundle = await bundleBrowser();
  kite.handleHTTP("/kite.browser.js", () =>
    new Response(bundle.code, {
      headers: { "content-type": "text/javascript; charset=utf-8" },
    }));
  kite.handleHTTP(
    "/token",
    async () => new Response(await tokenFor(new ManualClock(Date.now()))),
  );
  kite.handleHTTP("/page", () =>
    new Response(PAGE, {
      headers: { "content-type": "text/html; charset=utf-8" },
    }));
  return kite;
}

Deno.test({
  name:
    "a page kite calls a Deno kite and serves its calls back, on every transport",
  // playwright-core keeps its pipe to Chromium open between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const kite = await mathKite();
    const token = await tokenFor(new ManualClock(Date.now()));
    const browser = await launchChromium();
    try {
      const { url } = await kite.serve({ quiet: true });
      const origin = new URL(url).origin;
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${origin}/page`);
      await page.waitForFunction(() => "ready" in globalThis);
      for (const transport of ["raw-websocket", "websocket", "xhr-polling"]) {
        await t.step(transport, async () => {
          const report = await page.evaluate(
            ([tr, tok]) =>
              (globalThis as unknown as {
                round(t: string, k: string): Promise<PageReport>;
              }).round(tr, tok),
            [transport, token],
          );
          assertEquals(report, {
            square: 16,
            viaCallback: 25,
            fromDeno: "page saw hello",
            whoami: "bob",
            alerts: ["hello"],
            refused: "authenticationError",
          });
        });
      }
      await t.step(
        "an expired token is renewed from the page's server",
        async () => {
          const expired = await tokenFor(new ManualClock(Date.now() - 3 * DAY));
          const got = await page.evaluate(
            (e) =>
              (globalThis as unknown as {
                renewal(e: string): Promise<unknown>;
              }).renewal(e),
            expired,
          );
          assertEquals(got, { whoami: "bob", renewals: 1 });
        },
      );
      assertEquals(errors, []);
      // The page closed its connections: the Deno kite holds none.
      const deadline = Date.now() + 5_000;
      while (kite.connections.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assertEquals(kite.connections.size, 0);
    } finally {
      await browser.close();
      await kite.close();
    }
  },
});

Deno.test("the browser bundle holds no Deno API and none of the Deno-only files", async () => {
  const bundle = await bundleBrowser({ minify: false });
  assert(!/\bDeno\b/.test(bundle.code), "the bundle names Deno");
  for (
    const denoOnly of [
      "kite/transport/sockets/deno_websocket.ts",
      "kite/transport/sockets/deno_dial.ts",
      "kite/transport/server/sockjs_server.ts",
      "kite/kite.ts",
      "kite/handlers.ts",
      "kite/auth/kitekey.ts",
    ]
  ) {
    assert(!bundle.inputs.includes(denoOnly), `bundle includes ${denoOnly}`);
  }
  assert(bundle.inputs.includes("kite/client.ts"), "client.ts is shared");
  assert(
    bundle.inputs.includes("kite/kontrol_client.ts"),
    "the Kontrol client is shared",
  );
  // `deno info` sees type-only imports too: none of them reach Deno's sockets.
  const info = await runDeno(["info", "--json", "kite/browser/mod.ts"]);
  assertEquals(info.code, 0, info.stderr);
  const graph = JSON.parse(info.stdout) as { modules: { specifier: string }[] };
  const files = graph.modules.map((m) => m.specifier);
  // The layout says which side a file is on: the browser build reaches no
  // server transport and none of Deno's sockets.
  const denoSide = /\/kite\/(transport\/(server\/|sockets\/deno_)|kite\.ts$)/;
  const reached = files.filter((f) => denoSide.test(f));
  assertEquals(reached, [], "deno info kite/browser/mod.ts lists these");
  assert(bundle.inputs.includes("kite/dnode/scrub.ts"), "dnode is shared");
});
