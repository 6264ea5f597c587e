import { Kite } from "jsr:@kite/core";

// Every math kite the query matches, kept current by a Kontrol watch.
const me = new Kite("caller", "1.0.0");
const math = me.pool(
  {
    username: me.config.username,
    environment: me.config.environment,
    name: "math",
  },
  {
    idempotent: ["square"], // may run twice: retried elsewhere after a drop
    fallbacks: { square: ([n]) => (n as number) ** 2 }, // when no instance can
  },
);
console.log(await math.tellWithTimeout("square", 1_000, 4)); // 16
const r = await math.call("square", [5], { timeoutMs: 1_000 });
console.log(r.result, r.degraded, r.instance?.url); // 25 false http://…/kite
console.log(math.instances.map((i) => `${i.url} ${i.breaker}`));
math.onEvent((e) => console.log(e.type)); // add, remove, breaker, retry, degraded…
await me.close(); // closes the pool too
