/**
 * A TCP proxy on 127.0.0.1 that can cut its connections with a reset (RST),
 * the way a crashing or restarting database server does on a loaded
 * machine. Killing a server mostly closes sockets cleanly (FIN); whether a
 * client instead sees `ECONNRESET` depends on timing, so tests that must see
 * it go through this proxy.
 *
 * Uses `node:net` because `Deno.Conn` cannot send a reset.
 *
 * @module
 */
import net from "node:net";

/** A running {@linkcode startResetProxy}. */
export interface ResetProxy {
  /** `127.0.0.1:<port>` to give clients instead of the target. */
  hostPort: string;
  /** Its port. */
  port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections cut with a reset so far. */
  readonly resets: number;
  /** Resets every open connection now. */
  resetAll(): void;
  /**
   * While on, connection number `i` is reset when its client sends its
   * `(i % cycle) + 1`-th chunk, before that chunk is forwarded: across a few
   * connections every step of a driver's handshake and first queries is cut.
   */
  chaos(on: boolean, cycle?: number): void;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Starts a proxy from a free 127.0.0.1 port to `target` (`host:port`). */
export async function startResetProxy(target: string): Promise<ResetProxy> {
  const at = target.lastIndexOf(":");
  const host = target.slice(0, at);
  const targetPort = Number(target.slice(at + 1));
  const open = new Set<net.Socket>();
  let accepted = 0;
  let resets = 0;
  let chaosCycle = 0;
  const reset = (client: net.Socket, server: net.Socket) => {
    if (client.destroyed) return;
    resets++;
    client.resetAndDestroy();
    server.destroy();
  };
  const server = net.createServer((client) => {
    const index = accepted++;
    const upstream = net.connect(targetPort, host);
    open.add(client);
    let chunks = 0;
    client.on("data", (data) => {
      chunks++;
      if (chaosCycle > 0 && chunks === (index % chaosCycle) + 1) {
        reset(client, upstream);
        return;
      }
      upstream.write(data);
    });
    upstream.on("data", (data) => client.write(data));
    // Either side gone: the other goes too (errors end the pair, nothing more).
    const end = () => {
      open.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    hostPort: `127.0.0.1:${port}`,
    port,
    get accepted() {
      return accepted;
    },
    get resets() {
      return resets;
    },
    resetAll() {
      for (const client of [...open]) {
        resets++;
        client.resetAndDestroy();
      }
    },
    chaos(on, cycle = 8) {
      chaosCycle = on ? cycle : 0;
    },
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const client of [...open]) client.destroy();
      await closed;
    },
  };
}
