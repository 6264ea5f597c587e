/**
 * Attacks with batch frames (docs/protocol.md §1.8) on a kite in a process
 * of its own (`tests/helpers/target_process.ts`): too many elements,
 * nested and broken garbage, an element over the message limit, a frame
 * over the batch limit. Each closes only the attacker's connection; the
 * process stays alive, a batching bystander keeps its calls going and a
 * fresh client is served. And each element of a batch is authenticated
 * on its own, as a call in a frame of its own is.
 *
 * @module
 */
import { Kite } from "../mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { goCall, RawSocket, within } from "./helpers/kite_harness.ts";
import { startTarget, type Target } from "./helpers/target_process.ts";

const LIMIT = 4_096;

/** A raw WebSocket that offered batches and got the kite's `[]`. */
async function batching(url: string): Promise<RawSocket> {
  const socket = await RawSocket.open(
    url.replace(/^http/, "ws") + "?kite-batch=1",
  );
  assertEquals(await socket.next("the batch answer"), "[]");
  return socket;
}

/** The replies in the next frames, by response callback id, until `n` came. */
async function replies(
  socket: RawSocket,
  n: number,
): Promise<Map<number, { error: unknown; result: unknown }>> {
  const got = new Map<number, { error: unknown; result: unknown }>();
  while (got.size < n) {
    const value = JSON.parse(await socket.next("replies"));
    for (const m of Array.isArray(value) ? value : [value]) {
      got.set(m.method, m.arguments[0]);
    }
  }
  return got;
}

/** `n` square calls in one batch frame, response callbacks `from`…. */
function squares(n: number, from = 0): string {
  const calls = Array.from(
    { length: n },
    (_, i) => goCall("square", [i], from + i),
  );
  return "[" + calls.join(",") + "]";
}

async function assertServes(target: Target, probe: Kite): Promise<void> {
  assert(target.alive(), `the target died:\n${target.stderr()}`);
  const client = probe.newClient(target.url, { transport: "raw-websocket" });
  try {
    await within(client.dial(), "a fresh client's dial");
    assertEquals(await within(client.tell("square", 7), "square(7)"), 49);
  } finally {
    client.close();
  }
}

Deno.test("attack: hostile batch frames close only the attacker's connection; the kite serves on", async () => {
  const target = await startTarget("kite", {
    config: { maxMessageBytes: LIMIT, maxJsonDepth: 64 },
  });
  const probe = new Kite("probe", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { logLevel: "ERROR" },
  });
  const bystander = await batching(target.url);
  try {
    bystander.send(squares(50));
    const first = await replies(bystander, 50);
    assertEquals(first.get(49)?.result, 49 * 49);

    const deep = "[".repeat(20_000) + "]".repeat(20_000);
    const attacks: {
      name: string;
      frame: string;
      code: number;
      reason: RegExp;
    }[] = [
      {
        name: "101 elements",
        frame: squares(101),
        code: 4002,
        reason: /^Broken batch: expected a JSON array of 1 to 100 messages$/,
      },
      {
        name: "unterminated nesting",
        frame: "[" + "[{".repeat(20_000),
        code: 4002,
        reason: /^Broken batch/,
      },
      {
        name: "garbage between elements",
        frame: `[${goCall("square", [1], 1)} }{ ]`,
        code: 4002,
        reason: /^Broken batch/,
      },
      {
        name: "an element nested 20,000 deep",
        frame: `[${goCall("square", [1], 1)},${deep}]`,
        code: 4009, // within the batch limit; the element is over the message limit
        reason: new RegExp(`^Message too big: limit is ${LIMIT} bytes$`),
      },
      {
        name: "an element nested too deep, within the size limit",
        frame: `[${goCall("square", [1], 1)},${"[".repeat(1000)}${
          "]".repeat(1000)
        }]`,
        code: 3400,
        reason: /^invalid message: nesting deeper than 64 levels$/,
      },
      {
        name: "an element that is not dnode",
        frame: `[${goCall("square", [1], 1)},"just a string"]`,
        code: 3400,
        reason: /^invalid message: /,
      },
      {
        name: "an element over maxMessageBytes",
        frame: `[${goCall("square", ["x".repeat(LIMIT)], 1)}]`,
        code: 4009,
        reason: new RegExp(`^Message too big: limit is ${LIMIT} bytes$`),
      },
      {
        name: "a frame over the batch limit",
        frame: `[${goCall("square", ["x".repeat(60_000)], 1)}]`,
        code: 4009,
        reason: /^Message too big: limit is 49152 bytes$/,
      },
    ];
    for (const { name, frame, code, reason } of attacks) {
      const attacker = await batching(target.url);
      attacker.send(frame);
      const closed = await within(attacker.closed, `${name}: the close`);
      assertEquals(closed.code, code, name);
      assertMatch(closed.reason, reason, name);
      // Meanwhile the bystander's batch goes on.
      bystander.send(squares(20, 1000));
      const got = await replies(bystander, 20);
      assertEquals(got.get(1019)?.result, 19 * 19, name);
    }
    await assertServes(target, probe);
  } finally {
    await bystander.close();
    probe.close();
    await target.stop();
  }
});

Deno.test("each call in a batch is authenticated on its own", async () => {
  // Authentication on; without Kontrol's key no credential passes.
  const kite = new Kite("math", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { logLevel: "ERROR" },
  });
  kite.handle("square", (r) => r.args.one().number() ** 2);
  kite.handle("open", () => "open to all").disableAuthentication();
  const { url } = await kite.serve({
    hostname: "127.0.0.1",
    port: 0,
    quiet: true,
  });
  const socket = await batching(url);
  try {
    socket.send(
      "[" + [
        goCall("square", [3], 1),
        goCall("open", [], 2),
        goCall("square", [3], 3, { type: "token", key: "not-a-token" }),
        goCall("open", [], 4, { type: "token", key: "not-a-token" }),
      ].join(",") + "]",
    );
    const got = await replies(socket, 4);
    const errorType = (id: number) =>
      (got.get(id)?.error as { type?: string } | null)?.type;
    assertEquals(errorType(1), "authenticationError");
    assertEquals(got.get(2)?.result, "open to all");
    assertEquals(errorType(3), "authenticationError");
    assertEquals(got.get(4)?.result, "open to all");
  } finally {
    await socket.close();
    await kite.close();
  }
});
