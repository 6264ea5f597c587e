// Type-level tests of contracts, run by `deno check` in a subprocess:
// tests/contract/types_ok.ts must compile; every `// @ts-expect-error` line
// of tests/contract/types_fail.ts must be an error (an unused directive is
// itself an error), checked both ways so the test can fail.
import { assert, assertEquals } from "./helpers/assert.ts";

const DIR = new URL("./contract/", import.meta.url);
const MARKER = /\/\/ @ts-expect-error.*$/gm;

async function check(
  file: URL,
): Promise<{ ok: boolean; errors: number; out: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", file.pathname],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const out = new TextDecoder().decode(stdout) +
    new TextDecoder().decode(stderr);
  return {
    ok: code === 0,
    errors: out.match(/^TS\d+ \[ERROR\]/gm)?.length ?? 0,
    out,
  };
}

Deno.test("a contract's typed surface compiles: handlers, typed calls, callbacks, pools", async () => {
  const r = await check(new URL("types_ok.ts", DIR));
  assert(r.ok, r.out);
});

Deno.test("wrong arguments, unknown methods, wrong handler results and callback types do not compile", async () => {
  const file = new URL("types_fail.ts", DIR);
  const marked = await check(file);
  assert(marked.ok, `a @ts-expect-error line compiles:\n${marked.out}`);
  const text = await Deno.readTextFile(file);
  const markers = text.match(MARKER)?.length ?? 0;
  assert(markers >= 10, `only ${markers} markers`);
  const stripped = new URL(`types_fail_unmarked_${Deno.pid}.ts`, DIR);
  await Deno.writeTextFile(stripped, text.replace(MARKER, ""));
  try {
    const bare = await check(stripped);
    assert(!bare.ok, bare.out);
    assertEquals(bare.errors, markers, bare.out);
  } finally {
    await Deno.remove(stripped);
  }
});
