/**
 * One kite on two processes behind one port (`reusePort` + `cluster`):
 * clients over every transport get answers, sessions land on both
 * processes, and an XHR session whose requests reach the other process
 * still works (they are passed to the owner). Without `cluster`, XHR
 * sessions split across processes fail.
 */
import { Kite } from "../mod.ts";
import type { ClientTransport } from "../kite/transport/dial.ts";
import { assertEquals } from "./helpers/assert.ts";
import { MemoryLogger, within } from "./helpers/kite_harness.ts";
import { freePort } from "./helpers/wait.ts";
import { childEnv, lines } from "./helpers/processes.ts";
import { ownerOf } from "../kite/serve/cluster.ts";

const ROOT = new URL("..", import.meta.url).pathname;

interface Member {
  child: Deno.ChildProcess;
  pid: number;
}

async function startMember(
  index: number,
  size: number,
  port: number,
  basePort: number,
): Promise<Member> {
  const env = childEnv({
    CLUSTER_INDEX: String(index),
    CLUSTER_SIZE: String(size),
    CLUSTER_BASE_PORT: String(basePort),
    KITE_PORT: String(port),
    KITE_IP: "127.0.0.1",
    KITE_LOG_LEVEL: "ERROR",
  });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-net",
      "--allow-all",
      `${ROOT}examples/cluster/server.ts`,
    ],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = lines(child.stdout);
  const pid = await within(
    (async () => {
      for await (const line of out) {
        const m = /^ready \d+ (\d+) /.exec(line);
        if (m) return Number(m[1]);
      }
      throw new Error("cluster member exited before it was ready");
    })(),
    `cluster member ${index}`,
    30_000,
  );
  void (async () => {
    for await (const _ of out) { /* drain */ }
  })();
  return { child, pid };
}

Deno.test("a kite on 2 processes behind one port serves every transport; XHR sessions reach their owner", async () => {
  const port = freePort();
  let basePort = freePort();
  if (basePort === port || basePort + 1 === port) basePort = port + 10;
  const members: Member[] = [];
  const caller = new Kite("caller", "1.0.0", {
    env: false,
    kiteKey: false,
    logger: new MemoryLogger(),
  });
  try {
    members.push(await startMember(0, 2, port, basePort));
    members.push(await startMember(1, 2, port, basePort));
    const pids = new Set<number>();
    const transports: ClientTransport[] = [
      "websocket",
      "raw-websocket",
      "xhr-polling",
    ];
    for (const transport of transports) {
      for (let c = 0; c < 8; c++) {
        const client = caller.newClient(`http://127.0.0.1:${port}/kite`, {
          transport,
        });
        await client.dial();
        // Every call of a session answered by the one process that holds it.
        const seen = new Set<unknown>();
        for (let i = 0; i < 5; i++) {
          assertEquals(await client.tellWithTimeout("square", 5_000, i), i * i);
          seen.add(await client.tellWithTimeout("pid", 5_000));
        }
        assertEquals(seen.size, 1, `${transport}: one session, one process`);
        const [pid] = seen;
        pids.add(pid as number);
        if (transport === "xhr-polling") {
          const id = client.session!.id;
          assertEquals(
            pid,
            members[ownerOf(id, 2)].pid,
            "the owner by session id",
          );
        }
        client.close();
      }
    }
    assertEquals(pids.size, 2, "sessions on both processes");
  } finally {
    await caller.close();
    for (const m of members) {
      m.child.kill("SIGTERM");
      await m.child.status;
    }
  }
});
