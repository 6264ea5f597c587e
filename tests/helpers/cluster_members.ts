/**
 * Members of the cluster example (examples/cluster/server.ts), one
 * process each, for tests and benchmarks.
 *
 * @module
 */
import { spawnDeno } from "./processes.ts";
import { freePort } from "./wait.ts";

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
  secret: string,
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
      CLUSTER_SECRET: secret,
      KITE_PORT: String(port),
      KITE_IP: "127.0.0.1",
      KITE_LOG_LEVEL: "ERROR",
    },
    { ready: /^ready \d+ (\d+) /, what: `cluster member ${index}` },
  );
  return { child, pid: Number(ready[1]) };
}

/** A running cluster: its public port and members. */
export interface Cluster {
  port: number;
  /** Member `i`'s private port is `basePort + i`. */
  basePort: number;
  /** The secret the members share. */
  secret: string;
  members: ClusterMember[];
  /** SIGTERM to every member, by pid; waits for them. */
  stop(): Promise<void>;
}

/**
 * Starts `size` members on a free port with free private ports; tries
 * fresh ports up to 3 times, since a port found free may be taken by
 * another process before a member binds it.
 */
export async function startCluster(size: number): Promise<Cluster> {
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    let basePort = freePort();
    // freePort() may hand out the same port twice.
    while (basePort <= port && basePort + size > port) basePort = freePort();
    const secret = crypto.randomUUID().replaceAll("-", "");
    const members: ClusterMember[] = [];
    const stop = async () => {
      for (const m of members) {
        try {
          m.child.kill("SIGTERM");
        } catch { /* exited already */ }
        await m.child.status;
      }
    };
    try {
      for (let i = 0; i < size; i++) {
        members.push(
          await startClusterMember(i, size, port, basePort, secret),
        );
      }
      return { port, basePort, secret, members, stop };
    } catch (err) {
      await stop();
      if (attempt >= 3) throw err;
    }
  }
}
