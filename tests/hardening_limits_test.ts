/**
 * Every resource limit of a kite hit once on real sockets, with the error
 * or close reason asserted; after each, the kite still serves a
 * well-behaved client. Limits are set small through the kite config.
 */
import { type Kite, KiteError } from "../mod.ts";
import type { Client } from "../kite/client.ts";
import type { KiteConfig } from "../kite/config.ts";
import type { CloseInfo } from "../kite/transport/session.ts";
import { SockJsServer } from "../kite/transport/server/sockjs_server.ts";
import { DeafSocket, FrameSocket, rawHttp } from "../scripts/fuzz/wire.ts";
import { acceptBareWebSocket } from "./helpers/bare_websocket.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertThrows,
} from "./helpers/assert.ts";
import {
  goCall,
  type MemoryLogger,
  settle,
  type Settled,
  sockjsMessages,
  testKite,
  waitFor,
  within,
} from "./helpers/kite_harness.ts";

/** A gate handlers wait on, so that calls stay in flight until a test opens it. */
function gate(): { wait: Promise<void>; open(): void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => open = resolve);
  return { wait, open };
}

interface Served {
  server: Kite;
  caller: Kite;
  url: string;
  port: number;
  client: Client;
}

/**
 * A server kite with `serverConfig` (methods: echo, square, hold, big,
 * makeFns, count) and a caller kite with `callerConfig`, dialed to it.
 */
async function withKites(
  serverConfig: Partial<KiteConfig>,
  callerConfig: Partial<KiteConfig>,
  fn: (s: Served, hold: ReturnType<typeof gate>) => Promise<void>,
): Promise<void> {
  const server = testKite("limits", {
    disableAuthentication: true,
    ...serverConfig,
  });
  const hold = gate();
  server.handle("echo", (r) => r.args.one().raw);
  server.handle("square", (r) => r.args.one().number() ** 2);
  server.handle("hold", async (r) => {
    await hold.wait;
    return r.args.one().raw;
  });
  server.handle("big", (r) => "x".repeat(r.args.one().number()));
  server.handle("makeFns", () => [() => 1, () => 2]);
  server.handle("count", (r) => r.args.slice().length);
  const caller = testKite("caller", callerConfig);
  try {
    const { url, port } = await server.serve();
    const client = caller.newClient(url);
    await client.dial();
    await fn({ server, caller, url, port, client }, hold);
  } finally {
    hold.open();
    await caller.close();
    await server.close();
  }
}

/** Asserts `p` rejects with a KiteError of `type` whose message matches `re`. */
async function rejectsWith(
  p: Promise<unknown>,
  type: string,
  re: RegExp,
): Promise<KiteError> {
  const r = await settle(p);
  assert(!r.ok, `expected a ${type} error, got ${JSON.stringify(r)}`);
  const err = r.error;
  assert(err instanceof KiteError, `not a KiteError: ${err}`);
  assertEquals(err.type, type, err.message);
  assertMatch(err.message, re);
  return err;
}

function sockjsURL(url: string, session = "abcdefabcdefabcdefab"): string {
  return url.replace(/^http/, "ws") + `/123/${session}/websocket`;
}

Deno.test("limit maxMessageBytes: a bigger frame closes the session with 4009", async () => {
  await withKites({ maxMessageBytes: 2048 }, {}, async ({ url, client }) => {
    const ws = await FrameSocket.open(sockjsURL(url));
    try {
      const deadline = Date.now() + 5_000;
      assertEquals(await ws.next(deadline), "o");
      ws.send(JSON.stringify([goCall("echo", ["x".repeat(2048)], 0)]));
      assertEquals(
        await ws.next(deadline),
        'c[4009,"Message too big: limit is 2048 bytes"]',
      );
      assertEquals((await ws.waitClosed(deadline))?.code, 4009);
    } finally {
      await ws.close();
    }
    assertEquals(await client.tell("square", 3), 9);
  });
});

