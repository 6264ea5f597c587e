import assert from "node:assert/strict";
import { ManualClock } from "../../clock.ts";
import type { CloseInfo, Session } from "../session.ts";
import { SockJsServer, type SockJsServerOptions } from "./sockjs_server.ts";

// ---------------------------------------------------------------- helpers

/** How long a test waits for something that should come, before failing. */
const GUARD_MS = 5_000;

/** Records every session and echoes each message back on its session. */
class Echo {
  sessions: Session[] = [];
  received: string[] = [];
  closes: CloseInfo[] = [];
  #closeWaiters: (() => void)[] = [];

  onSession = (session: Session) => {
    this.sessions.push(session);
    return {
      onMessage: (message: string) => {
        this.received.push(message);
        session.send(message);
      },
      onClose: (info: CloseInfo) => {
        this.closes.push(info);
        this.#closeWaiters.splice(0).forEach((fn) => fn());
      },
    };
  };

  /** Resolves once `n` sessions have closed. */
  async closed(n: number): Promise<void> {
    while (this.closes.length < n) {
      await new Promise<void>((resolve) => this.#closeWaiters.push(resolve));
    }
  }
}

interface Harness extends AsyncDisposable {
  sockjs: SockJsServer;
  echo: Echo;
  http: string;
  ws: string;
}

function start(options: Partial<SockJsServerOptions> = {}): Harness {
  const echo = new Echo();
  const sockjs = new SockJsServer({ onSession: echo.onSession, ...options });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req, info) =>
      sockjs.handle(req, info) ?? new Response("nf", { status: 404 }),
  );
  const http = `http://127.0.0.1:${server.addr.port}`;
  return {
    sockjs,
    echo,
    http,
    ws: http.replace("http:", "ws:"),
    async [Symbol.asyncDispose]() {
      sockjs.close();
      await server.shutdown();
    },
  };
}

/** A WebSocket client that queues what it receives. */
class Client {
  readonly socket: WebSocket;
  readonly closed: Promise<CloseEvent>;
  #frames: string[] = [];
  #waiters: ((frame: string) => void)[] = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => socket.onclose = resolve);
    socket.onmessage = (event) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(event.data);
      else this.#frames.push(event.data);
    };
  }

  static async open(url: string): Promise<Client> {
    const socket = new WebSocket(url);
    const client = new Client(socket);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = reject;
    });
    return client;
  }

  /** The next frame; fails instead of hanging when none comes. */
  next(): Promise<string> {
    const frame = this.#frames.shift();
    if (frame !== undefined) return Promise.resolve(frame);
    return new Promise((resolve, reject) => {
      const waiter = (frame: string) => {
        clearTimeout(timer);
        resolve(frame);
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(new Error("no frame arrived"));
      }, GUARD_MS);
      this.#waiters.push(waiter);
    });
  }

  /** Frames received and not yet read. */
  get pending(): number {
    return this.#frames.length;
  }

  send(text: string): void {
    this.socket.send(text);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close();
    await this.closed;
  }
}

function sessionUrl(ws: string, session = "abcdefgh", prefix = "/kite") {
  return `${ws}${prefix}/123/${session}/websocket`;
}

