// Kontrol keeps the contracts a kite registers with, and getKites filters
// on them (name, semver range); kites that send none register and are
// found exactly as before (docs/protocol.md §8.2).
import { KiteError } from "../mod.ts";
import type { Kite } from "../kite/kite.ts";
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { kontrolKite, withKontrol } from "./helpers/kontrol_harness.ts";
import { serveMath } from "./contract/math_contract.ts";

const QUERY = { username: "alice", environment: "test", name: "math" };

Deno.test("getKites filters by contract name and version range; kites without contracts still register and are found", () =>
  withKontrol("memory", async (tk, own) => {
    const v1 = own(await kontrolKite(tk, "math", "alice"));
    serveMath(v1, "1.4.0");
    const v2 = own(await kontrolKite(tk, "math", "alice"));
    serveMath(v2, "2.1.0");
    const plain = own(await kontrolKite(tk, "math", "alice"));
    plain.handle("square", (r) => r.args.one().number() ** 2);
    const overHttp = own(await kontrolKite(tk, "math", "alice"));
    serveMath(overHttp, "1.2.5");
    for (const k of [v1, v2, plain, overHttp]) await k.serve();
    await v1.register();
    await v2.register();
    await plain.register();
    await overHttp.registerHTTP();
    const caller = own(await kontrolKite(tk, "caller", "alice"));

    const ids = async (contract?: { name: string; version?: string }) => {
      const found = await caller.getKites(QUERY, { contract });
      for (const f of found) f.renewer.stop();
      return found.map((f) => f.kite.id).sort();
    };
    const sorted = (...ks: Kite[]) => ks.map((k) => k.identity.id).sort();
    assertEquals(await ids(), sorted(v1, v2, plain, overHttp));
    assertEquals(
      await ids({ name: "math", version: "^1.2.0" }),
      sorted(v1, overHttp),
    );
    assertEquals(
      await ids({ name: "math", version: ">=1.3.0" }),
      sorted(v1, v2),
    );
    assertEquals(await ids({ name: "math" }), sorted(v1, v2, overHttp));
    assertEquals(await ids({ name: "stats" }), []);

    const all = await caller.getKites(QUERY);
    for (const f of all) f.renewer.stop();
    const byId = new Map(all.map((f) => [f.kite.id, f]));
    assertEquals(byId.get(v1.identity.id)?.contracts, [
      { name: "math", version: "1.4.0" },
    ]);
    assert(
      !("contracts" in byId.get(plain.identity.id)!),
      "a kite that registered no contract is answered in the Go shape",
    );
  }));

Deno.test("Kontrol refuses malformed contracts and contract filters with argumentError, and keeps serving", () =>
  withKontrol("memory", async (tk, own) => {
    const k = own(await kontrolKite(tk, "math", "alice"));
    await k.serve();
    const kontrol = await k.kontrol.connection();
    const bad: [string, unknown, string][] = [
      ["register", { url: k.url, contracts: "math" }, "list"],
      [
        "register",
        { url: k.url, contracts: [{ name: "math", version: "one" }] },
        "contracts[0].version must be semver",
      ],
      [
        "register",
        {
          url: k.url,
          contracts: Array.from(
            { length: 17 },
            (_, i) => ({ name: `c${i}`, version: "1.0.0" }),
          ),
        },
        "at most 16",
      ],
      [
        "register",
        {
          url: k.url,
          contracts: [{ name: "x".repeat(300), version: "1.0.0" }],
        },
        "longer than",
      ],
      [
        "getKites",
        { query: QUERY, contract: { name: "math", version: "not a range" } },
        "semver range",
      ],
      ["getKites", { query: QUERY, contract: ["math"] }, "contract must be"],
      ["getKites", { query: QUERY, contract: { version: "1" } }, "name"],
    ];
    for (const [method, arg, text] of bad) {
      const err = await assertRejects(
        () => kontrol.tell(method, arg),
        KiteError,
        text,
      );
      assertEquals((err as KiteError).type, "argumentError", text);
    }
    // Still serving, and a registration without contracts is the Go shape.
    await k.register();
    const found = await k.getKites(QUERY);
    for (const f of found) f.renewer.stop();
    assertEquals(found.map((f) => f.kite.id), [k.identity.id]);
  }));
