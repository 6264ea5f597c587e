/**
 * Calls the calculator through its contract: every call is typed, and
 * dialing checks the kite serves a compatible version (a 2.x calculator
 * fails here, before any call).
 *
 *     deno task contracts:client [http://127.0.0.1:3637/kite]
 *
 * @module
 */
import { Kite } from "../../mod.ts";
import { dialTyped } from "../../kite/contract/mod.ts";
import { calculator } from "./contract.ts";

const url = Deno.args[0] ?? "http://127.0.0.1:3637/kite";
const kite = new Kite("calculator-client", "1.0.0");
const client = kite.newClient(url);
try {
  const calc = await dialTyped(client, calculator);
  const n: number = await calc.square(4);
  console.log(`square(4) = ${n}`);
  const { quotient, remainder } = await calc.divide({
    dividend: 17,
    divisor: 5,
  });
  console.log(`17 / 5 = ${quotient} remainder ${remainder}`);
  const ticks: number[] = [];
  const done = await calc.countdown(3, (left) => void ticks.push(left));
  console.log(`countdown(3) called back ${ticks.join(", ")}, then ${done}`);
  // calc.squre(4) or calc.square("4") would not compile; the kite would
  // answer argumentError to the same mistakes from an untyped caller:
  await client.tell("square", "4").catch((err) =>
    console.log(`untyped square("4") → ${err.type}: ${err.message}`)
  );
} finally {
  await kite.close();
}
