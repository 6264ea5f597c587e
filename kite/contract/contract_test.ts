import { z } from "zod";
import { Ajv2020 } from "ajv/dist/2020.js";
import {
  assert,
  assertEquals,
  assertThrows,
} from "../../tests/helpers/assert.ts";
import { testKite } from "../../tests/helpers/kite_harness.ts";
import { math } from "../../tests/contract/math_contract.ts";
import { defineContract } from "./contract.ts";
import { CALLBACK_KEYWORD, describeKite, jsonSchema } from "./describe.ts";
import { implement } from "./implement.ts";
import { incompatibility } from "./typed_client.ts";
import { issuesText } from "./issues.ts";

Deno.test("defineContract() refuses a version that is not semver and a method without schemas", () => {
  assertThrows(
    () => defineContract({ name: "m", version: "1.2", methods: {} }),
    TypeError,
    'version must be semver like "1.2.0", got "1.2"',
  );
  assertThrows(
    () =>
      defineContract({
        name: "m",
        version: "1.0.0",
        methods: { f: { args: [], result: 3 as unknown as z.ZodNumber } },
      }),
    TypeError,
    "method f needs args",
  );
});

Deno.test("issuesText() names each problem's path under withArgs", () => {
  const schema = z.tuple([
    z.object({ number: z.number(), tags: z.array(z.string()) }),
  ]);
  const value = [{ number: "4", tags: ["a", 2] }];
  const r = schema.safeParse(value);
  assert(!r.success);
  assertEquals(
    issuesText("withArgs", value, r.error.issues),
    "withArgs[0].number: expected number, got string; withArgs[0].tags[1]: expected string, got number",
  );
});

Deno.test("describeKite() output is valid JSON Schema draft 2020-12 that checks arguments as the kite does", () => {
  const kite = testKite("math");
  implement(kite, math, {
    square: (n) => n * n,
    add: ({ a, b }) => a + b,
    greet: (s) => s,
    countdown: () => null,
    adder: () => () => {},
    broken: () => 1,
  });
  const doc = describeKite(kite);
  const ajv = new Ajv2020({ strict: false });
  const [c] = doc.contracts;
  assertEquals(Object.keys(c.methods).sort(), Object.keys(math.methods).sort());
  for (const [name, m] of Object.entries(c.methods)) {
    for (const schema of [m.args, m.result]) {
      assert(
        ajv.validateSchema(schema) === true,
        `${name}: ${JSON.stringify(ajv.errors)}`,
      );
      assertEquals(
        schema.$schema,
        "https://json-schema.org/draft/2020-12/schema",
      );
    }
  }
  // Authentication on by default, off where the contract says so.
  assertEquals(c.methods.add.authentication, true);
  assertEquals(c.methods.greet.authentication, false);
  const add = ajv.compile(c.methods.add.args);
  assert(add([{ a: 1, b: 2 }]));
  assert(!add([{ a: 1, b: "2" }]));
  assert(!add([]));
  const greet = ajv.compile(c.methods.greet.args);
  assert(greet(["ann"]) && greet(["ann", "hi"]) && !greet([1]));
  // A callback says it is one, with its own argument schemas.
  const tick =
    (c.methods.countdown.args.prefixItems as Record<string, unknown>[])[1];
  const tickArgs = tick[CALLBACK_KEYWORD] as Record<string, unknown>;
  assertEquals(tickArgs.prefixItems, [{ type: "number" }]);
  const adder = c.methods.adder.result[CALLBACK_KEYWORD] as Record<
    string,
    unknown
  >;
  const inner = (adder.prefixItems as Record<string, unknown>[])[1];
  assert(CALLBACK_KEYWORD in inner, JSON.stringify(adder));
});

Deno.test("jsonSchema() of a plain schema is the zod export", () => {
  assertEquals(jsonSchema(z.string()), {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    type: "string",
  });
});

Deno.test("incompatibility() accepts newer minors of the same major, nothing else", () => {
  const at = (version: string) => ({
    kite: { name: "k", version: "1.0.0" },
    contracts: [{ name: "math", version, methods: {} }],
  });
  assertEquals(incompatibility(math, at("1.2.0")), undefined);
  assertEquals(incompatibility(math, at("1.9.3")), undefined);
  assert(incompatibility(math, at("2.0.0")));
  assert(incompatibility(math, at("1.1.9")));
  assert(incompatibility(math, at("garbage")));
  assertEquals(
    incompatibility(math, {
      kite: { name: "k", version: "1.0.0" },
      contracts: [],
    }),
    "kite k does not serve contract math (it serves: none)",
  );
});
