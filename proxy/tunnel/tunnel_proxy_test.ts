import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
} from "../../tests/helpers/assert.ts";
import {
  goCall,
  MemoryLogger,
  RawSocket,
  sockjsSend,
  testKite,
  waitFor,
} from "../../tests/helpers/kite_harness.ts";
import {
  startTestKontrol,
  type TestKontrol,
} from "../../tests/helpers/kontrol_harness.ts";
import type { Kite } from "../../kite/kite.ts";
import type { SessionHandler } from "../../kite/transport/session.ts";
import { TcpWebSocket } from "../../kite/transport/sockets/deno_websocket.ts";
import { SOCKJS_WEBSOCKET_FRAMING } from "../../kite/transport/client/sockjs_websocket_client.ts";
import { openWebSocketSession } from "../../kite/transport/client/websocket_client_session.ts";
import { TunnelRefused } from "../../kite/tunnel_client.ts";
import { TunnelProxy, type TunnelProxyLimits } from "./tunnel_proxy.ts";

interface Setup {
  tk: TestKontrol;
  proxy: TunnelProxy;
  /** A kite holding a kite.key for `username` (unless `key` is given). */
  kite(
    username: string,
    config?: Record<string, unknown>,
    key?: string | false,
  ): Promise<Kite>;
}

async function withProxy(
  limits: Partial<TunnelProxyLimits>,
  fn: (s: Setup) => Promise<void>,
  proxyConfig: Record<string, unknown> = {},
): Promise<void> {
  const tk = await startTestKontrol();
  const proxy = new TunnelProxy({
    kite: {
      env: false,
      kiteKey: await tk.kiteKey("kontrol"),
      logger: new MemoryLogger(),
      config: { ip: "127.0.0.1", ...proxyConfig },
    },
    limits,
  });
  const kites: Kite[] = [];
  try {
    await proxy.serve({ port: 0, hostname: "127.0.0.1", quiet: true });
    await fn({
      tk,
      proxy,
      kite: async (username, config = {}, key) => {
        const k = testKite("behind", { timeoutMs: 5_000, ...config }, {
          kiteKey: key ?? await tk.kiteKey(username),
        });
        kites.push(k);
        return k;
      },
    });
  } finally {
    for (const k of kites) await k.close();
    await proxy.close();
    await tk.close();
  }
}

function tunnelOf(proxy: TunnelProxy, kite: Kite) {
  return kite.registerToTunnel({ url: proxy.kite.url, register: false });
}

