/**
 * The routes issue #18 added or changed, answered by `SockJsServer.handle`
 * without a socket: the iframe page, htmlfile, CORS with `Origin: null`,
 * the `JSESSIONID` cookie, `websocket: false`, `o` before a close made in
 * onSession, oversized `jsonp_send` bodies, and the limits on htmlfile.
 * Expectations follow the SockJS protocol test-suite (docs/protocol.md §1.2).
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../clock.ts";
import type { CloseInfo, Session } from "../session.ts";
import { SockJsServer, type SockJsServerOptions } from "./sockjs_server.ts";

const NO_CACHE = "no-store, no-cache, no-transform, must-revalidate, max-age=0";
const BASE = "http://127.0.0.1/kite";

function info(hostname = "10.0.0.1"): Deno.ServeHandlerInfo {
  return {
    remoteAddr: { transport: "tcp", hostname, port: 40000 },
    completed: Promise.resolve(),
  } as Deno.ServeHandlerInfo;
}

interface Harness {
  sockjs: SockJsServer;
  sessions: Session[];
  received: string[];
  closes: CloseInfo[];
  /** Answers one request; `from` is the peer address. */
  ask(path: string, init?: RequestInit, from?: string): Promise<Response>;
}

function start(
  options: Partial<SockJsServerOptions> = {},
  onOpen: (session: Session) => void = () => {},
): Harness {
  const sessions: Session[] = [];
  const received: string[] = [];
  const closes: CloseInfo[] = [];
  const sockjs = new SockJsServer({
    clock: new ManualClock(),
    heartbeatMs: 0,
    idleSessionMs: 0,
    ...options,
    onSession: (session) => {
      sessions.push(session);
      onOpen(session);
      return {
        onMessage: (m) => {
          received.push(m);
          session.send(m);
        },
        onClose: (c) => closes.push(c),
      };
    },
  });
  return {
    sockjs,
    sessions,
    received,
    closes,
    ask: async (path, init, from) => {
      const answer = sockjs.handle(new Request(BASE + path, init), info(from));
      assert.ok(answer, `${path} is under the prefix`);
      return await answer;
    },
  };
}

/** Reads a streamed body until `done(text so far)` holds, then cancels it. */
async function readUntil(
  response: Response,
  done: (text: string) => boolean,
): Promise<string> {
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!done(text)) {
    const { value, done: ended } = await reader.read();
    if (ended) return text;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}

// ------------------------------------------------------------ iframe page

const IFRAME_BODY = (url: string) =>
  `<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="${url}"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>`;

Deno.test("iframe*.html serves the bootstrap page, cached for a year with an ETag", async () => {
  const h = start({ sockjsUrl: "/static/sockjs.min.js" });
  for (
    const name of [
      "/iframe.html",
      "/iframe-a.html",
      "/iframe-.html",
      "/iframe-0.1.2.html",
      "/iframe-0.1.2abc-dirty.2144.html",
      "/iframe-1.6.1.html?t=1234",
    ]
  ) {
    const res = await h.ask(name);
    assert.equal(res.status, 200, name);
    assert.equal(res.headers.get("content-type"), "text/html; charset=UTF-8");
    assert.match(res.headers.get("cache-control")!, /public.*max-age=31536000/);
    assert.ok(res.headers.get("expires"));
    assert.match(res.headers.get("etag")!, /^"[0-9a-f]{32}"$/);
    assert.equal(res.headers.get("last-modified"), null);
    assert.equal(res.headers.get("set-cookie"), null);
    assert.equal(await res.text(), IFRAME_BODY("/static/sockjs.min.js"));
  }
  for (
    const name of [
      "/iframe.htm",
      "/iframe",
      "/IFRAME.HTML",
      "/IFRAME",
      "/iframe.HTML",
      "/iframe.xml",
      "/iframe-/.html",
    ]
  ) {
    const res = await h.ask(name);
    assert.equal(res.status, 404, name);
    await res.body?.cancel();
  }
  const post = await h.ask("/iframe.html", { method: "POST" });
  assert.equal(post.status, 405);
});

Deno.test("iframe.html answers 304 with no body to its own ETag", async () => {
  const h = start();
  const first = await h.ask("/iframe.html");
  const etag = first.headers.get("etag")!;
  assert.equal(
    await first.text(),
    IFRAME_BODY(
      "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js",
    ),
  );
  const again = await h.ask("/iframe.html");
  assert.equal(again.headers.get("etag"), etag);
  await again.body?.cancel();
  const cached = await h.ask("/iframe.html", {
    headers: { "If-None-Match": etag },
  });
  assert.equal(cached.status, 304);
  assert.equal(cached.headers.get("content-type"), null);
  assert.equal(await cached.text(), "");
  // Another page, another ETag.
  const other = await start({ sockjsUrl: "/x.js" }).ask("/iframe.html");
  assert.notEqual(other.headers.get("etag"), etag);
  await other.body?.cancel();
});

