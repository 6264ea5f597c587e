import { TcpWebSocket } from "../sockets/deno_websocket.ts";
import assert from "node:assert/strict";
import { Queue, recorder } from "../../../tests/helpers/session_recorder.ts";
import type { ClientSession } from "./client_session.ts";
import type { SessionHandler } from "../session.ts";
import { dialXhrPolling } from "./xhr_polling_client.ts";
import { VECTORS_URL } from "../../../tests/helpers/vectors.ts";

const OPTIONS = {
  connectWebSocket: TcpWebSocket.connect,
  timeoutMs: 5_000,
  pollTimeoutMs: 5_000,
  maxMessageBytes: 1 << 20,
  maxBufferedBytes: 16 << 20,
};

/** Recorded traffic (see tests/fixtures/vectors/go-kite/README.md). */
const RECORDING = new URL("go-kite/10-xhr-polling.jsonl", VECTORS_URL);

/** Bodies of the recorded requests to `route`, or of all recorded answers. */
async function recordedBodies(
  dir: "c2s" | "s2c",
  route: "xhr" | "xhr_send",
): Promise<string[]> {
  const records = (await Deno.readTextFile(RECORDING)).trim().split("\n")
    .map((line) => JSON.parse(line)).filter((r) => r.type === "http");
  const out: string[] = [];
  let lastRoute = "";
  for (const r of records) {
    if (r.kind === "request") lastRoute = r.startLine.split(" ")[1];
    if (r.kind !== "body" || r.dir !== dir) continue;
    if (dir === "s2c" || lastRoute.endsWith(`/${route}`)) out.push(r.body);
  }
  return out;
}

/** One request the test answers by hand. */
interface Pending {
  path: string;
  body: string;
  contentType: string | null;
  signal: AbortSignal;
  answer(status: number, body?: string): void;
}

/** A Deno.serve server that plays the sockjs-go xhr routes by hand. */
class XhrServer {
  readonly polls: Queue<Pending> = new Queue();
  readonly sends: Queue<Pending> = new Queue();
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #open = new Set<() => void>();

  /** With `autoSend`, every `xhr_send` is answered 204 at once. */
  constructor(autoSend = true) {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      async (request) => {
        const path = new URL(request.url).pathname;
        const contentType = request.headers.get("content-type");
        const body = await request.text();
        const reply = Promise.withResolvers<Response>();
        const answer = (status: number, text?: string) => {
          this.#open.delete(drop);
          reply.resolve(
            new Response(status === 204 ? null : text ?? "", {
              status,
              headers: {
                "Content-Type": "application/javascript; charset=UTF-8",
              },
            }),
          );
        };
        // sockjs-go answers a dropped poll 200 with an empty body (docs/protocol.md §1.6 step 5).
        const drop = () => answer(200, "");
        this.#open.add(drop);
        request.signal.addEventListener("abort", drop);
        const pending = {
          path,
          body,
          contentType,
          signal: request.signal,
          answer,
        };
        if (path.endsWith("/xhr")) {
          this.polls.push(pending);
        } else if (path.endsWith("/xhr_send")) {
          this.sends.push(pending);
          if (autoSend) answer(204);
        } else {
          answer(404, "404 page not found\n");
        }
        return await reply.promise;
      },
    );
  }

  get url(): URL {
    return new URL(`http://127.0.0.1:${this.#server.addr.port}/kite`);
  }

  /** Answers the opening poll with `o`, as sockjs-go does. */
  async open(): Promise<Pending> {
    const poll = await this.polls.next();
    poll.answer(200, "o\n");
    return poll;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const drop of this.#open) drop();
    await this.#server.shutdown();
  }
}

/** Resolves once the server has seen the client drop the request. */
async function dropped(request: Pending): Promise<true> {
  if (request.signal.aborted) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const seen = new Promise<true>((resolve) =>
    request.signal.addEventListener("abort", () => resolve(true))
  );
  const never = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), 10_000);
  });
  const got = await Promise.race([seen, never]);
  clearTimeout(timer);
  assert.ok(got, `the client never dropped ${request.path}`);
  return got;
}

/** Dials and answers the opening poll. */
async function dialOpen(
  server: XhrServer,
  handler: SessionHandler,
  options = OPTIONS,
): Promise<ClientSession> {
  const [session] = await Promise.all([
    dialXhrPolling(server.url, handler, options),
    server.open(),
  ]);
  return session;
}

Deno.test("dial opens with an empty text/plain POST {path}/{3 digits}/{20 hex}/xhr and polls again at once", async () => {
  await using server = new XhrServer();
  const { handler } = recorder();
  const dialing = dialXhrPolling(
    new URL(`${server.url}/`), // a trailing slash must not break the path
    handler,
    OPTIONS,
  );
  const open = await server.polls.next();
  assert.match(open.path, /^\/kite\/[1-9]\d\d\/[0-9a-f]{20}\/xhr$/);
  assert.equal(open.body, "");
  assert.equal(open.contentType, "text/plain");
  open.answer(200, "o\n");
  const session = await dialing;
  assert.equal(session.transport, "xhr-polling");
  assert.equal(session.id, open.path.split("/")[3]);
  const poll = await server.polls.next();
  assert.equal(poll.path, open.path);
  assert.equal(poll.body, "");
  session.close();
  await session.finished;
});

