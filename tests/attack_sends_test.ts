/**
 * Attacks on what a kite or Kontrol sends on its own (heartbeats, watch
 * events, replies, prints), each against a target in a process of its own
 * (`tests/helpers/target_process.ts`): after the attack the process must be
 * alive and still answer a well-behaved client. Issue #15 findings 1, 2, 9.
 *
 * @module
 */
import { Kite } from "../mod.ts";
import { call } from "../scripts/fuzz/inputs.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { settle, testKite, waitFor, within } from "./helpers/kite_harness.ts";
import { startTarget, type Target } from "./helpers/target_process.ts";

/** A child process starts slower than the in-process guard allows. */
const SLOW_MS = 20_000;

/** An XHR session opened by hand, so the attacker decides when (never) to poll. */
class XhrAttacker {
  readonly #url: string;
  constructor(base: string, id: string) {
    this.#url = `${base}/kite/000/${id}`;
  }

  /** Opens the session (the first poll answers `o`). */
  async open(): Promise<void> {
    assertEquals(await this.poll(), "o\n");
  }

  /** Posts dnode messages in one `xhr_send`. */
  async send(...messages: string[]): Promise<void> {
    const res = await fetch(`${this.#url}/xhr_send`, {
      method: "POST",
      body: JSON.stringify(messages),
    });
    await res.body?.cancel();
    assertEquals(res.status, 204, "xhr_send accepted");
  }

  /** One poll: one frame and its newline. */
  async poll(): Promise<string> {
    const res = await fetch(`${this.#url}/xhr`, { method: "POST" });
    return await res.text();
  }
}

/** Connections the target holds now, asked over a connection of its own (counted too). */
async function connections(target: Target, probe: Kite): Promise<number> {
  const client = probe.newClient(target.url);
  try {
    await client.dial();
    const stats = await client.tell("target.stats") as { connections: number };
    return stats.connections;
  } finally {
    client.close();
  }
}

/** The target is alive and answers a fresh, well-behaved client. */
async function assertServes(
  target: Target,
  probe: Kite,
  method: string,
  ...args: unknown[]
): Promise<unknown> {
  assert(target.alive(), `the target died:\n${target.stderr()}`);
  const client = probe.newClient(target.url);
  try {
    await within(client.dial(), "a well-behaved client's dial");
    return await within(client.tell(method, ...args), `${method} answered`);
  } finally {
    client.close();
  }
}

Deno.test({
  name:
    "attack: kite.heartbeat over an XHR session that never polls, with replies past maxBufferedBytes, ends only that session",
  fn: async () => {
    const limit = 256 * 1024;
    const target = await startTarget("kite", {
      config: { maxBufferedBytes: limit },
    });
    const probe = testKite("probe");
    try {
      const xhr = new XhrAttacker(target.base, "heartbeat");
      await xhr.open();
      // A ping every second, to callback 2; then two replies that take the
      // queue past the limit without any send being refused yet: the next
      // send is the heartbeat tick's, in a timer.
      await xhr.send(
        call("kite.heartbeat", [1, "[Function]"], 1, {
          extra: { 2: [0, "withArgs", 1] },
        }),
      );
      const echo = "x".repeat(200_000);
      await xhr.send(call("kite.echo", [echo], 3));
      await xhr.send(call("kite.echo", [echo], 4));
      // The tick closes the session (4008): only the probe's connection is left.
      await waitFor(
        async () => !target.alive() || await connections(target, probe) === 1,
        "the slow session to be closed",
        SLOW_MS,
      );
      assertEquals(await assertServes(target, probe, "square", 3), 9);
      assertMatch(
        await xhr.poll(),
        /^c\[4008,"Slow consumer: too much unread data, over 262144 bytes"\]\n$/,
      );
    } finally {
      await probe.close();
      await target.stop();
    }
  },
});

