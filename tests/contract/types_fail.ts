// Each marked line must fail to compile (checked by tests/contract_types_test.ts,
// which also checks that without the markers there are exactly that many errors).
import type { Kite } from "../../kite/kite.ts";
import type { Client } from "../../kite/client.ts";
import { implement, typed } from "../../kite/contract/mod.ts";
import { math } from "./math_contract.ts";

export async function call(client: Client): Promise<void> {
  const m = typed(client, math);
  // @ts-expect-error wrong argument type
  await m.square("4");
  // @ts-expect-error unknown method
  await m.squre(4);
  // @ts-expect-error result is a number, not a string
  const s: string = await m.square(4);
  // @ts-expect-error missing object field
  await m.add({ a: 1 });
  // @ts-expect-error too many arguments
  await m.square(1, 2);
  await m.countdown(3, (left) => {
    // @ts-expect-error callback parameter is a number
    const t: string = left;
    return t;
  });
  // @ts-expect-error callback taking a string where a number is sent
  await m.countdown(3, (left: string) => left);
  console.log(s);
}

export function serve(kite: Kite): void {
  implement(kite, math, {
    // @ts-expect-error wrong handler return type
    square: (n) => `${n}`,
    // @ts-expect-error handler argument typed wrongly
    add: (args: string) => args.length,
    greet: (name) => name,
    // @ts-expect-error async handler resolving to the wrong type
    countdown: async () => await Promise.resolve(1),
    adder: () => () => {},
    broken: () => 1,
  });
  // @ts-expect-error a handler missing
  implement(kite, math, { square: (n) => n });
}
