/**
 * The reverse proxy's front under attack, every party a process of its
 * own: the proxy (with a math kite registered, and a flooding kite-like
 * server), and an attacker that sends half heads past the per-address
 * limit, a head that never ends, a head one byte at a time, a malformed
 * head, and finally upgrades to the flooding kite and stops reading. Each
 * attack costs only its own connections (the answers say which limit),
 * the proxy's memory stays bounded while the kite floods the reader that
 * stopped, that splice is closed, and the proxy then serves a caller.
 *
 * @module
 */
import { Kite } from "../mod.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { childEnv, ROOT } from "./helpers/kontrol_task.ts";
import { lines, residentBytes } from "./helpers/processes.ts";
import { eventually } from "./helpers/wait.ts";

const LIMIT = 8;
const TIMEOUT_MS = 1_500;

function spawn(
  script: string,
  args: string[],
  stdin = false,
  fdLimit?: number,
) {
  const deno = [
    Deno.execPath(),
    "run",
    "--allow-net=127.0.0.1",
    `${ROOT}tests/fixtures/${script}`,
    ...args,
  ];
  // `sh` lowers the open-file limit, then execs deno (same pid).
  const limit = fdLimit ? `ulimit -n ${fdLimit} && ` : "";
  return new Deno.Command("sh", {
    args: ["-c", `${limit}exec "$@"`, "sh", ...deno],
    cwd: ROOT,
    env: childEnv({}),
    clearEnv: true,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: fdLimit ? "piped" : "inherit",
  }).spawn();
}

async function next(
  out: AsyncGenerator<string>,
): Promise<Record<string, unknown>> {
  const { value, done } = await out.next();
  assert(!done, "the process ended early");
  return JSON.parse(value);
}

Deno.test("proxy front: half heads, endless heads, slowloris, malformed heads and a reader that stops cost only their own connections; memory stays bounded; it serves on", async () => {
  const flood = spawn("proxy_front_attacker.ts", ["flood-kite"]);
  const floodOut = lines(flood.stdout);
  const { port: floodPort } = await next(floodOut);
  const server = spawn("proxy_front_server.ts", [
    String(LIMIT),
    String(TIMEOUT_MS),
    `http://127.0.0.1:${floodPort}/`,
  ]);
  const serverOut = lines(server.stdout);
  const info = await next(serverOut) as {
    port: number;
    mathURL: string;
    floodURL: string;
    floodId: string;
  };
  const attacker = spawn("proxy_front_attacker.ts", [
    "attack",
    String(info.port),
    new URL(info.floodURL).pathname,
    String(LIMIT + 4),
  ], true);
  const out = lines(attacker.stdout);
  const caller = new Kite("caller", "1.0.0", { env: false, kiteKey: false });
  const metrics = async () =>
    await (await fetch(`http://127.0.0.1:${info.port}/kite/metrics`)).text();
  try {
    const baseline = residentBytes(server.pid);
    // Heads past the per-address limit are refused at once; the rest get
    // their deadline.
    assertEquals(await next(out), {
      halfHeads: {
        "HTTP/1.1 503 Service Unavailable": 4,
        "HTTP/1.1 408 Request Timeout": LIMIT,
      },
    });
    assertEquals(await next(out), {
      oversize: "HTTP/1.1 431 Request Header Fields Too Large",
    });
    const slow = await next(out);
    assertEquals(slow.slowloris, "HTTP/1.1 408 Request Timeout");
    assertEquals(await next(out), { malformed: "HTTP/1.1 400 Bad Request" });
    assertEquals(await next(out), { stalled: true });
    // The kite floods a reader that stopped: the proxy holds one buffer,
    // the kernel's socket buffers push back, and the stalled write ends
    // that splice (and gives back its slots).
    let peak = 0;
    await eventually(
      async () => {
        peak = Math.max(peak, residentBytes(server.pid));
        return (await metrics()).includes(
          `kite_proxy_kite_open{kite="${info.floodId}"} 0\n`,
        );
      },
      "the stalled splice to be closed",
      20_000,
    );
    assert(
      peak - baseline < 48 << 20,
      `the proxy grew by ${peak - baseline} bytes while the kite flooded`,
    );
    const writer = attacker.stdin.getWriter();
    await writer.write(new TextEncoder().encode("drain\n"));
    await writer.close();
    const { drained } = await next(out) as {
      drained: { bytes: number; closed: boolean };
    };
    assert(drained.closed, "the proxy closed the stalled connection");
    assert(drained.bytes < 64 << 20, `${drained.bytes} bytes were in flight`);
    // Counted: what the kite sent went through (at least the kernel's share).
    assert(
      /kite_proxy_bytes_total\{direction="to_caller"\} [1-9]/.test(
        await metrics(),
      ),
    );
    // …and the proxy serves a caller from the same address.
    const client = caller.newClient(info.mathURL);
    await client.dial();
    assertEquals(await client.tell("square", 3), 9);
    client.close();
  } finally {
    await caller.close();
    for (const child of [attacker, server, flood]) {
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
      await child.status;
    }
    for (const stream of [attacker.stdout, server.stdout, flood.stdout]) {
      await stream.cancel().catch(() => {});
    }
  }
});

