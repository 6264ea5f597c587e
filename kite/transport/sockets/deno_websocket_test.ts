import assert from "node:assert/strict";
import { within } from "../../../tests/helpers/wait.ts";
import {
  acceptBareWebSocket,
  serverFrame,
  textFrame,
} from "../../../tests/helpers/bare_websocket.ts";
import { TcpWebSocket } from "./deno_websocket.ts";

/** A `Deno.serve` echo: every text message comes back unchanged. */
function echoServer() {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onmessage = (e) => socket.send(e.data);
      return response;
    },
  );
  return {
    url: new URL(`ws://127.0.0.1:${server.addr.port}/`),
    close: () => server.shutdown(),
  };
}

/** Connects and collects the echoed texts. */
async function connect(url: URL) {
  const socket = await TcpWebSocket.connect(url, {
    timeoutMs: 5_000,
    maxMessageBytes: 1 << 20,
    maxBufferedBytes: 16 << 20,
  });
  const got: string[] = [];
  let closed = "";
  let wake = () => {};
  socket.start({
    onText(text) {
      got.push(text);
      wake();
    },
    onClose(code, reason) {
      closed = `${code} ${reason}`;
      wake();
    },
  });
  return {
    socket,
    async take(n: number): Promise<string[]> {
      while (got.length < n) {
        if (closed) {
          throw new Error(`closed (${closed}) after ${got.length} of ${n}`);
        }
        await within(
          new Promise<void>((r) => wake = r),
          `echo ${got.length + 1} of ${n}`,
        );
      }
      return got.splice(0, n);
    },
  };
}

/** Texts at the frame-length boundaries, multi-byte ones and odd lengths. */
const TEXTS = [
  "",
  "a",
  "abc",
  "x".repeat(125),
  "x".repeat(126),
  "é".repeat(63), // 126 bytes from 63 characters
  "日本語 🪁 ".repeat(500),
  "y".repeat(16 * 1024), // the largest built in the shared buffer
  "z".repeat(16 * 1024 + 1), // the smallest that is not
  "w".repeat(70_000), // a 64-bit length
];

Deno.test("TcpWebSocket sends texts of every frame size intact, one at a time", async () => {
  const server = echoServer();
  const { socket, take } = await connect(server.url);
  try {
    for (const text of TEXTS) {
      socket.send(text);
      assert.deepEqual(await take(1), [text]);
    }
  } finally {
    socket.close();
    await socket.finished;
    await server.close();
  }
});

Deno.test("TcpWebSocket keeps order and content when sends overlap writes on several sockets", async () => {
  const server = echoServer();
  const clients = await Promise.all([1, 2, 3].map(() => connect(server.url)));
  try {
    // Sent without waiting: later frames queue behind a write under way,
    // and sockets take turns with the shared frame buffer.
    const sent = clients.map((_, c) =>
      TEXTS.flatMap((t, i) => [`${c}:${i}:${t}`, `${c}:${i}!`])
    );
    for (let i = 0; i < sent[0].length; i++) {
      clients.forEach((client, c) => client.socket.send(sent[c][i]));
    }
    for (const [c, client] of clients.entries()) {
      assert.deepEqual(await client.take(sent[c].length), sent[c]);
    }
  } finally {
    for (const { socket } of clients) socket.close();
    await Promise.all(clients.map(({ socket }) => socket.finished));
    await server.close();
  }
});

/**
 * A hand-written server that answers the handshake, then writes `frames`
 * in one go: the bytes Deno's own server would never send.
 */
function rawFramesServer(frames: Uint8Array[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await acceptBareWebSocket(listener);
    for (const f of frames) await conn.write(f);
    // Wait for the client to hang up.
    const buf = new Uint8Array(4096);
    while (await conn.read(buf).catch(() => null) !== null);
    conn.close();
  })();
  const { port } = listener.addr as Deno.NetAddr;
  return {
    url: new URL(`ws://127.0.0.1:${port}/`),
    async close() {
      await served;
      listener.close();
    },
  };
}

Deno.test("TcpWebSocket joins fragments, keeps a real U+FFFD and closes with 1007 on invalid UTF-8", async () => {
  const utf8 = (s: string) => new TextEncoder().encode(s);
  const server = rawFramesServer([
    serverFrame(utf8("frag"), { fin: false }),
    serverFrame(utf8("men"), { fin: false, opcode: 0 }),
    serverFrame(utf8("ted é"), { opcode: 0 }),
    textFrame("replacement \uFFFD is text"),
    serverFrame(new Uint8Array([0x61, 0xff, 0x62])),
    textFrame("never delivered"),
  ]);
  const socket = await TcpWebSocket.connect(server.url, {
    timeoutMs: 5_000,
    maxMessageBytes: 1 << 20,
    maxBufferedBytes: 16 << 20,
  });
  const got: string[] = [];
  const closed = new Promise<string>((resolve) =>
    socket.start({
      onText: (text) => got.push(text),
      onClose: (code, reason) => resolve(`${code} ${reason}`),
    })
  );
  try {
    assert.equal(await within(closed, "the close"), "1007 invalid UTF-8");
    assert.deepEqual(got, ["fragmented é", "replacement \uFFFD is text"]);
  } finally {
    socket.close();
    await within(socket.finished, "the socket to finish");
    await within(server.close(), "the server to stop");
  }
});

Deno.test("TcpWebSocket closes with 4008 when the peer stops reading, not growing without end", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = acceptBareWebSocket(listener); // then never reads
  const socket = await TcpWebSocket.connect(
    new URL(`ws://127.0.0.1:${listener.addr.port}/`),
    { timeoutMs: 5_000, maxMessageBytes: 1 << 20, maxBufferedBytes: 1 << 20 },
  );
  const peer = await accepted;
  const closed = new Promise<string>((resolve) =>
    socket.start({
      onText() {},
      onClose: (code, reason) => resolve(`${code} ${reason}`),
    })
  );
  const chunk = "x".repeat(64 * 1024);
  let sent = 0;
  let refused = false;
  try {
    // The kernel's buffers take some megabytes first; each send returns at
    // once, so the loop yields now and then to let writes complete.
    while (!refused && sent < 1_000) {
      if (socket.send(chunk)) sent++;
      else refused = true;
      if (sent % 16 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    assert(refused, "a send was refused (returned false, no throw)");
    assert.equal(
      await within(closed, "the close"),
      "4008 Slow consumer: too much unread data, over 1048576 bytes",
    );
    assert.equal(socket.send("more"), false);
    await within(socket.finished, "the socket to let go of its connection");
  } finally {
    socket.close();
    peer.close();
    listener.close();
  }
});
