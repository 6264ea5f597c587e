// The contract sub-path's public types name no zod type (own Schema,
// SchemaOutput… aliases), so `deno doc --lint` passes on the package's
// entries; Kite and Request are public through the main entry.
import { assertEquals } from "./helpers/assert.ts";

Deno.test("deno doc --lint is clean on mod.ts with the contract sub-path", async () => {
  const root = new URL("..", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lint", "mod.ts", "kite/contract/mod.ts"],
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
