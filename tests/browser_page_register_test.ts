/**
 * A page registers with Kontrol so other kites find it, in real Chromium:
 * the page (browser build, a token for Kontrol its app handed it, no
 * kite.key) opens a tunnel to the tunnel proxy over the browser's
 * WebSocket with the token Kontrol gave it for the proxy, registers the
 * proxy's public URL for it with its Kontrol token, and a Deno kite finds
 * it with `getKites` and calls its method through the proxy. Callers the
 * tunnel brings authenticate as to a Deno kite (a token or kite.key of this
 * Kontrol; Go's failure texts otherwise), except on methods with
 * `disableAuthentication()`; the kite the page dialed calls it without
 * credentials. A token for alice cannot register a kite of bob, at the
 * proxy or at Kontrol.
 */
import type { Kite } from "../mod.ts";
import { generateKeyPair, type PemKeyPair } from "../kite/auth/keys.ts";
import type { Auth } from "../kite/protocol.ts";
import { KiteError } from "../kite/errors.ts";
import { makeQuery } from "../kite/protocol.ts";
import { signKiteKey } from "../kontrol/tokens.ts";
import { readSettings } from "../kontrol/settings.ts";
import { TunnelProxy } from "../proxy/tunnel/tunnel_proxy.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { bundleBrowser } from "./helpers/browser_bundle.ts";
import { launchChromium } from "./helpers/chromium.ts";
import { MemoryLogger, settle } from "./helpers/kite_harness.ts";
import { FOREIGN_PAIR } from "./fixtures/jwt.ts";
import {
  eventually,
  kontrolKite,
  startTestKontrol,
  verifiesWith,
} from "./helpers/kontrol_harness.ts";

const PAGE = `<!doctype html><meta charset="utf-8"><title>page kite</title>
<script type="module">
import { Kite } from "/kite.browser.js";
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const alerts = [];
// Who each square call came from (r.username; null on a dialed connection).
const squares = [];
const pageKite = (username) => {
  const kite = new Kite("page", "1.0.0", {
    config: { username, environment: "test" },
    kontrol: { url: location.origin + "/kite", key: token },
  });
  kite.handle("square", (r) => {
    squares.push(r.username ?? null);
    return r.args.one().number() ** 2;
  });
  kite.handle("alert", (r) => (alerts.push(r.args.one().string()), "shown"));
  kite.handle("hello", (r) => "hello, " + (r.username ?? "anyone"))
    .disableAuthentication();
  return kite;
};
const proxy = { username: "kontrol", environment: "test", name: "tunnelproxy" };
const failure = (e) => e.type ? e.type + ": " + e.message : e.message;
window.register = async () => {
  const kite = pageKite("alice");
  const tunnel = await kite.registerToTunnel({ query: proxy });
  window.closeKite = () => kite.close();
  // The page dials a kite, which calls the page back on that connection.
  window.dialBack = async (url) => {
    const client = kite.newClient(url);
    await client.dial();
    try {
      return await client.tell("callPage");
    } finally {
      client.close();
    }
  };
  return { url: tunnel.url, id: kite.identity.id };
};
// A token for alice, a kite that says it is bob's.
window.registerAsBob = () =>
  pageKite("bob").registerToTunnel({ query: proxy }).then(() => "registered", failure);
window.kontrolAsBob = () =>
  pageKite("bob").kontrol.register("http://127.0.0.1:1/kite").then(() => "registered", failure);
window.alerts = () => alerts;
window.squares = () => squares;
window.ready = true;
</script>`;

