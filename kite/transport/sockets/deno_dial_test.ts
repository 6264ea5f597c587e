import assert from "node:assert/strict";
import {
  type ClientTransport,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_TIMEOUT_MS,
  dial,
  parseTransport,
} from "./deno_dial.ts";
import type { SessionHandler } from "../session.ts";

const HANDLER: SessionHandler = { onMessage() {}, onClose() {} };
const TRANSPORTS: ClientTransport[] = [
  "websocket",
  "raw-websocket",
  "xhr-polling",
];

Deno.test("parseTransport() reads Go's KITE_TRANSPORT values and our names", () => {
  assert.equal(parseTransport("WebSocket"), "websocket");
  assert.equal(parseTransport("auto"), "websocket");
  assert.equal(parseTransport("XHRPolling"), "xhr-polling");
  assert.equal(parseTransport("raw-websocket"), "raw-websocket");
  for (const name of TRANSPORTS) assert.equal(parseTransport(name), name);
});

Deno.test("parseTransport() is case-sensitive like Go and names the accepted values", () => {
  for (const value of ["", "Auto", "xhrpolling", "WEBSOCKET", "sockjs"]) {
    assert.throws(
      () => parseTransport(value),
      (error: unknown) =>
        error instanceof RangeError &&
        error.message.includes(JSON.stringify(value)) &&
        error.message.includes("XHRPolling"),
    );
  }
});

Deno.test("the defaults are Go's Config.Timeout and 1 MiB", () => {
  assert.equal(DEFAULT_TIMEOUT_MS, 15_000);
  assert.equal(DEFAULT_MAX_MESSAGE_BYTES, 1_048_576);
});

/** A port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

for (const transport of TRANSPORTS) {
  Deno.test(`${transport}: dialing a closed port rejects, naming the URL and the cause`, async () => {
    const port = closedPort();
    await assert.rejects(
      dial(`http://127.0.0.1:${port}/kite`, HANDLER, { transport }),
      (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.match(
          error.message,
          new RegExp(`^dial \\S*127\\.0\\.0\\.1:${port}/kite\\S*: `),
        );
        assert.match(error.message, /refused|connect/i);
        return true;
      },
    );
  });
}

Deno.test("dial rejects bad URLs with a TypeError and bad options with a RangeError", async () => {
  await assert.rejects(dial("not a url", HANDLER), TypeError);
  await assert.rejects(dial("ftp://127.0.0.1/kite", HANDLER), /ftp/);
  for (const timeoutMs of [0, -1, NaN, Infinity]) {
    await assert.rejects(
      dial("http://127.0.0.1:1/kite", HANDLER, { timeoutMs }),
      (error: unknown) =>
        error instanceof RangeError && /timeoutMs/.test(error.message),
    );
  }
  await assert.rejects(
    dial("http://127.0.0.1:1/kite", HANDLER, {
      transport: "carrier-pigeon" as ClientTransport,
    }),
    RangeError,
  );
});

/** A TCP server that accepts connections and never answers. */
function silentServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch { /* listener closed */ }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/kite`,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const conn of conns) conn.close();
    },
  };
}

for (const transport of TRANSPORTS) {
  Deno.test(`${transport}: a dial with no answer rejects after timeoutMs`, async () => {
    await using server = silentServer();
    await assert.rejects(
      dial(server.url, HANDLER, { transport, timeoutMs: 20 }),
      (error: unknown) =>
        error instanceof Error && error.message.startsWith("dial ") &&
        /within 20 ms/.test(error.message),
    );
  });

  Deno.test(`${transport}: aborting the signal rejects the dial`, async () => {
    await using server = silentServer();
    const abort = new AbortController();
    const dialing = dial(server.url, HANDLER, {
      transport,
      signal: abort.signal,
    });
    setTimeout(() => abort.abort(), 10);
    await assert.rejects(dialing, /aborted/);
    await assert.rejects(
      dial(server.url, HANDLER, { transport, signal: abort.signal }),
      /aborted/,
    );
  });
}

Deno.test("dial picks the transport: SockJS session URL, the URL as given, or xhr", async () => {
  const paths: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      const path = new URL(request.url).pathname;
      paths.push(path);
      if (path.endsWith("/xhr")) return new Response("o\n");
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onopen = () => socket.close();
      return response;
    },
  );
  const url = `http://127.0.0.1:${server.addr.port}/kite`;
  for (const transport of [undefined, ...TRANSPORTS]) {
    const closed = Promise.withResolvers<void>();
    const session = await dial(url, {
      onMessage() {},
      onClose: () => closed.resolve(),
    }, { transport, pollTimeoutMs: 50 });
    assert.equal(session.transport, transport ?? "websocket");
    if (transport === "xhr-polling") session.close();
    await closed.promise;
    await session.finished;
  }
  await server.shutdown();
  const sockjs = /^\/kite\/\d{3}\/[0-9a-f]{20}\/websocket$/;
  assert.match(paths[0], sockjs);
  assert.match(paths[1], sockjs);
  assert.equal(paths[2], "/kite");
  assert.match(paths[3], /^\/kite\/\d{3}\/[0-9a-f]{20}\/xhr$/);
});
