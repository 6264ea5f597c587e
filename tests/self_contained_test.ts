/**
 * A fresh clone must pass on its own: no source or test file may name a path
 * outside the repository (the recorded traffic lives in
 * `tests/fixtures/vectors/`, not in a folder beside the checkout).
 */
import { assertEquals } from "./helpers/assert.ts";

const ROOT = new URL("../", import.meta.url);
const SKIP_DIRS = new Set([".git", "node_modules", "vectors", ".kontrol"]);

/** Every `.ts` file of the repository, as URLs. */
function sourceFiles(dir: URL = ROOT): URL[] {
  const out: URL[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.isDirectory && !SKIP_DIRS.has(entry.name)) {
      out.push(...sourceFiles(new URL(`${entry.name}/`, dir)));
    } else if (entry.isFile && entry.name.endsWith(".ts")) {
      out.push(new URL(entry.name, dir));
    }
  }
  return out;
}

/** `new URL("<relative>", import.meta.url)` targets that leave the repository. */
function escapingUrls(file: URL, text: string): string[] {
  const out: string[] = [];
  const pattern = /new URL\(\s*["'`]([^"'`$]+)["'`],\s*import\.meta\.url/g;
  for (const [, rel] of text.matchAll(pattern)) {
    if (!new URL(rel, file).href.startsWith(ROOT.href)) out.push(rel);
  }
  return out;
}

/** Paths that only exist on the machine this project was started on. */
const OUTSIDE = /\/work\/|shared\/vectors|\.\.\/shared\//;

Deno.test("no source or test file names a path outside the repository", () => {
  const found: string[] = [];
  const files = sourceFiles();
  for (const file of files) {
    if (file.href === import.meta.url) continue; // it spells the patterns out
    const text = Deno.readTextFileSync(file);
    const name = file.href.slice(ROOT.href.length);
    for (const rel of escapingUrls(file, text)) found.push(`${name}: ${rel}`);
    for (const line of text.split("\n")) {
      if (OUTSIDE.test(line)) found.push(`${name}: ${line.trim()}`);
    }
  }
  assertEquals(found, []);
  // The scan itself must have seen the tree (a guard that cannot fail is none).
  assertEquals(
    files.some((f) => f.href.endsWith("tests/helpers/vectors.ts")),
    true,
  );
});

Deno.test("the scan flags a URL that climbs out of the repository", () => {
  const file = new URL("tests/helpers/vectors.ts", ROOT);
  const text = 'new URL("../../../beside/x.jsonl", import.meta.url)';
  assertEquals(escapingUrls(file, text), ["../../../beside/x.jsonl"]);
  assertEquals(escapingUrls(file, text.replace("../../../", "../")), []);
});
