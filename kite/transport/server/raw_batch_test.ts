import assert from "node:assert/strict";
import type { CloseInfo, Session } from "../session.ts";
import { MAX_BATCH_FRAME_BYTES } from "../batch_frames.ts";
import { SockJsServer, type SockJsServerOptions } from "./sockjs_server.ts";
import { RawSocket } from "../../../tests/helpers/kite_harness.ts";
import { clientFrame } from "../../../scripts/fuzz/wire.ts";

/** A SockJsServer echoing each message on its session, recording closes. */
function echoServer(options: Partial<SockJsServerOptions> = {}) {
  const received: string[] = [];
  const closes: CloseInfo[] = [];
  const sessions: Session[] = [];
  const sockjs = new SockJsServer({
    ...options,
    onSession: (session) => {
      sessions.push(session);
      return {
        onMessage: (message) => {
          received.push(message);
          session.send(message);
        },
        onClose: (info) => closes.push(info),
      };
    },
  });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req, info) =>
      sockjs.handle(req, info) ?? new Response(null, { status: 404 }),
  );
  return {
    url: `ws://127.0.0.1:${server.addr.port}/kite`,
    received,
    closes,
    sessions,
    async [Symbol.asyncDispose]() {
      sockjs.close();
      await server.shutdown();
    },
  };
}

async function batching(url: string): Promise<RawSocket> {
  const socket = await RawSocket.open(url + "?kite-batch=1");
  assert.equal(await socket.next("the batch answer"), "[]");
  return socket;
}

Deno.test("raw websocket: only a client that offers kite-batch=1 gets [] and batches", async () => {
  await using server = echoServer();
  // Without the offer, nothing changes: an array is one (bad) message.
  const plain = await RawSocket.open(server.url);
  plain.send('[{"a":1},{"b":2}]');
  assert.equal(await plain.next(), '[{"a":1},{"b":2}]');
  plain.socket.close();
  await plain.closed;

  const socket = await batching(server.url);
  socket.send('[{"a":1}, {"b":[2,"]"]},{"c":3}]');
  // Each element is a message; the echoes of one turn share a frame.
  assert.equal(await socket.next(), '[{"a":1},{"b":[2,"]"]},{"c":3}]');
  assert.deepEqual(server.received.slice(1), [
    '{"a":1}',
    '{"b":[2,"]"]}',
    '{"c":3}',
  ]);
  // A lone message goes, and may come, as a plain frame.
  socket.send('{"d":4}');
  assert.equal(await socket.next(), '{"d":4}');
  socket.socket.close();
  await socket.closed;
});

Deno.test("raw websocket: messages sent before close still leave, batched", async () => {
  await using server = echoServer();
  const socket = await batching(server.url);
  socket.send('{"hello":1}');
  assert.equal(await socket.next(), '{"hello":1}');
  const [session] = server.sessions;
  session.send('{"x":1}');
  session.send('{"y":2}');
  session.close(4100, "done");
  assert.equal(await socket.next(), '[{"x":1},{"y":2}]');
  assert.equal((await socket.closed).code, 4100);
});

