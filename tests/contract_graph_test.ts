// Contracts live behind the `./contract` sub-path: importing the core never
// pulls zod (or the JSON Schema validator the tests use) into a program.
import { assert, assertEquals } from "./helpers/assert.ts";
import { runDeno } from "./helpers/deno_run.ts";

async function npmPackages(entry: string): Promise<string[]> {
  const run = await runDeno(["info", "--json", entry]);
  assertEquals(run.code, 0, run.stderr);
  const graph = JSON.parse(run.stdout) as { modules: { specifier: string }[] };
  return graph.modules.map((m) => m.specifier).filter((s) =>
    s.startsWith("npm:")
  ).map((s) => s.replace(/^npm:\/?/, ""));
}

Deno.test("mod.ts does not pull in zod; kite/contract/mod.ts does (so the check can fail)", async () => {
  const core = await npmPackages("mod.ts");
  assert(!core.some((p) => p.startsWith("zod@")), core.join(", "));
  const contract = await npmPackages("kite/contract/mod.ts");
  assert(contract.some((p) => p.startsWith("zod@")), contract.join(", "));
  assert(!contract.some((p) => p.startsWith("ajv@")), contract.join(", "));
});

Deno.test("Kontrol and contracts load no npm semver (CommonJS: about 50 ms of every Kontrol start)", async () => {
  for (
    const entry of ["kontrol/main.ts", "kite/contract/mod.ts", "storage/mod.ts"]
  ) {
    const packages = await npmPackages(entry);
    assert(
      !packages.some((p) => p.startsWith("semver@")),
      `${entry}: ${packages.join(", ")}`,
    );
  }
});