Deno.test({
  name:
    "attack: watchers on a Kontrol session that stops reading, then one registration, end only that session",
  fn: async () => {
    const target = await startTarget("kontrol", {
      config: { maxBufferedBytes: 32 * 1024 },
    });
    const auth = { type: "kiteKey", key: target.kiteKey };
    const probe = testKite("probe", {}, { kiteKey: target.kiteKey });
    const victim = testKite("victim", {}, { kiteKey: target.kiteKey });
    try {
      const xhr = new XhrAttacker(target.base, "watcher");
      await xhr.open();
      const watches = 60; // under Kontrol's 100 watchers per connection
      const calls = Array.from(
        { length: watches },
        (_, i) =>
          call(
            "getKites",
            [{
              query: { username: "alice" },
              watchCallback: "[Function]",
            }],
            2 * i + 1,
            {
              auth,
              extra: { [2 * i + 2]: [0, "withArgs", 0, "watchCallback"] },
            },
          ),
      );
      await xhr.send(...calls);
      // Read the replies, so every watch is set; then never read again.
      let replies = 0;
      for (let polls = 0; replies < watches; polls++) {
        assert(polls < watches, `only ${replies} watches were set`);
        const frame = await within(xhr.poll(), "getKites replies", SLOW_MS);
        replies += frame.split("watcherID").length - 1;
      }
      const before = await connections(target, probe);
      // ~60 watch events of ~1 KiB in one tick: past the 32 KiB limit.
      await within(victim.register("http://127.0.0.1:1/kite"), "register");
      // The victim's connection came, the attacker's must go.
      await waitFor(
        async () =>
          !target.alive() || await connections(target, probe) === before,
        "the stalled watcher session to be closed",
        SLOW_MS,
      );
      const found = await assertServes(target, probe, "getKites", {
        query: { username: "alice" },
      }) as { kites: unknown[] };
      assertEquals(found.kites.length, 1);
      assertMatch(await xhr.poll(), /^c\[4008,"Slow consumer/);
    } finally {
      await victim.close();
      await probe.close();
      await target.stop();
    }
  },
});

Deno.test({
  name:
    "attack: a connection that reads but holds many watchers is closed (4008) on one registration; Kontrol keeps serving",
  fn: async () => {
    const target = await startTarget("kontrol", {
      config: { maxBufferedBytes: 32 * 1024 },
    });
    const watcher = testKite("watcher", {}, { kiteKey: target.kiteKey });
    const victim = testKite("victim", {}, { kiteKey: target.kiteKey });
    const probe = testKite("probe", {}, { kiteKey: target.kiteKey });
    try {
      const events: unknown[] = [];
      const query = { username: "alice" };
      for (let i = 0; i < 60; i++) {
        await watcher.watchKites(query, (e) => events.push(e));
      }
      const kontrol = await watcher.kontrol.connection();
      const dropped = new Promise((resolve) => kontrol.onDisconnect(resolve));
      await within(victim.register("http://127.0.0.1:1/kite"), "register");
      const info = await within(dropped, "the watcher's disconnect", SLOW_MS);
      assertEquals((info as { code: number }).code, 4008);
      const found = await assertServes(target, probe, "getKites", {
        query,
      }) as { kites: unknown[] };
      assertEquals(found.kites.length, 1);
    } finally {
      await victim.close();
      await watcher.close();
      await probe.close();
      await target.stop();
    }
  },
});

Deno.test({
  name:
    "attack: kite.print while nobody reads the kite's stdout does not freeze it; prints past the bound are refused",
  fn: async () => {
    // The target's stdout is a pipe read only up to its ready line.
    const target = await startTarget("kite");
    const probe = testKite("probe");
    const client = probe.newClient(target.url);
    try {
      await client.dial();
      const line = "p".repeat(200_000);
      const outcomes = [];
      for (let i = 0; i < 12; i++) {
        outcomes.push(
          await within(settle(client.tell("kite.print", line)), "kite.print"),
        );
      }
      const refused = outcomes.filter((o) => !o.ok);
      assert(refused.length > 0, "some prints were refused");
      assertMatch(
        (refused[0] as { error: Error }).error.message,
        /stdout of this kite is not being read: \d+ bytes wait \(limit 1048576\); \d+ prints dropped/,
      );
      assertEquals(await assertServes(target, probe, "kite.ping"), "pong");
    } finally {
      client.close();
      await probe.close();
      await target.stop();
    }
  },
});

Deno.test("attack: a watchKites cancel called without await, then the connection closed, rejects nothing", async () => {
  const target = await startTarget("kontrol");
  const watcher = new Kite("watcher", "1.0.0", {
    env: false,
    kiteKey: target.kiteKey,
    config: { logLevel: "FATAL" },
  });
  try {
    const cancel = await watcher.watchKites({ username: "alice" }, () => {});
    const cancelled = cancel(); // not awaited, as callers do
    await watcher.close(); // the cancelWatcher call now fails: disconnect
    // A rejection here would be unhandled and fail this test.
    assertEquals(await within(cancelled, "cancel to settle"), undefined);
  } finally {
    await watcher.close();
    await target.stop();
  }
});
