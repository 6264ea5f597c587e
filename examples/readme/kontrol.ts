import { Kite } from "jsr:@kite/core";

// Both kites read $KITE_HOME/kite.key (default ~/.kite/kite.key): it names
// the user, the Kontrol to register with, and the Kontrol key to trust.
const caller = new Kite("caller", "1.0.0");
const math = new Kite("math", "1.0.0");
math.handle("square", (r) => r.args.one().number() ** 2);

// A query names fields from the most general on (username, environment,
// name, version, region, hostname, id), without gaps. The environment is
// KITE_ENVIRONMENT, "unknown" when it is not set.
const query = {
  username: math.identity.username,
  environment: math.identity.environment,
  name: "math",
};
const stopWatching = await caller.watchKites(query, (e) => {
  console.log("watch:", e.action, e.kite.name, e.kite.id);
});

await math.serve({ port: 0 });
await math.registerForever(); // registers again whenever Kontrol comes back

const found = await caller.getKites(query);
if (found.length === 0) {
  throw new Error(`no kite matches ${JSON.stringify(query)}`);
}
const [first] = found;
await first.client.dial(); // carries a token from Kontrol, renewed before it expires
console.log(
  "found",
  first.url,
  "square(4) =",
  await first.client.tell("square", 4),
);

await math.close(); // Kontrol deregisters it at once: the watch sees DEREGISTER
await new Promise((resolve) => setTimeout(resolve, 500));
await stopWatching();
await caller.close();
