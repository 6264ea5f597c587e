import assert from "node:assert/strict";
import { ManualClock } from "../../clock.ts";
import type { CloseInfo, Session } from "../session.ts";
import { decodeServerFrame, XHR_STREAMING_PRELUDE } from "../sockjs_frames.ts";
import { SockJsServer, type SockJsServerOptions } from "./sockjs_server.ts";
import {
  asSockjsNodeAnswers,
  VECTORS_URL,
} from "../../../tests/helpers/vectors.ts";

/** Recorded traffic (see tests/fixtures/vectors/*\/README.md). */
const VECTORS = VECTORS_URL;

// ---------------------------------------------------------------- helpers

/** Records sessions, messages and closes; echoes when `echo` is set. */
class Recorder {
  sessions: Session[] = [];
  received: string[] = [];
  closes: CloseInfo[] = [];
  echo = false;
  #waiters: (() => void)[] = [];

  onSession = (session: Session) => {
    this.sessions.push(session);
    return {
      onMessage: (message: string) => {
        this.received.push(message);
        if (this.echo) session.send(message);
      },
      onClose: (info: CloseInfo) => {
        this.closes.push(info);
        this.#waiters.splice(0).forEach((fn) => fn());
      },
    };
  };

  async closed(n: number): Promise<void> {
    while (this.closes.length < n) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}

interface Harness extends AsyncDisposable {
  sockjs: SockJsServer;
  rec: Recorder;
  url(session: string, route: string): string;
  poll(session: string, init?: RequestInit): Promise<Response>;
  send(session: string, body: BodyInit): Promise<Response>;
  /** Resolves once the server has handled `n` requests in all. */
  handled(n: number): Promise<void>;
}

function start(options: Partial<SockJsServerOptions> = {}): Harness {
  const rec = new Recorder();
  const sockjs = new SockJsServer({ onSession: rec.onSession, ...options });
  let count = 0;
  let waiters: (() => void)[] = [];
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req, info) => {
      // handle() attaches a poll before it returns.
      const response = sockjs.handle(req, info) ??
        new Response("nf", { status: 404 });
      count++;
      waiters.splice(0).forEach((fn) => fn());
      return response;
    },
  );
  const handled = async (n: number) => {
    while (count < n) {
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  const base = `http://127.0.0.1:${server.addr.port}/kite/521`;
  const url = (session: string, route: string) => `${base}/${session}/${route}`;
  // The request shapes of go-kite/10-xhr-polling.jsonl.
  const goHeaders = {
    "User-Agent": "Go-http-client/1.1",
    "Content-Type": "text/plain",
    "Accept-Encoding": "gzip",
  };
  return {
    sockjs,
    rec,
    url,
    poll: (session, init) =>
      fetch(url(session, "xhr"), {
        method: "POST",
        headers: goHeaders,
        body: "",
        ...init,
      }),
    send: (session, body) =>
      fetch(url(session, "xhr_send"), {
        method: "POST",
        headers: goHeaders,
        body,
      }),
    handled,
    async [Symbol.asyncDispose]() {
      waiters = [];
      sockjs.close();
      await server.shutdown();
    },
  };
}

/** How long a test waits for an answer that should come, before failing. */
const GUARD_MS = 5_000;

/** The body of a response; fails instead of hanging when none comes. */
async function text(response: Promise<Response>): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no answer arrived")), GUARD_MS);
  });
  try {
    return await Promise.race([response.then((r) => r.text()), guard]);
  } finally {
    clearTimeout(timer);
  }
}

interface GoRecord {
  type: string;
  kind?: string;
  dir?: string;
  head?: string;
  body?: string;
}

async function readVector(name: string): Promise<GoRecord[]> {
  const lines = (await Deno.readTextFile(new URL(name, VECTORS))).split("\n");
  return lines.filter((l) => l).map((l) => JSON.parse(l));
}

/** Response headers as recorded, without Date and Content-Length. */
function recordedHeaders(head: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of head.split("\r\n").slice(1)) {
    const at = line.indexOf(": ");
    const name = line.slice(0, at).toLowerCase();
    if (name !== "date" && name !== "content-length") {
      out[name] = line.slice(at + 2);
    }
  }
  return out;
}