Deno.test("raw websocket: a batch that breaks the rules closes only its connection", async () => {
  const limit = 1_000;
  await using server = echoServer({ maxMessageBytes: limit });
  const bystander = await batching(server.url);
  const msg = (n: number) => `{"n":${n}}`;
  const cases: { frame: string; code: number; reason: RegExp }[] = [
    {
      frame: "[" + Array.from({ length: 101 }, (_, i) => msg(i)).join(",") +
        "]",
      code: 4002,
      reason: /^Broken batch: expected a JSON array of 1 to 100 messages$/,
    },
    { frame: '[{"a":[[[', code: 4002, reason: /^Broken batch/ },
    { frame: "[{},,{}]", code: 4002, reason: /^Broken batch/ },
    { frame: "[]", code: 4002, reason: /^Broken batch/ },
    {
      // The frame is within the batch limit; one element is not.
      frame: `[${msg(1)},{"big":"${"x".repeat(limit)}"}]`,
      code: 4009,
      reason: /^Message too big: limit is 1000 bytes$/,
    },
    {
      frame: `[{"big":"${"é".repeat(MAX_BATCH_FRAME_BYTES / 2)}"}]`,
      code: 4009,
      reason: new RegExp(`limit is ${MAX_BATCH_FRAME_BYTES} bytes$`),
    },
  ];
  for (const { frame, code, reason } of cases) {
    const attacker = await batching(server.url);
    const before = server.received.length;
    attacker.send(frame);
    const closed = await attacker.closed;
    assert.equal(closed.code, code, frame.slice(0, 40));
    assert.match(closed.reason, reason);
    // Nothing of a refused frame reached the layer above.
    assert.equal(server.received.length, before, frame.slice(0, 40));
  }
  bystander.send(`[${msg(1)},${msg(2)}]`);
  assert.equal(await bystander.next(), `[${msg(1)},${msg(2)}]`);
  // Below the message limit, a batch of many small messages is fine.
  const many = Array.from({ length: 100 }, (_, i) => msg(i));
  bystander.send(`[${many.join(",")}]`);
  assert.equal(await bystander.next(), `[${many.join(",")}]`);
  bystander.socket.close();
  await bystander.closed;
});

/** A WebSocket client on bare TCP: it can write many frames in one write. */
async function bareClient(url: string) {
  const target = new URL(url);
  const conn = await Deno.connect({
    hostname: target.hostname,
    port: Number(target.port),
  });
  const encoder = new TextEncoder();
  await conn.write(encoder.encode(
    `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n` +
      "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  let buffered = new Uint8Array(0);
  const more = async () => {
    const chunk = new Uint8Array(65_536);
    const n = await conn.read(chunk);
    if (n === null) throw new Error("the server closed the connection");
    const joined = new Uint8Array(buffered.length + n);
    joined.set(buffered);
    joined.set(chunk.subarray(0, n), buffered.length);
    buffered = joined;
  };
  const head = "\r\n\r\n";
  while (!new TextDecoder().decode(buffered).includes(head)) await more();
  const text = new TextDecoder().decode(buffered);
  assert.match(text, /^HTTP\/1\.1 101/);
  buffered = buffered.subarray(
    encoder.encode(text.split(head)[0] + head).length,
  );
  return {
    /** Writes every frame in one write. */
    async send(...texts: string[]): Promise<void> {
      const frames = texts.map((t) => clientFrame(1, encoder.encode(t)));
      const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
      frames.reduce((at, f) => (all.set(f, at), at + f.length), 0);
      await conn.write(all);
    },
    /** The next text frame (short, unfragmented, as the server sends). */
    async next(): Promise<string> {
      while (buffered.length < 2) await more();
      let length = buffered[1] & 0x7f;
      let start = 2;
      if (length === 126) {
        while (buffered.length < 4) await more();
        length = (buffered[2] << 8) | buffered[3];
        start = 4;
      }
      while (buffered.length < start + length) await more();
      const payload = buffered.subarray(start, start + length);
      buffered = buffered.subarray(start + length);
      return new TextDecoder().decode(payload);
    },
    close: () => conn.close(),
  };
}

Deno.test("raw websocket: replies to frames read in one turn share a frame, so a client's calls come together again", async () => {
  await using server = echoServer();
  const client = await bareClient(server.url + "?kite-batch=1");
  try {
    assert.equal(await client.next(), "[]");
    const sent = Array.from({ length: 10 }, (_, i) => `{"n":${i}}`);
    // Ten plain frames in one TCP write: the server reads them in one turn.
    await client.send(...sent);
    const got: string[] = [];
    let frames = 0;
    while (got.length < sent.length) {
      const frame = await client.next();
      const value = JSON.parse(frame);
      for (const m of Array.isArray(value) ? value : [value]) {
        got.push(JSON.stringify(m));
      }
      frames++;
    }
    assert.deepEqual(got, sent);
    assert.ok(
      frames < sent.length,
      `${frames} frames for ${sent.length} replies`,
    );
  } finally {
    client.close();
  }
});
