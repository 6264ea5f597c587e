import assert from "node:assert/strict";
import {
  hostPort,
  randomServerId,
  randomSessionId,
  sockjsWebsocketUrl,
  toHttpUrl,
  toWebSocketUrl,
  xhrSessionUrls,
} from "./sockjs_client_url.ts";

Deno.test("randomServerId() gives 3 digits from 100 to 999", () => {
  for (let i = 0; i < 200; i++) {
    const id = randomServerId();
    assert.match(id, /^[1-9]\d\d$/);
  }
});

Deno.test("randomSessionId() gives 20 lowercase hex chars, fresh each time", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const id = randomSessionId();
    assert.match(id, /^[0-9a-f]{20}$/);
    seen.add(id);
  }
  assert.equal(seen.size, 50);
});

Deno.test("sockjsWebsocketUrl() joins the path as Go's path.Join and keeps the query", () => {
  const cases: [string, string][] = [
    ["http://h:3636/kite", "ws://h:3636/kite/517/abc/websocket"],
    ["http://h:3636/kite/", "ws://h:3636/kite/517/abc/websocket"],
    ["http://h:3636//a//kite", "ws://h:3636/a/kite/517/abc/websocket"],
    ["http://h:3636", "ws://h:3636/517/abc/websocket"],
    ["https://h/kite?x=1", "wss://h/kite/517/abc/websocket?x=1"],
    ["ws://h/kite", "ws://h/kite/517/abc/websocket"],
    ["wss://h/kite", "wss://h/kite/517/abc/websocket"],
  ];
  for (const [kite, want] of cases) {
    assert.equal(sockjsWebsocketUrl(new URL(kite), "517", "abc").href, want);
  }
});

Deno.test("xhrSessionUrls() puts xhr and xhr_send under the session, even after a trailing slash", () => {
  assert.deepEqual(
    xhrSessionUrls(new URL("http://h:1/kite/"), "521", "c03357a706b61403944a"),
    {
      poll: "http://h:1/kite/521/c03357a706b61403944a/xhr",
      send: "http://h:1/kite/521/c03357a706b61403944a/xhr_send",
    },
  );
  assert.deepEqual(xhrSessionUrls(new URL("wss://h/k?t=1"), "100", "ff"), {
    poll: "https://h/k/100/ff/xhr?t=1",
    send: "https://h/k/100/ff/xhr_send?t=1",
  });
});

Deno.test("toWebSocketUrl() and toHttpUrl() swap schemes and refuse others", () => {
  assert.equal(toWebSocketUrl(new URL("http://h/kite")).href, "ws://h/kite");
  assert.equal(toWebSocketUrl(new URL("https://h/kite")).href, "wss://h/kite");
  assert.equal(toHttpUrl(new URL("ws://h/kite")).href, "http://h/kite");
  assert.equal(toHttpUrl(new URL("wss://h/kite")).href, "https://h/kite");
  assert.throws(
    () => toWebSocketUrl(new URL("ftp://h/kite")),
    (error: unknown) =>
      error instanceof TypeError && /ftp:/.test(error.message),
  );
});

Deno.test("hostPort() fills in the scheme's default port", () => {
  assert.equal(hostPort(new URL("http://h/kite")), "h:80");
  assert.equal(hostPort(new URL("wss://h/kite")), "h:443");
  assert.equal(
    hostPort(new URL("http://127.0.0.1:3636/kite")),
    "127.0.0.1:3636",
  );
  assert.equal(hostPort(new URL("http://[::1]:9/kite")), "[::1]:9");
});
