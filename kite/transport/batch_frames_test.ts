import assert from "node:assert/strict";
import {
  BATCH_FRAME_CHARS,
  isBatch,
  MAX_BATCH_MESSAGES,
  offerBatch,
  offersBatch,
  splitBatch,
  takeBatch,
} from "./batch_frames.ts";

const call = (id: number) =>
  JSON.stringify({
    method: "square",
    arguments: [{ withArgs: [id], responseCallback: "[Function]" }],
    callbacks: { [id]: [0, "responseCallback"] },
  });

Deno.test("splitBatch() gives back each message's text, in order", () => {
  const messages = [call(1), call(2), '{"method":3,"arguments":["a]},{\\""]}'];
  assert.deepEqual(splitBatch("[" + messages.join(",") + "]"), messages);
  // What JSON allows between elements is not part of them.
  assert.deepEqual(splitBatch(' [ {"a":1} ,\n{"b":[2]} ] '), [
    '{"a":1}',
    '{"b":[2]}',
  ]);
  assert.deepEqual(splitBatch("[]"), []);
  // Each element is the message layer's to parse: garbage stays garbage.
  assert.deepEqual(splitBatch("[nope, 1, [[{]}]]"), ["nope", "1", "[[{]}]"]);
});

Deno.test("splitBatch() refuses frames that are not an array of non-empty elements", () => {
  for (
    const frame of [
      "",
      "{}",
      "[",
      "[{}",
      '[{"a":"]"}',
      "[{},]",
      "[,{}]",
      "[{}}",
      "[{}] x",
      "[{}][{}]",
      '["unterminated]',
    ]
  ) {
    assert.equal(splitBatch(frame), undefined, frame);
  }
});

Deno.test("splitBatch() bounds the element count and survives deep nesting without recursion", () => {
  const many = (n: number) => "[" + Array(n).fill("{}").join(",") + "]";
  assert.equal(splitBatch(many(MAX_BATCH_MESSAGES))?.length, 100);
  assert.equal(splitBatch(many(MAX_BATCH_MESSAGES + 1)), undefined);
  assert.equal(splitBatch(many(3), 2), undefined);
  const deep = "[".repeat(1_000_000) + "]".repeat(1_000_000);
  assert.deepEqual(splitBatch("[" + deep + "]"), [deep]);
  assert.equal(splitBatch("[" + "[".repeat(1_000_000) + "]"), undefined);
});

Deno.test("takeBatch() joins a tick's messages up to the frame bounds; a lone or long one goes plain", () => {
  const queue = [call(1), call(2), call(3)];
  const all = queue.join(",");
  assert.deepEqual(takeBatch(queue), {
    frame: "[" + all + "]",
    length: all.length - 2,
  });
  assert.equal(queue.length, 0);
  const lone = [call(4)];
  assert.deepEqual(takeBatch(lone), { frame: call(4), length: call(4).length });
  const big = '{"x":"' + "y".repeat(BATCH_FRAME_CHARS) + '"}';
  const mixed = [call(5), big, call(6), call(7)];
  assert.equal(takeBatch(mixed).frame, call(5));
  assert.equal(takeBatch(mixed).frame, big);
  assert.equal(takeBatch(mixed).frame, `[${call(6)},${call(7)}]`);
  const lots = Array.from({ length: 250 }, (_, i) => call(i));
  const frames: string[] = [];
  while (lots.length > 0) frames.push(takeBatch(lots).frame);
  assert.deepEqual(frames.map((f) => splitBatch(f)?.length), [100, 100, 50]);
  for (const frame of frames) assert.ok(frame.length <= BATCH_FRAME_CHARS);
});

Deno.test("offerBatch() adds kite-batch=1 to the query and keeps the rest", () => {
  const url = offerBatch(new URL("ws://127.0.0.1:3636/kite?x=1#f"));
  assert.equal(url.href, "ws://127.0.0.1:3636/kite?x=1&kite-batch=1#f");
  assert.equal(offersBatch(url), true);
  assert.equal(offersBatch(new URL("ws://h/kite?kite-batch=0")), false);
  assert.equal(isBatch("[]"), true);
  assert.equal(isBatch("{}"), false);
});
