import { KiteError } from "../mod.ts";
import { assertEquals, assertRejects } from "../tests/helpers/assert.ts";
import { checkTellArgs, schemaText } from "./contract_args.ts";
import type { KiteDescription } from "../kite/contract/mod.ts";

const DESCRIPTION: KiteDescription = {
  kite: { name: "math", version: "1.0.0" },
  contracts: [{
    name: "math",
    version: "1.2.0",
    methods: {
      add: {
        args: {
          type: "array",
          prefixItems: [{
            type: "object",
            properties: { a: { type: "number" }, b: { type: "number" } },
            required: ["a", "b"],
          }],
          items: false,
          minItems: 1,
        },
        result: { type: "number" },
        idempotent: false,
        authentication: true,
      },
    },
  }],
};

Deno.test("schemaText() writes schemas as short type text", () => {
  assertEquals(
    schemaText(DESCRIPTION.contracts[0].methods.add.args),
    "[{a: number, b: number}]",
  );
  assertEquals(
    schemaText({ anyOf: [{ type: "string" }, { type: "null" }] }),
    "string | null",
  );
  assertEquals(
    schemaText({ type: "array", items: { type: "integer" } }),
    "integer[]",
  );
  assertEquals(
    schemaText({ "x-kite-callback": { prefixItems: [{ type: "number" }] } }),
    "fn(number)",
  );
});

Deno.test("checkTellArgs() refuses bad arguments, and lets calls through when the kite cannot describe itself", async () => {
  const describing = (method: string) =>
    method === "kite.describe"
      ? Promise.resolve(DESCRIPTION)
      : Promise.reject(new Error(`called ${method}`));
  await checkTellArgs(describing, "add", [{ a: 1, b: 2 }]);
  await checkTellArgs(describing, "other", ["anything"]);
  await assertRejects(
    () => checkTellArgs(describing, "add", [{ a: 1, b: "2" }]),
    Error,
    "add (contract math@1.2.0): withArgs[0].b: must be number; nothing was sent",
  );
  for (
    const err of [
      new KiteError("methodNotFound", "no kite.describe"),
      new KiteError("timeout", "no reply"),
      new KiteError("genericError", "unknown method"),
    ]
  ) {
    await checkTellArgs(() => Promise.reject(err), "add", ["not checked"]);
  }
});