Deno.test("proxy front: on a keep-alive connection a later head gets the same deadline, an idle connection is closed, and a later upgrade is spliced to the kite", async () => {
  const server = spawn("proxy_front_server.ts", [
    String(LIMIT),
    String(TIMEOUT_MS),
    "http://127.0.0.1:1/",
  ]);
  const info = await next(lines(server.stdout)) as { mathURL: string };
  const { port } = new URL(info.mathURL);
  const attacker = spawn("proxy_front_attacker.ts", [
    "keepalive",
    port,
    new URL(info.mathURL).pathname,
  ]);
  const out = lines(attacker.stdout);
  const caller = new Kite("caller", "1.0.0", { env: false, kiteKey: false });
  try {
    // Deno.serve waits for a second head as long as it trickles in: the
    // front answers 408 at its deadline (the attacker gives up at 10 s).
    const { slowSecond } = await next(out) as {
      slowSecond: { first: string; second: string; sent: number };
    };
    assertEquals(slowSecond.first, "HTTP/1.1 200 OK");
    assertEquals(slowSecond.second, "HTTP/1.1 408 Request Timeout");
    // A connection that sends nothing after its answer is closed, not held.
    assertEquals(await next(out), {
      idle: { first: "HTTP/1.1 200 OK", then: "<closed without an answer>" },
    });
    // An upgrade after a plain request reaches the kite byte for byte (a
    // binary frame is the kite's to judge; the message relay refuses it
    // with 4003).
    const { laterUpgrade } = await next(out) as {
      laterUpgrade: {
        first: string;
        upgraded: string;
        reply: { opcode: number; text?: string };
      };
    };
    assertEquals(laterUpgrade.first, "HTTP/1.1 200 OK");
    assertEquals(laterUpgrade.upgraded, "HTTP/1.1 101 Switching Protocols");
    assertEquals(laterUpgrade.reply.opcode, 1, JSON.stringify(laterUpgrade));
    // XHR polling, which keeps its connections alive, is served throughout.
    const client = caller.newClient(info.mathURL, {
      transport: "xhr-polling",
    });
    await client.dial();
    for (let i = 0; i < 5; i++) {
      assertEquals(await client.tell("square", i), i * i);
    }
    client.close();
  } finally {
    await caller.close();
    for (const child of [attacker, server]) {
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
      await child.status;
    }
    for (const stream of [attacker.stdout, server.stdout]) {
      await stream.cancel().catch(() => {});
    }
  }
});

Deno.test("proxy front: out of file descriptors it says what to do, keeps what it serves, and accepts again once they come back", async () => {
  const flood = spawn("proxy_front_attacker.ts", ["flood-kite"]);
  const { port: floodPort } = await next(lines(flood.stdout));
  const server = spawn(
    "proxy_front_server.ts",
    [
      "1000",
      String(TIMEOUT_MS),
      `http://127.0.0.1:${floodPort}/`,
    ],
    false,
    200,
  );
  const info = await next(lines(server.stdout)) as {
    port: number;
    mathURL: string;
  };
  const stderr = server.stderr.pipeThrough(new TextDecoderStream());
  let errors = "";
  const reading = stderr.pipeTo(
    new WritableStream({ write: (chunk) => void (errors += chunk) }),
  ).catch(() => {});
  const caller = new Kite("caller", "1.0.0", { env: false, kiteKey: false });
  const held: Deno.Conn[] = [];
  try {
    // A caller connected before the flood of connections.
    const before = caller.newClient(info.mathURL);
    await before.dial();
    // More connections than the proxy has descriptors for (head deadlines
    // would free them; they are closed here first).
    for (let i = 0; i < 300; i++) {
      held.push(await Deno.connect({ hostname: "127.0.0.1", port: info.port }));
    }
    await eventually(
      () => /Too many open files[^]*raise the limit \(ulimit -n/.test(errors),
      "the proxy to report running out of descriptors",
      10_000,
    );
    assertEquals(await before.tell("square", 4), 16);
    for (const conn of held.splice(0)) conn.close();
    await eventually(
      async () => {
        try {
          const res = await fetch(`${info.mathURL}/info`);
          await res.body?.cancel();
          return res.status === 200;
        } catch {
          return false;
        }
      },
      "the proxy to accept again",
      20_000,
    );
    before.close();
  } finally {
    for (const conn of held) conn.close();
    await caller.close();
    for (const child of [server, flood]) {
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
      await child.status;
    }
    await reading;
    for (const stream of [server.stdout, flood.stdout]) {
      await stream.cancel().catch(() => {});
    }
  }
});
