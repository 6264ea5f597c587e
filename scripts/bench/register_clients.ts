/**
 * Child process of the Kontrol memory benchmark: `N` kites, each on its own
 * connection, register with the Kontrol at `KONTROL_URL` using the kite.key
 * in `BENCH_KITE_KEY`, print `{"registered":n,"failed":m}` and stay
 * registered until stdin closes.
 *
 *     deno run --allow-net=127.0.0.1 --allow-env register_clients.ts N KONTROL_URL
 *
 * @module
 */
import { Kite } from "../../mod.ts";

const n = Number(Deno.args[0]);
const kontrolURL = Deno.args[1];
const kiteKey = Deno.env.get("BENCH_KITE_KEY") ?? "";
const CONCURRENCY = 32;

const kites: Kite[] = [];
let failed = 0;
let next = 0;
await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
  while (next < n) {
    const i = next++;
    const kite = new Kite(`reg${i}`, "1.0.0", {
      env: false,
      kiteKey,
      config: {
        logLevel: "ERROR",
        environment: "bench",
        region: "local",
        hostname: "localhost",
        kontrolURL,
      },
    });
    try {
      await kite.register(`http://10.0.0.2:${2000 + (i % 60000)}/kite`);
      kites.push(kite);
    } catch (err) {
      if (failed++ === 0) console.error(`register failed: ${err}`);
      await kite.close();
    }
  }
}));
console.log(JSON.stringify({ registered: kites.length, failed }));

for await (const _ of Deno.stdin.readable) { /* hold until stdin closes */ }
await Promise.all(kites.map((k) => k.close()));
