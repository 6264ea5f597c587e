/**
 * A Deno client calling a Deno kite over real sockets, once per client
 * transport: results, callbacks, errors in Go's wire shape, and calls in
 * both directions on one connection.
 */
import { KiteError } from "../mod.ts";
import type { ClientTransport } from "../kite/transport/sockets/deno_dial.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
} from "./helpers/assert.ts";
import { mathTestKite, testKite, within } from "./helpers/kite_harness.ts";

const TRANSPORTS: ClientTransport[] = [
  "websocket",
  "raw-websocket",
  "xhr-polling",
];

/** Starts the math kite and a dialed client; `fn` runs with both, then everything closes. */
async function withMath(
  transport: ClientTransport,
  fn: (
    client: ReturnType<ReturnType<typeof testKite>["newClient"]>,
  ) => Promise<void>,
): Promise<void> {
  const server = mathTestKite();
  const caller = testKite("caller");
  try {
    const { url } = await server.serve();
    const client = caller.newClient(url, { transport });
    await client.dial();
    assertEquals(client.session?.transport, transport);
    await fn(client);
  } finally {
    await caller.close();
    await server.close();
  }
}

for (const transport of TRANSPORTS) {
  Deno.test(`${transport}: square(4) and square({number: 4}) are 16`, () =>
    withMath(transport, async (client) => {
      assertEquals(await client.tell("square", 4), 16);
      assertEquals(await client.tell("square", { number: 4 }), 16);
      assertEquals(await client.tell("square", -3), 9);
    }));

  Deno.test(`${transport}: squareCb calls the callback with 16 before replying`, () =>
    withMath(transport, async (client) => {
      const seen: string[] = [];
      const reply = client.tell("squareCb", 4, (n: number) => {
        seen.push(`callback ${n}`);
      }).then((r) => seen.push(`reply ${r}`));
      await within(reply, "the squareCb reply");
      assertEquals(seen, ["callback 16", "reply 16"]);

      // The object form carries the callback inside the first argument.
      const got: number[] = [];
      const r = await client.tell("squareCb", {
        number: 5,
        callback: (n: number) => got.push(n),
      });
      assertEquals(r, 25);
      assertEquals(got, [25]);
    }));

  Deno.test(`${transport}: echo returns nested data unchanged`, () =>
    withMath(transport, async (client) => {
      const data = {
        list: [1, 2.5, -3, [true, false, null]],
        text: 'quotes " and \\ and ünïcödé and <&>',
        nested: { deeper: { deepest: ["a", { b: "c" }] } },
        empty: { obj: {}, arr: [] },
      };
      assertEquals(await client.tell("echo", data), data);
      assertEquals(await client.tell("kite.echo", data), data);
      assertEquals(await client.tell("kite.echo", null), null);
    }));

  Deno.test(`${transport}: kite.ping answers "pong"`, () =>
    withMath(transport, async (client) => {
      assertEquals(await client.tell("kite.ping"), "pong");
    }));

  Deno.test(`${transport}: an unknown method fails with Go's methodNotFound error`, () =>
    withMath(transport, async (client) => {
      const err = await assertRejects(
        () => client.tell("x"),
        KiteError,
      ) as KiteError;
      assertEquals(err.toJSON(), {
        type: "methodNotFound",
        message: "Method not found: x",
        code: "",
        id: "",
      });
      assertEquals(Object.keys(err.toJSON()), [
        "type",
        "message",
        "code",
        "id",
      ]);
    }));

  Deno.test(`${transport}: a handler's Error becomes a genericError with a request id`, () =>
    withMath(transport, async (client) => {
      const err = await assertRejects(
        () => client.tell("fail"),
        KiteError,
      ) as KiteError;
      assertEquals(err.type, "genericError");
      assertEquals(err.message, "intentional failure");
      assertEquals(err.code, "");
      assertMatch(err.id, /^[0-9a-f]{16}$/);
      // Each request gets its own id.
      const again = await assertRejects(() => client.tell("fail")) as KiteError;
      assert(again.id !== err.id, "request ids must differ");
    }));

  Deno.test(`${transport}: a wrong argument type fails with an argumentError`, () =>
    withMath(transport, async (client) => {
      const err = await assertRejects(
        () => client.tell("square", "four"),
        KiteError,
      ) as KiteError;
      assertEquals(err.type, "argumentError");
      assertEquals(err.message, "withArgs[0]: expected a number, got string");
      assertMatch(err.id, /^[0-9a-f]{16}$/);

      const missing = await assertRejects(
        () => client.tell("square", { numbr: 4 }),
        KiteError,
      ) as KiteError;
      assertEquals(missing.type, "argumentError");
      assertEquals(
        missing.message,
        "withArgs[0].number: expected a number, got undefined",
      );
      // The connection is still good afterwards.
      assertEquals(await client.tell("square", 6), 36);
    }));

  Deno.test(`${transport}: the server calls a method the dialing kite serves`, async () => {
    const server = testKite("server", { disableAuthentication: true });
    server.handle("askBack", async (r) => {
      const answer = await r.client.tell(
        "clientMethod",
        r.args.one().string(),
      );
      return `client said: ${answer}`;
    });
    // The caller keeps authentication on: calls arriving on a connection
    // it dialed are not authenticated (docs/protocol.md §6.9).
    const caller = testKite("caller");
    const seen: { auth: unknown; from: string }[] = [];
    caller.handle("clientMethod", (r) => {
      seen.push({ auth: r.auth, from: r.remoteKite.name });
      return r.args.one().string().toUpperCase();
    });
    try {
      const { url } = await server.serve();
      const client = caller.newClient(url, { transport });
      await client.dial();
      assertEquals(
        await client.tell("askBack", "hello"),
        "client said: HELLO",
      );
      assertEquals(seen, [{ auth: null, from: "server" }]);
      // A method the client does not serve fails on the server's side.
      server.handle("askMissing", (r) => r.client.tell("nothing.here"));
      const err = await assertRejects(
        () => client.tell("askMissing"),
        KiteError,
      ) as KiteError;
      assertEquals(err.type, "methodNotFound");
      assertEquals(err.message, "Method not found: nothing.here");
    } finally {
      await caller.close();
      await server.close();
    }
  });

  Deno.test(`${transport}: functions in a result can be called back by the client`, async () => {
    const server = testKite("server", { disableAuthentication: true });
    let total = 0;
    server.handle("counter", () => ({
      start: total,
      add: (n: number, done: (sum: number) => void) => {
        total += n;
        done(total);
      },
    }));
    const caller = testKite("caller");
    try {
      const { url } = await server.serve();
      const client = caller.newClient(url, { transport });
      await client.dial();
      const counter = await client.tell("counter") as {
        start: number;
        add: (n: number, done: (sum: number) => void) => void;
      };
      assertEquals(counter.start, 0);
      assertEquals(typeof counter.add, "function");
      const sums: number[] = [];
      for (const n of [5, 7]) {
        sums.push(
          await within(
            new Promise<number>((resolve) => counter.add(n, resolve)),
            "the counter callback",
          ),
        );
      }
      assertEquals(sums, [5, 12]);
      assertEquals(total, 12);
    } finally {
      await caller.close();
      await server.close();
    }
  });
}
