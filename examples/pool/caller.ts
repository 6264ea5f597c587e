/**
 * Calls the math service through a pool, 20 calls in flight, and prints
 * once a second how many calls succeeded, failed and which instance
 * answered them, plus what the pool saw happen. Kill an instance and the
 * calls carry on.
 *
 *     deno task pool:caller [seconds]
 *
 * @module
 */
import { Kite } from "../../mod.ts";

const seconds = Number(Deno.args[0] ?? 0);
const kite = new Kite("pool-caller", "1.0.0");
const math = kite.pool(
  {
    username: kite.config.username,
    environment: kite.config.environment,
    name: "math",
  },
  { idempotent: ["square"] },
);
math.onEvent((e) => {
  if (e.type === "add" || e.type === "remove") {
    console.log(
      `${e.type} ${e.instance.url}${"reason" in e ? ` (${e.reason})` : ""}`,
    );
  } else if (e.type === "breaker") {
    console.log(`breaker ${e.state} on ${e.instance.url}`);
  }
});
await math.ready;
console.log(`pool sees ${math.instances.length} math instances`);

let ok = 0;
let failed = 0;
let total = 0;
let totalFailed = 0;
const byInstance = new Map<string, number>();
let running = true;
const worker = async () => {
  for (let n = 0; running; n++) {
    try {
      const r = await math.call("square", [n], { timeoutMs: 2_000 });
      ok++;
      const port = new URL(r.instance!.url).port;
      byInstance.set(port, (byInstance.get(port) ?? 0) + 1);
    } catch (err) {
      failed++;
      console.log(`call failed: ${(err as Error).message}`);
    }
  }
};
const workers = Array.from({ length: 20 }, worker);
const started = Date.now();
const ticker = setInterval(() => {
  const spread = [...byInstance].map(([port, n]) => `:${port}=${n}`).join(" ");
  console.log(`${ok} ok, ${failed} failed in the last second; ${spread}`);
  total += ok;
  totalFailed += failed;
  ok = failed = 0;
  byInstance.clear();
  if (seconds > 0 && Date.now() - started >= seconds * 1000) running = false;
}, 1_000);
await Promise.all(workers);
clearInterval(ticker);
console.log(`done: ${total + ok} calls, ${totalFailed + failed} failed`);
await kite.close();
Deno.exit(totalFailed + failed === 0 ? 0 : 1);
