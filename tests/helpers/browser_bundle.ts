/**
 * Bundles the browser build (`kite/browser/mod.ts`) into one ES module with
 * esbuild from npm — used by `deno task build:browser`, the Chromium tests
 * and the bench. `node:async_hooks` (deadline scopes) becomes
 * `kite/browser/async_hooks.ts`; any other `node:` or `npm:` import, or a
 * file that names `Deno`, fails the build: a page has neither. Bare
 * specifiers that deno.json maps to npm packages (`zod`, `semver`, for the
 * contract entry) are read from Deno's npm cache, at deno.lock's version.
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
/** The typed contracts' browser entry (`dist/kite.contract.js`). */
export const CONTRACT_ENTRY: string =
  new URL("kite/browser/contract.ts", ROOT).pathname;
const ASYNC_HOOKS = new URL("kite/browser/async_hooks.ts", ROOT).pathname;

/**
 * Where Deno keeps each npm package deno.json maps a bare name to:
 * `<npm cache>/registry.npmjs.org/<name>/<locked version>`.
 */
async function npmPackageDirs(): Promise<Map<string, string>> {
  const read = async (file: string) =>
    JSON.parse(await Deno.readTextFile(new URL(file, ROOT)));
  const imports = (await read("deno.json")).imports as Record<string, string>;
  const locked = (await read("deno.lock")).specifiers as Record<string, string>;
  const info = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdout: "piped",
    stderr: "null",
  }).output();
  const cache = JSON.parse(new TextDecoder().decode(info.stdout)).npmCache;
  const dirs = new Map<string, string>();
  for (const [name, target] of Object.entries(imports)) {
    const version = locked[target]?.split("_")[0];
    if (target.startsWith("npm:") && version) {
      dirs.set(name, `${cache}/registry.npmjs.org/${name}/${version}`);
    }
  }
  return dirs;
}

/**
 * The file a package exports under `sub` (e.g. `jose/jws/compact/verify`
 * → `/dist/webapi/jws/compact/verify.js`), from its package.json `exports`
 * (exact keys and one-`*` patterns, the `browser`, `import` or `default`
 * target); `sub` itself when the package has no such entry.
 */
async function exportedFile(dir: string, sub: string): Promise<string> {
  const pkg = JSON.parse(await Deno.readTextFile(`${dir}/package.json`));
  const exports = (pkg.exports ?? {}) as Record<string, unknown>;
  const key = `.${sub}`;
  for (const [pattern, target] of Object.entries(exports)) {
    const star = pattern.indexOf("*");
    const match = star < 0
      ? pattern === key ? "" : undefined
      : key.startsWith(pattern.slice(0, star)) &&
          key.endsWith(pattern.slice(star + 1)) &&
          key.length >= pattern.length - 1
      ? key.slice(star, key.length - (pattern.length - star - 1))
      : undefined;
    if (match === undefined) continue;
    let to: unknown = target;
    while (to && typeof to === "object") {
      const t = to as Record<string, unknown>;
      to = t.browser ?? t.import ?? t.default;
    }
    if (typeof to === "string") return to.replace("*", match).slice(1);
  }
  return sub;
}

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
  /**
   * Repository files left out and imported from another bundle instead,
   * e.g. `{ "kite/errors.ts": "./kite.browser.js" }`, so both share one
   * `KiteError` class.
   */
  external?: Record<string, string>;
  /**
   * Bare imports of npm packages left out the same way, e.g.
   * `{ zod: "./kite.contract.js" }` (which re-exports zod's `z`).
   */
  packages?: Record<string, string>;
}

/**
 * The contracts entry's builds: `KiteError` comes from the main browser
 * bundle beside it, so `instanceof` holds across the two.
 */
export const CONTRACT_BUNDLE: BundleOptions = {
  entry: CONTRACT_ENTRY,
  external: { "kite/errors.ts": "./kite.browser.js" },
};

/** The `examples/contracts` page's script (`dist/contracts_page.js`). */
export const CONTRACTS_PAGE_ENTRY: string =
  new URL("examples/contracts/page.ts", ROOT).pathname;

/**
 * The `examples/contracts` page's build: the shared contract
 * (`examples/contracts/contract.ts`) and the page script, with the library
 * — zod, `defineContract`, `fn`, `dialTyped`, `Kite` — taken from
 * `kite.contract.js` and `kite.browser.js` beside it, so `fn`'s schemas are
 * the ones `dialTyped` knows.
 */
export const CONTRACTS_PAGE_BUNDLE: BundleOptions = {
  entry: CONTRACTS_PAGE_ENTRY,
  external: {
    "kite/browser/mod.ts": "./kite.browser.js",
    "kite/browser/contract.ts": "./kite.contract.js",
    "kite/contract/mod.ts": "./kite.contract.js",
  },
  packages: { zod: "./kite.contract.js" },
};

/**
 * Builds the bundle in memory.
 * @throws {Error} with esbuild's messages when the build fails.
 */
export async function bundleBrowser(
  options: BundleOptions = {},
): Promise<BrowserBundle> {
  const packages = await npmPackageDirs();
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
          const external = new Map(
            Object.entries(options.external ?? {}).map((
              [file, to],
            ) => [new URL(file, ROOT).pathname, to]),
          );
          build.onResolve({ filter: /^\./ }, (args) => {
            const to = external.get(
              new URL(args.path, `file://${args.resolveDir}/`).pathname,
            );
            return to ? { path: to, external: true } : undefined;
          });
          build.onResolve({ filter: /^[@a-z]/ }, async (args) => {
            const to = options.packages?.[args.path];
            if (to) return { path: to, external: true };
            const [, name, sub] = /^((?:@[^/]+\/)?[^/:]+)(\/.*)?$/.exec(
              args.path,
            ) ?? [];
            const dir = name && packages.get(name);
            if (!dir || args.pluginData === dir) return undefined;
            const file = sub ? await exportedFile(dir, sub) : "";
            return build.resolve(`${dir}${file}`, {
              kind: args.kind,
              resolveDir: dir,
              pluginData: dir,
            });
          });
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
