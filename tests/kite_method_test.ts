/**
 * The method pipeline over a real connection: throttling on an injected
 * clock, and the order of method- and kite-level pre/post/final handlers.
 */
import { KiteError, ManualClock } from "../mod.ts";
import type { Client } from "../kite/client.ts";
import type { Kite } from "../kite/kite.ts";
import { assertEquals, assertMatch, assertRejects } from "./helpers/assert.ts";
import { testKite } from "./helpers/kite_harness.ts";

async function withKite(
  server: Kite,
  fn: (client: Client) => Promise<void>,
): Promise<void> {
  const caller = testKite("caller");
  try {
    const { url } = await server.serve();
    const client = caller.newClient(url);
    await client.dial();
    await fn(client);
  } finally {
    await caller.close();
    await server.close();
  }
}

Deno.test("throttle(): capacity calls pass, the next gets requestLimitError, refills on the clock", async () => {
  const clock = new ManualClock();
  const server = testKite("limited", { disableAuthentication: true }, {
    clock,
  });
  let ran = 0;
  server.handle("limited", () => ++ran).throttle(1000, 3);
  server.handle("free", () => "free");
  await withKite(server, async (client) => {
    assertEquals(await client.tell("limited"), 1);
    assertEquals(await client.tell("limited"), 2);
    assertEquals(await client.tell("limited"), 3);
    const err = await assertRejects(
      () => client.tell("limited"),
      KiteError,
    ) as KiteError;
    assertEquals(err.type, "requestLimitError");
    assertEquals(err.message, "The maximum request rate is exceeded.");
    assertMatch(err.id, /^[0-9a-f]{16}$/);
    assertEquals(ran, 3, "a throttled call must not reach the handler");
    // Other methods are not limited.
    assertEquals(await client.tell("free"), "free");

    // Not a full interval yet.
    await clock.advance(999);
    await assertRejects(() => client.tell("limited"), KiteError, "maximum");
    // One interval: one token.
    await clock.advance(1);
    assertEquals(await client.tell("limited"), 4);
    await assertRejects(() => client.tell("limited"), KiteError, "maximum");
    // A long pause refills up to the capacity, not beyond.
    await clock.advance(60_000);
    for (let i = 5; i <= 7; i++) assertEquals(await client.tell("limited"), i);
    await assertRejects(() => client.tell("limited"), KiteError, "maximum");
  });
});

Deno.test("pre, post and final handlers run in order: method-level, then kite-level", async () => {
  const server = testKite("pipeline", { disableAuthentication: true });
  const order: string[] = [];
  server.preHandle((r) => void order.push(`kite pre ${r.method}`));
  server.postHandle(() => void order.push("kite post"));
  server.finalFunc((r, result, err) =>
    void order.push(`kite final ${r.method} ${result} ${err?.message}`)
  );
  server.handle("work", (r) => {
    order.push("handler");
    return r.args.one().number() * 2;
  })
    .preHandle(() => void order.push("method pre 1"))
    .preHandle(async () => {
      await Promise.resolve();
      order.push("method pre 2");
    })
    .postHandle(() => void order.push("method post"))
    .finalFunc((_r, result, err) =>
      void order.push(`method final ${result} ${err?.message}`)
    );
  await withKite(server, async (client) => {
    assertEquals(await client.tell("work", 21), 42);
    assertEquals(order, [
      "method pre 1",
      "method pre 2",
      "kite pre work",
      "handler",
      "method post",
      "kite post",
      "method final 42 undefined",
      "kite final work 42 undefined",
    ]);
  });
});

Deno.test("a throwing pre-handler stops the call with its error; final funcs see it", async () => {
  const server = testKite("guarded", { disableAuthentication: true });
  const order: string[] = [];
  let allow = false;
  server.finalFunc((_r, result, err) =>
    void order.push(`kite final ${result} ${err?.type}:${err?.message}`)
  );
  server.postHandle(() => void order.push("kite post"));
  server.handle("guarded", () => {
    order.push("handler");
    return "secret";
  })
    .preHandle(() => {
      order.push("pre");
      if (!allow) {
        throw new KiteError("authenticationError", "not today", {
          code: "E42",
        });
      }
    })
    .finalFunc((_r, result, err) =>
      void order.push(`method final ${result} ${err?.type}`)
    );
  server.handle("plain", () => "ok").preHandle(() => {
    throw new Error("plain failure");
  });
  await withKite(server, async (client) => {
    const err = await assertRejects(
      () => client.tell("guarded"),
      KiteError,
    ) as KiteError;
    assertEquals(
      { type: err.type, message: err.message, code: err.code },
      { type: "authenticationError", message: "not today", code: "E42" },
    );
    assertMatch(err.id, /^[0-9a-f]{16}$/);
    assertEquals(order, [
      "pre",
      "method final null authenticationError",
      "kite final null authenticationError:not today",
    ]);

    order.length = 0;
    allow = true;
    assertEquals(await client.tell("guarded"), "secret");
    assertEquals(order, [
      "pre",
      "handler",
      "kite post",
      "method final secret undefined",
      "kite final secret undefined:undefined",
    ]);

    const plain = await assertRejects(
      () => client.tell("plain"),
      KiteError,
    ) as KiteError;
    assertEquals(plain.type, "genericError");
    assertEquals(plain.message, "plain failure");
  });
});

Deno.test("a throwing post-handler turns the reply into an error; a throwing final func changes nothing", async () => {
  const server = testKite("post", { disableAuthentication: true });
  const finals: unknown[] = [];
  server.handle("post", () => "result")
    .postHandle(() => {
      throw new KiteError("argumentError", "rejected afterwards");
    })
    .finalFunc((_r, _result, err) => void finals.push(err?.type));
  server.handle("finalThrows", () => "kept").finalFunc(() => {
    throw new Error("final failure");
  });
  await withKite(server, async (client) => {
    const err = await assertRejects(
      () => client.tell("post"),
      KiteError,
    ) as KiteError;
    assertEquals(err.type, "argumentError");
    assertEquals(finals, ["argumentError"]);
    assertEquals(await client.tell("finalThrows"), "kept");
  });
});
