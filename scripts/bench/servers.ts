/**
 * Benchmark servers, one per process so client and server each get a core:
 * `raw` (a plain Deno.serve WebSocket JSON echo: the floor) and `kite`
 * (the math kite). Prints `{"port":N}` once listening.
 *
 * @module
 */
import { mathKite } from "../../examples/math/server.ts";

const mode = Deno.args[0];
if (mode === "raw") {
  const server = Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen: () => {},
  }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      socket.send(JSON.stringify({ id: msg.id, result: msg.n * msg.n }));
    };
    return response;
  });
  console.log(JSON.stringify({ port: server.addr.port }));
} else if (mode === "kite") {
  const kite = mathKite();
  await kite.serve({ port: 0, hostname: "127.0.0.1" });
  console.log(JSON.stringify({ port: kite.port }));
} else {
  console.error("usage: servers.ts raw|kite");
  Deno.exit(2);
}
