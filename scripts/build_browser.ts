/**
 * `deno task build:browser`: writes the browser build of the library to
 * `dist/kite.browser.js` (one minified ES module; pages
 * `import { Kite } from "./kite.browser.js"`), or to the path given.
 *
 * @module
 */
import { bundleBrowser } from "../tests/helpers/browser_bundle.ts";

const out = Deno.args[0] ?? "dist/kite.browser.js";
const bundle = await bundleBrowser();
const dir = out.slice(0, out.lastIndexOf("/"));
if (dir) await Deno.mkdir(dir, { recursive: true });
await Deno.writeTextFile(out, bundle.code);
const gzip = new Response(
  new Blob([bundle.code]).stream().pipeThrough(new CompressionStream("gzip")),
);
const gz = (await gzip.arrayBuffer()).byteLength;
console.log(
  `${out}: ${(bundle.code.length / 1024).toFixed(1)} KiB, ` +
    `${(gz / 1024).toFixed(1)} KiB gzip, from ${bundle.inputs.length} files`,
);