Deno.test("polls deliver go-kite 10's answers in order; o and h answers lead to another poll", async () => {
  await using server = new XhrServer();
  const { handler, messages } = recorder();
  const session = await dialOpen(server, handler);
  const answers = (await recordedBodies("s2c", "xhr"))
    .filter((body) => body.startsWith("a"));
  assert.equal(answers.length, 4);
  const script = ["h\n", answers[0], "o\n", answers[1], answers[2], answers[3]];
  for (const body of script) (await server.polls.next()).answer(200, body);
  (await server.polls.next()).answer(200, 'm"single"\n');
  const expected = answers.flatMap((body) => JSON.parse(body.slice(1)))
    .concat("single");
  for (const want of expected) assert.equal(await messages.next(), want);
  session.close();
  await session.finished;
});

Deno.test("send() posts the Go client's exact xhr_send bodies as text/plain", async () => {
  await using server = new XhrServer();
  const { handler } = recorder();
  const session = await dialOpen(server, handler);
  const bodies = await recordedBodies("c2s", "xhr_send");
  assert.equal(bodies.length, 3);
  for (const body of bodies) {
    session.send(JSON.parse(body)[0]);
    const send = await server.sends.next();
    assert.equal(send.body, body);
    assert.equal(send.contentType, "text/plain");
    assert.match(send.path, /^\/kite\/\d{3}\/[0-9a-f]{20}\/xhr_send$/);
  }
  session.close();
  await session.finished;
});

Deno.test("sends queued while one is in flight go out next, together and in order", async () => {
  await using server = new XhrServer(false);
  const { handler } = recorder();
  const session = await dialOpen(server, handler);
  session.send("first");
  const first = await server.sends.next();
  session.send("second");
  session.send("third");
  assert.equal(first.body, '["first"]');
  first.answer(204);
  const next = await server.sends.next();
  assert.equal(next.body, '["second","third"]');
  next.answer(200, "");
  session.close();
  await session.finished;
  assert.equal(server.sends.all.length, 2);
});

Deno.test("a burst of sends bigger than one body's budget goes out in several xhr_send, in order", async () => {
  await using server = new XhrServer();
  const { handler } = recorder();
  const session = await dialOpen(server, handler);
  // Old behaviour: "a" alone, then b, c and d in one 1.2 MB body (413).
  const big = ["a", "b", "c", "d"].map((c) => c.repeat(400 * 1024));
  for (const m of big) assert.equal(session.send(m), true);
  const bodies = [];
  while (bodies.flatMap((b) => JSON.parse(b)).length < big.length) {
    bodies.push((await server.sends.next()).body);
  }
  assert.deepEqual(bodies.flatMap((b) => JSON.parse(b)), big);
  assert.ok(bodies.every((b) => b.length < 1 << 20), "each body under 1 MiB");
  session.close();
  await session.finished;
});

Deno.test("sends waiting for a server that takes no xhr_send close the session with 4008", async () => {
  await using server = new XhrServer(false);
  const { handler, closed } = recorder();
  const session = await dialOpen(server, handler, {
    ...OPTIONS,
    maxBufferedBytes: 100,
  });
  session.send("first"); // goes out, and is never answered
  await server.sends.next();
  for (let i = 0; i < 3; i++) assert.equal(session.send("y".repeat(40)), true);
  // Refused without a throw: the close path reports it.
  assert.equal(session.send("one too many"), false);
  assert.deepEqual(session.closeInfo, {
    code: 4008,
    reason: "Slow consumer: too much unread data, over 100 bytes",
  });
  assert.deepEqual(await closed, {
    code: 4008,
    reason: "Slow consumer: too much unread data, over 100 bytes",
  });
  await session.finished;
  assert.equal(server.sends.all.length, 1);
});

Deno.test("a c frame in a poll closes the session with its code and reason", async () => {
  await using server = new XhrServer();
  const { handler, closes, closed } = recorder();
  const session = await dialOpen(server, handler);
  (await server.polls.next()).answer(
    200,
    'c[2010,"Another connection still open"]\n',
  );
  assert.deepEqual(await closed, {
    code: 2010,
    reason: "Another connection still open",
  });
  assert.equal(session.closed, true);
  assert.equal(session.send("x"), false);
  await session.finished;
  assert.equal(closes.length, 1);
});

Deno.test("a 404 answer to a poll closes the session: it is gone", async () => {
  await using server = new XhrServer();
  const { handler, closes, closed } = recorder();
  const session = await dialOpen(server, handler);
  (await server.polls.next()).answer(404, "404 page not found\n");
  const info = await closed;
  assert.equal(info.code, 1006);
  assert.match(info.reason, /404/);
  await session.finished;
  assert.equal(closes.length, 1);
});

