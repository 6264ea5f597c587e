/**
 * Comments cite the wire protocol as `docs/protocol.md §N`: every section
 * they name must exist there, and nothing may cite a spec that does not
 * ship with the project.
 */
import { assert, assertEquals } from "./helpers/assert.ts";

const ROOT = new URL("../", import.meta.url);
const PROTOCOL = new URL("docs/protocol.md", ROOT);
const SKIP_DIRS = new Set([
  ".git",
  "node_modules",
  ".kontrol",
  "bench-results",
  "bin",
]);
const TEXT_FILE = /\.(ts|cjs|js|md)$/;
/** Citations of a spec that does not ship (spelled apart so this file passes). */
const FOREIGN_SPEC = new RegExp(
  ["\\bspec \u00a7", "protocol" + " doc", "kite-" + "protocol\\.md"].join("|"),
);

/** Repository text files, paths relative to the root. */
async function* sourceFiles(dir = ROOT, prefix = ""): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = prefix + entry.name;
    if (entry.isDirectory) {
      if (SKIP_DIRS.has(entry.name)) continue;
      yield* sourceFiles(new URL(entry.name + "/", dir), path + "/");
    } else if (entry.isFile && TEXT_FILE.test(entry.name)) {
      yield path;
    }
  }
}

/** Section numbers (`1`, `1.5`, …) and the item count of §12. */
async function protocolSections(): Promise<{
  sections: Set<string>;
  notes: number;
}> {
  const text = await Deno.readTextFile(PROTOCOL);
  const sections = new Set<string>();
  for (const m of text.matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)) {
    sections.add(m[1]);
  }
  const start = text.indexOf("## 12. ");
  const end = text.indexOf("\n## ", start + 1);
  const notes = [...text.slice(start, end).matchAll(/^(\d+)\. \*\*/gm)].length;
  return { sections, notes };
}

Deno.test("docs/protocol.md has numbered sections and compatibility notes", async () => {
  const { sections, notes } = await protocolSections();
  for (const s of ["1", "1.5", "3.3", "6.6", "8.8", "12"]) {
    assert(sections.has(s), `docs/protocol.md lacks section ${s}`);
  }
  assertEquals(notes, 28);
});

Deno.test("every § cited in the repository exists in docs/protocol.md", async () => {
  const { sections, notes } = await protocolSections();
  const problems: string[] = [];
  for await (const path of sourceFiles()) {
    const lines = (await Deno.readTextFile(new URL(path, ROOT))).split("\n");
    lines.forEach((line, i) => {
      const where = `${path}:${i + 1}`;
      if (FOREIGN_SPEC.test(line)) {
        problems.push(`${where} cites a spec that does not ship: ${line}`);
      }
      for (const m of line.matchAll(/(RFC \d+ )?§(\d+(?:\.\d+)?)( #(\d+))?/g)) {
        if (m[1]) continue; // an RFC's own section
        if (!sections.has(m[2])) {
          problems.push(`${where} cites §${m[2]}, not in docs/protocol.md`);
        }
        if (m[4] && (m[2] !== "12" || Number(m[4]) > notes)) {
          problems.push(
            `${where} cites §${m[2]} #${m[4]}, which does not exist`,
          );
        }
      }
    });
  }
  assertEquals(problems, []);
});

Deno.test("relative links in the documentation point at files that exist", async () => {
  const problems: string[] = [];
  for await (const path of sourceFiles()) {
    if (!path.endsWith(".md") || path.startsWith("tests/kitejs/")) continue;
    const text = await Deno.readTextFile(new URL(path, ROOT));
    const dir = path.includes("/")
      ? path.slice(0, path.lastIndexOf("/") + 1)
      : "";
    for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      try {
        await Deno.stat(new URL(dir + target, ROOT));
      } catch {
        problems.push(`${path}: link to ${target} leads nowhere`);
      }
    }
  }
  assertEquals(problems, []);
});