Deno.test("limit maxJsonDepth: a deeper message closes the connection with 3400, one level less is served", async () => {
  // The envelope {arguments:[{withArgs:[…]}]} takes 4 levels.
  const deep = (levels: number) =>
    JSON.parse("[".repeat(levels) + "]".repeat(levels));
  await withKites({ maxJsonDepth: 16 }, {}, async ({ url, client }) => {
    const ws = await FrameSocket.open(sockjsURL(url));
    try {
      const deadline = Date.now() + 5_000;
      assertEquals(await ws.next(deadline), "o");
      ws.send(JSON.stringify([goCall("echo", [deep(12)], 7)]));
      const [reply] = sockjsMessages((await ws.next(deadline))!);
      assertEquals(reply.arguments, [{ error: null, result: deep(12) }]);
      ws.send(JSON.stringify([goCall("echo", [deep(13)], 8)]));
      assertEquals(
        await ws.next(deadline),
        'c[3400,"invalid message: nesting deeper than 16 levels"]',
      );
      assertEquals((await ws.waitClosed(deadline))?.code, 3400);
    } finally {
      await ws.close();
    }
    assertEquals(await client.tell("square", 3), 9);
  });
});

Deno.test("limit maxJsonDepth on the dialing side: a too-deep reply drops the connection and the call fails with disconnect", async () => {
  await withKites({}, { maxJsonDepth: 8 }, async ({ caller, client }) => {
    // The reply {arguments:[{result:…}]} takes 3 levels around the result.
    const fine = JSON.parse("[".repeat(5) + "]".repeat(5));
    assertEquals(await client.tell("echo", fine), fine);
    const deep = JSON.parse("[".repeat(6) + "]".repeat(6));
    await rejectsWith(client.tell("echo", deep), "disconnect", /disconnected/);
    const lines = (caller.logger as MemoryLogger).lines;
    assert(
      lines.some((l) =>
        l.includes("invalid message: nesting deeper than 8 levels")
      ),
      lines.join("\n"),
    );
  });
});

Deno.test("limit maxCallbacks: a call that would hold more local callbacks fails with sendError", async () => {
  await withKites({}, { maxCallbacks: 3 }, async ({ client }) => {
    const kept = [() => {}, () => {}];
    for (const [i, fn] of kept.entries()) {
      assertEquals(await client.tell("count", i, fn), 2);
    }
    assertEquals(client.callbackCount, 2, "functions sent live on");
    // Response callback + one more function = 4 > 3.
    const extra = () => {};
    await rejectsWith(
      client.tell("count", 2, extra),
      "sendError",
      /the connection holds 3 callbacks \(limit maxCallbacks\)/,
    );
    assertEquals(client.callbackCount, 2, "the refused call left nothing");
    assertEquals(await client.tell("square", 4), 16, "room for one more");
    assert(client.releaseCallback(kept[0]));
    assertEquals(await client.tell("count", 2, extra), 2);
  });
});

Deno.test("limit maxCallbacks on the serving side: a result with too many functions is answered with an error", async () => {
  await withKites({ maxCallbacks: 1 }, {}, async ({ client }) => {
    await rejectsWith(
      client.tell("makeFns"),
      "genericError",
      /reply to makeFns not sent: .*limit maxCallbacks/,
    );
    assertEquals(await client.tell("square", 5), 25);
  });
});

Deno.test("limit maxPendingCalls: tell beyond it fails at once with sendError", async () => {
  await withKites({}, { maxPendingCalls: 2 }, async ({ client }, hold) => {
    const waiting = [client.tell("hold", 1), client.tell("hold", 2)];
    await rejectsWith(
      client.tell("hold", 3),
      "sendError",
      /2 calls are already waiting for replies on this connection \(limit maxPendingCalls\)/,
    );
    assertEquals(client.pendingCalls, 2);
    hold.open();
    assertEquals(await Promise.all(waiting), [1, 2]);
    assertEquals(await client.tell("hold", 4), 4);
  });
});

