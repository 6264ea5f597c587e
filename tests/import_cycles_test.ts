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
