/**
 * Both directions on one connection: the client kite serves `greet`, and
 * the server's `hello` handler calls it back on the caller before answering.
 *
 *     deno task example:bidirectional
 *
 * @module
 */
import { Kite } from "../../mod.ts";

const server = new Kite("greeter", "1.0.0", {
  config: { disableAuthentication: true },
});
server.handle("hello", async (r) => {
  const name = await r.client.tell("whoAreYou");
  return `hello ${name}, you are ${r.remoteKite.name}`;
});
await server.serve({ port: 0, hostname: "127.0.0.1" });

const client = new Kite("visitor", "1.0.0");
// Calls arriving on a connection we dialed are not authenticated (docs/protocol.md §6.9).
client.handle("whoAreYou", () => "Ada");
const conn = client.newClient(server.url);
await conn.dial();
console.log(await conn.tell("hello"));
await client.close();
await server.close();
