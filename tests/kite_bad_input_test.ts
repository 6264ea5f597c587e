/**
 * Hostile and broken input against a running kite, sent as raw WebSocket
 * frames. Whatever one connection sends, the kite stays up and a
 * well-behaved client on another connection keeps getting right answers.
 */
import { KiteError } from "../mod.ts";
import type { Client } from "../kite/client.ts";
import type { Kite } from "../kite/kite.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
} from "./helpers/assert.ts";
import {
  goCall,
  mathTestKite,
  RawSocket,
  sockjsMessages,
  sockjsSend,
  testKite,
  within,
} from "./helpers/kite_harness.ts";

const MAX_BYTES = 4096;

interface Harness {
  server: Kite;
  url: string;
  /** A well-behaved client on its own connection. */
  good: Client;
  /** Asserts the good client still gets right answers. */
  stillServing(): Promise<void>;
}

async function withServer(fn: (h: Harness) => Promise<void>): Promise<void> {
  const server = mathTestKite({ maxMessageBytes: MAX_BYTES });
  const caller = testKite("good");
  try {
    const { url } = await server.serve();
    const good = caller.newClient(url);
    await good.dial();
    let n = 2;
    const stillServing = async () => {
      n++;
      assertEquals(await good.tell("square", n), n * n);
      assertEquals(await good.tell("echo", { n }), { n });
    };
    await stillServing();
    await fn({ server, url, good, stillServing });
    assert(good.connected, "the good client lost its connection");
  } finally {
    await caller.close();
    await server.close();
  }
}

