import {
  assert,
  assertEquals,
  assertThrows,
} from "../../tests/helpers/assert.ts";
import {
  recordedMessages,
  recordingFiles,
} from "../../tests/helpers/vectors.ts";
import {
  CallbackTable,
  decodeMessage,
  DnodeError,
  encodeMessage,
  encodeResultMessage,
  scrub,
  unscrub,
} from "./mod.ts";
import type { Callbacks } from "./mod.ts";

Deno.test("decodeMessage() accepts every recorded Go and kite.js message", () => {
  let count = 0;
  for (
    const file of [...recordingFiles("go-kite"), ...recordingFiles("kitejs")]
  ) {
    for (const m of recordedMessages(file)) {
      const msg = decodeMessage(m.text);
      assert(
        typeof msg.method === "string" || typeof msg.method === "number",
        m.text,
      );
      count++;
    }
  }
  assert(count > 100, `only ${count} messages found in the recordings`);
});

Deno.test("encodeMessage() reproduces recorded Go messages byte for byte", () => {
  let count = 0;
  for (const file of recordingFiles("go-kite")) {
    for (const m of recordedMessages(file)) {
      if (
        m.text.includes("\\u003c") || m.text.includes("\\u003e") ||
        m.text.includes("\\u0026")
      ) continue;
      const msg = decodeMessage(m.text);
      assertEquals(
        encodeMessage(msg.method, msg.arguments, msg.callbacks),
        m.text,
        m.file,
      );
      count++;
    }
  }
  assert(count > 50);
});

Deno.test("encodeResultMessage() reproduces recorded Go plain replies byte for byte", () => {
  let count = 0;
  for (const file of recordingFiles("go-kite")) {
    for (const m of recordedMessages(file)) {
      const msg = decodeMessage(m.text);
      const [reply] = msg.arguments as { error?: unknown; result?: unknown }[];
      if (
        typeof msg.method !== "number" || msg.arguments.length !== 1 ||
        Object.keys(msg.callbacks).length > 0 || reply === null ||
        typeof reply !== "object" || reply.error !== null ||
        Object.keys(reply).join() !== "error,result" ||
        (reply.result !== null && typeof reply.result === "object")
      ) continue;
      assertEquals(encodeResultMessage(msg.method, reply.result), m.text);
      count++;
    }
  }
  assert(count > 5, `only ${count} plain replies found in the recordings`);
});

Deno.test("encodeResultMessage() writes what encodeMessage() writes for every plain result", () => {
  const results = [
    null,
    0,
    -0,
    16,
    -1.5e-7,
    NaN,
    Infinity,
    true,
    false,
    "",
    'quote " backslash \\ newline \n',
    "é ☃ 😀 \ud800",
  ];
  for (const result of results) {
    assertEquals(
      encodeResultMessage(42, result),
      encodeMessage(42, [{ error: null, result }], {}),
      String(result),
    );
  }
});

Deno.test("decodeMessage() treats a numeric string method as a method name", () => {
  const msg = decodeMessage('{"method":"0","arguments":[],"callbacks":{}}');
  assertEquals(msg.method, "0");
});

Deno.test("decodeMessage() rejects non-dnode input with a clear message", () => {
  const cases: [string, RegExp][] = [
    ["not json", /not valid JSON/],
    ["[1,2]", /not a JSON object/],
    ['{"method":null}', /"method" must be a string or a callback id/],
    ['{"method":-1}', /callback id/],
    ['{"method":1.5}', /callback id/],
    ['{"method":"x","arguments":{}}', /"arguments" must be an array/],
    ['{"method":"x","callbacks":[]}', /"callbacks" must be an object/],
    ['{"method":"x","callbacks":{"a":[0]}}', /not a decimal number/],
    ['{"method":"x","callbacks":{"1":[]}}', /invalid path/],
    ['{"method":"x","callbacks":{"1":[{}]}}', /path holds/],
  ];
  for (const [text, re] of cases) {
    const err = assertThrows(() => decodeMessage(text), DnodeError);
    assert(
      re.test((err as Error).message),
      `${text}: ${(err as Error).message}`,
    );
  }
});

Deno.test("decodeMessage() defaults missing arguments and callbacks to empty", () => {
  assertEquals(decodeMessage('{"method":3}'), {
    method: 3,
    arguments: [],
    callbacks: {},
  });
});