Deno.test("limit maxConcurrentRequests: requests beyond it get requestLimitError", async () => {
  await withKites(
    { maxConcurrentRequests: 3 },
    {},
    async ({ server, client }, hold) => {
      const waiting = [1, 2, 3].map((i) => client.tell("hold", i));
      const err = await rejectsWith(
        client.tell("hold", 4),
        "requestLimitError",
        /Too many requests in flight on this connection: limit is 3 \(maxConcurrentRequests\)/,
      );
      assertMatch(err.id, /^[0-9a-f]{16}$/);
      const accepted = [...server.connections][0];
      assertEquals(server.requestsInFlight(accepted), 3);
      hold.open();
      assertEquals(await Promise.all(waiting), [1, 2, 3]);
      assertEquals(server.requestsInFlight(accepted), 0);
      assertEquals(await client.tell("hold", 5), 5, "room again");
    },
  );
});

Deno.test("limit maxConnections: WebSocket and XHR beyond it get 503, room again once one leaves", async () => {
  await withKites({ maxConnections: 2 }, {}, async ({ url, port, client }) => {
    // The caller's client is connection 1.
    const second = await FrameSocket.open(sockjsURL(url, "second"));
    const refused = await rawHttp(
      port,
      `GET /kite/123/third/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
        `Upgrade: websocket\r\nConnection: Upgrade, close\r\n` +
        `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    assertEquals(refused.status, 503, refused.text);
    assertMatch(refused.text, /Too many connections: limit is 2/);
    const xhr = await fetch(`${url}/123/xhrsession/xhr`, { method: "POST" });
    assertEquals(xhr.status, 503);
    assertEquals(await xhr.text(), "Too many connections: limit is 2");
    await second.close();
    let again: FrameSocket | undefined;
    for (let i = 0; i < 100 && !again; i++) {
      again = await FrameSocket.open(sockjsURL(url, "again")).catch(() =>
        undefined
      );
      if (!again) await new Promise((r) => setTimeout(r, 20));
    }
    assert(again, "a connection slot came free");
    await again.close();
    assertEquals(await client.tell("square", 6), 36);
  });
});

Deno.test("limit maxXhrSessions: a new XHR session beyond it gets 503", async () => {
  await withKites({ maxXhrSessions: 1 }, {}, async ({ url, client }) => {
    const first = await fetch(`${url}/123/one/xhr`, { method: "POST" });
    assertEquals(await first.text(), "o\n");
    const second = await fetch(`${url}/123/two/xhr`, { method: "POST" });
    assertEquals(second.status, 503);
    assertEquals(
      await second.text(),
      "Too many sessions: limit is 1 XHR sessions",
    );
    assertEquals(await client.tell("square", 7), 49, "WebSockets unaffected");
  });
});

Deno.test("limit maxBufferedBytes: a WebSocket peer that never reads is closed with 4008", async () => {
  const limit = 256 * 1024;
  await withKites(
    { maxBufferedBytes: limit },
    {},
    async ({ server, port, client }) => {
      const closes: CloseInfo[] = [];
      server.onConnect((c) => {
        if (c.side === "accepted") c.onDisconnect((info) => closes.push(info));
      });
      const deaf = await DeafSocket.open(port, "/kite/123/deaf/websocket");
      try {
        // 200 replies of 256 KiB: far more than loopback socket buffers hold.
        const calls = Array.from(
          { length: 200 },
          (_, i) => goCall("big", [limit], i),
        );
        await deaf.sendText(JSON.stringify(calls));
        await waitFor(() => closes.length > 0, "the slow consumer's close");
        assertEquals(closes[0].code, 4008);
        assertEquals(
          closes[0].reason,
          `Slow consumer: too much unread data, over ${limit} bytes`,
        );
        const lines = (server.logger as MemoryLogger).lines;
        assert(
          lines.some((l) => l.includes("Slow consumer")),
          "the refused reply is logged",
        );
      } finally {
        deaf.close();
      }
      assertEquals(await client.tell("square", 8), 64);
    },
  );
});

Deno.test("limit maxBufferedBytes on the dialing side: calls to a server that stopped reading fail instead of piling up", async () => {
  const limit = 1 << 20;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = acceptBareWebSocket(listener); // then never reads
  const caller = testKite("caller", { maxBufferedBytes: limit });
  const client = caller.newClient(`ws://127.0.0.1:${listener.addr.port}/`, {
    transport: "raw-websocket",
  });
  try {
    await client.dial();
    const peer = await accepted;
    const big = "x".repeat(64 * 1024);
    const calls: Promise<Settled>[] = [];
    // The kernel takes some megabytes first; a refused send drops the
    // connection. 1,000 calls of 64 KiB would be 64 MiB with no limit.
    while (client.connected && calls.length < 1_000) {
      calls.push(settle(client.tell("echo", big)));
      if (calls.length % 16 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    assert(calls.length < 1_000, "no call was refused");
    const outcomes = (await Promise.all(calls)).map((r) =>
      r.ok
        ? "answered"
        : `${(r.error as KiteError).type}: ${(r.error as KiteError).message}`
    );
    assertEquals(
      outcomes.pop(),
      `sendError: Cannot send: Slow consumer: too much unread data, over ${limit} bytes`,
    );
    assertEquals(new Set(outcomes).size, 1, outcomes.join("\n"));
    assertMatch(outcomes[0], /^disconnect: /);
    peer.close();
  } finally {
    await caller.close();
    listener.close();
  }
});

Deno.test("limit maxBufferedBytes: replies an XHR client never polls for end the session with c[4008]", async () => {
  const limit = 64 * 1024;
  await withKites({ maxBufferedBytes: limit }, {}, async ({ url, client }) => {
    const base = `${url}/123/slowxhr`;
    assertEquals(
      await (await fetch(`${base}/xhr`, { method: "POST" })).text(),
      "o\n",
    );
    const calls = [0, 1, 2].map((i) => goCall("big", [limit], i));
    const sent = await fetch(`${base}/xhr_send`, {
      method: "POST",
      body: JSON.stringify(calls),
    });
    assertEquals(sent.status, 204);
    await sent.body?.cancel();
    const poll = await within(
      fetch(`${base}/xhr`, { method: "POST" }).then((r) => r.text()),
      "the poll",
    );
    // The backlog was dropped: only the close frame is left for the poll.
    assertEquals(
      poll,
      `c[4008,"Slow consumer: too much unread data, over ${limit} bytes"]\n`,
    );
    assertEquals(await client.tell("square", 9), 81);
  });
});

Deno.test("a kite refuses a config whose limit is not a whole number >= 1", () => {
  assertThrows(
    () => testKite("bad", { maxPendingCalls: 0 }),
    RangeError,
    "kite config maxPendingCalls must be a whole number >= 1, got 0",
  );
});

Deno.test("limit maxConnections: sockets dropped mid-handshake or unread give their slot back", async () => {
  const sockjs = new SockJsServer({
    maxConnections: 5,
    onSession: () => ({ onMessage: () => {}, onClose: () => {} }),
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req, info) =>
      sockjs.handle(req, info) ?? new Response(null, { status: 404 }),
  );
  const port = server.addr.port;
  const upgrade = (session: string) =>
    `GET /kite/1/${session}/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
    `Upgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  try {
    for (let i = 0; i < 20; i++) {
      // Sends the upgrade and hangs up without reading the answer.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode(upgrade(`drop${i}`)));
      conn.close();
      // Completes the upgrade, never reads, then hangs up.
      const deaf = await DeafSocket.open(port, `/kite/1/deaf${i}/websocket`);
      deaf.close();
    }
    await waitFor(() => sockjs.connectionCount === 0, "every slot back");
    const ws = await FrameSocket.open(
      `ws://127.0.0.1:${port}/kite/1/last/websocket`,
    );
    assertEquals(await ws.next(Date.now() + 5_000), "o");
    await ws.close();
  } finally {
    sockjs.close();
    await server.shutdown();
  }
});