/** Lets socket traffic already in flight arrive. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 5));
}

// ---------------------------------------------------------- SockJS routes

Deno.test("GET {prefix} and {prefix}/ answer the SockJS welcome text", async () => {
  await using h = start();
  for (const path of ["/kite", "/kite/"]) {
    const res = await fetch(h.http + path);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain;charset=UTF-8");
    assert.equal(await res.text(), "Welcome to SockJS!\n");
  }
});

Deno.test("GET {prefix}/info answers sockjs-go's JSON with CORS headers, never cached, no cookie", async () => {
  await using h = start();
  const res = await fetch(h.http + "/kite/info", {
    headers: { Origin: "http://example.com" },
  });
  assert.equal(res.status, 200);
  assert.equal(
    res.headers.get("content-type"),
    "application/json; charset=UTF-8",
  );
  assert.equal(
    res.headers.get("access-control-allow-origin"),
    "http://example.com",
  );
  assert.equal(res.headers.get("access-control-allow-credentials"), "true");
  assert.equal(
    res.headers.get("cache-control"),
    "no-store, no-cache, no-transform, must-revalidate, max-age=0",
  );
  assert.equal(res.headers.get("set-cookie"), null);
  const body = await res.text();
  assert.match(
    body,
    /^\{"websocket":true,"cookie_needed":false,"origins":\["\*:\*"\],"entropy":\d+\}\n$/,
  );
});

Deno.test("OPTIONS on info and xhr routes answer 204 with the allowed methods", async () => {
  await using h = start();
  const info = await fetch(h.http + "/kite/info", { method: "OPTIONS" });
  assert.equal(info.status, 204);
  assert.equal(
    info.headers.get("access-control-allow-methods"),
    "OPTIONS, GET",
  );
  assert.equal(info.headers.get("access-control-allow-origin"), "*");
  assert.equal(info.headers.get("access-control-max-age"), "31536000");
  await info.body?.cancel();
  for (const route of ["xhr", "xhr_send", "xhr_streaming"]) {
    const res = await fetch(`${h.http}/kite/1/abc/${route}`, {
      method: "OPTIONS",
      headers: {
        Origin: "http://x.test",
        "Access-Control-Request-Headers": "content-type",
      },
    });
    assert.equal(res.status, 204, route);
    assert.equal(
      res.headers.get("access-control-allow-methods"),
      "OPTIONS, POST",
    );
    assert.equal(
      res.headers.get("access-control-allow-origin"),
      "http://x.test",
    );
    assert.equal(
      res.headers.get("access-control-allow-headers"),
      "content-type",
    );
    await res.body?.cancel();
  }
  assert.equal(h.sockjs.sessionCount, 0);
});

Deno.test("unknown routes under the prefix answer 404, wrong methods 405 with Allow", async () => {
  await using h = start();
  const notFound = await fetch(h.http + "/kite/nope/x");
  assert.equal(notFound.status, 404);
  assert.equal(await notFound.text(), "404 page not found\n");
  for (
    const [method, path, allow] of [
      ["POST", "/kite", "GET"],
      ["POST", "/kite/info", "OPTIONS, GET"],
      ["GET", "/kite/1/abc/xhr", "POST, OPTIONS"],
      ["PUT", "/kite/1/abc/xhr_send", "POST, OPTIONS"],
      ["POST", "/kite/1/abc/websocket", "GET"],
    ]
  ) {
    const res = await fetch(h.http + path, { method });
    assert.equal(res.status, 405, `${method} ${path}`);
    assert.equal(res.headers.get("allow"), allow);
    await res.body?.cancel();
  }
  // {server} and {session} may not contain dots.
  const dotted = await fetch(h.http + "/kite/1/a.b/xhr", { method: "POST" });
  assert.equal(dotted.status, 404);
  await dotted.body?.cancel();
  assert.equal(h.sockjs.sessionCount, 0);
});

Deno.test("handle() returns undefined outside the prefix", () => {
  const sockjs = new SockJsServer({ onSession: new Echo().onSession });
  for (const url of ["http://h/", "http://h/kitex", "http://h/other/kite"]) {
    assert.equal(sockjs.handle(new Request(url)), undefined, url);
  }
  assert.ok(sockjs.handle(new Request("http://h/kite")));
});

Deno.test("a custom prefix moves every route", async () => {
  await using h = start({ prefix: "/sock/" });
  const res = await fetch(h.http + "/sock/info");
  assert.equal(res.status, 200);
  await res.body?.cancel();
  const outside = await fetch(h.http + "/kite/info");
  assert.equal(await outside.text(), "nf");
});

Deno.test("GET on the websocket routes without an upgrade answers 400", async () => {
  await using h = start();
  for (const path of ["/kite/1/abc/websocket", "/kite/websocket"]) {
    const res = await fetch(h.http + path);
    assert.equal(res.status, 400, path);
    assert.equal(await res.text(), 'Can "Upgrade" only to "WebSocket".');
  }
});

Deno.test("the constructor rejects bad options with a clear error", () => {
  const onSession = new Echo().onSession;
  assert.throws(
    () => new SockJsServer({ onSession, prefix: "kite" }),
    TypeError,
  );
  assert.throws(
    () => new SockJsServer({ onSession, heartbeatMs: -1 }),
    RangeError,
  );
  assert.throws(
    () => new SockJsServer({ onSession, maxMessageBytes: NaN }),
    RangeError,
  );
  assert.throws(
    () => new SockJsServer({} as unknown as SockJsServerOptions),
    TypeError,
  );
});

// -------------------------------------------------------- SockJS websocket

Deno.test("websocket sends o first, then echoes client frames sent before o was read", async () => {
  await using h = start();
  await using client = await Client.open(
    sessionUrl(h.ws, "8d3f0c1a9b2e4f6071ab"),
  );
  // Like the Go client: send at once, without waiting for o (docs/protocol.md §1.3).
  client.send('["first"]');
  assert.equal(await client.next(), "o");
  assert.equal(await client.next(), 'a["first"]');
  const [session] = h.echo.sessions;
  assert.equal(session.transport, "websocket");
  assert.equal(session.id, "8d3f0c1a9b2e4f6071ab");
  assert.match(session.remoteAddr, /^127\.0\.0\.1:\d+$/);
  assert.equal(h.sockjs.sessionCount, 1);
});

Deno.test("websocket batches the messages sent in one tick into one a[...] frame", async () => {
  await using h = start();
  await using client = await Client.open(sessionUrl(h.ws));
  assert.equal(await client.next(), "o");
  client.send('["one","two \\"quoted\\"","three"]');
  assert.equal(await client.next(), 'a["one","two \\"quoted\\"","three"]');
  assert.deepEqual(h.echo.received, ["one", 'two "quoted"', "three"]);
});

Deno.test("websocket delivers the recorded Go client frame as one dnode string", async () => {
  await using h = start();
  await using client = await Client.open(sessionUrl(h.ws));
  const dnode =
    '{"method":"kite.ping","arguments":[{"kite":{"name":"kiteclient"},"authentication":null,"responseCallback":"[Function]","withArgs":null}],"callbacks":{"0":[0,"responseCallback"]}}';
  client.send(JSON.stringify([dnode]));
  assert.equal(await client.next(), "o");
  assert.equal(await client.next(), "a" + JSON.stringify([dnode]));
  assert.deepEqual(h.echo.received, [dnode]);
});

Deno.test("websocket sends h at a fixed period that traffic does not move", async () => {
  const clock = new ManualClock();
  await using h = start({ clock, heartbeatMs: 100 });
  await using client = await Client.open(sessionUrl(h.ws));
  assert.equal(await client.next(), "o");
  await clock.advance(60);
  client.send('["x"]');
  assert.equal(await client.next(), 'a["x"]');
  await clock.advance(40); // 100 ms after open, despite the traffic at 60
  assert.equal(await client.next(), "h");
  await clock.advance(99);
  await settle();
  assert.equal(client.pending, 0);
  await clock.advance(1);
  assert.equal(await client.next(), "h");
});

Deno.test('websocket closed by the server sends c[3000,"Go away!"] and reports it once', async () => {
  await using h = start();
  await using client = await Client.open(sessionUrl(h.ws));
  assert.equal(await client.next(), "o");
  const [session] = h.echo.sessions;
  session.send("last");
  session.close();
  session.close(); // safe twice
  assert.equal(session.closed, true);
  assert.equal(
    session.send("more"),
    false,
    "a closed session refuses, never throws",
  );
  assert.equal(await client.next(), 'a["last"]');
  assert.equal(await client.next(), 'c[3000,"Go away!"]');
  const event = await client.closed;
  assert.equal(event.code, 3000);
  assert.deepEqual(h.echo.closes, [{ code: 3000, reason: "Go away!" }]);
  assert.equal(h.sockjs.sessionCount, 0);
});

Deno.test("websocket closed inside onSession sends o, then c[...], then closes", async () => {
  const sockjs = new SockJsServer({
    heartbeatMs: 0,
    onSession: (session) => {
      session.send("hello");
      session.close(4000, "not today");
      return { onMessage: () => {}, onClose: () => {} };
    },
  });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req, info) =>
      sockjs.handle(req, info) ?? new Response(null, { status: 404 }),
  );
  try {
    const ws = `ws://127.0.0.1:${server.addr.port}`;
    await using client = await Client.open(sessionUrl(ws));
    assert.equal(await client.next(), "o");
    assert.equal(await client.next(), 'a["hello"]');
    assert.equal(await client.next(), 'c[4000,"not today"]');
    assert.equal((await client.closed).code, 4000);
  } finally {
    sockjs.close();
    await server.shutdown();
  }
});

Deno.test("websocket closed by the peer just ends the session", async () => {
  await using h = start();
  const client = await Client.open(sessionUrl(h.ws));
  assert.equal(await client.next(), "o");
  client.socket.close(1000, "bye");
  await client.closed;
  await h.echo.closed(1);
  assert.deepEqual(h.echo.closes, [{ code: 1000, reason: "bye" }]);
  assert.equal(h.sockjs.sessionCount, 0);
});

Deno.test("websocket frame that is not an array of strings closes only its session", async () => {
  await using h = start();
  await using bad = await Client.open(sessionUrl(h.ws, "bad"));
  await using good = await Client.open(sessionUrl(h.ws, "good"));
  assert.equal(await bad.next(), "o");
  assert.equal(await good.next(), "o");
  bad.send('{"method":"kite.ping"}');
  assert.equal(
    await bad.next(),
    'c[4002,"Broken framing: expected a JSON array of strings"]',
  );
  assert.equal((await bad.closed).code, 4002);
  good.send('["still here"]');
  assert.equal(await good.next(), 'a["still here"]');
  assert.equal(h.echo.closes[0].code, 4002);
  assert.equal(h.sockjs.sessionCount, 1);
});

Deno.test("websocket accepts a bare JSON string frame as one message", async () => {
  await using h = start();
  await using client = await Client.open(sessionUrl(h.ws));
  client.send('"bare"');
  assert.equal(await client.next(), "o");
  assert.equal(await client.next(), 'a["bare"]');
});

Deno.test("websocket frame over maxMessageBytes closes the session with the limit in the reason", async () => {
  await using h = start({ maxMessageBytes: 64 });
  await using client = await Client.open(sessionUrl(h.ws));
  assert.equal(await client.next(), "o");
  client.send(JSON.stringify(["x".repeat(30)])); // 34 bytes: fine
  assert.equal(await client.next(), "a" + JSON.stringify(["x".repeat(30)]));
  client.send(JSON.stringify(["x".repeat(100)]));
  assert.equal(
    await client.next(),
    'c[4009,"Message too big: limit is 64 bytes"]',
  );
  assert.equal((await client.closed).code, 4009);
  assert.deepEqual(h.echo.closes, [{
    code: 4009,
    reason: "Message too big: limit is 64 bytes",
  }]);
});

Deno.test('SockJsServer.close() sends c[3000,"Go away!"] on every session', async () => {
  await using h = start();
  await using a = await Client.open(sessionUrl(h.ws, "a"));
  await using b = await Client.open(h.ws + "/kite");
  assert.equal(await a.next(), "o");
  b.send("ping");
  assert.equal(await b.next(), "ping");
  h.sockjs.close();
  assert.equal(await a.next(), 'c[3000,"Go away!"]');
  assert.equal((await a.closed).code, 3000);
  const raw = await b.closed;
  assert.equal(raw.code, 3000);
  assert.equal(raw.reason, "Go away!");
  assert.equal(h.sockjs.sessionCount, 0);
  assert.equal(h.echo.closes.length, 2);
  // A closed server takes no new session.
  const res = await fetch(h.http + "/kite/1/new/xhr", { method: "POST" });
  assert.equal(res.status, 503);
  await res.body?.cancel();
});

Deno.test("a handler that throws is reported and the session stays open", async () => {
  const errors: unknown[] = [];
  let calls = 0;
  const sockjs = new SockJsServer({
    onSession: (session) => ({
      onMessage(message) {
        if (calls++ === 0) throw new Error("boom");
        session.send(message);
      },
      onClose() {},
    }),
    onError: (error) => errors.push(error),
  });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req, info) =>
      sockjs.handle(req, info) ?? new Response(null, { status: 404 }),
  );
  try {
    await using client = await Client.open(
      `ws://127.0.0.1:${server.addr.port}/kite/1/s/websocket`,
    );
    client.send('["a","b"]');
    assert.equal(await client.next(), "o");
    assert.equal(await client.next(), 'a["b"]');
    assert.equal((errors[0] as Error).message, "boom");
  } finally {
    sockjs.close();
    await server.shutdown();
  }
});

Deno.test("websocket upgrade declines kite.js's permessage-deflate offer", async () => {
  await using h = start();
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: Number(new URL(h.http).port),
  });
  try {
    // The head kite.js's raw client sends (kitejs/raw-websocket.jsonl).
    await conn.write(new TextEncoder().encode(
      "GET /kite HTTP/1.1\r\nSec-WebSocket-Version: 13\r\n" +
        "Sec-WebSocket-Key: 1I6lqIInnGq+I5BTj2nqdw==\r\n" +
        "Connection: Upgrade\r\nUpgrade: websocket\r\n" +
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" +
        "Host: 127.0.0.1\r\n\r\n",
    ));
    let head = "";
    const buf = new Uint8Array(1024);
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, /sec-websocket-accept: 9THNWtr4t\+P1\+EJq3q42MTv1mKI=/i);
    assert.doesNotMatch(head, /sec-websocket-extensions/i);
  } finally {
    conn.close();
  }
  await h.echo.closed(1);
});

// ------------------------------------------------------------ raw websocket

Deno.test("raw websocket on {prefix} carries bare messages with no framing", async () => {
  await using h = start();
  await using client = await Client.open(h.ws + "/kite");
  const dnode =
    '{"arguments":[{"kite":{"name":"kitejs-client-probe"},"withArgs":[4],"responseCallback":"[Function]"}],"callbacks":{"1":["0","responseCallback"]},"links":[],"method":"square"}';
  client.send(dnode);
  assert.equal(await client.next(), dnode);
  assert.deepEqual(h.echo.received, [dnode]);
  const [session] = h.echo.sessions;
  assert.equal(session.transport, "raw-websocket");
  assert.ok(session.id.length > 0);
});

Deno.test("raw websocket on {prefix}/websocket (the SockJS raw endpoint)", async () => {
  await using h = start({ heartbeatMs: 1 });
  await using client = await Client.open(h.ws + "/kite/websocket");
  client.send("one");
  client.send("two");
  assert.equal(await client.next(), "one");
  assert.equal(await client.next(), "two");
  await settle();
  assert.equal(client.pending, 0); // no o, no h on a raw socket
  assert.equal(h.echo.sessions[0].transport, "raw-websocket");
});

Deno.test("raw websocket closed by the server gets a close frame with the code", async () => {
  await using h = start();
  await using client = await Client.open(h.ws + "/kite");
  client.send("x");
  assert.equal(await client.next(), "x");
  h.echo.sessions[0].close(4100, "done here");
  const event = await client.closed;
  assert.equal(event.code, 4100);
  assert.equal(event.reason, "done here");
  assert.equal(client.pending, 0);
  assert.deepEqual(h.echo.closes, [{ code: 4100, reason: "done here" }]);
});

Deno.test("messages queued in one tick leave in frames no bigger than maxMessageBytes, in order", async () => {
  const limit = 100_000;
  await using h = start({ maxMessageBytes: limit });
  await using client = await Client.open(sessionUrl(h.ws));
  assert.equal(await client.next(), "o");
  const [session] = h.echo.sessions;
  // 40 KiB each with quotes to escape: 2 fit a frame, the 3rd does not.
  const sent = Array.from(
    { length: 5 },
    (_, i) => `${i}"` + "x".repeat(40_000),
  );
  for (const m of sent) assert.equal(session.send(m), true);
  const got: string[] = [];
  let frames = 0;
  while (got.length < sent.length) {
    const frame = await client.next();
    assert.ok(
      new TextEncoder().encode(frame).length <= limit,
      `frame of ${frame.length} bytes`,
    );
    got.push(...JSON.parse(frame.slice(1)));
    frames++;
  }
  assert.deepEqual(got, sent);
  assert.equal(frames, 3);
  // One message above the limit still goes, alone.
  const big = "y".repeat(limit * 2);
  session.send("small");
  session.send(big);
  assert.equal(await client.next(), 'a["small"]');
  assert.equal(await client.next(), `a[${JSON.stringify(big)}]`);
});
