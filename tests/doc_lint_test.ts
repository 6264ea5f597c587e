// `deno doc --lint` passes on every entry the package exports (deno.json
// "exports"), linted together as JSR sees them: a public type may name a type
// another entry makes public (Kite and Request through the main entry), never
// one no entry exports.
import { assertEquals } from "./helpers/assert.ts";

Deno.test("deno doc --lint is clean on every exported entry of the package", async () => {
  const root = new URL("..", import.meta.url);
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  ) as { exports: Record<string, string> };
  const entries = Object.values(config.exports);
  assertEquals(entries.length > 5, true, "deno.json lists the entries");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lint", ...entries],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr);
  assertEquals(
    text.split("\n").filter((l) => l.startsWith("error")),
    [],
    text,
  );
  assertEquals(out.code, 0, text);
});
