/**
 * The calculator contract in a web page: `deno task contracts:browser`
 * builds the browser bundles, starts the calculator kite, which also
 * serves the page (`page.html`, script `page.ts`), and prints the URL to
 * open. The page calls the kite through the same `contract.ts` the Deno
 * client imports.
 *
 *     deno task contracts:browser
 *
 * @module
 */
import type { KiteOptions } from "../../mod.ts";
import type { Kite } from "../../mod.ts";
import { readBrowserBuild, servePage } from "../browser/serve_page.ts";
import { calculatorKite } from "./server.ts";

/** The files of `dist/` the page loads. */
export const PAGE_SCRIPTS = [
  "kite.browser.js",
  "kite.contract.js",
  "contracts_page.js",
] as const;

const PAGE = new URL("./page.html", import.meta.url);

/**
 * The calculator kite serving the page too, not yet serving; `scripts`
 * holds each of {@linkcode PAGE_SCRIPTS} by name.
 */
export async function calculatorPageKite(
  scripts: Record<string, string>,
  options: KiteOptions = {},
): Promise<Kite> {
  const kite = calculatorKite(options);
  servePage(kite, await Deno.readTextFile(PAGE), scripts);
  return kite;
}

if (import.meta.main) {
  const kite = await calculatorPageKite(
    await readBrowserBuild([...PAGE_SCRIPTS]),
  );
  const { url } = await kite.serve({
    port: Number(Deno.args[0] ?? 3637),
    hostname: "127.0.0.1",
    quiet: true,
  });
  console.log(`open ${new URL("/", url).href} in a browser (Ctrl-C stops)`);
}
