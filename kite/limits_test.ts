import { assert, assertEquals, assertThrows } from "../tests/helpers/assert.ts";
import { DEFAULT_CONFIG } from "./config.ts";
import { checkLimits, exceedsJsonDepth, LIMIT_NAMES } from "./limits.ts";

/** `depth` nested arrays around `inner`, padded so the short-text shortcut does not apply. */
function nested(depth: number, inner = "1"): string {
  return "[".repeat(depth) + inner + "]".repeat(depth) + " ".repeat(300);
}

Deno.test("exceedsJsonDepth() counts arrays and objects, and stops at the limit", () => {
  assertEquals(exceedsJsonDepth(nested(64), 64), false);
  assertEquals(exceedsJsonDepth(nested(65), 64), true);
  const objects = '{"a":'.repeat(10) + "1" + "}".repeat(10) + " ".repeat(99);
  assertEquals(exceedsJsonDepth(objects, 10), false);
  assertEquals(exceedsJsonDepth(objects, 9), true);
  // Siblings do not add up: depth goes back down after each closes.
  const wide = "[" + "[[1]],".repeat(200) + "1]";
  assertEquals(exceedsJsonDepth(wide, 3), false);
  assertEquals(exceedsJsonDepth(wide, 2), true);
});

Deno.test("exceedsJsonDepth() skips brackets inside strings, escaped quotes included", () => {
  const brackets = JSON.stringify(["[".repeat(500), '\\"[[[[', "{{{\\\\"]);
  assertEquals(exceedsJsonDepth(brackets, 1), false);
  assertEquals(JSON.parse(brackets).length, 3, "the fixture is valid JSON");
  // A string ending in an escaped backslash closes normally.
  const text = JSON.stringify(["a\\", [[["x"]]]]) + " ".repeat(50);
  assertEquals(exceedsJsonDepth(text, 3), true);
  assertEquals(exceedsJsonDepth(text, 4), false);
  // Deep nesting hidden after a string is still found.
  assertEquals(exceedsJsonDepth('["x",' + nested(70).slice(1), 64), true);
});

Deno.test("exceedsJsonDepth() gives up on an unterminated string instead of looping", () => {
  assertEquals(exceedsJsonDepth('["' + "[".repeat(500), 4), false);
});

Deno.test("checkLimits() accepts the defaults and names a bad field", () => {
  checkLimits(DEFAULT_CONFIG);
  for (const name of LIMIT_NAMES) {
    assert(DEFAULT_CONFIG[name] >= 1, name);
    const min = name === "idleSessionMs" ? 0 : 1;
    for (const bad of [min - 1, -1, 1.5, NaN]) {
      assertThrows(
        () => checkLimits({ ...DEFAULT_CONFIG, [name]: bad }),
        RangeError,
        `kite config ${name} must be a whole number >= ${min}`,
      );
    }
  }
  // 0 turns the idle timeout off.
  checkLimits({ ...DEFAULT_CONFIG, idleSessionMs: 0 });
});
