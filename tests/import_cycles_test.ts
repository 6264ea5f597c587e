import { assertEquals } from "./helpers/assert.ts";
import { cycles, importGraph } from "../scripts/import_cycles.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("kite/ has no import cycles (type-only imports included)", async () => {
  const graph = await importGraph(["mod.ts"], ROOT.pathname);
  const kiteDir = new URL("kite/", ROOT).href;
  const inKite = cycles(graph)
    .filter((scc) => scc.some((s) => s.startsWith(kiteDir)))
    .map((scc) => scc.map((s) => s.replace(ROOT.href, "")));
  assertEquals(inKite, []);
});
