/**
 * Calls the math kite: `square(4)` and a callback round trip.
 *
 *     deno task math:client [http://127.0.0.1:3636/kite]
 *
 * @module
 */
import { Kite } from "../../mod.ts";

const url = Deno.args[0] ?? "http://127.0.0.1:3636/kite";
const kite = new Kite("math-client", "1.0.0");
const client = kite.newClient(url);
await client.dial();
console.log(`square(4) = ${await client.tell("square", 4)}`);
let calledBack: unknown;
const result = await client.tell("squareCb", 5, (n: number) => calledBack = n);
console.log(`squareCb(5) = ${result}, and it called back with ${calledBack}`);
await kite.close();
