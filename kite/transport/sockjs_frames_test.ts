import assert from "node:assert/strict";
import {
  CLOSE_REASONS,
  decodeClientFrame,
  decodeServerFrame,
  encodeClose,
  encodeMessages,
  exceedsUtf8,
  utf8Length,
  XHR_STREAMING_PRELUDE,
} from "./sockjs_frames.ts";
import { VECTORS_URL } from "../../tests/helpers/vectors.ts";

/** Recorded traffic (see tests/fixtures/vectors/*\/README.md). */
const VECTORS = VECTORS_URL;

interface Recorded {
  dir: "c2s" | "s2c";
  text: string;
}

/** Every WebSocket text payload and XHR body of the SockJS recordings. */
async function recordedFrames(): Promise<Recorded[]> {
  const out: Recorded[] = [];
  for (const dir of ["go-kite", "kitejs"]) {
    for await (const entry of Deno.readDir(new URL(`${dir}/`, VECTORS))) {
      if (!entry.name.endsWith(".jsonl") || entry.name.startsWith("raw")) {
        continue;
      }
      if (entry.name === "auth-rejected.jsonl") continue; // raw WebSocket
      const text = await Deno.readTextFile(
        new URL(`${dir}/${entry.name}`, VECTORS),
      );
      for (const line of text.split("\n")) {
        if (!line) continue;
        const r = JSON.parse(line);
        if (r.type === "ws" && r.opcode === "text" && r.frame) {
          out.push({ dir: r.dir, text: r.frame });
        } else if (r.kind === "ws" && r.opcode === "text") {
          out.push({ dir: r.dir, text: r.text });
        } else if (r.type === "http" && r.kind === "body" && r.body) {
          out.push({ dir: r.dir, text: r.body });
        } else if (r.kind === "http-body" && !r.truncated && r.sockjs) {
          out.push({ dir: r.dir, text: r.text });
        }
      }
    }
  }
  return out;
}

Deno.test("decodeServerFrame() reads every server frame recorded from sockjs-go and sockjs-node", async () => {
  const frames = (await recordedFrames()).filter((f) => f.dir === "s2c");
  const seen = new Set<string>();
  for (const { text } of frames) {
    const frame = decodeServerFrame(text.replace(/\n$/, ""));
    seen.add(frame.type);
    if (frame.type === "messages") {
      for (const m of frame.messages) JSON.parse(m); // each one is dnode JSON
    }
  }
  assert.deepEqual([...seen].sort(), ["heartbeat", "messages", "open"]);
});

Deno.test("encodeMessages() reproduces the recorded sockjs-go a[...] frames byte for byte", async () => {
  const goFrames = (await recordedFrames()).filter((f) =>
    f.dir === "s2c" && f.text.startsWith("a[") && !f.text.includes('\\"links')
  );
  assert.ok(goFrames.length > 20, `only ${goFrames.length} Go frames found`);
  for (const { text } of goFrames) {
    const frame = text.replace(/\n$/, "");
    const decoded = decodeServerFrame(frame);
    assert.ok(decoded.type === "messages");
    assert.deepEqual(encodeMessages(decoded.messages), frame);
  }
});

Deno.test("decodeClientFrame() accepts every recorded client frame and xhr_send body", async () => {
  const frames = (await recordedFrames()).filter((f) => f.dir === "c2s");
  assert.ok(frames.length > 20, `only ${frames.length} client frames found`);
  for (const { text } of frames) {
    const messages = decodeClientFrame(text);
    assert.ok(messages, `rejected ${text.slice(0, 80)}`);
    assert.deepEqual(messages.length, 1);
    assert.deepEqual(messages, JSON.parse(text));
  }
});

Deno.test("decodeClientFrame() rejects anything but an array of strings", () => {
  for (const bad of ["", "[", "{}", "1", "null", "[1]", '["a",2]', '[["a"]]']) {
    assert.deepEqual(decodeClientFrame(bad), undefined, bad);
  }
  assert.deepEqual(decodeClientFrame("[]"), []);
  assert.deepEqual(decodeClientFrame('["a","b"]'), ["a", "b"]);
});

Deno.test("decodeClientFrame() takes a bare JSON string as one message", () => {
  assert.deepEqual(decodeClientFrame('"hello"'), ["hello"]);
});

Deno.test("decodeServerFrame() rejects the empty frame, a[] and junk", () => {
  for (
    const bad of ["", "a[]", "a", 'a{"x":1}', "a[1]", "oo", "hh", "x", "c[]"]
  ) {
    assert.throws(() => decodeServerFrame(bad), SyntaxError);
  }
});

Deno.test("decodeServerFrame() reads close frames and the m frame", () => {
  assert.deepEqual(decodeServerFrame('c[3000,"Go away!"]'), {
    type: "close",
    code: 3000,
    reason: "Go away!",
  });
  assert.deepEqual(decodeServerFrame('m"hi"'), {
    type: "messages",
    messages: ["hi"],
  });
});

Deno.test("encodeClose() writes the SockJS close frames peers expect", () => {
  const { goAway, anotherConnection } = CLOSE_REASONS;
  assert.deepEqual(
    encodeClose(goAway.code, goAway.reason),
    'c[3000,"Go away!"]',
  );
  assert.deepEqual(
    encodeClose(anotherConnection.code, anotherConnection.reason),
    'c[2010,"Another connection still open"]',
  );
});

Deno.test("encodeMessages() double-encodes messages as JSON strings", () => {
  assert.deepEqual(
    encodeMessages(['{"method":0}', 'quote " and \\']),
    'a["{\\"method\\":0}","quote \\" and \\\\"]',
  );
});

Deno.test("XHR_STREAMING_PRELUDE is 2048 h and a newline", () => {
  assert.deepEqual(XHR_STREAMING_PRELUDE.length, 2049);
  assert.deepEqual(XHR_STREAMING_PRELUDE, "h".repeat(2048) + "\n");
});

Deno.test("utf8Length() agrees with TextEncoder", () => {
  const encoder = new TextEncoder();
  for (const s of ["", "abc", "héllo", "✓", "😀 x", "\ud800", "a\udc00b"]) {
    assert.deepEqual(
      utf8Length(s),
      encoder.encode(s).length,
      JSON.stringify(s),
    );
  }
});

Deno.test("utf8Length() from an index counts only the rest", () => {
  const encoder = new TextEncoder();
  const s = "héllo ✓ 😀 x";
  for (let from = 0; from <= s.length; from++) {
    if ((s.charCodeAt(from) & 0xfc00) === 0xdc00) continue; // mid-pair
    assert.deepEqual(
      utf8Length(s, from),
      encoder.encode(s.slice(from)).length,
      `from ${from}`,
    );
  }
  assert.deepEqual(utf8Length("✓abc", 1), 3);
});

Deno.test("exceedsUtf8() counts bytes, not UTF-16 units", () => {
  assert.deepEqual(exceedsUtf8("aaaa", 4), false);
  assert.deepEqual(exceedsUtf8("aaaaa", 4), true);
  assert.deepEqual(exceedsUtf8("✓✓", 5), true); // 6 bytes
  assert.deepEqual(exceedsUtf8("✓✓", 6), false);
});
