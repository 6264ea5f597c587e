/**
 * Bundles the browser build (`kite/browser/mod.ts`) into one ES module with
 * esbuild from npm — used by `deno task build:browser`, the Chromium tests
 * and the bench. `node:async_hooks` (deadline scopes) becomes
 * `kite/browser/async_hooks.ts`; any other `node:` or `npm:` import, or a
 * file that names `Deno`, fails the build: a page has neither.
 *
 * @module
 */
import * as esbuild from "esbuild";

const ROOT = new URL("../../", import.meta.url);
/** The browser entry point. */
export const BROWSER_ENTRY: string =
  new URL("kite/browser/mod.ts", ROOT).pathname;
/** The Kontrol dashboard page's entry point (`dist/dashboard.js`). */
export const DASHBOARD_ENTRY: string =
  new URL("kontrol/dashboard/app.ts", ROOT).pathname;
const ASYNC_HOOKS = new URL("kite/browser/async_hooks.ts", ROOT).pathname;

/** What {@linkcode bundleBrowser} made. */
export interface BrowserBundle {
  /** The ES module. */
  code: string;
  /** Files the bundle was built from, relative to the repository. */
  inputs: string[];
}

/** Options for {@linkcode bundleBrowser}. */
export interface BundleOptions {
  /** Minify. @default {true} */
  minify?: boolean;
  /** Entry file (absolute path). @default {BROWSER_ENTRY} */
  entry?: string;
}

/**
 * Builds the bundle in memory.
 * @throws {Error} with esbuild's messages when the build fails.
 */
export async function bundleBrowser(
  options: BundleOptions = {},
): Promise<BrowserBundle> {
  try {
    const result = await esbuild.build({
      entryPoints: [options.entry ?? BROWSER_ENTRY],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      minify: options.minify ?? true,
      write: false,
      metafile: true,
      logLevel: "silent",
      plugins: [{
        name: "kite-browser",
        setup(build) {
          build.onResolve({ filter: /^node:async_hooks$/ }, () => ({
            path: ASYNC_HOOKS,
          }));
          build.onResolve({ filter: /^(node|npm|jsr):/ }, (args) => ({
            errors: [{
              text: `${args.path} (imported by ${args.importer}) has no ` +
                `browser build: keep it out of kite/browser/mod.ts's graph`,
            }],
          }));
        },
      }],
    });
    const root = ROOT.pathname;
    return {
      code: result.outputFiles[0].text,
      inputs: Object.keys(result.metafile.inputs).map((p) =>
        p.startsWith(root) ? p.slice(root.length) : p
      ),
    };
  } finally {
    await esbuild.stop();
  }
}