Deno.test("sockjsUrl must be a URL that fits a script src as it is", () => {
  for (const bad of ['/a"><script>', "javascript:alert(1)", "a b", ""]) {
    assert.throws(
      () => start({ sockjsUrl: bad }),
      /sockjsUrl must be an http\(s\) URL or a path/,
      bad,
    );
  }
  start({ sockjsUrl: "//cdn.example/sockjs.min.js" });
  start({ sockjsUrl: "http://127.0.0.1:8080/sockjs.min.js?v=1.6.1" });
});

// --------------------------------------------------------------- htmlfile

Deno.test("htmlfile streams a page that calls parent.<callback>, then a script per frame", async () => {
  const h = start();
  const res = await h.ask("/000/hf1/htmlfile?c=%63allback");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/html; charset=UTF-8");
  assert.equal(res.headers.get("cache-control"), NO_CACHE);
  assert.equal(h.sessions[0].transport, "htmlfile");
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const prelude = decoder.decode((await reader.read()).value);
  assert.ok(prelude.length > 1024, `prelude of ${prelude.length} bytes`);
  assert.ok(prelude.endsWith("\r\n\r\n"));
  assert.equal(
    prelude.trim(),
    `<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.callback;
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>`,
  );
  assert.equal(
    decoder.decode((await reader.read()).value),
    '<script>\np("o");\n</script>\r\n',
  );
  const sent = await h.ask("/000/hf1/xhr_send", {
    method: "POST",
    body: '["x"]',
  });
  assert.equal(sent.status, 204);
  assert.equal(
    decoder.decode((await reader.read()).value),
    '<script>\np("a[\\"x\\"]");\n</script>\r\n',
  );
  // A message cannot end the script it travels in.
  h.sessions[0].send("</script><script>alert(1)</script>");
  const frame = decoder.decode((await reader.read()).value);
  assert.equal(frame.indexOf("</script>"), frame.lastIndexOf("</script>"));
  assert.equal(
    frame,
    '<script>\np("a[\\"\\u003c/script>\\u003cscript>alert(1)\\u003c/script>\\"]");\n</script>\r\n',
  );
  await reader.cancel();
  assert.equal(h.closes[0].code, 1002);
});

Deno.test("htmlfile without a callback or with a bad one answers 500 and opens nothing", async () => {
  const h = start();
  const missing = await h.ask("/a/a/htmlfile");
  assert.equal(missing.status, 500);
  assert.match(await missing.text(), /"callback" parameter required/);
  for (const bad of ["%20", "*", "abc(", "abc%28", "a".repeat(257)]) {
    const res = await h.ask("/a/a/htmlfile?c=" + bad);
    assert.equal(res.status, 500, bad);
    assert.match(await res.text(), /invalid "callback" parameter/);
  }
  assert.equal(h.sessions.length, 0);
  const post = await h.ask("/a/a/htmlfile?c=x", { method: "POST" });
  assert.equal(post.status, 405);
});

Deno.test("htmlfile ends its response after responseLimit bytes of frames", async () => {
  const h = start({ responseLimit: 4096 });
  const res = await h.ask("/000/hf2/htmlfile?c=callback");
  const body = readUntil(res, () => false);
  await h.ask("/000/hf2/xhr_send", {
    method: "POST",
    body: JSON.stringify(["x".repeat(4096)]),
  });
  const text = await body;
  assert.ok(text.endsWith(`p("a[\\"${"x".repeat(4096)}\\"]");\n</script>\r\n`));
});

// ------------------------------------------------------------------- CORS

Deno.test("CORS: an Origin (null too) is echoed with credentials; none gets * without", async () => {
  const h = start();
  for (const origin of ["http://app.test", "null"]) {
    for (
      const [path, init] of [
        ["/info", {}],
        [`/000/c${origin.length}/xhr`, { method: "POST" }],
        ["/000/c1/xhr_send", { method: "OPTIONS" }],
        ["/info", { method: "OPTIONS" }],
      ] as [string, RequestInit][]
    ) {
      const res = await h.ask(path, {
        ...init,
        headers: { Origin: origin, "Access-Control-Request-Method": "POST" },
      });
      const what = `${init.method ?? "GET"} ${path} from ${origin}`;
      assert.equal(
        res.headers.get("access-control-allow-origin"),
        origin,
        what,
      );
      assert.equal(
        res.headers.get("access-control-allow-credentials"),
        "true",
        what,
      );
      assert.equal(res.headers.get("vary"), "Origin", what);
      await res.body?.cancel();
    }
  }
  const bare = await h.ask("/info");
  assert.equal(bare.headers.get("access-control-allow-origin"), "*");
  assert.equal(bare.headers.get("access-control-allow-credentials"), null);
  await bare.body?.cancel();
  const preflight = await h.ask("/000/c2/jsonp", {
    method: "OPTIONS",
    headers: { Origin: "null" },
  });
  assert.equal(preflight.status, 204);
  assert.match(preflight.headers.get("cache-control")!, /public.*31536000/);
  assert.ok(Number(preflight.headers.get("access-control-max-age")) > 1e6);
  assert.ok(preflight.headers.get("expires"));
});

