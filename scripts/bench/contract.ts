/**
 * What a contract costs: `square(4)` served by a plain handler
 * (`r.args.one().number() ** 2`) and by `implement()` (arguments checked
 * with zod, results checked too as in development, and with result checks
 * off as in production), and the last called through `typed()` (version
 * checked once per connection), side by side in one run over raw websocket.
 * Rounds alternate the order; figures are medians, the ratios to the plain
 * handler are the result (target: ≤ 10 % slower).
 *
 * @module
 */
import { z } from "zod";
import { Kite } from "../../mod.ts";
import { defineContract, implement, typed } from "../../kite/contract/mod.ts";
import { sideBySide, type SideBySideResult } from "./side_by_side.ts";

/** One contender's medians. */
export type ContractResult = SideBySideResult;

const math = defineContract({
  name: "math",
  version: "1.0.0",
  methods: { square: { args: [z.number()], result: z.number() } },
});

function quietKite(name: string, environment = "bench"): Kite {
  return new Kite(name, "1.0.0", {
    env: false,
    kiteKey: false,
    config: {
      ip: "127.0.0.1",
      disableAuthentication: true,
      logLevel: "ERROR",
      environment,
    },
  });
}

/** Runs the contract cost benchmark. */
export async function benchContract(
  options: { rounds?: number; ms?: number } = {},
): Promise<ContractResult[]> {
  const rounds = options.rounds ?? 5;
  const ms = options.ms ?? 1000;
  const plain = quietKite("plain");
  plain.handle("square", (r) => r.args.one().number() ** 2);
  const checked = quietKite("checked");
  implement(checked, math, { square: (n) => n * n });
  const prod = quietKite("checked-prod", "production");
  implement(prod, math, { square: (n) => n * n });
  const contenders: [string, Kite][] = [
    ["plain handler", plain],
    ["contract, args + results checked (development)", checked],
    ["contract, args checked (production)", prod],
  ];
  const client = quietKite("bench");
  try {
    const calls: (() => Promise<unknown>)[] = [];
    for (const [, kite] of contenders) {
      const { url } = await kite.serve({ port: 0 });
      const c = client.newClient(url, { transport: "raw-websocket" });
      await c.dial();
      calls.push(() => c.tell("square", 4));
    }
    const viaTyped = client.newClient(prod.url, {
      transport: "raw-websocket",
    });
    await viaTyped.dial();
    const m = typed(viaTyped, math);
    calls.push(() => m.square(4));
    const names = [
      ...contenders.map(([name]) => name),
      "contract (production) called through typed()",
    ];
    return await sideBySide(
      names.map((name, i) => [name, calls[i]]),
      rounds,
      ms,
    );
  } finally {
    await client.close();
    for (const [, kite] of contenders) await kite.close();
  }
}

/** The table rows, with ratios to the plain handler. */
export function contractRows(
  results: ContractResult[],
): Record<string, string | number>[] {
  return results.map((r) => ({
    contender: r.name,
    "seq calls/s": r.sequentialPerSec,
    "100 in flight/s": r.inFlightPerSec,
    "seq × plain": r.sequentialRatio,
    "flight × plain": r.inFlightRatio,
  }));
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const results = await benchContract(
    quick ? { rounds: 3, ms: 500 } : undefined,
  );
  console.table(contractRows(results));
}
