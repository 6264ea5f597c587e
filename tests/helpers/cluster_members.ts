/**
 * Members of the cluster example (examples/cluster/server.ts), one
 * process each, for tests and benchmarks.
 *
 * @module
 */
import { spawnDeno } from "./processes.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** A running member of examples/cluster/server.ts. */
export interface ClusterMember {
  child: Deno.ChildProcess;
  pid: number;
}

/**
 * Starts member `index` of `size` of the cluster example on `port`
 * (private ports from `basePort`); resolves once it serves.
 */
export async function startClusterMember(
  index: number,
  size: number,
  port: number,
  basePort: number,
): Promise<ClusterMember> {
  const { child, ready } = await spawnDeno(
    [
      "run",
      "--unstable-net",
      "--allow-all",
      `${ROOT}examples/cluster/server.ts`,
    ],
    {
      CLUSTER_INDEX: String(index),
      CLUSTER_SIZE: String(size),
      CLUSTER_BASE_PORT: String(basePort),
      KITE_PORT: String(port),
      KITE_IP: "127.0.0.1",
      KITE_LOG_LEVEL: "ERROR",
    },
    { ready: /^ready \d+ (\d+) /, what: `cluster member ${index}` },
  );
  return { child, pid: Number(ready[1]) };
}
