/**
 * A soak server in its own process, so that its memory can be measured
 * and it can be killed mid-call:
 *
 *     deno run … scripts/soak/child.ts kite --port 0
 *     deno run … scripts/soak/child.ts kontrol --port 0 --data <dir>
 *
 * Prints one JSON line `{"ready":true,"port":…}` on stdout once serving.
 * Besides its usual methods it serves `soak.stats` (and, for Kontrol,
 * `soak.kiteKey` and `soak.registered`) without authentication: it is test
 * scaffolding that listens on 127.0.0.1 only.
 *
 * @module
 */
import { mathKite } from "../../examples/math/server.ts";
import { startKontrol } from "../../kontrol/main.ts";
import { readSettings } from "../../kontrol/settings.ts";
import type { Kite } from "../../mod.ts";
import { kiteStats } from "./stats.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : fallback;
}

const mode = Deno.args[0];
const port = Number(arg("port", "0"));
let kite: Kite;
if (mode === "kite") {
  kite = mathKite({
    env: false,
    kiteKey: false,
    // Every soak client dials from 127.0.0.1.
    config: {
      ip: "127.0.0.1",
      port,
      logLevel: "FATAL",
      maxConnectionsPerAddress: 1_000_000,
    },
  });
  await kite.serve({ hostname: "127.0.0.1", port });
} else if (mode === "kontrol") {
  const data = arg("data", "");
  if (!data) throw new Error("kontrol mode needs --data <dir>");
  const settings = readSettings([
    "--storage",
    "kv",
    "--data",
    data,
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--kontrolurl",
    `http://127.0.0.1:${port}/kite`,
  ], () => undefined);
  // startKontrol prints a line of its own; ours is the JSON one.
  const kontrol = await startKontrol(settings);
  kite = kontrol.kite;
  kite.handle("soak.kiteKey", (r) => kontrol.signKiteKey(r.args.one().string()))
    .disableAuthentication();
  kite.handle("soak.registered", (r) => {
    const ids = r.args.one().slice().map((a) => a.string());
    return ids.filter((id) => kontrol.registry.has(id)).length;
  }).disableAuthentication();
} else {
  throw new Error(`usage: child.ts kite|kontrol --port <n> [--data <dir>]`);
}
kite.handle(
  "soak.stats",
  (r) => kiteStats(kite, r.client, r.args.at(0).raw === true),
)
  .disableAuthentication();
console.log(JSON.stringify({ ready: true, port: kite.port }));
