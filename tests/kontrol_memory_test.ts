/**
 * What Kontrol keeps per live registered kite, as V8 heap after a full
 * collection in a Kontrol process of its own (`deno task bench` measures
 * the RSS, which moves with when the collector last ran).
 */
import type { Kite } from "../mod.ts";
import { assert } from "./helpers/assert.ts";
import { testKite } from "./helpers/kite_harness.ts";
import { startTarget, type Target } from "./helpers/target_process.ts";

const KIB = 1024;
const WARM = 20;
const KITES = 300;
/**
 * 7.7 KiB here; 10.8 while a served call's deadline joined its signal to
 * the connection's for calls back over that connection, sockets took `on…`
 * handlers instead of listeners, and every connection kept the start of
 * the one call it sent and two maps for its one callback.
 */
const MAX_HEAP_PER_KITE = 8.5 * KIB;

async function heapAfterGc(target: Target, caller: Kite): Promise<number> {
  const client = caller.newClient(target.url, { auth: null });
  await client.dial();
  try {
    const stats = await client.tell("target.stats", true) as {
      heapUsed: number;
    };
    return stats.heapUsed;
  } finally {
    client.close();
  }
}

async function registerKites(
  target: Target,
  n: number,
  into: Kite[],
): Promise<void> {
  for (let i = into.length, end = into.length + n; i < end; i++) {
    const kite = testKite(`mem${i}`, { kontrolURL: target.url }, {
      kiteKey: target.kiteKey!,
    });
    into.push(kite);
    await kite.register(`http://10.0.0.2:${2000 + i}/kite`);
  }
}

Deno.test(`Kontrol keeps < ${MAX_HEAP_PER_KITE / KIB} KiB of heap per live registered kite`, async () => {
  const target = await startTarget("kontrol", {
    config: { maxConnectionsPerAddress: KITES + WARM + 10 },
  });
  const caller = testKite("probe");
  const kites: Kite[] = [];
  try {
    // Warm-up: code and tables a registration needs anyway.
    await registerKites(target, WARM, kites);
    const before = await heapAfterGc(target, caller);
    await registerKites(target, KITES, kites);
    const after = await heapAfterGc(target, caller);
    const perKite = (after - before) / KITES;
    console.log(
      `Kontrol heap per registered kite: ${(perKite / KIB).toFixed(2)} KiB`,
    );
    assert(
      perKite < MAX_HEAP_PER_KITE,
      `Kontrol keeps ${(perKite / KIB).toFixed(2)} KiB of heap per kite`,
    );
  } finally {
    await Promise.all(kites.map((k) => k.close()));
    await caller.close();
    await target.stop();
  }
});
