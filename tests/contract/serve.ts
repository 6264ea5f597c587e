// A contract-served kite and a client dialed to it, for the contract tests.
import type { Kite } from "../../mod.ts";
import { implement } from "../../kite/contract/mod.ts";
import { testKite } from "../helpers/kite_harness.ts";
import { mathContract } from "./math_contract.ts";

/** Serves version `version` of the test contract on 127.0.0.1, authentication off. */
export async function serveContract(version = "1.2.0"): Promise<Kite> {
  const kite = testKite("math", { disableAuthentication: true });
  implement(kite, mathContract(version), {
    square: (n) => n * n,
    add: ({ a, b }) => a + b,
    greet: (name, greeting) => `${greeting ?? "hello"} ${name}`,
    countdown: (from, tick) => {
      for (let i = from; i >= 0; i--) tick(i);
      return null;
    },
    adder: (base) => (n: number, answer: (sum: number) => unknown) => {
      answer(base + n);
    },
    // Breaks its own contract: must be caught in development.
    broken: () => "not a number" as unknown as number,
  });
  await kite.serve();
  return kite;
}

/** Runs `fn` with a client dialed to `server`; closes both after. */
export async function withClient(
  server: Kite,
  fn: (client: ReturnType<Kite["newClient"]>) => Promise<void>,
): Promise<void> {
  const caller = testKite("caller");
  const client = caller.newClient(server.url);
  try {
    await client.dial();
    await fn(client);
  } finally {
    client.close();
    await caller.close();
    await server.close();
  }
}
