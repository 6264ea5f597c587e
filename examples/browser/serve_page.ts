/**
 * What the browser examples share: serving a page and its scripts from the
 * Deno kite the page dials, and reading the browser build from `dist/`.
 *
 * @module
 */
import type { Kite } from "../../mod.ts";

/**
 * Serves `page` at `/` and each script at `/<name>`, e.g.
 * `{ "kite.browser.js": code }` at `/kite.browser.js`.
 */
export function servePage(
  kite: Kite,
  page: string,
  scripts: Record<string, string>,
): void {
  kite.handleHTTP("/", () =>
    new Response(page, {
      headers: { "content-type": "text/html; charset=utf-8" },
    }));
  for (const [name, code] of Object.entries(scripts)) {
    kite.handleHTTP(`/${name}`, () =>
      new Response(code, {
        headers: { "content-type": "text/javascript; charset=utf-8" },
      }));
  }
}

/**
 * Reads files `deno task build:browser` wrote to `dist/`, by name; exits
 * saying to run it when one is missing.
 */
export async function readBrowserBuild(
  names: string[],
): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of names) {
    const path = `dist/${name}`;
    try {
      files[name] = await Deno.readTextFile(path);
    } catch {
      console.error(
        `${path} is missing: run \`deno task build:browser\` first`,
      );
      Deno.exit(1);
    }
  }
  return files;
}
