import { assert, assertEquals } from "./assert.ts";
import { findBinary } from "./binaries.ts";

Deno.test("findBinary() finds a binary on PATH or in extra directories, and nothing else", () => {
  const sh = findBinary("sh", { extraDirs: ["/bin", "/usr/bin"] });
  assert(sh !== undefined, "sh is installed");
  const dir = sh.slice(0, sh.lastIndexOf("/"));
  assertEquals(findBinary("sh", { extraDirs: [dir] }) !== undefined, true);
  assertEquals(
    findBinary("kite-no-such-binary-3f9c", { extraDirs: [dir] }),
    undefined,
  );
});
