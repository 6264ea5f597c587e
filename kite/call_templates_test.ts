import { assert, assertEquals } from "../tests/helpers/assert.ts";
import { goCall } from "../tests/helpers/kite_harness.ts";
import { CallTemplates, type TemplateCall } from "./call_templates.ts";
import { decodeMessage } from "./dnode/mod.ts";
import { identityFromJSON, makeIdentity } from "./protocol.ts";
import { parseTraceparent } from "./observe/trace_context.ts";

const DEPTH = 64;
const TOKEN = { type: "token", key: "eyJhbGciOi.x.y" };

/** Templates that have learned `method` (two calls decoded in full). */
function learnedOn(method: string, auth: unknown = null): CallTemplates {
  const t = new CallTemplates();
  for (const cb of [1, 2]) {
    const text = goCall(method, [cb], cb, auth);
    t.learn(text, method, decodeMessage(text).arguments);
  }
  return t;
}

/** What a text means when decoded in full, in the shape `match` returns. */
function meaning(text: string): TemplateCall {
  const msg = decodeMessage(text);
  assertEquals(msg.arguments.length, 1);
  const o = msg.arguments[0] as Record<string, unknown>;
  assertEquals(Object.keys(o), [
    "kite",
    "authentication",
    "responseCallback",
    "withArgs",
  ]);
  assertEquals(o.responseCallback, "[Function]");
  const ids = Object.keys(msg.callbacks);
  assertEquals(ids.length, 1);
  assertEquals(msg.callbacks[ids[0]], [0, "responseCallback"]);
  return {
    method: msg.method as string,
    claimed: identityFromJSON(o.kite) ?? makeIdentity({}),
    auth: o.authentication as TemplateCall["auth"],
    withArgs: o.withArgs,
    replyTo: Number(ids[0]),
    ...startOf(text),
  };
}

/** Where a call's `withArgs` begins, in code units and in UTF-8 bytes. */
function startOf(text: string): { startLength: number; startBytes: number } {
  const startLength = text.indexOf('"withArgs":') + '"withArgs":'.length;
  return {
    startLength,
    startBytes: new TextEncoder().encode(text.slice(0, startLength)).length,
  };
}

Deno.test("call templates: a method called twice is then read from its template", () => {
  const t = new CallTemplates();
  const first = goCall("square", [4], 1);
  assertEquals(t.match(first, DEPTH), undefined);
  t.learn(first, "square", decodeMessage(first).arguments);
  const second = goCall("square", [5], 2);
  assertEquals(t.match(second, DEPTH), undefined, "learned after one call");
  t.learn(second, "square", decodeMessage(second).arguments);
  const third = goCall("square", [6, "x"], 7);
  assertEquals(t.match(third, DEPTH), meaning(third));
  assertEquals(t.match(goCall("echo", [6], 8), DEPTH), undefined);
});

Deno.test("call templates: a call says how long its template's start is, in UTF-8 bytes too", () => {
  const auth = { type: "token", key: "clé€😀" };
  const t = learnedOn("carré", auth);
  const text = goCall("carré", ["ü"], 9, auth);
  const call = t.match(text, DEPTH)!;
  assertEquals(call, meaning(text));
  assertEquals(
    call.startBytes - call.startLength,
    1 + 1 + 2 + 2, // é twice, € and 😀 (2 UTF-16 units, 4 bytes)
  );
});

Deno.test("call templates: each call gets its own identity and credentials", () => {
  const t = learnedOn("square", TOKEN);
  const a = t.match(goCall("square", [1], 3, TOKEN), DEPTH)!;
  const b = t.match(goCall("square", [2], 4, TOKEN), DEPTH)!;
  assertEquals(a.auth, TOKEN);
  assertEquals(a.claimed.name, "kiteclient");
  a.claimed.username = "changed";
  (a.auth as { key: string }).key = "changed";
  assertEquals(b.claimed.username, "unknown");
  assertEquals(b.auth, TOKEN);
  assertEquals(
    t.match(goCall("square", [2], 4, { ...TOKEN, key: "other" }), DEPTH),
    undefined,
    "other credentials are not the template's",
  );
});

Deno.test("call templates: withArgs of any kind means what a full decode says", () => {
  const t = learnedOn("echo");
  const tricky = [
    null,
    0,
    -1.5e300,
    "",
    '}],"callbacks":{"',
    '"}],"callbacks":{"1":[0,"responseCallback"]}}',
    '\\"\u0000\u2028😀',
    [],
    [[[[]]]],
    { '}],"callbacks":{"': [{ "a": [{}] }] },
    [{ a: [{}], callbacks: 1 }],
    [{ a: [{}], callbacks: { "1": [0, "responseCallback"] } }],
    { method: "other", kite: {}, withArgs: [1] },
  ];
  for (const [i, w] of tricky.entries()) {
    const text = goCall("echo", w, 100 + i);
    assertEquals(t.match(text, DEPTH), meaning(text), JSON.stringify(w));
  }
});