function assertHeaders(response: Response, recorded: Record<string, string>) {
  for (const [name, value] of Object.entries(asSockjsNodeAnswers(recorded))) {
    assert.equal(response.headers.get(name), value, name);
  }
}

/** Reads a streamed body until `done(text so far)` holds. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  state: { text: string },
  done: (text: string) => boolean,
): Promise<void> {
  const decoder = new TextDecoder();
  while (!done(state.text)) {
    const { value, done: ended } = await reader.read();
    if (ended) throw new Error(`stream ended; got ${state.text.slice(-200)}`);
    state.text += decoder.decode(value, { stream: true });
  }
}

// ------------------------------------------------------------ xhr polling

Deno.test("xhr polling replays go-kite/10-xhr-polling.jsonl byte for byte", async () => {
  const records = await readVector("go-kite/10-xhr-polling.jsonl");
  const sends = records.filter((r) =>
    r.type === "http" && r.kind === "body" && r.dir === "c2s"
  ).map((r) => r.body!);
  const answers = records.filter((r) =>
    r.type === "http" && r.kind === "body" && r.dir === "s2c"
  ).map((r) => r.body!);
  const heads = records.filter((r) =>
    r.type === "http" && r.kind === "response"
  ).map((r) => r.head!);
  const pollHead = recordedHeaders(heads.find((h) => h.includes("200 OK"))!);
  const sendHead = recordedHeaders(heads.find((h) => h.includes("204"))!);
  assert.equal(sends.length, 3);
  assert.equal(answers.length, 5);

  await using h = start();
  const id = "c03357a706b61403944a";
  const open = await h.poll(id);
  assertHeaders(open, pollHead);
  assert.equal(open.headers.get("content-length"), "2");
  assert.equal(await open.text(), answers[0]); // "o\n"
  const [session] = h.rec.sessions;
  assert.equal(session.transport, "xhr-polling");
  assert.equal(session.id, id);
  assert.match(session.remoteAddr, /^127\.0\.0\.1:\d+$/);

  /** The messages of a recorded poll answer. */
  const messagesOf = (answer: string): string[] => {
    const frame = decodeServerFrame(answer.replace(/\n$/, ""));
    assert.ok(frame.type === "messages");
    return frame.messages;
  };

  // kite.ping → pong
  const sent = await h.send(id, sends[0]);
  assert.equal(sent.status, 204);
  assertHeaders(sent, sendHead);
  await sent.body?.cancel();
  assert.deepEqual(h.rec.received, JSON.parse(sends[0]));
  messagesOf(answers[1]).forEach((m) => session.send(m));
  assert.equal(await text(h.poll(id)), answers[1]);

  // squareCb → callback invocation and reply, in two polls
  await (await h.send(id, sends[1])).body?.cancel();
  messagesOf(answers[2]).forEach((m) => session.send(m));
  assert.equal(await text(h.poll(id)), answers[2]);
  messagesOf(answers[3]).forEach((m) => session.send(m));
  assert.equal(await text(h.poll(id)), answers[3]);

  // no.such.method → methodNotFound
  await (await h.send(id, sends[2])).body?.cancel();
  messagesOf(answers[4]).forEach((m) => session.send(m));
  assert.equal(await text(h.poll(id)), answers[4]);
  assert.deepEqual(h.rec.received, sends.map((s) => JSON.parse(s)[0]));
});

Deno.test("xhr_send accepts the chunked bodies sockjs-client sends", async () => {
  const records = await readVector("kitejs/sockjs-xhr-polling.jsonl");
  const body = records.find((r) =>
    r.kind === "http-body" && r.dir === "c2s"
  ) as unknown as { text: string };
  await using h = start();
  assert.equal(await text(h.poll("ix51f44y")), "o\n");
  const chunks = [body.text.slice(0, 100), body.text.slice(100)];
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks.shift();
      if (chunk === undefined) controller.close();
      else controller.enqueue(new TextEncoder().encode(chunk));
    },
  });
  const res = await fetch(h.url("ix51f44y", "xhr_send"), {
    method: "POST",
    headers: { "Content-type": "text/plain" },
    body: stream,
  });
  assert.equal(res.status, 204);
  await res.body?.cancel();
  assert.deepEqual(h.rec.received, JSON.parse(body.text));
});

