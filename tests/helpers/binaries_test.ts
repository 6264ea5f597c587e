import { assert, assertEquals } from "./assert.ts";
import { findBinary, requireBinary } from "./binaries.ts";

const MISSING = "kite-no-such-binary-3f9c";

/** Runs `fn` with `CI` set to `value` (or unset), restoring it after. */
function withCI<T>(value: string | undefined, fn: () => T): T {
  const saved = Deno.env.get("CI");
  try {
    if (value === undefined) Deno.env.delete("CI");
    else Deno.env.set("CI", value);
    return fn();
  } finally {
    if (saved === undefined) Deno.env.delete("CI");
    else Deno.env.set("CI", saved);
  }
}

Deno.test("requireBinary() skips a missing binary outside CI, with what to install", () => {
  const warn = console.warn;
  const warnings: string[] = [];
  console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
  try {
    const required = withCI(
      undefined,
      () => requireBinary(MISSING, "kite-pkg"),
    );
    assertEquals(required.path, undefined);
    assertEquals(required.ignore, true);
    assert(required.missingMessage.includes("apt-get install kite-pkg"));
    assertEquals(warnings.length, 1);
    assert(warnings[0].includes("apt-get install kite-pkg"), warnings[0]);
  } finally {
    console.warn = warn;
  }
});

Deno.test("requireBinary() does not skip under CI=true, so the tests fail", () => {
  const required = withCI("true", () => requireBinary(MISSING, "kite-pkg"));
  assertEquals(required.path, undefined);
  assertEquals(required.ignore, false);
});

Deno.test("requireBinary() finds a binary on PATH or in extra directories", () => {
  const sh = findBinary("sh", { extraDirs: ["/bin", "/usr/bin"] });
  assert(sh !== undefined, "sh is installed");
  const dir = sh.slice(0, sh.lastIndexOf("/"));
  const required = withCI(
    "true",
    () => requireBinary("sh", "dash", { extraDirs: [dir] }),
  );
  assertEquals([required.path !== undefined, required.ignore], [true, false]);
});