Deno.test("scrub() replaces nested functions with callback ids and Go-style paths", () => {
  const table = new CallbackTable();
  const f = () => {};
  const g = () => {};
  const callbacks: Callbacks = {};
  const args = [4, f, { callback: g, deep: [[1, f]] }];
  const out = scrub(
    args,
    [0, "withArgs"],
    callbacks,
    (fn, fresh) => table.register(fn, fresh),
  ) as unknown[];
  assertEquals(out, [4, "[Function]", {
    callback: "[Function]",
    deep: [[1, "[Function]"]],
  }]);
  assertEquals(callbacks, {
    "0": [0, "withArgs", 1],
    "1": [0, "withArgs", 2, "callback"],
    "2": [0, "withArgs", 2, "deep", 0, 1],
  });
  assertEquals(args[1], f, "the caller's arguments are not modified");
  assertEquals(table.size, 3);
});

Deno.test("scrub() returns containers without functions unchanged", () => {
  const table = new CallbackTable();
  const args = [{ a: [1, 2, { b: "c" }] }];
  assert(
    scrub(args, [], {}, (fn, fresh) => table.register(fn, fresh)) === args,
  );
});

Deno.test("unscrub() accepts number and string array indexes and ignores bad paths", () => {
  const calls: number[] = [];
  const args: unknown[] = [{
    withArgs: [4, "[Function]"],
    responseCallback: "[Function]",
  }];
  unscrub(args, {
    "3": ["0", "withArgs", "1"],
    "4": [0, "responseCallback"],
    "5": [0, "missing", 3],
    "6": [0, "__proto__", "polluted"],
    "7": [0, "withArgs", 9],
  }, (id) => () => calls.push(id));
  const o = args[0] as { withArgs: unknown[]; responseCallback: () => void };
  (o.withArgs[1] as () => void)();
  o.responseCallback();
  assertEquals(calls, [3, 4]);
  assertEquals(o.withArgs.length, 2);
  assertEquals(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("CallbackTable reuses the id of a function sent twice and releases it", () => {
  const table = new CallbackTable();
  const f = () => {};
  const id = table.register(f);
  assertEquals(table.register(f), id);
  const once = table.registerOnce(() => {});
  assert(once !== id);
  assertEquals(table.size, 2);
  assert(table.release(f));
  table.delete(once);
  assertEquals(table.size, 0);
  assertEquals(table.register(f) > once, true, "ids are never reused");
});

Deno.test("CallbackTable finds, dedupes and releases its first function alone, and after a second one joins", () => {
  const table = new CallbackTable();
  const f = () => {};
  const g = () => {};
  const once = table.registerOnce(f);
  assertEquals(table.get(once), f);
  assertEquals(
    table.release(f),
    false,
    "a one-shot function is not found by value",
  );
  assert(table.register(f) !== once, "a one-shot id was reused by value");
  table.clear();
  assertEquals(table.size, 0);
  const id = table.register(f);
  assertEquals(table.register(f), id);
  assertEquals(table.get(id + 1), undefined);
  const second = table.register(g);
  assertEquals([table.get(id), table.get(second), table.size], [f, g, 2]);
  assertEquals(table.register(f), id, "the first function lost its id");
  assert(table.release(f));
  assertEquals([table.get(id), table.size], [undefined, 1]);
  table.delete(second);
  assertEquals(table.size, 0);
  const lone = table.register(g);
  table.delete(lone);
  assertEquals([table.get(lone), table.size, table.release(g)], [
    undefined,
    0,
    false,
  ]);
});

Deno.test("scrub() gives a function sent twice in one message two ids, each with its path", () => {
  const table = new CallbackTable();
  const f = () => {};
  const callbacks: Callbacks = {};
  scrub(
    [f, { again: f }],
    [0, "withArgs"],
    callbacks,
    (fn, fresh) => table.register(fn, fresh),
  );
  assertEquals(Object.values(callbacks), [[0, "withArgs", 0], [
    0,
    "withArgs",
    1,
    "again",
  ]]);
  const calls: number[] = [];
  const args: unknown[] = [{
    withArgs: ["[Function]", { again: "[Function]" }],
  }];
  unscrub(args, callbacks, (id) => () => calls.push(id));
  const w =
    (args[0] as { withArgs: [() => void, { again: () => void }] }).withArgs;
  w[0]();
  w[1].again();
  assertEquals(calls.length, 2);
});