Deno.test({
  name:
    "a page registers with Kontrol through the tunnel proxy with its token, and a Deno kite finds and calls it",
  // playwright-core keeps its pipe to Chromium open between steps.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { code } = await bundleBrowser();
    const tk = await startTestKontrol({
      tokenRegister: true,
      beforeServe: (k) => {
        k.kite.handleHTTP("/kite.browser.js", () =>
          new Response(code, {
            headers: { "content-type": "text/javascript; charset=utf-8" },
          }));
        k.kite.handleHTTP("/page", () =>
          new Response(PAGE, {
            headers: { "content-type": "text/html; charset=utf-8" },
          }));
      },
    });
    const proxyLog = new MemoryLogger();
    const proxy = new TunnelProxy({
      kite: {
        env: false,
        kiteKey: await tk.kiteKey("kontrol"),
        logger: proxyLog,
        config: { ip: "127.0.0.1", environment: "test" },
      },
    });
    const kites: Kite[] = [];
    const browser = await launchChromium();
    try {
      await proxy.serve({ port: 0, hostname: "127.0.0.1", quiet: true });
      await proxy.register();
      // The app's server holds alice's kite.key and hands its page a token.
      const app = await kontrolKite(tk, "app", "alice");
      kites.push(app);
      const token = await app.kontrol.getToken({
        username: "kontrol",
        name: "kontrol",
      });
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${tk.base}/page#token=${token}`);
      await page.waitForFunction(() => "ready" in globalThis);
      const call = (fn: string) =>
        page.evaluate(`window.${fn}()`) as Promise<unknown>;

      const { url, id } = await call("register") as { url: string; id: string };
      assertEquals(url, proxy.urlOf(id));

      // Another kite of alice's finds the page and calls it through the proxy.
      const caller = await kontrolKite(tk, "caller", "alice");
      kites.push(caller);
      const kiteKeyOf = (username: string, pair: PemKeyPair) =>
        signKiteKey({
          username,
          kontrolUser: "kontrol",
          kontrolURL: tk.url,
          publicKeyPem: pair.public,
          privateKeyPem: pair.private,
        });
      const found = await caller.getKites({
        username: "alice",
        environment: "test",
        name: "page",
      });
      assertEquals(found.map((f) => [f.kite.id, f.url]), [[id, url]]);
      const client = found[0].client;
      await client.dial();
      assertEquals(await client.tell("square", 7), 49);
      assertEquals(await client.tell("alert", "hi from Deno"), "shown");
      client.close();
      found[0].renewer.stop();
      assertEquals(await call("alerts"), ["hi from Deno"]);
      assertEquals(await call("squares"), ["alice"], "the token's user");

      // A kite.key of this Kontrol (the caller's default credentials).
      const byKey = caller.newClient(url);
      await byKey.dial();
      assertEquals(await byKey.tell("square", 4), 16);
      assertEquals(await byKey.tell("hello"), "hello, anyone");
      byKey.close();
      assertEquals(await call("squares"), ["alice", "alice"]);

      // Refused with Go's texts before the handler runs; open methods
      // still answer.
      const refusedSquare = async (auth: Auth | null, text: string) => {
        const stranger = caller.newClient(url, { auth });
        await stranger.dial();
        const refused = await settle(stranger.tell("square", 4));
        assert(!refused.ok, `square answered ${JSON.stringify(refused)}`);
        const err = refused.error as KiteError;
        assert(err instanceof KiteError, String(err));
        assertEquals([err.type, err.message], ["authenticationError", text]);
        assertEquals(await stranger.tell("hello"), "hello, anyone");
        stranger.close();
      };
      await refusedSquare(null, "No authentication information is provided");
      assertEquals(await call("squares"), ["alice", "alice"], "no more runs");

      // The kite the page dialed calls the page back without credentials.
      caller.handle("callPage", (r) => r.client.tell("square", 5))
        .disableAuthentication();
      await caller.serve();
      assertEquals(
        await page.evaluate(`window.dialBack(${JSON.stringify(caller.url)})`),
        25,
      );
      assertEquals(await call("squares"), ["alice", "alice", null]);

      // alice's token registers alice's kites only.
      assertMatch(
        await call("registerAsBob") as string,
        /refused this kite: the token is for alice, the kite says bob/,
      );
      assertEquals(
        await call("kontrolAsBob"),
        "authenticationError: a token for alice registers kites of alice only, not of bob",
      );
      assertEquals(
        (await tk.storage.get(makeQuery({ username: "bob" }))).length,
        0,
        "nothing of bob's was registered",
      );
      assert(proxy.tunnels === 1, `one tunnel, not ${proxy.tunnels}`);

      // Kontrol rotates its key: tokens and kite.keys of the new pair get
      // through (the page asks Kontrol's key again), ...
      const fresh = await generateKeyPair();
      const retired = (await tk.kontrol.currentPair()).id;
      await tk.kontrol.addKeyPair({ id: "rotated", ...fresh });
      await tk.kontrol.deleteKeyPair(retired);
      const [again] = await caller.getKites({
        username: "alice",
        environment: "test",
        name: "page",
      });
      again.renewer.stop();
      assert(await verifiesWith(again.token, fresh.public), "a new-pair token");
      await again.client.dial();
      assertEquals(await again.client.tell("square", 3), 9);
      again.client.close();
      const newKey = caller.newClient(url, {
        auth: { type: "kiteKey", key: await kiteKeyOf("alice", fresh) },
      });
      await newKey.dial();
      assertEquals(await newKey.tell("square", 2), 4);
      newKey.close();
      // ... and a kite.key another key signed does not.
      await refusedSquare(
        {
          type: "kiteKey",
          key: await kiteKeyOf("alice", FOREIGN_PAIR),
        },
        "kiteKey: kontrol key is not trusted",
      );
      assertEquals(await call("squares"), [
        "alice",
        "alice",
        null,
        "alice",
        "alice",
      ]);

      // The page closes: its tunnel and its registration go.
      await call("closeKite");
      await eventually(async () =>
        proxy.tunnels === 0 &&
        (await tk.storage.get(
            makeQuery({ username: "alice", environment: "test", name: "page" }),
          ))
            .length === 0, "the closed page's tunnel and registration to go");
      assertEquals(errors, []);
    } finally {
      await browser.close();
      for (const k of kites.reverse()) await k.close();
      await proxy.close();
      await tk.close();
    }
  },
});