/** Sends `text` on `raw`; the kite must close it as an invalid message. */
async function closesAsInvalid(raw: RawSocket, text: string): Promise<void> {
  sockjsSend(raw, text);
  const frame = await raw.next(`the close for ${text}`);
  assertMatch(frame, /^c\[3400,"invalid message: /, text);
  await within(raw.closed, `the socket to close after ${text}`);
}

/** The reply to a good call on `raw`, proving the connection still works. */
async function goodCallWorks(raw: RawSocket, cb: number): Promise<void> {
  sockjsSend(raw, goCall("square", [9], cb));
  const reply = JSON.stringify({
    method: cb,
    arguments: [{ error: null, result: 81 }],
    callbacks: {},
  });
  assertEquals(await raw.next(`reply ${cb}`), `a[${JSON.stringify(reply)}]`);
}

Deno.test("bad input: text that is not a dnode message closes only that connection", async () => {
  const notDnode = [
    "not json",
    '{"method":"square"',
    '{"foo":1}',
    "[1,2]",
    "42",
    '"square"',
    "null",
    '{"method":-1,"arguments":[]}',
    '{"method":1.5,"arguments":[]}',
    '{"method":"square","arguments":{"0":{}}}',
    '{"method":"square","arguments":[],"callbacks":[]}',
    '{"method":"square","arguments":[],"callbacks":{"x":[0]}}',
    '{"method":"square","arguments":[],"callbacks":{"0":[]}}',
    '{"method":"square","arguments":[],"callbacks":{"0":[{}]}}',
  ];
  await withServer(async ({ server, stillServing }) => {
    for (const text of notDnode) {
      const raw = await RawSocket.sockjs(server.url);
      try {
        await closesAsInvalid(raw, text);
      } finally {
        await raw.close();
      }
      await stillServing();
    }
  });
});

Deno.test("bad input: broken SockJS framing and oversized frames close only that connection", async () => {
  await withServer(async ({ server, stillServing }) => {
    // A client frame must be a JSON array of strings (docs/protocol.md §12 #2).
    for (const frame of ["not json", "[1]", '{"a":1}']) {
      const raw = await RawSocket.sockjs(server.url);
      try {
        raw.send(frame);
        assertEquals(
          await raw.next(),
          'c[4002,"Broken framing: expected a JSON array of strings"]',
        );
        await within(raw.closed, "close");
      } finally {
        await raw.close();
      }
      await stillServing();
    }

    const big = goCall("echo", ["x".repeat(MAX_BYTES)], 0);
    for (const kind of ["sockjs", "raw"]) {
      const raw = kind === "sockjs"
        ? await RawSocket.sockjs(server.url)
        : await RawSocket.open(server.url.replace(/^http/, "ws"));
      try {
        if (kind === "sockjs") sockjsSend(raw, big);
        else raw.send(big);
        if (kind === "sockjs") {
          assertEquals(
            await raw.next(),
            `c[4009,"Message too big: limit is ${MAX_BYTES} bytes"]`,
          );
        }
        const ev = await within(raw.closed, "close");
        assertEquals(ev.code, 4009);
      } finally {
        await raw.close();
      }
      await stillServing();
    }

    // Just under the limit is fine.
    const raw = await RawSocket.sockjs(server.url);
    try {
      const fits = "y".repeat(MAX_BYTES - 400);
      sockjsSend(raw, goCall("echo", [fits], 0));
      const [reply] = sockjsMessages(await raw.next("echo reply"));
      assertEquals(
        (reply.arguments as { result: string }[])[0].result,
        fits,
      );
    } finally {
      await raw.close();
    }
  });
});

Deno.test("bad input: arguments that are not [options] get an argumentError reply", async () => {
  const shapes = ["[]", '["x"]', "[1,2]", "[null]", "[[]]", "[{},{}]", "[4]"];
  await withServer(async ({ server, stillServing }) => {
    const raw = await RawSocket.sockjs(server.url);
    try {
      let cb = 100;
      for (const args of shapes) {
        cb++;
        sockjsSend(
          raw,
          `{"method":"square","arguments":${args},"callbacks":{"${cb}":[0,"responseCallback"]}}`,
        );
        const [reply] = sockjsMessages(await raw.next(`reply to ${args}`));
        assertEquals(reply.method, cb, args);
        const [body] = reply.arguments as {
          error: { type: string; message: string };
          result: unknown;
        }[];
        assertEquals(body.error.type, "argumentError", args);
        assertEquals(
          body.error.message,
          'invalid request for "square": arguments must hold exactly one options object',
        );
        assertEquals(body.result, null);
        // The same connection keeps working.
        await goodCallWorks(raw, cb + 1000);
        await stillServing();
      }

      // Without a response callback there is nobody to tell: dropped, and
      // the next frame on this connection is the answer to the next call.
      sockjsSend(raw, '{"method":"square","arguments":[],"callbacks":{}}');
      sockjsSend(
        raw,
        '{"method":"square","arguments":[[]],"callbacks":{"5":["x"]}}',
      );
      await goodCallWorks(raw, 7);
    } finally {
      await raw.close();
    }
    await stillServing();
  });
});

Deno.test("bad input: unknown callback ids and callback paths that lead nowhere are ignored", async () => {
  await withServer(async ({ server, stillServing }) => {
    const raw = await RawSocket.sockjs(server.url);
    try {
      // Calls of callbacks this connection never sent.
      sockjsSend(
        raw,
        '{"method":0,"arguments":[{"error":null,"result":1}],"callbacks":{}}',
      );
      sockjsSend(raw, '{"method":987654321,"arguments":[],"callbacks":{}}');
      // Paths into nothing, or into prototypes.
      sockjsSend(
        raw,
        JSON.stringify({
          method: "echo",
          arguments: [{
            responseCallback: "[Function]",
            withArgs: [{ a: 1 }],
          }],
          callbacks: {
            "1": [0, "responseCallback"],
            "2": [0, "withArgs", 5, "x"],
            "3": [0, "__proto__", "polluted"],
            "4": [0, "withArgs", 0, "constructor"],
            "5": [9, 9, 9],
          },
        }),
      );
      const [reply] = sockjsMessages(await raw.next("echo reply"));
      assertEquals(reply, {
        method: 1,
        arguments: [{ error: null, result: { a: 1 } }],
        callbacks: {},
      });
      assertEquals(({} as Record<string, unknown>).polluted, undefined);
      // A callback passed where a number was expected: argumentError, and the
      // kite does not call anything back.
      sockjsSend(
        raw,
        '{"method":"square","arguments":[{"responseCallback":"[Function]","withArgs":["[Function]"]}],"callbacks":{"10":[0,"responseCallback"],"11":[0,"withArgs",0]}}',
      );
      const [r2] = sockjsMessages(await raw.next("square reply"));
      assertEquals(r2.method, 10);
      assertEquals(
        (r2.arguments as { error: { type: string; message: string } }[])[0]
          .error.message,
        "withArgs[0]: expected a number, got function",
      );
      await goodCallWorks(raw, 12);
    } finally {
      await raw.close();
    }
    await stillServing();
  });
});

Deno.test("bad input: a scalar withArgs (kite.js) and a missing kite field are accepted", async () => {
  await withServer(async ({ server }) => {
    const raw = await RawSocket.sockjs(server.url);
    try {
      sockjsSend(
        raw,
        '{"method":"square","arguments":[{"responseCallback":"[Function]","withArgs":4}],"callbacks":{"0":["0","responseCallback"]},"links":[]}',
      );
      assertEquals(
        await raw.next(),
        'a["{\\"method\\":0,\\"arguments\\":[{\\"error\\":null,\\"result\\":16}],\\"callbacks\\":{}}"]',
      );
    } finally {
      await raw.close();
    }
  });
});

Deno.test("bad input: a reply bigger than the client's limit fails the call with disconnect", async () => {
  const server = mathTestKite();
  // Replies are read against maxDialedMessageBytes, not maxMessageBytes.
  const caller = testKite("small", { maxDialedMessageBytes: 1024 });
  try {
    const { url } = await server.serve();
    const client = caller.newClient(url);
    await client.dial();
    assertEquals(await client.tell("echo", "x".repeat(100)), "x".repeat(100));
    // The request fits the server's limit; the echoed reply is too big for us.
    const err = await assertRejects(
      () =>
        within(
          client.tell("echo", "x".repeat(900) + "y".repeat(300)),
          "the call",
        ),
      KiteError,
    ) as KiteError;
    assertEquals(err.type, "disconnect");
    assertEquals(client.connected, false);
    assertEquals(client.pendingCalls, 0);
  } finally {
    await caller.close();
    await server.close();
  }
});

Deno.test("bad input: values JSON cannot carry fail the call instead of hanging", async () => {
  const server = testKite("server", { disableAuthentication: true });
  server.handle("bigint", () => 10n);
  server.handle("cyclic", () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    return a;
  });
  const caller = testKite("caller");
  try {
    const { url } = await server.serve();
    const client = caller.newClient(url);
    await client.dial();
    for (const method of ["bigint", "cyclic"]) {
      const err = await assertRejects(
        () => within(client.tell(method), `the ${method} reply`),
        KiteError,
      ) as KiteError;
      assertEquals(err.type, "genericError");
      assertMatch(err.message, new RegExp(`^reply to ${method} not sent: `));
      assertMatch(err.id, /^[0-9a-f]{16}$/);
    }
    // Arguments: the call fails at once and leaves nothing registered.
    const cyclic: Record<string, unknown> = { f: () => {} };
    cyclic.self = cyclic;
    for (const arg of [10n, cyclic]) {
      const err = await assertRejects(
        () => within(client.tell("kite.echo", arg), "the send error"),
        KiteError,
      ) as KiteError;
      assertEquals(err.type, "sendError");
    }
    assertEquals(client.pendingCalls, 0);
    assertEquals(await client.tell("kite.echo", "still fine"), "still fine");
  } finally {
    await caller.close();
    await server.close();
  }
});

Deno.test("bad input: a call that starts like the ones before it is still checked whole", async () => {
  // Two calls of `echo` teach the connection their start (kite/call_templates.ts);
  // what follows is read against it, right or wrong.
  const call = goCall("echo", [1], 50);
  const broken = [
    call.replace('"withArgs":[1]', '"withArgs":[1'),
    call.replace('"withArgs":[1]', '"withArgs":'),
    call.replace('"50"', '"5x"'),
    call.slice(0, -1),
    goCall("echo", JSON.parse("[".repeat(70) + "]".repeat(70)), 50),
  ];
  await withServer(async ({ server, stillServing }) => {
    for (const text of broken) {
      const raw = await RawSocket.sockjs(server.url);
      try {
        for (let cb = 1; cb <= 3; cb++) {
          const w = [cb, '}],"callbacks":{"', { callbacks: { x: [cb] } }];
          sockjsSend(raw, goCall("echo", [w], cb));
          const [reply] = sockjsMessages(await raw.next(`reply ${cb}`));
          assertEquals(reply, {
            method: cb,
            arguments: [{ error: null, result: w }],
            callbacks: {},
          });
        }
        await closesAsInvalid(raw, text);
      } finally {
        await raw.close();
      }
      await stillServing();
    }
  });
});
