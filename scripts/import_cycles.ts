/**
 * Lists import cycles among the repository's own modules, type-only
 * imports included (a file that imports its importer is a seam in the
 * wrong place, docs style.md). Exit code 1 when there is one.
 *
 *   deno run --allow-run=deno --allow-read scripts/import_cycles.ts [entry…]
 *
 * @module
 */

/** Entry points whose graphs are walked when none are given. */
export const DEFAULT_ENTRIES = ["mod.ts", "kontrol/mod.ts", "storage/mod.ts"];

interface InfoModule {
  specifier: string;
  dependencies?: {
    code?: { specifier?: string };
    type?: { specifier?: string };
  }[];
}

/** The import graph of `entries` (local `file:` modules only), by specifier. */
export async function importGraph(
  entries: string[],
  cwd?: string,
): Promise<Map<string, Set<string>>> {
  const graph = new Map<string, Set<string>>();
  for (const entry of entries) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `deno info ${entry} failed: ${new TextDecoder().decode(out.stderr)}`,
      );
    }
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: InfoModule[];
    };
    for (const m of info.modules) {
      if (!m.specifier.startsWith("file:")) continue;
      const deps = graph.get(m.specifier) ?? new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) {
          if (s?.startsWith("file:")) deps.add(s);
        }
      }
      graph.set(m.specifier, deps);
    }
  }
  return graph;
}

/** Strongly connected components with more than one module (Tarjan). */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

if (import.meta.main) {
  const entries = Deno.args.length ? Deno.args : DEFAULT_ENTRIES;
  const root = new URL("../", import.meta.url).href;
  const found = cycles(await importGraph(entries));
  for (const scc of found) {
    console.log("cycle: " + scc.map((s) => s.replace(root, "")).join(" ↔ "));
  }
  if (found.length) Deno.exit(1);
  console.log(`no import cycles under ${entries.join(", ")}`);
}
