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

Deno.test("the kite's serving path (kite/) imports no Node module but Deno's only async context and end-of-turn callback", async () => {
  // Deno.serve and Deno.upgradeWebSocket host SockJS, dnode and auth. Deno
  // has no AsyncLocalStorage and no setImmediate of its own (setTimeout 0
  // waits a millisecond or more): those two come from Deno's node: modules.
  const allowed = [
    "kite/serve/deadline.ts: node:async_hooks",
    "kite/transport/server/sockjs_websocket.ts: node:timers",
  ];
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
        .map((d) => `${m.specifier.replace(ROOT.href, "")}: ${d.specifier}`)
    ).filter((found) => !allowed.includes(found));
  assertEquals(nodeImports, []);
});