Deno.test("a pending poll is answered by the next message, batched with others of the same tick", async () => {
  await using h = start();
  assert.equal(await text(h.poll("s1")), "o\n");
  const pending = h.poll("s1");
  await h.handled(2);
  h.rec.sessions[0].send("one");
  h.rec.sessions[0].send("two");
  assert.equal(await text(pending), 'a["one","two"]\n');
});

Deno.test("a poll carries one frame: queued messages wait after o", async () => {
  await using h = start({
    onSession(session) {
      session.send("early");
      return { onMessage() {}, onClose() {} };
    },
  });
  assert.equal(await text(h.poll("s1")), "o\n");
  assert.equal(await text(h.poll("s1")), 'a["early"]\n');
});

Deno.test("xhr_send to an unknown session answers 404", async () => {
  await using h = start();
  const res = await h.send("nobody", '["x"]');
  assert.equal(res.status, 404);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  await res.body?.cancel();
  assert.equal(h.sockjs.sessionCount, 0);
});

Deno.test("xhr_send with broken or missing JSON answers 500 and keeps the session", async () => {
  await using h = start();
  h.rec.echo = true;
  assert.equal(await text(h.poll("s1")), "o\n");
  for (
    const [body, expected] of [
      ["", "Payload expected."],
      ["  ", "Payload expected."],
      ['["unterminated', "Broken JSON encoding."],
      ['{"not":"an array"}', "Broken JSON encoding."],
      ["[1,2]", "Broken JSON encoding."],
    ]
  ) {
    const res = await h.send("s1", body);
    assert.equal(res.status, 500, body);
    assert.equal(await res.text(), expected);
  }
  assert.equal((await h.send("s1", '["ok"]')).status, 204);
  assert.equal(await text(h.poll("s1")), 'a["ok"]\n');
  assert.equal(h.rec.closes.length, 0);
});

Deno.test("xhr_send over maxMessageBytes answers 413 and closes the session", async () => {
  await using h = start({ maxMessageBytes: 32 });
  assert.equal(await text(h.poll("s1")), "o\n");
  const res = await h.send("s1", JSON.stringify(["y".repeat(40)]));
  assert.equal(res.status, 413);
  await res.body?.cancel();
  assert.equal(
    await text(h.poll("s1")),
    'c[4009,"Message too big: limit is 32 bytes"]\n',
  );
  assert.deepEqual(h.rec.received, []);
  assert.equal(h.rec.closes[0].code, 4009);
});

Deno.test("a second concurrent poller gets c[2010] and the first keeps the session", async () => {
  await using h = start();
  assert.equal(await text(h.poll("s1")), "o\n");
  const first = h.poll("s1");
  await h.handled(2);
  assert.equal(
    await text(h.poll("s1")),
    'c[2010,"Another connection still open"]\n',
  );
  h.rec.sessions[0].send("for the first");
  assert.equal(await text(first), 'a["for the first"]\n');
  assert.equal(h.rec.closes.length, 0);
});

Deno.test("a pending poll receives h when the heartbeat is due", async () => {
  const clock = new ManualClock();
  await using h = start({ clock, heartbeatMs: 100 });
  assert.equal(await text(h.poll("s1")), "o\n");
  const pending = h.poll("s1");
  await h.handled(2);
  await clock.advance(100);
  assert.equal(await text(pending), "h\n");
});

Deno.test("a session nobody polls closes after disconnectDelayMs", async () => {
  const clock = new ManualClock();
  await using h = start({ clock, disconnectDelayMs: 500 });
  assert.equal(await text(h.poll("s1")), "o\n");
  await clock.advance(499);
  assert.equal(h.rec.closes.length, 0);
  assert.equal(h.sockjs.sessionCount, 1);
  await clock.advance(1);
  assert.deepEqual(h.rec.closes, [{ code: 1006, reason: "Session timed out" }]);
  assert.equal(h.sockjs.sessionCount, 0);
  const res = await h.send("s1", '["late"]');
  assert.equal(res.status, 404);
  await res.body?.cancel();
  // The id is free again: a new poll opens a new session.
  assert.equal(await text(h.poll("s1")), "o\n");
  assert.equal(h.rec.sessions.length, 2);
});

