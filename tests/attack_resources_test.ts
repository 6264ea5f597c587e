/**
 * Attacks on what a peer can make a server hold (issue #15 findings 3, 4,
 * 6, 7 and 8), each against a kite or Kontrol in a process of its own; after
 * each the target must be alive and serve a well-behaved client, and its
 * memory must stay within the stated bound.
 */
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import {
  mathTestKite,
  RawSocket,
  waitFor as eventually,
  within,
} from "./helpers/kite_harness.ts";
import { halfHeads, rawRequest, UPGRADE } from "./helpers/raw_http.ts";
import { mib, startTarget, type Target } from "./helpers/target_process.ts";
import { lines } from "./helpers/processes.ts";

/**
 * Dials the target as a kite client and calls `target.stats` (`gc`: after
 * a garbage collection in the target).
 */
async function assertServes(
  target: Target,
  ms = 5_000,
  gc = false,
): Promise<void> {
  assert(target.alive(), `the target died:\n${target.stderr()}`);
  const kite = mathTestKite({ timeoutMs: ms });
  const client = kite.newClient(target.url);
  try {
    await within(client.dial(), `a dial to ${target.url}`, ms);
    const stats = await client.tell("target.stats", gc) as { rss: number };
    assert(stats.rss > 0);
  } finally {
    client.close();
    await kite.close();
  }
}

