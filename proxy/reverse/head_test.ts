import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { headEnd, isUpgrade, parseHead, rewriteHead } from "./head.ts";
import { closeFrame, FrameTracker } from "./splice.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("head: the end is found across reads; malformed heads are refused", () => {
  const buf = bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\nrest");
  // The blank line split between two reads (first read up to "\r\n\r").
  const split = buf.indexOf(13, 20) + 1;
  assertEquals(headEnd(buf, split, 0), -1);
  assertEquals(headEnd(buf, buf.length, split), buf.length - 4);
  assertEquals(parseHead(bytes("HELLO")), undefined);
  assertEquals(parseHead(bytes("GET / HTTP/1.1\r\nno colon")), undefined);
  assertEquals(parseHead(bytes("GET / HTTP/2\r\nHost: x")), undefined);
});

Deno.test("head: an upgrade is told from a plain request, and aimed at the kite with the proxy's own forwarding headers", () => {
  const head = parseHead(bytes(
    "GET /proxy/k/1/2/websocket?t=1 HTTP/1.1\r\nHost: public:1\r\n" +
      "Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n" +
      "X-Forwarded-For: 6.6.6.6\r\nSec-WebSocket-Key: abc\r\nOrigin: é",
  ))!;
  assert(isUpgrade(head));
  assert(!isUpgrade(parseHead(bytes("GET / HTTP/1.1\r\nHost: x"))!));
  assert(
    !isUpgrade(parseHead(bytes("GET / HTTP/1.1\r\nUpgrade: websocket"))!),
    "no Connection: upgrade",
  );
  // Bytes pass as they came (the Origin is UTF-8 here).
  const out = new TextDecoder().decode(rewriteHead(
    head,
    new URL("http://10.0.0.5:6000/kite/1/2/websocket?t=1"),
    "1.2.3.4",
    "https",
  ));
  assertEquals(
    out,
    "GET /kite/1/2/websocket?t=1 HTTP/1.1\r\nHost: 10.0.0.5:6000\r\n" +
      "Connection: Upgrade, close\r\nUpgrade: WebSocket\r\n" +
      "Sec-WebSocket-Key: abc\r\nOrigin: é\r\n" +
      "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n\r\n",
  );
});

Deno.test("FrameTracker: between frames only after a 101 and whole frames, whatever the chunking; never after the kite's own close", () => {
  const answer = bytes(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
  );
  const small = new Uint8Array([0x81, 3, 97, 98, 99]);
  const medium = new Uint8Array(4 + 300);
  medium.set([0x81, 126, 1, 44]);
  const large = new Uint8Array(10 + 70_000);
  large.set([0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
  const stream = new Uint8Array([...answer, ...small, ...medium, ...large]);
  const ends = new Set([
    answer.length,
    answer.length + small.length,
    answer.length + small.length + medium.length,
    stream.length,
  ]);
  for (const step of [1, 2, 7, 1000, stream.length]) {
    const t = new FrameTracker();
    for (let i = 0; i < stream.length; i += step) {
      const end = Math.min(i + step, stream.length);
      t.feed(stream.subarray(i, end));
      assertEquals(t.between, ends.has(end), `step ${step}, at ${end}`);
    }
  }
  const t = new FrameTracker();
  t.feed(bytes("HTTP/1.1 503 Service Unavailable\r\n\r\n"));
  t.feed(small);
  assert(!t.between, "not a WebSocket");
  const closed = new FrameTracker();
  closed.feed(answer);
  closed.feed(closeFrame(1000, "bye"));
  assert(!closed.between, "the kite closed already");
});

Deno.test("closeFrame: code and reason, clipped to 123 bytes on a character boundary", () => {
  assertEquals([...closeFrame(4410, "ok")], [0x88, 4, 17, 58, 111, 107]);
  const long = closeFrame(4502, "é".repeat(100));
  assert(long.length <= 2 + 125);
  assertEquals(long[1], long.length - 2);
  assert(!new TextDecoder().decode(long.subarray(4)).includes("\uFFFD"));
});
