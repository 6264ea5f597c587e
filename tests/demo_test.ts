/**
 * The README's main command must keep working: `deno task demo` runs
 * Kontrol, registers the math kite, finds and calls it, and watches it go.
 * (tests/fresh_clone_test.ts runs it again in a fresh clone.)
 */
import { assertDemoRuns } from "./helpers/demo.ts";

Deno.test("deno task demo registers, finds, calls and watches the math kite", async () => {
  await assertDemoRuns(new URL("../", import.meta.url).pathname);
});