Deno.test("Cache-Control: every session answer says no-store, no-transform", async () => {
  const h = start();
  const answers = [
    await h.ask("/000/nc/xhr", { method: "POST" }),
    await h.ask("/000/nc/xhr_send", { method: "POST", body: '["x"]' }),
    await h.ask("/000/nc2/jsonp?c=x"),
    await h.ask("/000/nc2/jsonp_send", { method: "POST", body: '["x"]' }),
    await h.ask("/000/nc3/eventsource"),
    await h.ask("/000/nc4/htmlfile?c=x"),
    await h.ask("/000/nc5/xhr_streaming", { method: "POST" }),
    await h.ask("/info"),
  ];
  for (const res of answers) {
    assert.equal(res.headers.get("cache-control"), NO_CACHE, res.url);
    assert.equal(res.headers.get("expires"), null);
    await res.body?.cancel();
  }
});

// ----------------------------------------------------------------- cookie

Deno.test("jsessionid: every session route sets JSESSIONID (dummy or echoed), info asks for cookies", async () => {
  const h = start({ jsessionid: true });
  const infoRes = await h.ask("/info");
  assert.equal(infoRes.headers.get("set-cookie"), null);
  assert.match(await infoRes.text(), /"cookie_needed":true/);
  const routes: [string, RequestInit][] = [
    ["/000/k1/xhr", { method: "POST" }],
    ["/000/k1/xhr_send", { method: "POST", body: '["x"]' }],
    ["/000/k1/xhr", { method: "OPTIONS" }],
    ["/000/k2/xhr_streaming", { method: "POST" }],
    ["/000/k3/eventsource", {}],
    ["/000/k4/htmlfile?c=callback", {}],
    ["/000/k5/jsonp?c=callback", {}],
    ["/000/k5/jsonp_send", { method: "POST", body: "d=%5B%22x%22%5D" }],
  ];
  for (const [path, init] of routes) {
    const res = await h.ask(path, init);
    assert.equal(res.headers.get("set-cookie"), "JSESSIONID=dummy; path=/");
    await res.body?.cancel();
  }
  const echoed = await h.ask("/000/k6/xhr", {
    method: "POST",
    headers: { Cookie: "a=b; JSESSIONID=abcdef" },
  });
  assert.equal(echoed.headers.get("set-cookie"), "JSESSIONID=abcdef; path=/");
  await echoed.body?.cancel();
  const odd = await h.ask("/000/k7/xhr", {
    method: "POST",
    headers: { Cookie: "JSESSIONID=" + "x".repeat(300) },
  });
  assert.equal(odd.headers.get("set-cookie"), "JSESSIONID=dummy; path=/");
  await odd.body?.cancel();

  const off = start();
  const plain = await off.ask("/000/k8/xhr", { method: "POST" });
  assert.equal(plain.headers.get("set-cookie"), null);
  await plain.body?.cancel();
  assert.match(await (await off.ask("/info")).text(), /"cookie_needed":false/);
});

// ------------------------------------------------------ websocket: false

