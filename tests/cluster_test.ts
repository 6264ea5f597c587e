/**
 * One kite on two processes behind one port (`reusePort` + `cluster`):
 * clients over every transport get answers, sessions land on both
 * processes, and an XHR session whose requests reach the other process
 * still works (they are passed to the owner).
 */
import { Kite } from "../mod.ts";
import type { ClientTransport } from "../kite/transport/sockets/deno_dial.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { MemoryLogger } from "./helpers/kite_harness.ts";
import { type Cluster, startCluster } from "./helpers/cluster_members.ts";
import { ownerOf } from "../kite/serve/cluster.ts";
import { runDeno } from "./helpers/deno_run.ts";

Deno.test("a kite on 2 processes behind one port serves every transport; XHR sessions reach their owner", async () => {
  const caller = new Kite("caller", "1.0.0", {
    env: false,
    kiteKey: false,
    logger: new MemoryLogger(),
  });
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster(2);
    const { port, members } = cluster;
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
    await cluster?.stop();
  }
});

Deno.test("an outside peer cannot claim other addresses on a cluster's private port: per-address limits count its real one", async () => {
  const caller = new Kite("caller", "1.0.0", {
    env: false,
    kiteKey: false,
    logger: new MemoryLogger(),
  });
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster(2);
    // The members' default limit: 100 XHR sessions per address.
    const attack = await runDeno([
      "run",
      "--allow-net=127.0.0.1",
      "tests/fixtures/cluster_attacker.ts",
      String(cluster.port),
      String(cluster.basePort),
      "110",
    ]);
    assertEquals(attack.code, 0, attack.stderr);
    const seen = JSON.parse(attack.stdout);
    assertEquals(seen.privateNoSecret, { 403: 110 }, "no secret: refused");
    assertEquals(seen.privateGuessed, { 403: 110 }, "a wrong secret: refused");
    assertEquals(
      seen.public,
      { 200: 100, 503: 10 },
      "claimed addresses are ignored: 100 sessions for 127.0.0.1, no more",
    );
    assert(
      seen.refusal.includes("127.0.0.1") &&
        seen.refusal.includes("maxXhrSessionsPerAddress"),
      seen.refusal,
    );
    // The cluster still serves (over WebSocket: 127.0.0.1 is at its XHR cap).
    for (let c = 0; c < 4; c++) {
      const client = caller.newClient(
        `http://127.0.0.1:${cluster.port}/kite`,
        { transport: "websocket" },
      );
      await client.dial();
      assertEquals(await client.tellWithTimeout("square", 5_000, 7), 49);
      client.close();
    }
  } finally {
    await caller.close();
    await cluster?.stop();
  }
});