/** Retries {@linkcode assertServes} until it passes or `ms` is over. */
async function eventuallyServes(target: Target, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await assertServes(target, 2_000);
    } catch (err) {
      if (Date.now() > deadline || !target.alive()) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

Deno.test("finding 3: more half-sent request heads than descriptors do not end the kite", async () => {
  const target = await startTarget("kite", { fdLimit: 64 });
  const kite = mathTestKite();
  // A session opened before the attack lives through it.
  const before = kite.newClient(target.url);
  let attack: Deno.Conn[] = [];
  try {
    await before.dial();
    const opened = await halfHeads(target.port, 120);
    attack = opened.conns;
    // Beyond the limit, accept fails: on main the kite exits here.
    await eventually(
      () => /Too many open files/.test(target.stderr()),
      "the kite to report the descriptor limit",
      10_000,
    );
    assert(
      /raise the limit \(ulimit -n/.test(target.stderr()),
      `the log names the limit: ${target.stderr()}`,
    );
    assertEquals(await before.tell("square", 7), 49);
    assert(target.alive(), "the kite exited");
    console.log(
      `${opened.conns.length} half-sent heads held, ${opened.refused} refused; kite alive`,
    );
    for (const conn of attack) conn.close();
    attack = [];
    // Listening again after a backoff of at most 5 s.
    await eventuallyServes(target, 15_000);
    assertEquals(await before.tell("square", 8), 64);
  } finally {
    for (const conn of attack) conn.close();
    before.close();
    await kite.close();
    await target.stop();
  }
});

Deno.test("finding 3: a kite out of descriptors survives Deno's first signal listener", async () => {
  // Deno opens a socket pair the first time a signal is listened for, and
  // listens itself shortly after the main module has run; out of
  // descriptors then, it panics. The kite sets signals up before serving.
  const fixture = new URL("./fixtures/fd_exhausted_kite.ts", import.meta.url);
  const deno = `'${Deno.execPath()}' run --allow-net=127.0.0.1 --allow-read`;
  const out = await new Deno.Command("sh", {
    args: ["-c", `ulimit -n 64 && exec ${deno} '${fixture.pathname}'`],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, text);
  assert(/^survived/.test(text), text);
});

/**
 * `KITE_TEST_ATTACK_FULL=1` runs the attacks at the size of the report in
 * RELIABILITY.md (default caps, 10,000 XHR sessions and 9,999 WebSockets
 * from one address, six 60 MiB messages); the default is a short version.
 */
const FULL = Deno.env.get("KITE_TEST_ATTACK_FULL") === "1";

Deno.test("finding 7: one address cannot take every slot; silent sessions are closed", async () => {
  const caps = FULL
    ? { connections: 1_000, xhr: 100, idleMs: 60_000, xhrTries: 10_000 }
    : { connections: 30, xhr: 10, idleMs: 1_500, xhrTries: 15 };
  const wsTries = FULL ? 9_999 : 25;
  const target = await startTarget("kite", {
    config: {
      maxConnectionsPerAddress: caps.connections,
      maxXhrSessionsPerAddress: caps.xhr,
      idleSessionMs: caps.idleMs,
      // Unpolled sessions stay for the whole attack, however slow the
      // machine; the idle close frees the WebSockets' slots meanwhile.
      sockjsDisconnectDelayMs: 60_000,
    },
  });
  const sockets: RawSocket[] = [];
  try {
    const started = Date.now();
    // XHR sessions (xhr and jsonp polling alike): the cap accepted, the
    // rest refused naming the limit.
    let xhrRefused = 0;
    let refusal = "";
    for (let i = 0; i < caps.xhrTries; i++) {
      const jsonp = i % 2 === 1;
      const res = await fetch(
        `${target.url}/000/x${i}/${jsonp ? "jsonp?c=x" : "xhr"}`,
        { method: jsonp ? "GET" : "POST" },
      );
      const text = await res.text();
      if (res.status === 503) {
        xhrRefused++;
        refusal ||= text;
      } else assertEquals(text, jsonp ? '/**/x("o");\r\n' : "o\n");
    }
    assert(/maxXhrSessionsPerAddress/.test(refusal), refusal);
    assertEquals(xhrRefused, caps.xhrTries - caps.xhr);
    // WebSockets fill the rest of the address's connections.
    let wsRefused = 0;
    for (let i = 0; i < wsTries; i++) {
      try {
        sockets.push(await RawSocket.sockjs(target.url));
      } catch {
        wsRefused++;
      }
    }
    assertEquals(sockets.length, caps.connections - caps.xhr);
    assertEquals(wsRefused, wsTries - sockets.length);
    const refused = await rawRequest(target.port, "GET", "/kite", UPGRADE);
    assertEquals(refused.status, 503);
    assert(/maxConnectionsPerAddress/.test(refused.text), refused.text);
    console.log(
      `one address: ${caps.xhr} of ${caps.xhrTries} XHR sessions and ${sockets.length} of ${wsTries} WebSockets accepted in ${
        Date.now() - started
      } ms; target RSS ${mib(target.rss())}`,
    );
    // None of them sends a message: each is closed with 4001.
    for (const s of sockets) {
      await within(s.closed, "the idle close", caps.idleMs + 10_000);
      const frame = await s.next("the idle close frame");
      assert(frame.startsWith("c[4001,"), frame);
    }
    // The address has room again: a client gets in.
    await eventuallyServes(target, 10_000);
  } finally {
    for (const s of sockets) await s.close();
    await target.stop();
  }
});

Deno.test("finding 7: slow requests from one address are capped like connections", async () => {
  const target = await startTarget("kite", {
    config: { maxConnectionsPerAddress: 5, timeoutMs: 60_000 },
  });
  const slow: Deno.Conn[] = [];
  try {
    // Bodies that never finish: each holds a request in flight.
    for (let i = 0; i < 5; i++) {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: target.port,
      });
      slow.push(conn);
      await conn.write(new TextEncoder().encode(
        `POST /kite/000/s${i}/xhr_send HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[`,
      ));
    }
    await eventually(async () => {
      const r = await rawRequest(target.port, "GET", "/kite/info");
      return r.status === 503 &&
        /requests in flight.*maxConnectionsPerAddress/.test(r.text);
    }, "a sixth request refused with 503");
    for (const conn of slow.splice(0)) conn.close();
    // Their requests end with their connections: room again.
    await eventually(
      async () =>
        (await rawRequest(target.port, "GET", "/kite/info")).status === 200,
      "a request served again",
    );
    await assertServes(target);
  } finally {
    for (const conn of slow) conn.close();
    await target.stop();
  }
});

Deno.test("finding 4: POST /register refuses big bodies before reading; errors do not echo input", async () => {
  const target = await startTarget("kontrol");
  try {
    const before = target.rss();
    // Four bodies of 200 MiB, declared and streamed: each stops at 64 KiB.
    const bodies = Array.from({ length: 4 }, async () => {
      let sent = 0;
      const chunk = new Uint8Array(1 << 20).fill(0x20);
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 200) return controller.close();
          sent++;
          controller.enqueue(chunk);
        },
      });
      const res = await fetch(`${target.base}/register`, {
        method: "POST",
        body,
      }).catch((err) => err as Error);
      if (res instanceof Response) {
        assertEquals(res.status, 413);
        await res.body?.cancel();
      }
      return sent;
    });
    const sent = await Promise.all(bodies);
    const grown = target.rss() - before;
    assert(grown < 40 * 2 ** 20, `RSS grew by ${mib(grown)} (sent ${sent})`);
    console.log(
      `four 200 MiB /register bodies: RSS ${mib(before)} → ${
        mib(target.rss())
      }; MiB each client had handed to its socket when the 413 came: ${
        sent.join(", ")
      }`,
    );
    // A long invalid URL is not echoed back whole.
    const url = "::" + "x".repeat(60_000);
    const res = await fetch(`${target.base}/register`, {
      method: "POST",
      body: JSON.stringify({ url, auth: { type: "kiteKey", key: "k" } }),
    });
    const text = await res.text();
    assertEquals(res.status, 400);
    assert(text.length < 1_000, `reply of ${text.length} characters`);
    await assertServes(target);
  } finally {
    await target.stop();
  }
});

