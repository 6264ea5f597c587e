/**
 * Findings of the security review, each pinned by a test: a user cannot
 * take over another user's registration by reusing its kite id (dnode and
 * HTTP `register`), a remote caller cannot make a kite ping it in a tight
 * loop, and `registerMachine` stays refused without a hook.
 */
import { KiteError } from "../mod.ts";
import { makeQuery } from "../kite/protocol.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { ManualClock } from "../kite/clock.ts";
import { settle, testKite, waitFor, within } from "./helpers/kite_harness.ts";
import {
  ENGINES,
  kontrolKite,
  startTestKontrol,
} from "./helpers/kontrol_harness.ts";

for (const engine of ENGINES) {
  Deno.test(`security (${engine}): register refuses a kite id registered by another user`, async () => {
    const tk = await startTestKontrol({ engine });
    const bob = await kontrolKite(tk, "files", "bob");
    const mallory = await kontrolKite(tk, "files", "mallory", {
      id: bob.identity.id,
    });
    try {
      await bob.serve();
      await bob.register();
      await mallory.serve();
      const r = await settle(mallory.register());
      assert(!r.ok, "mallory took over bob's kite id");
      assert(r.error instanceof KiteError);
      assertEquals(r.error.type, "genericError");
      assertMatch(
        r.error.message,
        /^kite id [0-9a-f-]{36} is registered by another user$/,
      );
      const listed = await tk.storage.get(makeQuery({ id: bob.identity.id }));
      assertEquals(listed.map((k) => [k.kite.username, k.url]), [[
        "bob",
        bob.url,
      ]]);
      assert(tk.kontrol.registry.has(bob.identity.id));

      // The same through HTTP register.
      const res = await fetch(`${tk.base}/register`, {
        method: "POST",
        body: JSON.stringify({
          url: mallory.url,
          kite: mallory.identity,
          auth: { type: "kiteKey", key: mallory.config.kiteKey },
        }),
      });
      assertEquals(res.status, 403);
      assertEquals(
        await res.text(),
        JSON.stringify({
          err: `kite id ${bob.identity.id} is registered by another user`,
        }) + "\n",
      );
      const after = await tk.storage.get(makeQuery({ id: bob.identity.id }));
      assertEquals(after.map((k) => k.url), [bob.url]);

      // Bob himself may register again (e.g. after a reconnect).
      assertEquals((await bob.register()).url, bob.url);
    } finally {
      await mallory.close();
      await bob.close();
      await tk.close();
    }
  });
}

Deno.test("security: kite.heartbeat from a remote caller pings at most once a second", async () => {
  const clock = new ManualClock();
  const target = testKite("target", { disableAuthentication: true }, {
    clock,
  });
  const caller = testKite("caller");
  try {
    const { url } = await target.serve();
    const client = caller.newClient(url);
    await client.dial();
    let pings = 0;
    // Asks for a ping every microsecond.
    assertEquals(
      await client.tell("kite.heartbeat", 1e-6, () => void pings++),
      null,
    );
    assertEquals(pings, 1, "the first ping comes before the reply");
    // A round trip after advancing the clock: pings sent before it arrive first.
    const after = async (ms: number) => {
      await clock.advance(ms);
      assertEquals(await client.tell("kite.ping"), "pong");
      return pings;
    };
    assertEquals(await after(5), 1, "no ping within 5 ms");
    assertEquals(await after(994), 1, "none before a second has passed");
    assertEquals(await after(1), 2, "one after a second");
    assertEquals(await after(1000), 3);
  } finally {
    await caller.close();
    await target.close();
  }
});

Deno.test("security: registerMachine is refused without a machineAuthenticate hook", async () => {
  const tk = await startTestKontrol();
  const caller = testKite("caller");
  try {
    const client = caller.newClient(tk.url);
    await client.dial();
    client.auth = null;
    const r = await settle(client.tell("registerMachine", { authType: "x" }));
    assert(!r.ok && r.error instanceof KiteError);
    assertEquals(r.error.type, "genericError");
    assertEquals(r.error.message, "no valid authentication key found");
  } finally {
    await caller.close();
    await tk.close();
  }
});

Deno.test({
  name: "security: kite.prompt waiting on a terminal does not freeze the kite",
  // Needs `script` (bsdutils) for a pseudo-terminal; deno task test checks for it.
  fn: async () => {
    const fixture = new URL("./fixtures/prompt_kite.ts", import.meta.url)
      .pathname;
    const child = new Deno.Command("script", {
      args: [
        "-qfec",
        `deno run --no-prompt --allow-net=127.0.0.1 --allow-sys=hostname ${fixture}`,
        "/dev/null",
      ],
      // Kept open and never written to: the terminal has no answer to give.
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const caller = testKite("caller");
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let out = "";
    const reading = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        out += value;
      }
    })().catch(() => {});
    try {
      await waitFor(
        () => /\{"port":\d+\}/.test(out),
        "the fixture kite",
        30_000,
      );
      const port = Number(/\{"port":(\d+)\}/.exec(out)![1]);
      const client = caller.newClient(`http://127.0.0.1:${port}/kite`);
      await client.dial();
      const asked = settle(client.tell("kite.prompt", "your name?"));
      // The question is on the terminal: the kite now waits for a line.
      await waitFor(() => out.includes("your name?"), "the question");
      await new Promise((r) => setTimeout(r, 100));
      // With a blocking read the kite could not answer anything now.
      assertEquals(await within(client.tell("kite.ping"), "kite.ping"), "pong");
      const second = await settle(client.tell("kite.getPass", "password?"));
      assert(!second.ok && second.error instanceof KiteError);
      assertEquals(
        second.error.message,
        "another prompt is waiting for an answer",
      );
      client.close();
      void asked;
    } finally {
      await caller.close();
      child.kill("SIGKILL");
      await child.status;
      await child.stdin.close().catch(() => {});
      await reading;
    }
  },
});
