import { TcpWebSocket } from "../sockets/deno_websocket.ts";
import assert from "node:assert/strict";
import { Queue, recorder } from "../../../tests/helpers/session_recorder.ts";
import {
  acceptBareWebSocket,
  textFrame,
} from "../../../tests/helpers/bare_websocket.ts";
import type { ClientSession } from "./client_session.ts";
import { dialSockjsWebsocket } from "./sockjs_websocket_client.ts";
import { VECTORS_URL } from "../../../tests/helpers/vectors.ts";

const OPTIONS = {
  connectWebSocket: TcpWebSocket.connect,
  timeoutMs: 5_000,
  pollTimeoutMs: 5_000,
  maxMessageBytes: 1 << 20,
  maxBufferedBytes: 16 << 20,
};

/** Recorded traffic (see tests/fixtures/vectors/go-kite/README.md). */
const VECTORS = new URL("go-kite/", VECTORS_URL);

/** The WebSocket frames of one recording, in order. */
async function recordedFrames(
  file: string,
): Promise<{ dir: string; frame: string }[]> {
  const text = await Deno.readTextFile(new URL(file, VECTORS));
  return text.trim().split("\n").map((line) => JSON.parse(line))
    .filter((r) => r.type === "ws");
}

interface Peer {
  socket: WebSocket;
  url: URL;
  headers: Headers;
  frames: Queue<string>;
  opened: Promise<unknown>;
  closed: Promise<CloseEvent>;
}

/** A Deno.serve WebSocket server that plays the SockJS server by hand. */
class SockjsServer {
  readonly peers: Queue<Peer> = new Queue();
  readonly #all: Peer[] = [];
  readonly #server: Deno.HttpServer<Deno.NetAddr>;

  constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => {
        const headers = new Headers(request.headers);
        const { socket, response } = Deno.upgradeWebSocket(request);
        const peer: Peer = {
          socket,
          url: new URL(request.url),
          headers,
          frames: new Queue(),
          opened: new Promise((r) => socket.addEventListener("open", r)),
          closed: new Promise((r) => socket.addEventListener("close", r)),
        };
        socket.addEventListener("message", (e) => peer.frames.push(e.data));
        this.#all.push(peer);
        this.peers.push(peer);
        return response;
      },
    );
  }

  get url(): URL {
    return new URL(`http://127.0.0.1:${this.#server.addr.port}/kite`);
  }

  /** The next connection, once its socket is open. */
  async accept(): Promise<Peer> {
    const peer = await this.peers.next();
    await peer.opened;
    return peer;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const peer of this.#all) {
      if (peer.socket.readyState === WebSocket.OPEN) peer.socket.close();
      await peer.closed;
    }
    await this.#server.shutdown();
  }
}

async function closeAll(session: ClientSession): Promise<void> {
  session.close();
  await session.finished;
}

Deno.test("dial opens {path}/{3 digits}/{20 hex}/websocket with Go's Origin, keeping the query", async () => {
  await using server = new SockjsServer();
  const url = new URL(server.url);
  url.search = "?token=1";
  const { handler } = recorder();
  const session = await dialSockjsWebsocket(url, handler, OPTIONS);
  const peer = await server.accept();
  assert.match(
    peer.url.pathname,
    /^\/kite\/[1-9]\d\d\/[0-9a-f]{20}\/websocket$/,
  );
  assert.equal(peer.url.search, "?token=1");
  assert.equal(peer.headers.get("origin"), `http://${url.host}`);
  assert.equal(session.transport, "websocket");
  assert.equal(session.id, peer.url.pathname.split("/")[3]);
  assert.equal(session.remoteAddr, url.host);
  await closeAll(session);
});

Deno.test('dial resolves before the o frame, and each send is its own ["..."] frame', async () => {
  await using server = new SockjsServer();
  const { handler, messages } = recorder();
  const session = await dialSockjsWebsocket(server.url, handler, OPTIONS);
  const peer = await server.accept();
  // The Go client sends before `o` arrives (recorded in go-kite 04, 05, 08).
  const sent = (await recordedFrames("01-math-kite-call.jsonl"))
    .filter((r) => r.dir === "c2s").map((r) => r.frame);
  for (const frame of sent) session.send(JSON.parse(frame)[0]);
  session.send('quote " and\nnewline');
  for (const frame of sent) assert.equal(await peer.frames.next(), frame);
  assert.equal(await peer.frames.next(), '["quote \\" and\\nnewline"]');
  peer.socket.send("o");
  peer.socket.send('a["after o"]');
  assert.equal(await messages.next(), "after o");
  await closeAll(session);
});

Deno.test("o is skipped, h ignored, a[...] delivered in order, m delivers one", async () => {
  await using server = new SockjsServer();
  const { handler, messages } = recorder();
  const session = await dialSockjsWebsocket(server.url, handler, OPTIONS);
  const peer = await server.accept();
  const received = (await recordedFrames("01-math-kite-call.jsonl"))
    .filter((r) => r.dir === "s2c" && r.frame !== "").map((r) => r.frame);
  assert.equal(received[0], "o");
  for (const frame of received) peer.socket.send(frame);
  peer.socket.send("h");
  peer.socket.send('a["one","two","three"]');
  peer.socket.send('m"single"');
  const expected = received.slice(1).flatMap((f) => JSON.parse(f.slice(1)))
    .concat(["one", "two", "three", "single"]);
  for (const want of expected) assert.equal(await messages.next(), want);
  await closeAll(session);
});

