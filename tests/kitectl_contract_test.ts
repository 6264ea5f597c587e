// kitectl reads a kite's contract: `describe` prints it, and `tell` checks
// its arguments against it before sending anything (a kite without
// kite.describe is called unchecked, as before).
import type { KiteDescription } from "../kite/contract/mod.ts";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { kitectl, oneLine } from "./helpers/kitectl_cli.ts";
import { testKite } from "./helpers/kite_harness.ts";
import { serveContract } from "./contract/serve.ts";

Deno.test("kitectl describe prints a kite's contract; tell checks arguments against it before calling", async (t) => {
  const home = await Deno.makeTempDir({ prefix: "kitectl_contract_" });
  const env = { KITE_HOME: home };
  const server = await serveContract("1.2.0");
  let squares = 0;
  // Every call that reaches the contract kite, describe included.
  const reached: string[] = [];
  server.preHandle((r) => void reached.push(r.method));
  const plain = testKite("plain", { disableAuthentication: true });
  plain.handle("square", (r) => (squares++, r.args.one().number() ** 2));
  await plain.serve();
  try {
    await t.step("describe: text and --json", async () => {
      const text = await kitectl(["describe", server.url], env);
      assertEquals(text.code, 0, text.stderr);
      const lines = text.stdout.trim().split("\n");
      assertEquals(lines.slice(0, 2), [
        "kite math 1.0.0",
        "contract math 1.2.0",
      ]);
      assert(
        lines.includes(
          "  square(number) -> number  [idempotent, no auth]  n squared",
        ),
        text.stdout,
      );
      assert(
        lines.includes("  add({a: number, b: number}) -> number  [no auth]"),
        text.stdout,
      );
      assert(
        lines.includes("  greet(string, string?) -> string  [no auth]"),
        text.stdout,
      );
      assert(
        lines.includes(
          "  countdown(integer, fn(number)) -> null  [no auth]",
        ),
        text.stdout,
      );
      const json = await kitectl(["describe", server.url, "--json"], env);
      assertEquals(json.code, 0, json.stderr);
      const d = JSON.parse(json.stdout) as KiteDescription;
      assertEquals(d.contracts[0].name, "math");
      assertEquals(d.contracts[0].methods.square.result.type, "number");
    });

    await t.step(
      "describe: a kite without kite.describe is one line, exit 1",
      async () => {
        const r = await kitectl(["describe", plain.url], env);
        assertEquals(r.code, 1);
        assertMatch(oneLine(r.stderr), /does not answer kite\.describe/);
      },
    );

    await t.step(
      "tell: good arguments pass the check and are sent",
      async () => {
        const r = await kitectl(
          ["tell", server.url, "add", '{"a":2,"b":40}'],
          env,
        );
        assertEquals(r.code, 0, r.stderr);
        assertEquals(r.stdout.trim(), "42");
        const cb = await kitectl(
          [
            "tell",
            server.url,
            "countdown",
            "1",
            '{"$fn":"tick"}',
            "--callbacks",
            "2",
          ],
          env,
        );
        assertEquals(cb.code, 0, cb.stderr);
        assertMatch(cb.stdout, /callback tick \[1\]\n.*callback tick \[0\]/s);
      },
    );

    await t.step(
      "tell: a bad argument is one line naming method and path; nothing is sent",
      async () => {
        const bad: [string[], string][] = [
          [["add", '{"a":1,"b":"2"}'], "withArgs[0].b: must be number"],
          [["square", '"4"'], "withArgs[0]: must be number"],
          [["square", "1", "2"], "withArgs: must NOT have more than 1 items"],
          [
            ["countdown", "3", "4"],
            'withArgs[1]: expected a function, written {"$fn":"label"}',
          ],
        ];
        for (const [args, path] of bad) {
          reached.length = 0;
          const r = await kitectl(["tell", server.url, ...args], env);
          assertEquals(reached, ["kite.describe"], "only describe was called");
          assertEquals(r.code, 1, r.stderr);
          const line = oneLine(r.stderr);
          assert(
            line.startsWith(`kitectl tell: ${args[0]} (contract math@1.2.0): `),
            line,
          );
          assert(line.includes(path), `${line}\nshould name ${path}`);
          assert(line.endsWith("nothing was sent"), line);
        }
      },
    );

    await t.step(
      "tell: a kite without a contract is called unchecked; --no-check skips the check",
      async () => {
        const r = await kitectl(["tell", plain.url, "square", "3"], env);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(r.stdout.trim(), "9");
        assertEquals(squares, 1);
        const unchecked = await kitectl(
          ["tell", server.url, "add", '{"a":1,"b":"2"}', "--no-check"],
          env,
        );
        // The kite's own check answers instead.
        assertEquals(unchecked.code, 1);
        assertMatch(
          oneLine(unchecked.stderr),
          /argumentError: withArgs\[0\]\.b: expected number, got string/,
        );
      },
    );
  } finally {
    await plain.close();
    await server.close();
    await Deno.remove(home, { recursive: true });
  }
});
