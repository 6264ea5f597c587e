import { Kite, KiteError } from "jsr:@kite/core";

// A kite with three methods. Authentication is on by default; this one turns
// it off for everyone, so callers need no kite.key.
const math = new Kite("math", "1.0.0", {
  config: { disableAuthentication: true },
});
math.handle("square", (r) => r.args.one().number() ** 2);
math.handle("squareCb", (r) => {
  const [n, callback] = r.args.sliceOfLength(2);
  callback.func()(n.number() ** 2); // calls back across the wire
  return n.number() ** 2;
});
math.handle("slow", async () => {
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  return "done";
});
// Port 0 picks a free port; the URL says which.
const { url } = await math.serve({ port: 0, hostname: "127.0.0.1" });
console.log("math kite at", url); // http://127.0.0.1:<port>/kite

// Another kite calling it.
const me = new Kite("caller", "1.0.0");
const client = me.newClient(url);
await client.dial(); // or dialForever(): reconnects with backoff
console.log("square(4) =", await client.tell("square", 4)); // 16
await client.tell("squareCb", 5, (n: number) => console.log("called back", n));
console.log(await client.tellWithTimeout("square", 1_000, 3)); // 9, within 1 s
try {
  await client.tellWithTimeout("slow", 500); // no answer within 0.5 s
} catch (err) {
  console.log((err as KiteError).type); // "timeout"
}
try {
  await client.tell("square", "four");
} catch (err) {
  console.log((err as KiteError).type, (err as KiteError).message); // argumentError …
}

client.close();
await me.close();
await math.close();
