/**
 * One kite on every core behind one port: the launcher starts N processes
 * (default: one per core) that all listen on `KITE_PORT` (default 3636)
 * with `reusePort`, and pass XHR sessions to the process that owns them
 * over 127.0.0.1 ports from `CLUSTER_BASE_PORT` (default port + 1),
 * which answer only requests carrying the secret the launcher made for
 * this cluster (`CLUSTER_SECRET`). Every transport works on every process.
 * Each member answers `square` and `pid` (its process id).
 *
 *     deno task cluster:math [N]
 *
 * @module
 */
import { mathKite } from "../math/server.ts";

const port = Number(Deno.env.get("KITE_PORT") || 3636);
const basePort = Number(Deno.env.get("CLUSTER_BASE_PORT") || port + 1);
const member = Deno.env.get("CLUSTER_INDEX");

if (member === undefined) {
  const size = Number(Deno.args[0] ?? navigator.hardwareConcurrency);
  // Only this launcher's children learn it (through their environment).
  const secret = Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const children = Array.from(
    { length: size },
    (_, i) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", ...permissions(), new URL(import.meta.url).pathname],
        env: {
          CLUSTER_INDEX: String(i),
          CLUSTER_SIZE: String(size),
          CLUSTER_BASE_PORT: String(basePort),
          CLUSTER_SECRET: secret,
          KITE_PORT: String(port),
        },
      }).spawn(),
  );
  const stop = () => children.forEach((c) => c.kill("SIGTERM"));
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await Promise.all(children.map((c) => c.status));
} else {
  const kite = mathKite();
  kite.handle("pid", () => Deno.pid);
  await kite.serve({
    port,
    hostname: kite.config.ip,
    reusePort: true,
    cluster: {
      index: Number(member),
      size: Number(Deno.env.get("CLUSTER_SIZE")),
      basePort,
      secret: Deno.env.get("CLUSTER_SECRET") ?? "",
    },
    quiet: true,
  });
  console.log(`ready ${member} ${Deno.pid} ${kite.url}`);
}

function permissions(): string[] {
  // SO_REUSEPORT is behind --unstable-net in Deno 2.
  return [
    "--unstable-net",
    "--allow-net",
    "--allow-env",
    "--allow-sys",
    "--allow-read",
  ];
}