Deno.test("a poll aborted by the client ends the session at once", async () => {
  await using h = start();
  assert.equal(await text(h.poll("s1")), "o\n");
  const abort = new AbortController();
  const pending = h.poll("s1", { signal: abort.signal });
  await h.handled(2);
  abort.abort();
  await assert.rejects(pending);
  await h.rec.closed(1);
  assert.deepEqual(h.rec.closes, [{
    code: 1002,
    reason: "Connection interrupted",
  }]);
  assert.equal(h.sockjs.sessionCount, 0);
  const res = await h.send("s1", '["late"]');
  assert.equal(res.status, 404);
  await res.body?.cancel();
});

Deno.test("a local close answers the pending poll with c[3000] and later polls too", async () => {
  const clock = new ManualClock();
  await using h = start({ clock, disconnectDelayMs: 1000 });
  assert.equal(await text(h.poll("s1")), "o\n");
  const pending = h.poll("s1");
  await h.handled(2);
  h.rec.sessions[0].close();
  assert.equal(await text(pending), 'c[3000,"Go away!"]\n');
  assert.equal(await text(h.poll("s1")), 'c[3000,"Go away!"]\n');
  assert.deepEqual(h.rec.closes, [{ code: 3000, reason: "Go away!" }]);
  assert.equal(h.sockjs.sessionCount, 0);
  await clock.advance(1000);
  assert.equal(await text(h.poll("s1")), "o\n"); // forgotten: a new session
});

Deno.test("messages sent just before a close still reach the next poll, then c", async () => {
  await using h = start();
  assert.equal(await text(h.poll("s1")), "o\n");
  const [session] = h.rec.sessions;
  session.send("bye");
  session.close(3001, "finished");
  assert.equal(await text(h.poll("s1")), 'a["bye"]\n');
  assert.equal(await text(h.poll("s1")), 'c[3001,"finished"]\n');
});

Deno.test("SockJsServer.close() answers pending polls with c[3000]", async () => {
  const h = start();
  try {
    assert.equal(await text(h.poll("s1")), "o\n");
    const pending = h.poll("s1");
    await h.handled(2);
    h.sockjs.close();
    assert.equal(await text(pending), 'c[3000,"Go away!"]\n');
    assert.equal(h.sockjs.sessionCount, 0);
  } finally {
    await h[Symbol.asyncDispose]();
  }
});

Deno.test("past maxSessions a new XHR session gets 503", async () => {
  await using h = start({ maxSessions: 1 });
  assert.equal(await text(h.poll("s1")), "o\n");
  const res = await h.poll("s2");
  assert.equal(res.status, 503);
  await res.body?.cancel();
  assert.equal(h.rec.sessions.length, 1);
});

Deno.test("xhr responses echo the request Origin in CORS headers", async () => {
  await using h = start();
  const res = await h.poll("s1", { headers: { Origin: "http://app.test" } });
  assert.equal(
    res.headers.get("access-control-allow-origin"),
    "http://app.test",
  );
  assert.equal(res.headers.get("access-control-allow-credentials"), "true");
  await res.body?.cancel();
});

// ---------------------------------------------------------- xhr streaming

Deno.test("xhr_streaming sends the prelude, o, then frames until responseLimit", async () => {
  await using h = start({ responseLimit: 60 });
  h.rec.echo = true;
  const res = await fetch(h.url("qp5uctyo", "xhr_streaming"), {
    method: "POST",
  });
  assert.equal(res.status, 200);
  assert.equal(
    res.headers.get("content-type"),
    "application/javascript; charset=UTF-8",
  );
  const reader = res.body!.getReader();
  const got = { text: "" };
  await readUntil(reader, got, (t) => t.length >= 2049 + 2);
  assert.equal(got.text, XHR_STREAMING_PRELUDE + "o\n");
  assert.equal(h.rec.sessions[0].transport, "xhr-streaming");

  assert.equal((await h.send("qp5uctyo", '["first"]')).status, 204);
  await readUntil(reader, got, (t) => t.endsWith('a["first"]\n'));
  // 2 + 11 bytes so far; this frame passes the 60-byte limit.
  await (await h.send("qp5uctyo", JSON.stringify(["z".repeat(50)]))).text();
  const rest = new TextDecoder().decode(
    await new Response(
      new ReadableStream({
        async pull(c) {
          const { value, done } = await reader.read();
          if (done) c.close();
          else c.enqueue(value);
        },
      }),
    ).arrayBuffer(),
  );
  assert.equal(rest, "a" + JSON.stringify(["z".repeat(50)]) + "\n");

  // The client reconnects: prelude again, no second o.
  h.rec.sessions[0].send("queued while away");
  const again = await fetch(h.url("qp5uctyo", "xhr_streaming"), {
    method: "POST",
  });
  const reader2 = again.body!.getReader();
  const got2 = { text: "" };
  await readUntil(reader2, got2, (t) => t.endsWith("\n") && t.length > 2049);
  assert.equal(got2.text, XHR_STREAMING_PRELUDE + 'a["queued while away"]\n');
  await reader2.cancel();
  await h.rec.closed(1); // cancelling the stream interrupts the session
  assert.equal(h.rec.closes[0].code, 1002);
});

