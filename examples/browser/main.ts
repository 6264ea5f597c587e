/**
 * A web page that is a kite: `deno task example:browser` builds the
 * browser bundle, starts a Deno kite that serves the page, and prints the
 * URL to open. The page serves `log` and `alert`; the Deno kite calls them.
 *
 *     deno task example:browser
 *
 * @module
 */
import { configFromEnv } from "../../mod.ts";
import { browserExampleKite } from "./server.ts";

const BUNDLE = "dist/kite.browser.js";
let bundle: string;
try {
  bundle = await Deno.readTextFile(BUNDLE);
} catch {
  console.error(`${BUNDLE} is missing: run \`deno task build:browser\` first`);
  Deno.exit(1);
}
const kite = await browserExampleKite({ bundle });
const { url } = await kite.serve({
  port: configFromEnv().port ?? 3640,
  hostname: "127.0.0.1",
  quiet: true,
});
console.log(`open ${new URL("/", url).href} in a browser (Ctrl-C stops)`);