Deno.test("a c frame closes the session with its code and reason, once", async () => {
  await using server = new SockjsServer();
  const { handler, closes, closed } = recorder();
  const session = await dialSockjsWebsocket(server.url, handler, OPTIONS);
  const peer = await server.accept();
  peer.socket.send("o");
  peer.socket.send('c[3000,"Go away!"]');
  assert.deepEqual(await closed, { code: 3000, reason: "Go away!" });
  assert.equal(session.closed, true);
  assert.equal(session.send("late"), false);
  assert.deepEqual(session.closeInfo, { code: 3000, reason: "Go away!" });
  await session.finished;
  await peer.closed;
  session.close();
  assert.equal(closes.length, 1);
});

for (
  const [name, frame, reason] of [
    ["an empty frame", "", /empty frame/],
    ["an empty a[] batch", "a[]", /empty a\[\] frame/],
    ["a garbage frame", "zzz", /invalid/i],
    ["an a frame holding a number", "a[1]", /invalid/i],
  ] as const
) {
  Deno.test(`${name} closes the session with a reason`, async () => {
    await using server = new SockjsServer();
    const { handler, messages, closes, closed } = recorder();
    const session = await dialSockjsWebsocket(server.url, handler, OPTIONS);
    const peer = await server.accept();
    peer.socket.send('a["before"]');
    peer.socket.send(frame);
    peer.socket.send('a["after"]');
    assert.equal(await messages.next(), "before");
    const info = await closed;
    assert.equal(info.code, 1002);
    assert.match(info.reason, reason);
    await session.finished;
    await peer.closed;
    assert.equal(closes.length, 1);
  });
}

Deno.test("close() reports onClose once with the caller's code and reason, and releases the socket", async () => {
  await using server = new SockjsServer();
  const { handler, closes } = recorder();
  const session = await dialSockjsWebsocket(server.url, handler, OPTIONS);
  const peer = await server.accept();
  session.close(3000, "Go away!");
  assert.deepEqual(closes, [{ code: 3000, reason: "Go away!" }]);
  assert.equal(session.closed, true);
  session.close();
  await session.finished;
  const event = await peer.closed;
  assert.equal(event.code, 3000);
  assert.equal(closes.length, 1);
  assert.equal(session.send("x"), false);
});

Deno.test("a message handler that throws closes the session with 1011", async () => {
  await using server = new SockjsServer();
  const { handler, closed } = recorder((message) => {
    if (message === "bad") throw new Error("boom");
  });
  const session = await dialSockjsWebsocket(server.url, handler, OPTIONS);
  const peer = await server.accept();
  peer.socket.send('a["bad","never"]');
  const info = await closed;
  assert.equal(info.code, 1011);
  assert.match(info.reason, /boom/);
  await session.finished;
});

Deno.test("a frame over maxMessageBytes closes the session with 1009", async () => {
  await using server = new SockjsServer();
  const { handler, closed } = recorder();
  const session = await dialSockjsWebsocket(server.url, handler, {
    ...OPTIONS,
    maxMessageBytes: 64,
  });
  const peer = await server.accept();
  peer.socket.send(`a[${JSON.stringify("x".repeat(100))}]`);
  assert.equal((await closed).code, 1009);
  await session.finished;
});

Deno.test("aborting the signal after the dial closes the session", async () => {
  await using server = new SockjsServer();
  const { handler, closed } = recorder();
  const abort = new AbortController();
  const session = await dialSockjsWebsocket(server.url, handler, {
    ...OPTIONS,
    signal: abort.signal,
  });
  await server.accept();
  abort.abort();
  assert.equal((await closed).code, 1000);
  assert.equal(session.closed, true);
  await session.finished;
});

/** Answers one WebSocket handshake on a bare TCP socket, then plays `frames`. */
function replayServer(
  frames: string[],
): { url: URL; done: Promise<void>; listener: Deno.Listener } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await acceptBareWebSocket(listener);
    // The frames, then TCP close.
    for (const frame of frames) await conn.write(textFrame(frame));
    conn.close();
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  return { url: new URL(`http://127.0.0.1:${port}/kite`), done, listener };
}

Deno.test("replaying go-kite 01 byte for byte: messages delivered, the closing empty frame ends the session", async () => {
  const frames = (await recordedFrames("01-math-kite-call.jsonl"))
    .filter((r) => r.dir === "s2c").map((r) => r.frame);
  // sockjs-go's goodbye after a peer close is one empty frame (docs/protocol.md §1.3).
  assert.equal(frames.at(-1), "");
  const server = replayServer(frames);
  const { handler, messages, closes, closed } = recorder();
  const session = await dialSockjsWebsocket(server.url, handler, OPTIONS);
  const expected = frames.filter((f) => f.startsWith("a"))
    .flatMap((f) => JSON.parse(f.slice(1)));
  for (const want of expected) assert.equal(await messages.next(), want);
  const info = await closed;
  assert.equal(info.code, 1002);
  assert.match(info.reason, /empty frame/);
  await session.finished;
  await server.done;
  server.listener.close();
  assert.equal(closes.length, 1);
});

Deno.test("a connection dropped without a close frame reports 1006 once", async () => {
  const server = replayServer(["o"]);
  const { handler, closes, closed } = recorder();
  const session = await dialSockjsWebsocket(server.url, handler, OPTIONS);
  const info = await closed;
  assert.equal(info.code, 1006);
  assert.ok(info.reason.length > 0);
  await session.finished;
  await server.done;
  server.listener.close();
  assert.equal(closes.length, 1);
  assert.equal(session.closed, true);
});
