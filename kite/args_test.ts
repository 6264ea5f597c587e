import { assertEquals, assertThrows } from "../tests/helpers/assert.ts";
import { Args } from "./args.ts";
import { KiteError } from "./errors.ts";

/** Asserts `fn` throws an argumentError with exactly `message`. */
function assertArgumentError(fn: () => unknown, message: string): void {
  const err = assertThrows(fn, KiteError) as KiteError;
  assertEquals({ type: err.type, message: err.message }, {
    type: "argumentError",
    message,
  });
}

Deno.test("Args accessors return values of the expected type", () => {
  const fn = () => 1;
  const args = new Args(
    [4, "four", true, { n: 1, f: fn }, [1, 2], null],
    "withArgs",
  );
  assertEquals(args.at(0).number(), 4);
  assertEquals(args.at(1).string(), "four");
  assertEquals(args.at(2).boolean(), true);
  assertEquals(args.at(3).object(), { n: 1, f: fn });
  assertEquals(args.at(3).get("n").number(), 1);
  assertEquals(args.at(3).get("f").func(), fn);
  assertEquals(args.at(4).slice().map((a) => a.number()), [1, 2]);
  assertEquals(args.at(4).sliceOfLength(2).length, 2);
  assertEquals(args.at(5).isNull(), true);
  assertEquals(args.at(9).isNull(), true);
  assertEquals(args.at(0).isNull(), false);
  assertEquals(new Args([7]).one().number(), 7);
  assertEquals(args.raw, [4, "four", true, { n: 1, f: fn }, [1, 2], null]);
});

Deno.test("Args mismatches throw argumentError naming the path and both types", () => {
  const args = new Args(["four", { n: "x" }, [1]], "withArgs");
  assertArgumentError(
    () => args.at(0).number(),
    "withArgs[0]: expected a number, got string",
  );
  assertArgumentError(
    () => args.at(1).get("n").number(),
    "withArgs[1].n: expected a number, got string",
  );
  assertArgumentError(
    () => args.at(1).get("missing").string(),
    "withArgs[1].missing: expected a string, got undefined",
  );
  assertArgumentError(
    () => args.at(2).object(),
    "withArgs[2]: expected an object, got array",
  );
  assertArgumentError(
    () => args.at(0).get("n"),
    "withArgs[0]: expected an object, got string",
  );
  assertArgumentError(
    () => args.one(),
    "withArgs: expected 1 argument, got 3",
  );
  assertArgumentError(
    () => args.sliceOfLength(2),
    "withArgs: expected 2 arguments, got 3",
  );
  assertArgumentError(
    () => args.at(2).sliceOfLength(2),
    "withArgs[2]: expected an array of 2 elements, got 1",
  );
  assertArgumentError(
    () => args.at(0).slice(),
    "withArgs[0]: expected an array, got string",
  );
  assertArgumentError(
    () => args.at(0).at(0),
    "withArgs[0]: expected an array, got string",
  );
  assertArgumentError(
    () => args.at(2).at(0).boolean(),
    "withArgs[2][0]: expected a boolean, got number",
  );
  assertArgumentError(
    () => args.at(0).func(),
    "withArgs[0]: expected a function, got string",
  );
  assertArgumentError(
    () => new Args(null).object(),
    "arguments: expected an object, got null",
  );
});

Deno.test("Args.number() refuses NaN and infinities", () => {
  for (const v of [NaN, Infinity, -Infinity]) {
    assertArgumentError(
      () => new Args(v, "x").number(),
      "x: expected a number, got number",
    );
  }
});

Deno.test("Args.get() does not read inherited properties", () => {
  const args = new Args({ own: 1 });
  assertEquals(args.get("toString").isNull(), true);
  assertEquals(args.get("__proto__").isNull(), true);
  assertEquals(args.get("constructor").isNull(), true);
});
