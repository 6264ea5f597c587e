/**
 * Reading Prometheus text exposition in tests: one sample's value, and
 * `promtool check metrics` (Debian `prometheus`, installed by the test
 * setup) over a whole exposition.
 *
 * @module
 */
import { assert, assertEquals } from "./assert.ts";
import { findBinary } from "./binaries.ts";

/** The value of the series `name{labels}` (exactly as exposed) in `text`. */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(series + " ")) {
      return Number(line.slice(series.length + 1));
    }
  }
  return undefined;
}

/** Fails unless `promtool check metrics` accepts `text` with no finding. */
export async function promtoolCheck(text: string): Promise<void> {
  const promtool = findBinary("promtool");
  assert(
    promtool,
    "promtool not found: run `deno task test` once (its setup installs the Debian prometheus package)",
  );
  const child = new Deno.Command(promtool, {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  const said = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, `promtool check metrics failed:\n${said}\n${text}`);
  // promtool exits 0 on lint findings too (e.g. a counter without _total).
  assertEquals(said.trim(), "", `promtool found problems:\n${said}`);
}