Deno.test("websocket: false answers the websocket routes 404 and says so in info", async () => {
  const h = start({ websocket: false });
  assert.match(await (await h.ask("/info")).text(), /^\{"websocket":false,/);
  const upgrade = {
    headers: {
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version": "13",
    },
  };
  for (const path of ["/000/w1/websocket", "", "/websocket"]) {
    const res = await h.ask(path, upgrade);
    assert.equal(res.status, 404, path);
    await res.body?.cancel();
  }
  const framed = await h.ask("/000/w1/websocket");
  assert.equal(framed.status, 404);
  await framed.body?.cancel();
  assert.equal(h.sessions.length, 0);
  // The other transports still serve.
  assert.equal(
    await (await h.ask("/000/w2/xhr", { method: "POST" })).text(),
    "o\n",
  );
  assert.match(
    await (await start().ask("/info")).text(),
    /^\{"websocket":true,/,
  );
});

// ----------------------------------------------- close inside onSession

Deno.test("a session closed inside onSession still opens: o, then c[3000], on every HTTP transport", async () => {
  const h = start({}, (session) => session.close());
  const poll = () => h.ask("/000/x1/xhr", { method: "POST" });
  assert.equal(await (await poll()).text(), "o\n");
  assert.equal(await (await poll()).text(), 'c[3000,"Go away!"]\n');
  assert.equal(await (await poll()).text(), 'c[3000,"Go away!"]\n');

  const jsonp = () => h.ask("/000/j1/jsonp?c=x");
  assert.equal(await (await jsonp()).text(), '/**/x("o");\r\n');
  assert.equal(
    await (await jsonp()).text(),
    '/**/x("c[3000,\\"Go away!\\"]");\r\n',
  );

  const streaming = await h.ask("/000/s1/xhr_streaming", { method: "POST" });
  assert.equal(
    (await readUntil(streaming, () => false)).slice(2049),
    'o\nc[3000,"Go away!"]\n',
  );
  const events = await h.ask("/000/e1/eventsource");
  assert.equal(
    await readUntil(events, () => false),
    '\r\ndata: o\r\n\r\ndata: c[3000,"Go away!"]\r\n\r\n',
  );
  const page = await h.ask("/000/h1/htmlfile?c=cb");
  assert.match(
    await readUntil(page, () => false),
    /<script>\np\("o"\);\n<\/script>\r\n<script>\np\("c\[3000,\\"Go away!\\"\]"\);\n<\/script>\r\n$/,
  );
  assert.equal(h.closes.length, 5);
});

Deno.test("messages sent inside onSession before its close arrive between o and c", async () => {
  const h = start({}, (session) => {
    session.send("bye");
    session.close(4000, "done");
  });
  const streaming = await h.ask("/000/s2/xhr_streaming", { method: "POST" });
  assert.equal(
    (await readUntil(streaming, () => false)).slice(2049),
    'o\na["bye"]\nc[4000,"done"]\n',
  );
});

// ------------------------------------------------------- oversize bodies

Deno.test("an oversized jsonp_send closes its session and answers 413, declared or chunked", async () => {
  const h = start({ maxMessageBytes: 64 });
  for (const [id, chunked] of [["big1", false], ["big2", true]] as const) {
    assert.equal(
      await (await h.ask(`/000/${id}/jsonp?c=x`)).text(),
      '/**/x("o");\r\n',
    );
    const payload = "d=" + encodeURIComponent(JSON.stringify(["q".repeat(99)]));
    const body = chunked
      ? new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode(payload));
          c.close();
        },
      })
      : payload;
    const sent = await h.ask(`/000/${id}/jsonp_send`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body,
    });
    assert.equal(sent.status, 413, id);
    assert.equal(await sent.text(), "Message too big: limit is 64 bytes");
    assert.equal(
      await (await h.ask(`/000/${id}/jsonp?c=x`)).text(),
      '/**/x("c[4009,\\"Message too big: limit is 64 bytes\\"]");\r\n',
    );
  }
  assert.deepEqual(h.closes.map((c) => c.code), [4009, 4009]);
  assert.deepEqual(h.received, []);
});

// ----------------------------------------------------- limits on htmlfile

Deno.test("htmlfile and eventsource sessions count against the per-address limits", async () => {
  const h = start({ maxXhrSessionsPerAddress: 2 });
  const a = await h.ask("/000/l1/htmlfile?c=cb", {}, "10.0.0.7");
  const b = await h.ask("/000/l2/eventsource", {}, "10.0.0.7");
  const c = await h.ask("/000/l3/htmlfile?c=cb", {}, "10.0.0.7");
  assert.equal(c.status, 503);
  assert.match(await c.text(), /maxXhrSessionsPerAddress/);
  const other = await h.ask("/000/l4/htmlfile?c=cb", {}, "10.0.0.8");
  assert.equal(other.status, 200);
  assert.equal(h.sockjs.connectionsOf(info("10.0.0.7").remoteAddr), 2);
  for (const res of [a, b, other]) await res.body?.cancel();
});

Deno.test("a silent htmlfile session is closed after idleSessionMs", async () => {
  const clock = new ManualClock();
  const h = start({ clock, idleSessionMs: 1_000 });
  const page = await h.ask("/000/i1/htmlfile?c=cb");
  const body = readUntil(page, () => false);
  await clock.advance(1_000);
  assert.match(await body, /c\[4001,/);
  assert.equal(h.closes[0].code, 4001);
});

Deno.test("an htmlfile session whose page ended keeps at most maxBufferedBytes queued", async () => {
  const h = start({ maxBufferedBytes: 1_000, responseLimit: 100 });
  const page = await h.ask("/000/b1/htmlfile?c=cb");
  const session = h.sessions[0];
  session.send("m".repeat(200)); // past responseLimit: the page ends
  assert.match(await readUntil(page, () => false), /m{200}/);
  // No page attached: messages wait in the queue, up to the limit.
  for (let i = 0; i < 20 && !session.closed; i++) session.send("m".repeat(100));
  assert.equal(session.closeInfo?.code, 4008);
  assert.match(session.closeInfo!.reason, /1000/);
});
