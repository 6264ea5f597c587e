// Must compile: the typed surface of a contract (checked by tests/contract_types_test.ts).
import type { Kite } from "../../kite/kite.ts";
import type { Client } from "../../kite/client.ts";
import type { KitePool } from "../../kite/discovery/pool.ts";
import { implement, typed } from "../../kite/contract/mod.ts";
import { math } from "./math_contract.ts";

export function serve(kite: Kite): void {
  implement(kite, math, {
    square: (n) => n * n,
    add: async ({ a, b }) => {
      await Promise.resolve();
      return a + b;
    },
    greet: (name, greeting, req) =>
      `${greeting ?? "hello"} ${name} from ${req.remoteKite.name}`,
    countdown: (from, tick) => {
      for (let i = from; i >= 0; i--) tick(i);
      return null;
    },
    adder: (base) => (n: number, answer: (sum: number) => unknown) => {
      answer(base + n);
    },
    broken: () => 1,
  });
}

export async function call(client: Client, pool: KitePool): Promise<void> {
  const m = typed(client, math);
  const n: number = await m.square(4);
  const s: string = await m.greet("ann");
  const s2: string = await m.greet("ann", "hi");
  const sum: number = await m.add({ a: 1, b: 2 });
  const nil: null = await m.countdown(3, (left) => {
    const x: number = left;
    return x;
  });
  const add = await m.adder(1);
  add(2, (total) => total.toFixed());
  const p = typed(pool, math, { checkVersion: false });
  const q: number = await p.square(2);
  console.log(n, s, s2, sum, nil, q);
}
