/**
 * `deno task build:browser`: writes the browser build of the library to
 * `dist/kite.browser.js` (one minified ES module; pages
 * `import { Kite } from "./kite.browser.js"`), or to the path given, and
 * the Kontrol dashboard's page script beside it (`dashboard.js`, served by
 * `deno task kontrol --dashboard`), and typed contracts for pages
 * (`kite.contract.js`, `kite/browser/contract.ts`), and the
 * `examples/contracts` page's script (`contracts_page.js`, which imports
 * both).
 *
 * @module
 */
import {
  bundleBrowser,
  CONTRACT_BUNDLE,
  CONTRACTS_PAGE_BUNDLE,
  DASHBOARD_ENTRY,
} from "../tests/helpers/browser_bundle.ts";

const out = Deno.args[0] ?? "dist/kite.browser.js";
const dir = out.slice(0, out.lastIndexOf("/"));
if (dir) await Deno.mkdir(dir, { recursive: true });
for (
  const [path, options] of [
    [out, {}],
    [`${dir || "."}/dashboard.js`, { entry: DASHBOARD_ENTRY }],
    // Imports KiteError from ./kite.browser.js beside it.
    [`${dir || "."}/kite.contract.js`, CONTRACT_BUNDLE],
    [`${dir || "."}/contracts_page.js`, CONTRACTS_PAGE_BUNDLE],
  ] as const
) {
  const bundle = await bundleBrowser(options);
  await Deno.writeTextFile(path, bundle.code);
  const gzip = new Response(
    new Blob([bundle.code]).stream().pipeThrough(
      new CompressionStream("gzip"),
    ),
  );
  const gz = (await gzip.arrayBuffer()).byteLength;
  console.log(
    `${path}: ${(bundle.code.length / 1024).toFixed(1)} KiB, ` +
      `${(gz / 1024).toFixed(1)} KiB gzip, from ${bundle.inputs.length} files`,
  );
}
