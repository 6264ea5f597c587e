/**
 * One kite on two processes behind one port (`reusePort` + `cluster`):
 * clients over every transport get answers, sessions land on both
 * processes, and an XHR session whose requests reach the other process
 * still works (they are passed to the owner).
 */
import { Kite } from "../mod.ts";
import type { ClientTransport } from "../kite/transport/sockets/deno_dial.ts";
import { assertEquals } from "./helpers/assert.ts";
import { MemoryLogger } from "./helpers/kite_harness.ts";
import { type Cluster, startCluster } from "./helpers/cluster_members.ts";
import { ownerOf } from "../kite/serve/cluster.ts";

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