Deno.test("readSettings() reads --tokenRegister: off unless given", () => {
  const none = () => undefined;
  assertEquals(readSettings([], none).tokenRegister, false);
  assertEquals(readSettings(["--tokenRegister"], none).tokenRegister, true);
  assertEquals(
    readSettings(["--tokenRegister=false"], none).tokenRegister,
    false,
  );
  assertEquals(
    readSettings(
      [],
      (name) => name === "KONTROL_TOKENREGISTER" ? "1" : undefined,
    ).tokenRegister,
    true,
  );
});

Deno.test("the tunnel proxy refuses a forged token in the hello and keeps serving", async () => {
  const tk = await startTestKontrol();
  const proxy = new TunnelProxy({
    kite: {
      env: false,
      kiteKey: await tk.kiteKey("kontrol"),
      logger: new MemoryLogger(),
      config: { ip: "127.0.0.1" },
    },
  });
  try {
    await proxy.serve({ port: 0, hostname: "127.0.0.1", quiet: true });
    const endpoint = proxy.kite.url.replace(/^http/, "ws").replace(
      /\/kite$/,
      "/tunnel",
    );
    const kite = {
      id: "page-1",
      username: "alice",
      environment: "test",
      name: "page",
      version: "1.0.0",
      region: "browser",
      hostname: "browser",
    };
    for (const token of ["eyJhbGciOiJSUzI1NiJ9.e30.c2ln", ""]) {
      const ws = new WebSocket(endpoint);
      const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
      ws.onopen = () => ws.send(JSON.stringify({ kite, token }));
      const { code, reason } = await closed;
      assertEquals(code, 4003);
      assertMatch(
        reason,
        token ? /^token refused/ : /carries no kiteKey or token/,
      );
    }
    assertEquals(proxy.tunnels, 0);
    assertEquals(
      (await fetch(`${proxy.kite.url}/info`).then((r) => r.json())).websocket,
      true,
    );
  } finally {
    await proxy.close();
    await tk.close();
  }
});