Deno.test("finding 6: big WebSocket messages close their connection; memory comes back", async () => {
  const target = await startTarget("kite");
  try {
    await assertServes(target);
    const before = target.rss();
    let peak = before;
    const sample = setInterval(() => peak = Math.max(peak, target.rss()), 20);
    try {
      // Several connections at once (FULL: six × 60 MiB, as found), then
      // one message over Deno's own 64 MiB cap.
      const [count, size] = FULL ? [6, 60] : [2, 20];
      const rounds = [Array(count).fill(size), [65]];
      for (const sizes of rounds) {
        const sockets = await Promise.all(
          sizes.map(() => RawSocket.sockjs(target.url)),
        );
        const big = sizes.map((mb) => "x".repeat(mb * 2 ** 20));
        sockets.forEach((socket, i) => socket.send(big[i]));
        for (const [i, socket] of sockets.entries()) {
          const closed = await within(socket.closed, "the close", 30_000);
          // 4009 from the kite, 1009/1006 when Deno refused the frame itself;
          // Deno's client reports a connection dropped without a close frame as 0.
          assert(
            [4009, 1009, 1006, 0].includes(closed.code),
            `${sizes[i]} MiB: close ${closed.code}`,
          );
        }
      }
    } finally {
      clearInterval(sample);
    }
    // Nothing holds what the messages took: after a collection the big
    // buffers are unmapped.
    await assertServes(target, 5_000, true);
    console.log(
      `big messages: RSS ${mib(before)} → peak ${mib(peak)} → ${
        mib(target.rss())
      }`,
    );
    await eventually(
      () => target.rss() - before < 48 * 2 ** 20,
      `RSS back near ${mib(before)} (peak ${mib(peak)}, now ${
        mib(target.rss())
      })`,
      10_000,
    );
  } finally {
    await target.stop();
  }
});

Deno.test("finding 8: connections a kite closed on a peer that reads nothing stay counted until their replies are written", async () => {
  // Deno's close waits behind unwritten data: closed at once, the socket
  // would report itself closed while its connection and buffers stayed
  // held, and the next connection of the same peer would be let in.
  const target = await startTarget("kite", {
    config: {
      disableAuthentication: true,
      maxConnectionsPerAddress: 4,
      maxBufferedBytes: 4 << 20,
    },
  });
  const kite = mathTestKite();
  const watcher = kite.newClient(target.url);
  const attacker = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      new URL("./fixtures/deaf_flooder.ts", import.meta.url).pathname,
      String(target.port),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const said = lines(attacker.stdout);
  const orders = attacker.stdin.getWriter();
  const next = async () => {
    await orders.write(new TextEncoder().encode("next\n"));
    return (await said.next()).value ?? "(the attacker ended)";
  };
  try {
    await watcher.dial();
    const sessions = async () =>
      (await watcher.tell("target.stats") as { connections: number })
        .connections;
    // Three floods, each closed by the kite (4008: over 4 MiB unwritten),
    // leaving the watcher as its only session.
    for (let i = 1; i <= 3; i++) {
      assertEquals(await next(), "opened", `flood ${i}`);
      await eventually(
        async () => await sessions() === 1,
        `the kite closing flood ${i}'s session`,
        30_000,
      );
    }
    // Their sockets still hold unwritten replies: with the watcher, the
    // peer is at its cap of 4 connections.
    assertMatch(await next(), /^refused upgrade refused: HTTP\/1.1 503/);
    // Once the peer is gone, so are its connections: three more fit.
    await orders.close();
    await attacker.status;
    await eventually(
      async () => {
        const more = [1, 2, 3].map(() => kite.newClient(target.url));
        const dialed = await Promise.allSettled(more.map((c) => c.dial()));
        for (const c of more) c.close();
        return dialed.every((d) => d.status === "fulfilled");
      },
      "three connections after the attacker left",
      15_000,
    );
    assert(target.alive(), `the target died:\n${target.stderr()}`);
  } finally {
    await orders.close().catch(() => {});
    await attacker.status;
    watcher.close();
    await kite.close();
    await target.stop();
  }
});
