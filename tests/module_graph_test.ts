/**
 * What the first run downloads: the programs of the demo and a kite's core
 * never pull the etcd or PostgreSQL drivers into their module graph (Kontrol
 * loads the one it is told to use at run time). Checked with `deno info`.
 * With `npm-lazy-caching` (deno.json) `deno run` then fetches only the
 * packages of its graph; `deno task` still installs every package of the
 * lockfile first, by Deno's design (denoland/deno#28999).
 */
import type { EtcdStorage } from "../storage/etcd.ts";
import type { PostgresStorage } from "../storage/postgres.ts";
import type { PostgresOptions } from "../kontrol/main.ts";
import { assert, assertEquals } from "./helpers/assert.ts";
import { runDeno } from "./helpers/deno_run.ts";

// Compile-time: what Kontrol passes is what the adapters take.
type EtcdOptions = Parameters<typeof EtcdStorage.connect>[0];
type PgOptions = Parameters<typeof PostgresStorage.connect>[0];
export const _etcdOptions: EtcdOptions = { endpoints: [] as string[] };
export const _pgOptions: PgOptions = {} as PostgresOptions;

const DRIVERS = /npm:\/?(etcd3|@grpc\/|postgres)@/;

const ENTRY_POINTS = [
  "mod.ts",
  "scripts/demo.ts",
  "kontrol/launch.ts",
  "kontrol/main.ts",
  "kitectl/main.ts",
  "examples/math/server.ts",
  "examples/math/register.ts",
  "examples/query/main.ts",
  "examples/watch/main.ts",
];

/** npm packages in the module graph of `entry` (not the whole lockfile). */
async function npmModules(entry: string): Promise<string[]> {
  const run = await runDeno(["info", "--json", entry]);
  assertEquals(run.code, 0, run.stderr);
  const graph = JSON.parse(run.stdout) as { modules: { specifier: string }[] };
  return graph.modules.map((m) => m.specifier).filter((s) =>
    s.startsWith("npm:")
  );
}

for (const entry of ENTRY_POINTS) {
  Deno.test(`${entry} does not pull in the etcd or PostgreSQL drivers`, async () => {
    assertEquals((await npmModules(entry)).filter((s) => DRIVERS.test(s)), []);
  });
}

Deno.test("storage/etcd.ts does pull in its driver (the check above can fail)", async () => {
  assert((await npmModules("storage/etcd.ts")).some((s) => DRIVERS.test(s)));
});

Deno.test("kontrol/launch.ts, which runs before Kontrol on every start, loads no client transport", async () => {
  const run = await runDeno(["info", "--json", "kontrol/launch.ts"]);
  assertEquals(run.code, 0, run.stderr);
  const graph = JSON.parse(run.stdout) as { modules: { specifier: string }[] };
  const specifiers = graph.modules.map((m) => m.specifier);
  assert(specifiers.some((s) => s.endsWith("/kite/config.ts")), "reads config");
  assertEquals(
    specifiers.filter((s) => s.includes("/kite/transport/client/dial")),
    [],
  );
});

Deno.test("the core and Kontrol import jose by subpath: its index loads every part of the package", async () => {
  for (const entry of ["mod.ts", "kontrol/main.ts"]) {
    const jose = (await npmModules(entry)).filter((s) => s.includes("jose@"));
    assert(jose.length > 0, `${entry} uses jose`);
    assertEquals(jose.filter((s) => /jose@[^/]+$/.test(s)), [], entry);
  }
});
