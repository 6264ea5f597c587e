/**
 * One kite on one process against the same kite on N processes behind
 * one port (`serve({ reusePort, cluster })`): calls per second from
 * clients in this process, 100 in flight over 10 WebSocket connections,
 * and over XHR polling (whose sessions the members pass to their owner).
 * On a 2-core machine the clients share the cores with the servers, so
 * the client side is the limit there; the ratio means something on a
 * host with cores to spare.
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import type { ClientTransport } from "../../kite/transport/sockets/deno_dial.ts";
import { startCluster } from "../../tests/helpers/cluster_members.ts";
import { median, round } from "./stats.ts";

/** One row: calls/s through 1 and through N processes. */
export interface ClusterResult {
  transport: string;
  processes: number;
  "1 process calls/s": number;
  "N processes calls/s": number;
  "N × 1": number;
}

async function rate(
  kite: Kite,
  url: string,
  transport: ClientTransport,
  ms: number,
): Promise<number> {
  const clients = Array.from(
    { length: 10 },
    () => kite.newClient(url, { transport }),
  );
  await Promise.all(clients.map((c) => c.dial()));
  let n = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  await Promise.all(
    clients.flatMap((c) =>
      Array.from({ length: 10 }, async () => {
        while (performance.now() < end) {
          await c.tell("square", 3);
          n++;
        }
      })
    ),
  );
  const perSec = n / ((performance.now() - start) / 1000);
  for (const c of clients) c.close();
  return perSec;
}

/** Calls/s through one process and through `size` processes, `rounds` each. */
export async function benchCluster(
  size: number,
  rounds: number,
  ms: number,
): Promise<ClusterResult[]> {
  const kite = new Kite("bench-client", "1.0.0", {
    env: false,
    kiteKey: false,
    config: { logLevel: "FATAL" },
  });
  const rows: ClusterResult[] = [];
  try {
    for (const transport of ["websocket", "xhr-polling"] as const) {
      const one: number[] = [];
      const many: number[] = [];
      for (const [n, into] of [[1, one], [size, many]] as const) {
        const cluster = await startCluster(n);
        try {
          const url = `http://127.0.0.1:${cluster.port}/kite`;
          await rate(kite, url, transport, 200); // warm up
          for (let r = 0; r < rounds; r++) {
            into.push(await rate(kite, url, transport, ms));
          }
        } finally {
          await cluster.stop();
        }
      }
      rows.push({
        transport,
        processes: size,
        "1 process calls/s": round(median(one)),
        "N processes calls/s": round(median(many)),
        "N × 1": round(median(many) / median(one), 2),
      });
    }
  } finally {
    await kite.close();
  }
  return rows;
}

if (import.meta.main) {
  console.table(await benchCluster(2, 2, 500));
}
