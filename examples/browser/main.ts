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
import { readBrowserBuild } from "./serve_page.ts";
import { browserExampleKite } from "./server.ts";

const build = await readBrowserBuild(["kite.browser.js"]);
const kite = await browserExampleKite({ bundle: build["kite.browser.js"] });
const { url } = await kite.serve({
  port: configFromEnv().port ?? 3640,
  hostname: "127.0.0.1",
  quiet: true,
});
console.log(`open ${new URL("/", url).href} in a browser (Ctrl-C stops)`);
