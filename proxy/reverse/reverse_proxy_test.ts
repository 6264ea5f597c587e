import {
  assert,
  assertEquals,
  assertMatch,
} from "../../tests/helpers/assert.ts";
import {
  mathTestKite,
  MemoryLogger,
  testKite,
  waitFor,
} from "../../tests/helpers/kite_harness.ts";
import { ReverseProxy } from "./reverse_proxy.ts";

function testProxy(config = {}): ReverseProxy {
  return new ReverseProxy({
    env: false,
    kiteKey: false,
    logger: new MemoryLogger(),
    config: { disableAuthentication: true, ...config },
  });
}

Deno.test("ReverseProxy: register answers /proxy/<kite id>; calls over websocket, xhr-polling and raw websocket reach the kite", async () => {
  const proxy = testProxy();
  await proxy.serve({ port: 0, hostname: "127.0.0.1" });
  const math = mathTestKite();
  await math.serve();
  const caller = testKite("caller");
  try {
    // No Kontrol here: the public URL is only logged.
    const publicURL = await math.registerToProxy({
      url: proxy.url,
      localURL: math.url,
    });
    assertMatch(publicURL, /^http:\/\/127\.0\.0\.1:\d+\/proxy\/[0-9a-f-]+$/);
    assertEquals(publicURL, proxy.publicURL(math.identity.id));
    for (
      const transport of ["websocket", "xhr-polling", "raw-websocket"] as const
    ) {
      const client = caller.newClient(publicURL, { transport });
      await client.dial();
      assertEquals(await client.tell("square", 7), 49, transport);
      client.close();
    }
  } finally {
    await caller.close();
    await math.close();
    await proxy.close();
  }
});

Deno.test("ReverseProxy: an unknown kite id is a 404 that says so; a kite that leaves is forgotten", async () => {
  const proxy = testProxy();
  await proxy.serve({ port: 0, hostname: "127.0.0.1" });
  try {
    const res = await fetch(proxy.publicURL("nobody") + "/info");
    assertEquals(res.status, 404);
    assertMatch(await res.text(), /no kite nobody is registered/);
    const kite = testKite("k");
    const client = kite.newClient(proxy.url);
    await client.dial();
    const url = await client.tell("register", "http://127.0.0.1:1/kite");
    assertEquals(url, proxy.publicURL(kite.identity.id));
    assertEquals(proxy.registry.size, 1);
    const down = await fetch(url + "/info");
    assertEquals(down.status, 502);
    assert((await down.text()).includes(`kite ${kite.identity.id}`));
    await kite.close();
    await waitFor(() => proxy.registry.size === 0, "the kite to be forgotten");
  } finally {
    await proxy.close();
  }
});

Deno.test("ReverseProxy: a spliced WebSocket's bytes are counted as they cross the wire", async () => {
  const proxy = testProxy();
  await proxy.serve({ port: 0, hostname: "127.0.0.1" });
  const math = mathTestKite();
  await math.serve();
  try {
    const publicURL = await math.registerToProxy({
      url: proxy.url,
      localURL: math.url,
    });
    const entry = proxy.registry.get(math.identity.id);
    assert(entry, "the kite is registered");
    // A call of a method the kite does not have (answered, not closed).
    const text = JSON.stringify({
      method: "€".repeat(10),
      arguments: [],
      callbacks: {},
    });
    const bytes = new TextEncoder().encode(text).length;
    const socket = new WebSocket(publicURL.replace(/^http/, "ws"));
    const closed = new Promise((resolve) => socket.onclose = resolve);
    await new Promise((resolve) => socket.onopen = resolve);
    // The upgrade request went to the kite, its 101 answer came back.
    const head = entry.bytesIn;
    assert(head > 100, `head counted: ${head}`);
    assert(entry.bytesOut > 100, `answer counted: ${entry.bytesOut}`);
    socket.send(text);
    await waitFor(() => entry.bytesIn > head, "the message to be forwarded");
    // The frame as sent: 2 header bytes, a 4-byte mask, the UTF-8 text.
    assertEquals(entry.bytesIn - head, 2 + 4 + bytes);
    socket.close();
    await closed;
  } finally {
    await math.close();
    await proxy.close();
  }
});

Deno.test("ReverseProxy: a kite that refuses the upgrade gets nothing more from that connection (no request rides past the routing)", async () => {
  const proxy = testProxy();
  const { url } = await proxy.serve({ port: 0, hostname: "127.0.0.1" });
  const seen: string[] = [];
  const backend = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req) => {
      seen.push(new URL(req.url).pathname);
      return new Response("not a websocket here");
    },
  );
  const registrar = testKite("registrar");
  try {
    const client = registrar.newClient(url);
    await client.dial();
    const publicURL = new URL(
      await client.tell(
        "register",
        `http://127.0.0.1:${backend.addr.port}/kite`,
      ) as string,
    );
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: Number(publicURL.port),
    });
    // An upgrade, and a second request pipelined behind it.
    await conn.write(new TextEncoder().encode(
      `GET ${publicURL.pathname}/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n` +
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Sec-WebSocket-Version: 13\r\n\r\n" +
        "GET /secret HTTP/1.1\r\nHost: a\r\n\r\n",
    ));
    let answer = "";
    const buf = new Uint8Array(4096);
    // The proxy ends the connection; a kept-alive one is cut here.
    const guard = setTimeout(() => conn.close(), 5_000);
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        answer += new TextDecoder().decode(buf.subarray(0, n));
      }
      conn.close();
    } catch { /* cut by the guard */ }
    clearTimeout(guard);
    assertMatch(answer, /^HTTP\/1\.1 200 OK\r\n[^]*not a websocket here$/);
    assertEquals(seen, ["/kite/x"]);
    await waitFor(
      () => proxy.registry.get(registrar.identity.id)?.open === 0,
      "the splice to be released",
    );
  } finally {
    await registrar.close();
    await proxy.close();
    await backend.shutdown();
  }
});

Deno.test("ReverseProxy: its internal port answers only connections its front made", async () => {
  const proxy = testProxy();
  const { url } = await proxy.serve({ port: 0, hostname: "127.0.0.1" });
  try {
    const inside = await fetch(`http://127.0.0.1:${proxy.internalPort}/kite`);
    assertEquals(inside.status, 403);
    assertMatch(
      await inside.text(),
      new RegExp(`connect to port ${new URL(url).port}`),
    );
    // The same request through the public port reaches the proxy's kite.
    const outside = await fetch(url);
    assertEquals(outside.status, 200);
    await outside.body?.cancel();
  } finally {
    await proxy.close();
  }
});

Deno.test("ReverseProxy: a request handed to the internal server is forwarded with the caller's own address, not the front's", async () => {
  // The caller comes from ::1; the front reaches the internal server from 127.0.0.1.
  const proxy = testProxy();
  const { url } = await proxy.serve({ port: 0, hostname: "::1" });
  const forwardedFor: (string | null)[] = [];
  const backend = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req) => {
      forwardedFor.push(req.headers.get("x-forwarded-for"));
      return new Response("ok");
    },
  );
  const registrar = testKite("registrar");
  try {
    const client = registrar.newClient(url.replace("//::1:", "//[::1]:"));
    await client.dial();
    const publicURL = (await client.tell(
      "register",
      `http://127.0.0.1:${backend.addr.port}/kite`,
    ) as string).replace("//::1:", "//[::1]:");
    const res = await fetch(`${publicURL}/info`);
    assertEquals(await res.text(), "ok");
    assertEquals(forwardedFor, ["::1"]);
  } finally {
    await registrar.close();
    await proxy.close();
    await backend.shutdown();
  }
});
