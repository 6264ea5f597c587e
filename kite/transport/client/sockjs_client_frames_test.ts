import assert from "node:assert/strict";
import {
  encodeClientMessage,
  encodeJoinedClientMessage,
  type EscapedHead,
  PROTOCOL_ERROR,
  readServerFrame,
} from "./sockjs_client_frames.ts";
import { VECTORS_URL } from "../../../tests/helpers/vectors.ts";

/** Recorded traffic (see tests/fixtures/vectors/go-kite/README.md). */
const VECTORS = new URL("go-kite/", VECTORS_URL);

interface Record {
  type: string;
  dir?: string;
  frame?: string;
  body?: string;
  kind?: string;
}

async function records(file: string): Promise<Record[]> {
  const text = await Deno.readTextFile(new URL(file, VECTORS));
  return text.trim().split("\n").map((line) => JSON.parse(line));
}

Deno.test("readServerFrame() reads every frame a Go kite sent over WebSocket", async () => {
  const frames = (await records("01-math-kite-call.jsonl"))
    .filter((r) => r.type === "ws" && r.dir === "s2c" && r.frame !== "")
    .map((r) => r.frame!);
  assert.equal(frames[0], "o");
  assert.equal(readServerFrame(frames[0]), undefined);
  for (const frame of frames.slice(1)) {
    const got = readServerFrame(frame);
    assert.deepEqual(got, JSON.parse(frame.slice(1)));
    assert.ok(Array.isArray(got) && got.length > 0);
  }
});

Deno.test("readServerFrame() reads every xhr-polling answer once the newline is cut", async () => {
  const bodies = (await records("10-xhr-polling.jsonl"))
    .filter((r) => r.type === "http" && r.kind === "body" && r.dir === "s2c")
    .map((r) => r.body!)
    .filter((body) => body !== "");
  assert.equal(bodies[0], "o\n");
  const messages = bodies.slice(1).flatMap((body) => {
    assert.ok(body.endsWith("\n"));
    const got = readServerFrame(body.slice(0, -1));
    assert.ok(Array.isArray(got));
    return got;
  });
  // The callback invocation (method 2) comes before the reply (method 1).
  assert.deepEqual(messages.map((m) => JSON.parse(m).method), [0, 2, 1, 3]);
});

Deno.test("readServerFrame() skips h, reads m and c frames", () => {
  assert.equal(readServerFrame("h"), undefined);
  assert.deepEqual(readServerFrame('m"one"'), ["one"]);
  assert.deepEqual(readServerFrame('a["x","y"]'), ["x", "y"]);
  assert.deepEqual(readServerFrame('c[3000,"Go away!"]'), {
    code: 3000,
    reason: "Go away!",
  });
});

Deno.test("readServerFrame() ends the session on an empty frame, a[] or garbage", () => {
  const cases: [string, RegExp][] = [
    ["", /empty frame/],
    ["a[]", /empty a\[\] frame/],
    ["x", /invalid/i],
    ["a[1]", /invalid/i],
    ['a"x"', /invalid/i],
    ["a[", /invalid/i],
    ["oo", /invalid/i],
    ["m1", /invalid/i],
    ['c["x"]', /invalid/i],
  ];
  for (const [frame, reason] of cases) {
    const got = readServerFrame(frame);
    assert.ok(got && !Array.isArray(got), frame);
    assert.equal(got.code, PROTOCOL_ERROR, frame);
    assert.match(got.reason, reason, frame);
  }
});

Deno.test("encodeClientMessage() writes the exact frame the Go client sent", async () => {
  const frames = (await records("01-math-kite-call.jsonl"))
    .filter((r) => r.type === "ws" && r.dir === "c2s")
    .map((r) => r.frame!);
  assert.ok(frames.length >= 4);
  for (const frame of frames) {
    const [message] = JSON.parse(frame);
    assert.equal(encodeClientMessage(message), frame);
  }
  assert.equal(encodeClientMessage('a"\n<'), JSON.stringify(['a"\n<']));
});

Deno.test("encodeJoinedClientMessage() writes the same frame as encodeClientMessage(head + rest)", () => {
  const heads = [
    '{"method":"square","arguments":[{"kite":{"name":"a\\b\\"c"},"withArgs":',
    "",
    "tab\there and \u2028 and \u0000:",
    "ends in an emoji 😀",
    "ends in half a pair \ud83d",
    "é",
    '{"method":"cube"',
    '{"method":"sqrt"', // as long as the one before it
  ];
  const rests = [
    '[4]}],"callbacks":{"1":[0,"responseCallback"]}}',
    "",
    "\ude00 low half",
    '"\\\n',
  ];
  const memo: EscapedHead = { head: "", escaped: "" };
  // Each head twice in a row (the memo is used), then the next one.
  for (const head of heads) {
    for (const rest of [...rests, ...rests]) {
      assert.equal(
        encodeJoinedClientMessage(head, rest, memo),
        encodeClientMessage(head + rest),
        JSON.stringify([head, rest]),
      );
    }
  }
  // A head with the same text as the memo's, built anew, also matches.
  const built = ["{", '"method":', '"square"'].join("");
  encodeJoinedClientMessage(built, "1", memo);
  assert.equal(
    encodeJoinedClientMessage(
      ["{", '"method":', '"square"'].join(""),
      "2",
      memo,
    ),
    encodeClientMessage(built + "2"),
  );
});
