/**
 * Finds the math kite through Kontrol and calls it with the token Kontrol
 * issued.
 *
 *     deno task example:query
 *
 * @module
 */
import { Kite } from "../../mod.ts";

const kite = new Kite("query", "1.0.0");
const username = kite.config.username;
const found = await kite.getKites({
  username,
  environment: kite.config.environment,
  name: "math",
});
if (found.length === 0) {
  console.log(`no math kite registered for ${username} yet`);
} else {
  const [math] = found;
  await math.client.dial();
  console.log(
    `found math kite ${math.kite.id} at ${math.url}: square(7) = ${await math
      .client.tell("square", 7)}`,
  );
}
await kite.close();
