// typed() over a pool (#12): the contract's methods on whichever registered
// instance the pool picks, with the version check asked through the pool.
import { KiteError } from "../mod.ts";
import { typed } from "../kite/contract/mod.ts";
import { assertEquals, assertRejects } from "./helpers/assert.ts";
import { kontrolKite, withKontrol } from "./helpers/kontrol_harness.ts";
import { math, mathContract, serveMath } from "./contract/math_contract.ts";

const QUERY = { username: "alice", environment: "test", name: "math" };

Deno.test("typed() over a pool calls registered contract kites, and refuses an incompatible one", () =>
  withKontrol("memory", async (tk, own) => {
    const server = own(
      await kontrolKite(tk, "math", "alice", { environment: "test" }),
    );
    serveMath(server, "1.4.0");
    await server.serve();
    await server.register();
    const caller = own(await kontrolKite(tk, "caller", "bob"));
    const pool = caller.pool(QUERY);
    assertEquals(await typed(pool, math).square(5), 25);
    assertEquals(await typed(pool, math).add({ a: 1, b: 2 }), 3);
    const err = await assertRejects(
      () => typed(pool, mathContract("2.0.0")).square(5),
      KiteError,
      "math@1.4.0, which a client built against 2.0.0 cannot call",
    );
    assertEquals((err as KiteError).type, "genericError");
  }));