Deno.test("TunnelProxy refuses a kite with no kite.key, a forged one, one for another user, and another user's kite id", async () => {
  await withProxy({}, async ({ proxy, kite }) => {
    const cases: [Kite, RegExp][] = [
      [await kite("alice", {}, false), /carries no kiteKey/],
      [
        await kite("alice", {}, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
        /kite\.key refused/,
      ],
      [
        await kite("alice", { username: "mallory" }),
        /is for alice, the kite says mallory/,
      ],
    ];
    for (const [k, why] of cases) {
      const err = await assertRejects(() => tunnelOf(proxy, k), TunnelRefused);
      assertMatch(err.message, why);
    }
    const alice = await kite("alice", { id: "shared-id" });
    await tunnelOf(proxy, alice);
    const bob = await kite("bob", { id: "shared-id" });
    const err = await assertRejects(() => tunnelOf(proxy, bob), TunnelRefused);
    assertMatch(err.message, /taken by another user's tunnel/);
    assertEquals(proxy.tunnels, 1);
  });
});

Deno.test("TunnelProxy: register answers a kite with a tunnel its URL (Go's answer shape)", async () => {
  await withProxy({}, async ({ proxy, kite }) => {
    const behind = await kite("alice");
    const tunnel = await tunnelOf(proxy, behind);
    assertEquals(tunnel.url, proxy.urlOf(behind.identity.id));
    const client = behind.newClient(proxy.kite.url);
    await client.dial();
    assertEquals(await client.tell("register", ""), tunnel.url);
  });
});

/**
 * What a Go kite's default `kite.tunnel` does: dial the URL it is given (a
 * SockJS WebSocket) and serve that session as an accepted connection.
 */
function goKiteTunnelHandler(k: Kite): void {
  k.handle("kite.tunnel", async (r) => {
    const { url } = r.args.one().object<{ url: string }>();
    // Go reads its session when it is ready; here what arrives first waits.
    const to: { served?: SessionHandler } = {};
    const early: string[] = [];
    const session = await openWebSocketSession(
      new URL(url),
      SOCKJS_WEBSOCKET_FRAMING,
      {
        onMessage: (m) => to.served ? to.served.onMessage(m) : early.push(m),
        onClose: (info) => to.served?.onClose(info),
      },
      {
        connectWebSocket: (u, o) => TcpWebSocket.connect(u, o),
        timeoutMs: 5_000,
        pollTimeoutMs: 5_000,
        maxMessageBytes: 1 << 20,
        maxBufferedBytes: 1 << 24,
        id: "go-dial-back",
      },
    );
    const served = to.served = k.acceptSession(session);
    for (const m of early.splice(0)) served.onMessage(m);
    return null;
  }).disableAuthentication();
}

Deno.test("TunnelProxy serves a kite that registers Go's way: each caller's session is a kite.tunnel dial-back joined to it", async () => {
  await withProxy({}, async ({ proxy, kite }) => {
    const goKite = await kite("alice", { disableAuthentication: true });
    goKite.handle("square", (r) => r.args.one().number() ** 2);
    goKiteTunnelHandler(goKite);
    const toProxy = goKite.newClient(proxy.kite.url);
    await toProxy.dial();
    const url = await toProxy.tell("register", "");
    assertEquals(url, proxy.urlOf(goKite.identity.id));
    assertEquals(proxy.tunnels, 1);
    // Another user cannot take the id, Go's way or over /tunnel.
    const mallory = await kite("mallory", { id: goKite.identity.id });
    const m = mallory.newClient(proxy.kite.url);
    await m.dial();
    const taken = await assertRejects(() => m.tell("register", ""));
    assertMatch(taken.message, /taken by another user's tunnel/);
    m.close();
    await assertRejects(() => tunnelOf(proxy, mallory), TunnelRefused);
    const caller = await kite("bob");
    const callers = [0, 1, 2].map(() => caller.newClient(url as string));
    await Promise.all(callers.map((c) => c.dial()));
    const answers = await Promise.all(
      callers.map((c, i) => c.tell("square", i + 2)),
    );
    assertEquals(answers, [4, 9, 16]);
    // A token is good for one dial-back only; an unknown one is refused.
    const stray = await RawSocket.open(
      `${
        proxy.kite.url.replace(/^http/, "ws").replace(/\/kite$/, "")
      }/gotunnel/0/00ff/websocket`,
    );
    assertEquals(await stray.next("the open frame"), "o");
    assertMatch(
      await stray.next("the refusal"),
      /^c\[4003,"unknown or used tunnel token"\]/,
    );
    await stray.close();
    for (const c of callers) c.close();
    // The kite's connection to the proxy drops: its URL is served no more.
    toProxy.close();
    const deadline = Date.now() + 5_000;
    while (proxy.tunnels > 0) {
      assert(Date.now() < deadline, "the proxy forgot the Go kite");
      await new Promise((r) => setTimeout(r, 20));
    }
    const late = caller.newClient(url as string);
    await assertRejects(() => late.dial());
    late.close();
  });
});

Deno.test("TunnelProxy: streams per tunnel are capped; a caller past the cap gets 503 and the others keep working", async () => {
  await withProxy({ maxStreams: 2 }, async ({ proxy, kite }) => {
    const behind = await kite("alice", { disableAuthentication: true });
    behind.handle("square", (r) => r.args.one().number() ** 2);
    const { url } = await tunnelOf(proxy, behind);
    const caller = await kite("bob");
    const [a, b, c] = [0, 1, 2].map(() =>
      caller.newClient(url, { reconnect: { maxMs: 10 } })
    );
    await a.dial();
    await b.dial();
    const err = await assertRejects(() => c.dial());
    assertMatch(err.message, /503|Too many/i);
    assertEquals(await a.tell("square", 3), 9);
    assertEquals(await b.tell("square", 4), 16);
    a.close();
    b.close();
    c.close();
  });
});

Deno.test("TunnelProxy: a kite's reconnect() drops its callers with code 4010 and serves new ones on the same URL", async () => {
  await withProxy({}, async ({ proxy, kite }) => {
    const behind = await kite("alice", { disableAuthentication: true });
    behind.handle("square", (r) => r.args.one().number() ** 2);
    const tunnel = await tunnelOf(proxy, behind);
    const caller = await kite("bob");
    const client = caller.newClient(tunnel.url);
    await client.dial();
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      client.onDisconnect(resolve)
    );
    tunnel.reconnect();
    const info = await closed;
    assertEquals(info.code, 4010);
    assertMatch(info.reason, /tunnel closed/);
    const deadline = Date.now() + 10_000;
    while (tunnel.connects < 2) {
      assert(Date.now() < deadline, "the kite dialed its tunnel again");
      await new Promise((r) => setTimeout(r, 20));
    }
    const again = caller.newClient(tunnel.url);
    await again.dial();
    assertEquals(await again.tell("square", 5), 25);
    client.close();
    again.close();
  });
});

Deno.test("TunnelProxy: one caller address holds at most maxConnectionsPerAddress sessions over all tunnels", async () => {
  await withProxy({}, async ({ proxy, kite }) => {
    const urls: string[] = [];
    for (let i = 0; i < 2; i++) {
      const behind = await kite("alice", { disableAuthentication: true });
      urls.push((await tunnelOf(proxy, behind)).url);
    }
    const open: RawSocket[] = [];
    try {
      for (const url of [urls[0], urls[0], urls[1], urls[1]]) {
        open.push(await RawSocket.sockjs(url));
      }
      const fifth = await RawSocket.sockjs(urls[1]);
      open.push(fifth);
      assertMatch(
        await fifth.next("the refusal"),
        /^c\[4503,"Too many connections from 127\.0\.0\.1 through this tunnel proxy: limit is 4/,
      );
      // A slot freed is a slot to take again.
      await open[0].close();
      await waitFor(async () => {
        const again = await RawSocket.sockjs(urls[1]);
        open.push(again);
        // Served (a reply) or refused (c[4503…]) — whichever comes first.
        sockjsSend(again, goCall("kite.ping", [], 1));
        return (await again.next("a reply or a refusal")).startsWith("a[");
      }, "a freed slot to be taken");
    } finally {
      for (const s of open) await s.close();
    }
  }, { maxConnectionsPerAddress: 4 });
});

Deno.test("TunnelProxy: a message over the kite's own maxMessageBytes closes that caller's stream (4009) and nothing else", async () => {
  await withProxy({}, async ({ proxy, kite }) => {
    const behind = await kite("alice", {
      disableAuthentication: true,
      maxMessageBytes: 64 << 10,
    });
    behind.handle("square", (r) => r.args.one().number() ** 2);
    const tunnel = await tunnelOf(proxy, behind);
    const caller = await kite("bob");
    const good = caller.newClient(tunnel.url);
    await good.dial();
    // The proxy takes up to 4 MiB; the kite behind it only 64 KiB.
    const big = await RawSocket.sockjs(tunnel.url);
    sockjsSend(big, goCall("square", ["x".repeat(100 << 10)], 1));
    assertMatch(
      await big.next("the stream's close"),
      /^c\[4009,"Message too big: limit is 65536 bytes"\]/,
    );
    await big.close();
    assertEquals(await good.tell("square", 7), 49);
    assertEquals(tunnel.connects, 1, "the tunnel itself stayed up");
    good.close();
  }, { maxMessageBytes: 4 << 20 });
});
