import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { MemoryLogger } from "../../tests/helpers/kite_harness.ts";
import {
  pingFrame,
  readFrame,
  readResponse,
  UPGRADE,
} from "../../tests/helpers/raw_http.ts";
import { ReverseProxy } from "./reverse_proxy.ts";

const encoder = new TextEncoder();

async function echoProxy(
  timeoutMs?: number,
): Promise<{ proxy: ReverseProxy; port: number }> {
  const proxy = new ReverseProxy({
    env: false,
    kiteKey: false,
    logger: new MemoryLogger(),
    config: { disableAuthentication: true, ...timeoutMs && { timeoutMs } },
  });
  proxy.kite.handleHTTP(
    "/echo",
    async (req) => new Response(`${req.method}:${await req.text()}`),
  );
  const { port } = await proxy.serve({ port: 0, hostname: "127.0.0.1" });
  return { proxy, port };
}

/** Everything the connection sends until it closes or `bodies` answers came. */
async function readAnswers(conn: Deno.Conn, bodies: number): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  while ((text.match(/\r\n\r\n[A-Z]+:[a-z]*/g) ?? []).length < bodies) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

Deno.test("HttpSplice: pipelined requests with bodies, cut anywhere, are answered in order on one connection", async () => {
  const { proxy, port } = await echoProxy();
  try {
    const requests =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
      "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n" +
      "POST /echo HTTP/1.1\r\nHost: x\r\ncontent-length: 3\r\n\r\nabc";
    for (const step of [1, 7, 40, requests.length]) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const bytes = encoder.encode(requests);
      for (let i = 0; i < bytes.length; i += step) {
        await conn.write(bytes.subarray(i, i + step));
      }
      const text = await readAnswers(conn, 3);
      conn.close();
      const bodies = text.split("\r\n\r\n").slice(1).map((s) =>
        s.replace(/HTTP\/1\.1[^]*/, "")
      );
      assertEquals(bodies, ["POST:hello", "GET:", "POST:abc"], `step ${step}`);
    }
  } finally {
    await proxy.close();
  }
});

Deno.test("HttpSplice: a chunked request is answered, then the connection closes (the front does not frame it)", async () => {
  const { proxy, port } = await echoProxy();
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode(
      "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "2\r\nhi\r\n0\r\n\r\n",
    ));
    const text = await readAnswers(conn, 2); // ends at the close
    conn.close();
    assertMatch(text, /^HTTP\/1\.1 200 OK\r\n/);
    assertMatch(text, /connection: close/i);
    assertMatch(text, /\r\n\r\nPOST:hi$/);
  } finally {
    await proxy.close();
  }
});

Deno.test("HttpSplice: a WebSocket to the proxy's own kite after a plain request outlives the head deadline", async () => {
  const { proxy, port } = await echoProxy(300);
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(
      encoder.encode("GET /kite/info HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    assertEquals(await readResponse(conn), "HTTP/1.1 200 OK");
    await conn.write(encoder.encode(
      ["GET /kite HTTP/1.1", "Host: x", ...UPGRADE, "", ""].join("\r\n"),
    ));
    assertEquals(await readResponse(conn), "HTTP/1.1 101 Switching Protocols");
    // Past several deadlines (and sweeps), the WebSocket still answers.
    await new Promise((r) => setTimeout(r, 1_500));
    await conn.write(pingFrame(0x81));
    const reply = await readFrame(conn);
    conn.close();
    assertEquals(reply.opcode, 1, JSON.stringify(reply));
  } finally {
    await proxy.close();
  }
});