Deno.test("a 404 answer to xhr_send closes the session", async () => {
  await using server = new XhrServer(false);
  const { handler, closes, closed } = recorder();
  const session = await dialOpen(server, handler);
  session.send("x");
  (await server.sends.next()).answer(404, "");
  const info = await closed;
  assert.equal(info.code, 1006);
  assert.match(info.reason, /xhr_send.*404/);
  await session.finished;
  assert.equal(closes.length, 1);
});

for (
  const [name, body, reason] of [
    ["an empty poll answer", "", /empty frame/],
    ["an empty a[] batch", "a[]\n", /empty a\[\] frame/],
    ["a garbage answer", "<html>\n", /invalid/i],
  ] as const
) {
  Deno.test(`${name} closes the session with a reason`, async () => {
    await using server = new XhrServer();
    const { handler, closed } = recorder();
    const session = await dialOpen(server, handler);
    (await server.polls.next()).answer(200, body);
    const info = await closed;
    assert.equal(info.code, 1002);
    assert.match(info.reason, reason);
    await session.finished;
  });
}

Deno.test("a poll answer over maxMessageBytes closes the session with 1009", async () => {
  await using server = new XhrServer();
  const { handler, closed } = recorder();
  const session = await dialOpen(server, handler, {
    ...OPTIONS,
    maxMessageBytes: 64,
  });
  (await server.polls.next()).answer(
    200,
    `a[${JSON.stringify("x".repeat(100))}]\n`,
  );
  assert.equal((await closed).code, 1009);
  await session.finished;
});

Deno.test("close() aborts the poll in flight, reports once and leaves nothing running", async () => {
  await using server = new XhrServer();
  const { handler, closes } = recorder();
  // Only close() can end this poll early.
  const session = await dialOpen(server, handler, {
    ...OPTIONS,
    pollTimeoutMs: 60_000,
  });
  const poll = await server.polls.next();
  session.close(3000, "Go away!");
  assert.deepEqual(closes, [{ code: 3000, reason: "Go away!" }]);
  await dropped(poll);
  await session.finished;
  assert.equal(server.polls.all.length, 2);
  assert.equal(server.sends.all.length, 0);
  session.close();
  assert.equal(closes.length, 1);
});

Deno.test("close() still sends what was queued before it, then drops the poll", async () => {
  await using server = new XhrServer(false);
  const { handler } = recorder();
  const session = await dialOpen(server, handler, {
    ...OPTIONS,
    pollTimeoutMs: 60_000,
  });
  const poll = await server.polls.next();
  session.send("last words");
  session.close();
  const send = await server.sends.next();
  assert.equal(send.body, '["last words"]');
  assert.equal(poll.signal.aborted, false);
  send.answer(204);
  await dropped(poll);
  await session.finished;
});

Deno.test("a poll with no first byte within pollTimeoutMs is dropped and sent again", async () => {
  await using server = new XhrServer();
  const { handler, messages } = recorder();
  const session = await dialOpen(server, handler, {
    ...OPTIONS,
    pollTimeoutMs: 20,
  });
  const silent = await server.polls.next();
  const again = await server.polls.next();
  await dropped(silent);
  again.answer(200, 'a["late"]\n');
  assert.equal(await messages.next(), "late");
  session.close();
  await session.finished;
});

Deno.test("a message handler that throws closes the session with 1011", async () => {
  await using server = new XhrServer();
  const { handler, closed } = recorder((message) => {
    if (message === "bad") throw new Error("boom");
  });
  const session = await dialOpen(server, handler);
  (await server.polls.next()).answer(200, 'a["bad","never"]\n');
  const info = await closed;
  assert.equal(info.code, 1011);
  assert.match(info.reason, /boom/);
  await session.finished;
});

Deno.test("dial rejects, naming the URL, when the open is not answered 200 with o", async () => {
  await using server = new XhrServer();
  const { handler } = recorder();
  const cases: [number, string, RegExp][] = [
    [404, "404 page not found\n", /HTTP 404/],
    [200, 'c[2010,"Another connection still open"]\n', /not "o"/],
    [200, "", /not "o"/],
  ];
  for (const [status, body, cause] of cases) {
    const dialing = dialXhrPolling(server.url, handler, OPTIONS);
    (await server.polls.next()).answer(status, body);
    await assert.rejects(dialing, (error: Error) => {
      assert.match(
        error.message,
        /^dial http:\/\/127\.0\.0\.1:\d+\/kite\/\d{3}\/[0-9a-f]{20}\/xhr: /,
      );
      assert.match(error.message, cause);
      return true;
    });
  }
});

Deno.test("dial rejects when the open gets no answer within timeoutMs", async () => {
  await using server = new XhrServer();
  const { handler } = recorder();
  const dialing = dialXhrPolling(server.url, handler, {
    ...OPTIONS,
    timeoutMs: 20,
  });
  // Watched before anything is awaited: on a loaded machine the 20 ms can
  // pass before the server has seen the poll.
  const rejected = assert.rejects(dialing, /no answer within 20 ms/);
  const open = await server.polls.next();
  await rejected;
  await dropped(open);
});
