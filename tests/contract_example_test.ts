// examples/contracts: the typed client, run as `deno task contracts:client`
// would run it, against the calculator kite serving the shared contract.
import { calculatorKite } from "../examples/contracts/server.ts";
import { assertEquals } from "./helpers/assert.ts";
import { runDeno } from "./helpers/deno_run.ts";
import { MemoryLogger } from "./helpers/kite_harness.ts";

Deno.test("examples/contracts: the typed client calls the calculator kite", async () => {
  const kite = calculatorKite({
    env: false,
    kiteKey: false,
    logger: new MemoryLogger(),
    config: { ip: "127.0.0.1", port: 0 },
  });
  try {
    const { url } = await kite.serve();
    const run = await runDeno([
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env",
      "--allow-sys",
      "--allow-read",
      "examples/contracts/client.ts",
      url,
    ]);
    assertEquals(run.code, 0, run.stderr);
    assertEquals(run.stdout.trim().split("\n"), [
      "square(4) = 16",
      "17 / 5 = 3 remainder 2",
      "countdown(3) called back 3, 2, 1, 0, then liftoff",
      'untyped square("4") → argumentError: withArgs[0]: expected number, got string',
    ]);
  } finally {
    await kite.close();
  }
});
