/**
 * The README's main command must keep working: `deno task demo` runs
 * Kontrol, registers the math kite, finds and calls it, and watches it go.
 */
import { assert } from "./helpers/assert.ts";
import { freePort } from "./helpers/wait.ts";

Deno.test("deno task demo registers, finds, calls and watches the math kite", async () => {
  const root = new URL("../", import.meta.url).pathname;
  const child = new Deno.Command("deno", {
    args: ["task", "--quiet", "demo"],
    cwd: root,
    env: { KONTROL_PORT: String(freePort()) },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  const out = new TextDecoder().decode(stdout);
  const why = `exit ${code}\n${out}\n${new TextDecoder().decode(stderr)}`;
  assert(code === 0, why);
  assert(/wrote .*kite\.key for user demo/.test(out), why);
  assert(
    /\[example:watch\] REGISTER +\/demo\/demo\/math\/1\.0\.0\//.test(out),
    why,
  );
  assert(out.includes("square(7) = 49"), why);
  assert(/\[example:watch\] DEREGISTER +\/demo\/demo\/math\//.test(out), why);
});
