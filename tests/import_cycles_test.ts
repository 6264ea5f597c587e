import { assertEquals } from "./helpers/assert.ts";
import {
  cycles,
  DEFAULT_ENTRIES,
  importGraph,
} from "../scripts/import_cycles.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("kite/, kontrol/ and storage/ have no import cycles (type-only imports included)", async () => {
  const graph = await importGraph(DEFAULT_ENTRIES, ROOT.pathname);
  const found = cycles(graph).map((scc) =>
    scc.map((s) => s.replace(ROOT.href, ""))
  );
  assertEquals(found, []);
});

Deno.test("the kite's serving path (kite/) imports no Node module but AsyncLocalStorage", async () => {
  // Deno.serve and Deno.upgradeWebSocket host SockJS, dnode and auth; the
  // one Node module allowed is node:async_hooks, Deno's only async context.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "mod.ts"],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; dependencies?: { specifier: string }[] }[];
  };
  const nodeImports = info.modules
    .filter((m) => m.specifier.startsWith(new URL("kite/", ROOT).href))
    .flatMap((m) =>
      (m.dependencies ?? [])
        .filter((d) => d.specifier.startsWith("node:"))
        .filter((d) => d.specifier !== "node:async_hooks")
        .map((d) => `${m.specifier.replace(ROOT.href, "")}: ${d.specifier}`)
    );
  assertEquals(nodeImports, []);
});