Deno.test("call templates: whatever fits a template decodes in full to the same call", () => {
  const t = learnedOn("echo");
  const base = goCall("echo", [{ a: [1, "}]"] }, "x"], 12345);
  const alphabet = ['"', "\\", "}", "]", "[", "{", ",", ":", "1", " ", "a"];
  let random = 7;
  const next = (n: number) => {
    random = (random * 1103515245 + 12345) % 2147483648;
    return random % n;
  };
  let fitted = 0;
  for (let i = 0; i < 20_000; i++) {
    // Change one to three characters anywhere after the template's start.
    let text = base;
    for (let k = 1 + next(3); k > 0; k--) {
      const at = 200 + next(text.length - 200);
      const cut = next(3);
      text = text.slice(0, at) +
        (next(2) ? alphabet[next(alphabet.length)] : "") +
        text.slice(at + cut);
    }
    const call = t.match(text, DEPTH);
    if (call === undefined) continue;
    fitted++;
    assertEquals(call, meaning(text), text);
  }
  assert(fitted > 100, `only ${fitted} changed texts fitted the template`);
});

Deno.test("call templates: anything else is left to the full decoder", () => {
  const t = learnedOn("square");
  const call = goCall("square", [4], 9);
  const refused = [
    // A function passed along: more than the response callback.
    call.replace(
      '"callbacks":{"9":[0,"responseCallback"]}',
      '"callbacks":{"9":[0,"responseCallback"],"10":[0,"withArgs",0]}',
    ),
    call.replace('"9"', '"09"'),
    call.replace('"9"', '"x"'),
    call.replace(
      '[0,"responseCallback"]}}',
      '[0,"responseCallback"]},"links":[]}',
    ),
    call.replace('"withArgs":[4]', '"withArgs":[4],"extra":1'),
    call.replace('"withArgs":[4]', '"withArgs":'),
    call.replace('"withArgs":[4]', '"withArgs":[4'),
    call + " ",
  ];
  for (const text of refused) {
    assertEquals(t.match(text, DEPTH), undefined, text);
  }
  // Nested deeper than allowed: the full decoder refuses it with its reason.
  const deep = goCall("square", JSON.parse("[".repeat(70) + "]".repeat(70)), 9);
  assertEquals(t.match(deep, DEPTH), undefined);
  assert(t.match(goCall("square", [[[1]]], 9), 6) !== undefined);
  assertEquals(t.match(goCall("square", [[[[1]]]], 9), 6), undefined);
});

Deno.test("call templates: a caller that encodes differently stops being tried", () => {
  const t = new CallTemplates();
  let learnedAny = false;
  for (let cb = 0; cb < 50; cb++) {
    // Same call with spaces: valid JSON, never the canonical text.
    const text = JSON.stringify(
      JSON.parse(goCall("square", [cb], cb)),
      null,
      1,
    );
    t.learn(text, "square", decodeMessage(text).arguments);
    learnedAny ||= t.match(goCall("square", [cb], cb), DEPTH) !== undefined;
  }
  assertEquals(learnedAny, false);
  // After those misses it no longer learns, even a canonical call.
  for (const cb of [1, 2, 3]) {
    const text = goCall("square", [cb], cb);
    t.learn(text, "square", decodeMessage(text).arguments);
  }
  assertEquals(t.match(goCall("square", [4], 4), DEPTH), undefined);
});

Deno.test("call templates: a few methods at once, the oldest template goes first", () => {
  const t = new CallTemplates();
  const methods = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
  for (const m of methods) {
    for (const round of [1, 2]) {
      const text = goCall(m, [round], round);
      t.learn(text, m, decodeMessage(text).arguments);
    }
  }
  const known = methods.filter((m) =>
    t.match(goCall(m, [3], 3), DEPTH) !== undefined
  );
  assertEquals(known, methods.slice(1));
});

Deno.test("call templates: a time left after withArgs is read off, and only a well-formed one", () => {
  const t = learnedOn("square");
  const timed = goCall("square", [6], 9).replace(
    '[6]}],"callbacks"',
    '[6],"timeout":95}],"callbacks"',
  );
  const call = t.match(timed, DEPTH)!;
  assertEquals(call.withArgs, [6]);
  assertEquals(call.timeoutMs, 95);
  assertEquals(call.replyTo, 9);
  for (const bad of ['"timeout":-1', '"timeout":1e3', '"timeout":"5"']) {
    const text = goCall("square", [6], 9).replace(
      '[6]}],"callbacks"',
      `[6],${bad}}],"callbacks"`,
    );
    assertEquals(t.match(text, DEPTH), undefined, bad);
  }
  // Inside a string it is data.
  const inString = goCall("square", ['x,"timeout":5'], 9);
  assertEquals(t.match(inString, DEPTH)!.withArgs, ['x,"timeout":5']);
  assertEquals(t.match(inString, DEPTH)!.timeoutMs, undefined);
});

Deno.test("call templates: a traceparent after withArgs (and the time left) is read off, and only a well-formed one", () => {
  const t = learnedOn("square");
  const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const traced = goCall("square", [6], 9).replace(
    '[6]}],"callbacks"',
    `[6],"timeout":95,"traceparent":"${tp}"}],"callbacks"`,
  );
  const call = t.match(traced, DEPTH)!;
  assertEquals(call.withArgs, [6]);
  assertEquals(call.timeoutMs, 95);
  assertEquals(call.traceparent, parseTraceparent(tp));
  const bad = tp.replace("00f067aa0ba902b7", "0000000000000000");
  const zero = goCall("square", [6], 9).replace(
    '[6]}],"callbacks"',
    `[6],"traceparent":"${bad}"}],"callbacks"`,
  );
  assertEquals(t.match(zero, DEPTH), undefined);
  // A string argument of the same length is data.
  const inString = goCall("square", [`x","traceparent":"${tp}`], 9);
  assertEquals(t.match(inString, DEPTH)!.traceparent, undefined);
});
