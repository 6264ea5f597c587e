/**
 * Byte-level checks against Go: what our client puts on the wire (captured
 * by a bare Deno.serve WebSocket server), and how our kite answers the exact
 * frames a Go client sent in `go-kite/01-math-kite-call.jsonl`.
 */
import { KiteError } from "../mod.ts";
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
import { readRecording } from "./helpers/vectors.ts";

// ------------------------------------------------ what our client sends

/** A fake kite: records every frame a client sends and lets the test answer. */
class CaptureServer {
  readonly frames: string[] = [];
  readonly paths: string[] = [];
  #server: Deno.HttpServer<Deno.NetAddr>;
  #sockets = new Set<WebSocket>();
  #closed: Promise<void>[] = [];
  #waiters: (() => void)[] = [];

  constructor(framed: boolean) {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) => {
        this.paths.push(new URL(req.url).pathname);
        const { socket, response } = Deno.upgradeWebSocket(req);
        this.#sockets.add(socket);
        this.#closed.push(
          new Promise((resolve) => socket.onclose = () => resolve()),
        );
        socket.onopen = () => framed && socket.send("o");
        socket.onmessage = (ev) => {
          this.frames.push(String(ev.data));
          for (const fn of this.#waiters.splice(0)) fn();
        };
        return response;
      },
    );
  }

  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}/kite`;
  }

  async frame(i: number): Promise<string> {
    while (this.frames.length <= i) {
      await within(
        new Promise<void>((resolve) => this.#waiters.push(resolve)),
        `client frame ${i}`,
      );
    }
    return this.frames[i];
  }

  /** Sends a text frame to every connected client. */
  send(text: string): void {
    for (const s of this.#sockets) s.send(text);
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) {
      if (s.readyState === WebSocket.OPEN) s.close();
    }
    await Promise.all(this.#closed);
    await this.#server.shutdown();
  }
}

Deno.test("client wire: a SockJS call has Go's envelope, field order and callback ids", async () => {
  const fake = new CaptureServer(true);
  const caller = testKite("caller", {
    username: "alice",
    environment: "test",
    region: "eu",
    hostname: "box",
    id: "5b0e6c2e-0c3f-4d55-9d7f-2f0a1d1e9a10",
  });
  try {
    const client = caller.newClient(fake.url, { transport: "websocket" });
    await client.dial();
    assertMatch(fake.paths[0], /^\/kite\/[0-9]{3}\/[0-9a-f]{20}\/websocket$/);

    const callbackArgs: unknown[] = [];
    const call = client.tell("square", 4, (n: number) => callbackArgs.push(n));
    const frame = await fake.frame(0);
    // A SockJS client frame is a JSON array holding one string (docs/protocol.md §12 #2).
    const outer = JSON.parse(frame);
    assert(Array.isArray(outer) && outer.length === 1, frame);
    const text = outer[0] as string;
    const identity =
      '{"name":"caller","username":"alice","id":"5b0e6c2e-0c3f-4d55-9d7f-2f0a1d1e9a10","environment":"test","region":"eu","version":"1.0.0","hostname":"box"}';
    assertEquals(
      text,
      `{"method":"square","arguments":[{"kite":${identity},"authentication":null,"responseCallback":"[Function]","withArgs":[4,"[Function]"]}],"callbacks":{"0":[0,"responseCallback"],"1":[0,"withArgs",1]}}`,
    );

    // Call the passed function, then answer like a Go kite does.
    fake.send('a["{\\"method\\":1,\\"arguments\\":[16],\\"callbacks\\":{}}"]');
    fake.send(
      'a["{\\"method\\":0,\\"arguments\\":[{\\"error\\":null,\\"result\\":16}],\\"callbacks\\":{}}"]',
    );
    assertEquals(await within(call, "the reply"), 16);
    assertEquals(callbackArgs, [16]);

    // No arguments: withArgs is [] (Go sends null; kite.js needs a value, docs/protocol.md §12 #6);
    // the next call's response callback takes the next id.
    const ping = client.tell("kite.ping");
    const pingText = JSON.parse(await fake.frame(1))[0] as string;
    const parsed = JSON.parse(pingText);
    assertEquals(Object.keys(parsed), ["method", "arguments", "callbacks"]);
    assertEquals(Object.keys(parsed.arguments[0]), [
      "kite",
      "authentication",
      "responseCallback",
      "withArgs",
    ]);
    assertEquals(parsed.arguments[0].withArgs, []);
    assertEquals(parsed.callbacks, { "2": [0, "responseCallback"] });
    fake.send(
      'a["{\\"method\\":2,\\"arguments\\":[{\\"error\\":null,\\"result\\":\\"pong\\"}],\\"callbacks\\":{}}"]',
    );
    assertEquals(await within(ping, "the pong"), "pong");
  } finally {
    await caller.close();
    await fake.close();
  }
});

Deno.test("client wire: functions nested in objects get key paths; credentials are sent as given", async () => {
  const fake = new CaptureServer(true);
  const caller = testKite("caller");
  try {
    const client = caller.newClient(fake.url, {
      auth: { type: "token", key: "tok" },
    });
    await client.dial();
    const call = client.tell("squareCb", {
      number: 4,
      callback: () => {},
    }, [0, () => {}]);
    const parsed = JSON.parse(JSON.parse(await fake.frame(0))[0]);
    assertEquals(parsed.arguments[0].authentication, {
      type: "token",
      key: "tok",
    });
    assertEquals(parsed.arguments[0].withArgs, [
      { number: 4, callback: "[Function]" },
      [0, "[Function]"],
    ]);
    assertEquals(parsed.callbacks, {
      "0": [0, "responseCallback"],
      "1": [0, "withArgs", 0, "callback"],
      "2": [0, "withArgs", 1, 1],
    });
    fake.send(
      'a["{\\"method\\":0,\\"arguments\\":[{\\"error\\":null,\\"result\\":16}],\\"callbacks\\":{}}"]',
    );
    assertEquals(await within(call, "the reply"), 16);
  } finally {
    await caller.close();
    await fake.close();
  }
});

Deno.test("client wire: raw-websocket sends bare dnode text to the kite URL itself", async () => {
  const fake = new CaptureServer(false);
  const caller = testKite("caller");
  try {
    const client = caller.newClient(fake.url, { transport: "raw-websocket" });
    await client.dial();
    assertEquals(fake.paths, ["/kite"]);
    const call = client.tell("square", 4);
    const text = await fake.frame(0);
    const parsed = JSON.parse(text);
    assertEquals(parsed.method, "square");
    assertEquals(parsed.arguments[0].withArgs, [4]);
    assertEquals(parsed.callbacks, { "0": [0, "responseCallback"] });
    fake.send(
      '{"method":0,"arguments":[{"error":null,"result":16}],"callbacks":{}}',
    );
    assertEquals(await within(call, "the reply"), 16);

    // kite.js answers positionally, (err, result) (docs/protocol.md §12 #8).
    const positional = client.tell("square", 5);
    await fake.frame(1);
    fake.send('{"method":1,"arguments":[null,25],"callbacks":{}}');
    assertEquals(await within(positional, "the reply"), 25);

    // An error without code or id (kite.js shape) still fails the call.
    const failing = client.tell("square", "x");
    await fake.frame(2);
    fake.send(
      '{"method":2,"arguments":[{"error":{"type":"argumentError","message":"square expects a number"}}],"links":[],"callbacks":{}}',
    );
    const err = await assertRejects(() => failing, KiteError) as KiteError;
    assertEquals(err.toJSON(), {
      type: "argumentError",
      message: "square expects a number",
      code: "",
      id: "",
    });

    // A reply of a shape no peer sends: invalidResponse, not a hang.
    const odd = client.tell("square", 6);
    await fake.frame(3);
    fake.send('{"method":3,"arguments":[1,2,3],"callbacks":{}}');
    const bad = await assertRejects(() => odd, KiteError) as KiteError;
    assertEquals(bad.type, "invalidResponse");
  } finally {
    await caller.close();
    await fake.close();
  }
});

// --------------------------------------- what our kite answers a Go client

/** The exact frames of a recording in one direction. */
function recordedFrames(file: string, dir: "c2s" | "s2c"): string[] {
  return readRecording(file)
    .filter((r) => r.type === "ws" && r.dir === dir)
    .map((r) => r.frame as string);
}

Deno.test("server wire: recorded Go client frames get byte-identical replies", async () => {
  const c2s = recordedFrames("go-kite/01-math-kite-call.jsonl", "c2s");
  const s2c = recordedFrames("go-kite/01-math-kite-call.jsonl", "s2c");
  // c2s: kite.ping, square({number:4, name}), the answer to kite.log, square(4), no.such.method.
  assert(c2s[0].includes('\\"authentication\\":null'), c2s[0]);
  assert(c2s[0].includes('\\"withArgs\\":null'), c2s[0]);
  const server = mathTestKite();
  try {
    const { url } = await server.serve();
    const raw = await RawSocket.sockjs(url);
    try {
      raw.send(c2s[0]);
      assertEquals(await raw.next("pong"), s2c[1]);
      raw.send(c2s[1]);
      // Our math kite does not call kite.log back, so the reply comes next.
      assertEquals(
        await raw.next("square reply"),
        'a["{\\"method\\":1,\\"arguments\\":[{\\"error\\":null,\\"result\\":16}],\\"callbacks\\":{}}"]',
      );
      assertEquals(
        s2c[3],
        'a["{\\"method\\":1,\\"arguments\\":[{\\"error\\":null,\\"result\\":16}],\\"callbacks\\":{}}"]',
      );
      // The Go client's answer to a kite.log it was never sent: ignored.
      raw.send(c2s[2]);
      raw.send(c2s[4]);
      assertEquals(await raw.next("methodNotFound"), s2c[5]);
      // square(4) is fine for us (Go's math kite wanted an object).
      raw.send(c2s[3]);
      assertEquals(
        await raw.next("square(4)"),
        'a["{\\"method\\":2,\\"arguments\\":[{\\"error\\":null,\\"result\\":16}],\\"callbacks\\":{}}"]',
      );
    } finally {
      await raw.close();
    }
  } finally {
    await server.close();
  }
});

Deno.test("server wire: authentication on by default, off per method; null credentials", async () => {
  const server = testKite("secure");
  server.handle("secret", (r) => `hello ${r.username}`);
  server.handle("open", (r) => `hello ${r.claimedUsername} (${r.username})`)
    .disableAuthentication();
  try {
    const { url } = await server.serve();

    // Through our client, which sends "authentication":null without a kite.key.
    const caller = testKite("caller", { username: "bob" });
    try {
      const client = caller.newClient(url);
      await client.dial();
      const err = await assertRejects(
        () => client.tell("secret"),
        KiteError,
      ) as KiteError;
      assertEquals(err.type, "authenticationError");
      assertEquals(err.message, "No authentication information is provided");
      assertMatch(err.id, /^[0-9a-f]{16}$/);
      // Without authentication only the claimed username is known.
      assertEquals(await client.tell("open"), "hello bob (undefined)");
      assertEquals(await client.tell("kite.ping"), "pong");
      // An unknown credential type is refused with Go's text.
      client.auth = { type: "bogus", key: "x" };
      const bogus = await assertRejects(() =>
        client.tell("secret")
      ) as KiteError;
      assertEquals(bogus.type, "authenticationError");
      assertEquals(bogus.message, "Unknown authentication type: bogus");
    } finally {
      await caller.close();
    }

    // Raw Go-shaped frames: null credentials on an open and a closed method.
    const raw = await RawSocket.sockjs(url);
    try {
      sockjsSend(raw, goCall("open", [], 7));
      assertEquals(
        await raw.next("open reply"),
        'a["{\\"method\\":7,\\"arguments\\":[{\\"error\\":null,\\"result\\":\\"hello unknown (undefined)\\"}],\\"callbacks\\":{}}"]',
      );
      sockjsSend(raw, goCall("secret", null, 8));
      const [reply] = sockjsMessages(await raw.next("secret reply"));
      assertEquals(reply.method, 8);
      const [body] = reply.arguments as {
        error: Record<string, string>;
        result: unknown;
      }[];
      assertEquals(Object.keys(body), ["error", "result"]);
      assertEquals(Object.keys(body.error), ["type", "message", "code", "id"]);
      assertEquals(body.error.type, "authenticationError");
      assertEquals(
        body.error.message,
        "No authentication information is provided",
      );
      assertEquals(body.error.code, "");
      assertMatch(body.error.id, /^[0-9a-f]{16}$/);
      assertEquals(body.result, null);
      // kite.js omits the field entirely (docs/protocol.md §12 #7): same as null.
      const noField = JSON.parse(goCall("secret", [], 9));
      delete noField.arguments[0].authentication;
      sockjsSend(raw, JSON.stringify(noField));
      const [reply9] = sockjsMessages(await raw.next("reply 9"));
      assertEquals(
        (reply9.arguments as { error: { message: string } }[])[0].error.message,
        "No authentication information is provided",
      );
    } finally {
      await raw.close();
    }
  } finally {
    await server.close();
  }
});
