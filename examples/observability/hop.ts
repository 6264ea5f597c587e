/**
 * One hop of the observability example: a kite whose `relay` method
 * answers its own name, after the names of the kites behind it (`next`).
 * Metrics and tracing are on in code; the handler knows nothing of them.
 *
 *     deno run --allow-net --allow-env --allow-sys --allow-read \
 *       examples/observability/hop.ts <name> [next-kite-url]
 *
 * Prints `<name> serving <url>` once it listens.
 *
 * @module
 */
import { Kite } from "../../mod.ts";

const [name = "hop", next] = Deno.args;
const kite = new Kite(name, "1.0.0", {
  config: { disableAuthentication: true, metrics: true, tracing: true },
});
const downstream = next ? kite.newClient(next) : undefined;
kite.handle("relay", async (r) => {
  r.log.debug("relaying", { next: next ?? null });
  // A caller may pass a function: it hears which hop its call reached.
  const [onHop] = r.args.raw as unknown[];
  if (typeof onHop === "function") onHop(name);
  const behind = downstream ? await downstream.tell("relay") as string[] : [];
  return [name, ...behind];
});
await downstream?.dial();
const { url } = await kite.serve({
  hostname: "127.0.0.1",
  port: Number(Deno.env.get("HOP_PORT") ?? 0),
  quiet: true,
});
console.log(`${name} serving ${url}`);
