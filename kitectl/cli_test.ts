import { assertEquals, assertThrows } from "../tests/helpers/assert.ts";
import { intFlag, parseFlags, UsageError } from "./cli.ts";
import { queryFrom } from "./session.ts";
import { parseArgs } from "./tell.ts";

const SPECS = [{ name: "name", value: true, help: "" }];

Deno.test("parseFlags() reads --flag value, --flag=value, switches and -- ", () => {
  const p = parseFlags(
    ["a", "--name", "x", "--json", "--timeout=5", "--", "--name"],
    SPECS,
  );
  assertEquals([...p.flags], [["name", "x"], ["json", "true"], [
    "timeout",
    "5",
  ]]);
  assertEquals(p.positionals, ["a", "--name"]);
  assertEquals(intFlag(p, "timeout", 0), 5);
});

Deno.test("parseFlags() refuses unknown flags, missing values and values on switches", () => {
  assertThrows(() => parseFlags(["--nope"], SPECS), UsageError, "--nope");
  assertThrows(
    () => parseFlags(["--name"], SPECS),
    UsageError,
    "needs a value",
  );
  assertThrows(() => parseFlags(["--json=1"], SPECS), UsageError, "no value");
  const p = parseFlags(["--timeout", "soon"], SPECS);
  assertThrows(() => intFlag(p, "timeout", 0), UsageError, "whole number");
});

Deno.test("queryFrom() takes a /user/env/name prefix, then the field flags", () => {
  const p = parseFlags(["--name", "math"], SPECS);
  assertEquals(queryFrom(p, "alice/prod/calc").name, "math");
  assertEquals(queryFrom(p, "/alice/prod").environment, "prod");
  assertThrows(() => queryFrom(p, "/1/2/3/4/5/6/7/8"), UsageError, "7 fields");
});

Deno.test("parseArgs() parses JSON and names the argument that is not", () => {
  assertEquals(parseArgs(["4", '"x"', '{"$fn":"cb"}']), [4, "x", {
    $fn: "cb",
  }]);
  assertThrows(
    () => parseArgs(["1", "x"]),
    UsageError,
    "argument 2 is not JSON",
  );
});
