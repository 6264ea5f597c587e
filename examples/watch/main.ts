/**
 * Prints kites of the current user coming and going, until Ctrl-C.
 *
 *     deno task example:watch
 *
 * @module
 */
import { Kite, kiteToString } from "../../mod.ts";

const kite = new Kite("watch", "1.0.0");
const cancel = await kite.watchKites(
  { username: kite.config.username },
  (event) => {
    console.log(
      `${event.action.padEnd(10)} ${kiteToString(event.kite)} ${
        event.url ?? ""
      }`,
    );
  },
);
console.log(`watching kites of ${kite.config.username}`);
Deno.addSignalListener("SIGINT", async () => {
  await cancel();
  await kite.close();
  Deno.exit(0);
});