Deno.test("a poll takes one frame of at most maxMessageBytes; the rest waits for the next polls", async () => {
  const limit = 1024;
  await using h = start({ maxMessageBytes: limit });
  assert.equal(await text(h.poll("s1")), "o\n");
  const sent = Array.from({ length: 5 }, (_, i) => `${i}` + "z".repeat(400));
  for (const m of sent) assert.equal(h.rec.sessions[0].send(m), true);
  const got: string[] = [];
  let polls = 0;
  while (got.length < sent.length) {
    const body = await text(h.poll("s1"));
    assert.ok(body.length - 1 <= limit, `poll answer of ${body.length} bytes`);
    got.push(...JSON.parse(body.slice(1)));
    polls++;
  }
  assert.deepEqual(got, sent);
  assert.equal(polls, 3);
});

Deno.test("eventsource sends an empty line, then each frame as one event; xhr_send feeds the session", async () => {
  await using h = start();
  h.rec.echo = true;
  const post = await fetch(h.url("ev1", "eventsource"), { method: "POST" });
  assert.equal(post.status, 405);
  await post.body?.cancel();
  const res = await fetch(h.url("ev1", "eventsource"));
  assert.equal(res.status, 200);
  assert.equal(
    res.headers.get("content-type"),
    "text/event-stream; charset=UTF-8",
  );
  const reader = res.body!.getReader();
  const got = { text: "" };
  await readUntil(reader, got, (t) => t.endsWith("data: o\r\n\r\n"));
  assert.equal(got.text, "\r\ndata: o\r\n\r\n");
  assert.equal(h.rec.sessions[0].transport, "eventsource");
  assert.equal((await h.send("ev1", '["line1\\nline2"]')).status, 204);
  await readUntil(reader, got, (t) => t.endsWith("]\r\n\r\n"));
  // The message's newline stays escaped: one event, one data line.
  assert.equal(
    got.text,
    '\r\ndata: o\r\n\r\ndata: a["line1\\nline2"]\r\n\r\n',
  );
  await reader.cancel();
  await h.rec.closed(1);
});

Deno.test("jsonp answers one frame as a call of the page's callback; jsonp_send takes d= forms and answers ok", async () => {
  await using h = start();
  h.rec.echo = true;
  const missing = await fetch(h.url("jp1", "jsonp"));
  assert.equal(missing.status, 500);
  assert.equal(await missing.text(), '"callback" parameter required');
  const hostile = await fetch(h.url("jp1", "jsonp") + "?c=alert(1)//");
  assert.equal(hostile.status, 500);
  assert.match(await hostile.text(), /^invalid "callback" parameter/);
  assert.equal(h.rec.sessions.length, 0);

  const open = await fetch(h.url("jp1", "jsonp") + "?c=_jp.a1.onData");
  assert.equal(open.status, 200);
  assert.equal(await open.text(), '/**/_jp.a1.onData("o");\r\n');
  assert.equal(h.rec.sessions[0].transport, "jsonp-polling");

  const sent = await fetch(h.url("jp1", "jsonp_send"), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ d: '["hi"]' }),
  });
  assert.equal(sent.status, 200);
  assert.equal(await sent.text(), "ok");
  const echoed = await fetch(h.url("jp1", "jsonp") + "?c=cb");
  assert.equal(await echoed.text(), '/**/cb("a[\\"hi\\"]");\r\n');
});
