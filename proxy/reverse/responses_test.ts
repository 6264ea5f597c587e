import { assertEquals } from "../../tests/helpers/assert.ts";
import { ResponseTracker } from "./responses.ts";

const encoder = new TextEncoder();

/** Feeds `text` cut every `step` bytes; responses ended, and whether lost. */
function follow(text: string, methods: string[], step: number) {
  const t = new ResponseTracker();
  for (const m of methods) t.expect(m);
  const bytes = encoder.encode(text);
  const ends: number[] = [];
  for (let i = 0; i < bytes.length; i += step) {
    const n = t.feed(bytes.subarray(i, i + step));
    for (let k = 0; k < n; k++) ends.push(Math.min(i + step, bytes.length));
  }
  return { ends, lost: t.lost };
}

const fixed = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
  "3\r\nabc\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\n";
const empty = "HTTP/1.1 204 No Content\r\n\r\n";
const head = "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
const cont = "HTTP/1.1 100 Continue\r\n\r\n" + fixed;

Deno.test("ResponseTracker: tells where each response ends, at every chunking", () => {
  const stream = fixed + chunked + empty + head + cont;
  const ends = [
    fixed.length,
    fixed.length + chunked.length,
    fixed.length + chunked.length + empty.length,
    fixed.length + chunked.length + empty.length + head.length,
    stream.length,
  ];
  for (let step = 1; step <= stream.length; step++) {
    const got = follow(stream, ["GET", "GET", "GET", "HEAD", "POST"], step);
    assertEquals(got.lost, false, `step ${step}`);
    // Each end is seen in the chunk that holds its last byte.
    assertEquals(
      got.ends,
      ends.map((e) => Math.min(Math.ceil(e / step) * step, stream.length)),
      `step ${step}`,
    );
  }
});

Deno.test("ResponseTracker: a 101, a body that runs to the close, or a bad head lose the track", () => {
  for (
    const text of [
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00",
      "HTTP/1.1 200 OK\r\n\r\nbody until close",
      "HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
      "garbage\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ]
  ) {
    const got = follow(text, ["GET"], 7);
    assertEquals(got, { ends: [], lost: true }, text);
  }
});
