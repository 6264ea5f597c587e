import { TcpWebSocket } from "../sockets/deno_websocket.ts";
import assert from "node:assert/strict";
import { dialRawWebsocket } from "./raw_websocket_client.ts";
import type { CloseInfo, SessionHandler } from "../session.ts";
import { VECTORS_URL } from "../../../tests/helpers/vectors.ts";

const OPTIONS = {
  connectWebSocket: TcpWebSocket.connect,
  timeoutMs: 5_000,
  pollTimeoutMs: 5_000,
  maxMessageBytes: 1 << 20,
  maxBufferedBytes: 16 << 20,
};

/** Recorded kite.js traffic (see tests/fixtures/vectors/kitejs/README.md). */
const RECORDING = new URL("kitejs/raw-websocket.jsonl", VECTORS_URL);

async function recordedFrames(dir: "c2s" | "s2c"): Promise<string[]> {
  const text = await Deno.readTextFile(RECORDING);
  return text.trim().split("\n").map((line) => JSON.parse(line))
    .filter((r) => r.kind === "ws" && r.opcode === "text" && r.dir === dir)
    .map((r) => r.text);
}

/** Collects items; `take(n)` waits until n have arrived. */
class Collector<T> {
  readonly items: T[] = [];
  #wake: (() => void) | undefined;
  push(item: T): void {
    this.items.push(item);
    this.#wake?.();
  }
  async take(n: number): Promise<T[]> {
    while (this.items.length < n) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    return this.items.slice(0, n);
  }
}

interface Peer {
  socket: WebSocket;
  url: URL;
  headers: Headers;
  frames: Collector<string>;
  opened: Promise<unknown>;
  closed: Promise<CloseEvent>;
}

/** Serves one raw WebSocket connection, as the kite.js server does. */
function rawServer() {
  const peer = Promise.withResolvers<Peer>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const headers = new Headers(request.headers);
      const { socket, response } = Deno.upgradeWebSocket(request);
      const frames = new Collector<string>();
      socket.addEventListener("message", (e) => frames.push(e.data));
      peer.resolve({
        socket,
        url: new URL(request.url),
        headers,
        frames,
        opened: new Promise((r) => socket.addEventListener("open", r)),
        closed: new Promise((r) => socket.addEventListener("close", r)),
      });
      return response;
    },
  );
  return {
    url: new URL(`http://127.0.0.1:${server.addr.port}/kite`),
    async accept(): Promise<Peer> {
      const p = await peer.promise;
      await p.opened;
      return p;
    },
    async [Symbol.asyncDispose](): Promise<void> {
      const p = await Promise.race([peer.promise, Promise.resolve(undefined)]);
      if (p?.socket.readyState === WebSocket.OPEN) p.socket.close();
      await p?.closed;
      await server.shutdown();
    },
  };
}

function recorder() {
  const messages = new Collector<string>();
  const closes: CloseInfo[] = [];
  const handler: SessionHandler = {
    onMessage: (message) => messages.push(message),
    onClose: (info) => closes.push(info),
  };
  return { handler, messages, closes };
}

Deno.test("the raw client opens the URL path as given, without Origin or SockJS framing", async () => {
  await using server = rawServer();
  const { handler, messages } = recorder();
  const session = await dialRawWebsocket(server.url, handler, OPTIONS);
  const peer = await server.accept();
  assert.equal(peer.url.pathname, "/kite");
  assert.equal(peer.headers.get("origin"), null);
  assert.equal(session.transport, "raw-websocket");
  assert.match(session.id, /^[0-9a-f-]{36}$/);
  // What a SockJS client would skip or unwrap is a plain message here.
  peer.socket.send("o");
  peer.socket.send('a["x"]');
  assert.deepEqual(await messages.take(2), ["o", 'a["x"]']);
  session.close();
  await session.finished;
  await peer.closed;
});

Deno.test("the raw client carries kite.js's recorded frames unchanged both ways", async () => {
  await using server = rawServer();
  const { handler, messages, closes } = recorder();
  const session = await dialRawWebsocket(server.url, handler, OPTIONS);
  const peer = await server.accept();
  const sent = await recordedFrames("c2s");
  const received = await recordedFrames("s2c");
  assert.ok(sent.length > 3 && received.length > 3);
  for (const frame of sent) session.send(frame);
  for (const frame of received) peer.socket.send(frame);
  assert.deepEqual(await peer.frames.take(sent.length), sent);
  assert.deepEqual(await messages.take(received.length), received);
  // kite.js closes with an empty close frame (no status code).
  peer.socket.close();
  await peer.closed;
  await session.finished;
  assert.equal(closes.length, 1);
  assert.equal(closes[0].code, 1005);
  assert.equal(session.closed, true);
});

Deno.test("the raw client offers batches; after the server's [] a tick's sends share a frame", async () => {
  await using server = rawServer();
  const { handler, messages } = recorder();
  const session = await dialRawWebsocket(server.url, handler, OPTIONS);
  const peer = await server.accept();
  assert.equal(peer.url.searchParams.get("kite-batch"), "1");
  // Before the answer: one message per frame, as kite.js servers expect.
  session.send('{"a":1}');
  session.send('{"b":2}');
  assert.deepEqual(await peer.frames.take(2), ['{"a":1}', '{"b":2}']);
  peer.socket.send("[]");
  peer.socket.send('[{"r":1},{"r":2}]');
  assert.deepEqual(await messages.take(2), ['{"r":1}', '{"r":2}']);
  session.send('{"c":3}');
  session.sendJoined?.('{"d":', "4}");
  assert.deepEqual(await peer.frames.take(3), [
    '{"a":1}',
    '{"b":2}',
    '[{"c":3},{"d":4}]',
  ]);
  // A lone message still goes plain; what is queued leaves before a close.
  session.send('{"e":5}');
  assert.equal((await peer.frames.take(4))[3], '{"e":5}');
  session.send('{"f":6}');
  session.send('{"g":7}');
  session.close();
  assert.equal((await peer.frames.take(5))[4], '[{"f":6},{"g":7}]');
  await session.finished;
  await peer.closed;
});

Deno.test("the raw client closes on a broken batch frame from the server", async () => {
  await using server = rawServer();
  const { handler, messages, closes } = recorder();
  const session = await dialRawWebsocket(server.url, handler, OPTIONS);
  const peer = await server.accept();
  peer.socket.send("[]");
  peer.socket.send('[{"ok":1},');
  await session.finished;
  await peer.closed;
  assert.equal(messages.items.length, 0);
  assert.equal(closes.length, 1);
  assert.equal(closes[0].code, 4002);
  assert.match(closes[0].reason, /^Broken batch/);
});
