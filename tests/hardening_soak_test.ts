/**
 * The soak and fault runs of `deno task soak`, reduced to seconds and run
 * against servers in the test process: many clients, a callback flood on
 * one connection, a kite restarted under `dialForever` clients, and a
 * Kontrol on KV restarted under `registerForever` kites.
 */
import {
  callbackFlood,
  kiteRestart,
  kontrolRestart,
  manyClients,
} from "../scripts/soak/scenarios.ts";
import { kiteInProcess, kontrolInProcess } from "../scripts/soak/servers.ts";
import { assert, assertEquals } from "./helpers/assert.ts";

Deno.test("soak: 50 clients × 50 calls, 0 errors, 0 lost, nothing left behind", async () => {
  const server = await kiteInProcess();
  try {
    const r = await manyClients(server, { clients: 50, calls: 50 });
    assertEquals(r.ok, 2_500, r.firstErrors.join("; "));
    assertEquals([r.errors, r.wrong, r.lost], [0, 0, 0]);
    assertEquals(r.server.loaded.connections, 50);
    const after = r.server.after;
    assertEquals([after.connections, after.callbacks, after.pending], [
      0,
      0,
      0,
    ]);
    assertEquals(r.clientLeft, { callbacks: 0, pending: 0 });
  } finally {
    await server.close();
  }
});

Deno.test("soak: 20,000 calls with a fresh callback each keep both callback tables bounded", async () => {
  const server = await kiteInProcess();
  try {
    const r = await callbackFlood(server, { calls: 20_000, window: 100 });
    assertEquals(r.ok, 20_000);
    assertEquals(r.callbacksRun, 20_000);
    assertEquals([r.errors, r.wrong, r.lost], [0, 0, 0]);
    assert(
      r.maxClientCallbacks <= 200,
      `table grew to ${r.maxClientCallbacks}`,
    );
    assertEquals(r.finalClientCallbacks, 0);
    assert(r.samples.length >= 10, `${r.samples.length} samples`);
    assert(
      r.samples.every((s) => s.callbacks === 0),
      "the server held callbacks",
    );
  } finally {
    await server.close();
  }
});

Deno.test("soak: dialForever clients ride out a kite restart; in-flight calls fail, none hangs", async () => {
  const server = await kiteInProcess();
  try {
    const r = await kiteRestart(server, {
      clients: 10,
      restarts: 2,
      downMs: 200,
      loadMs: 300,
      hangAfterMs: 10_000,
    });
    assertEquals(r.hung, 0);
    assertEquals([r.wrong, r.other], [0, 0], r.otherErrors.join("; "));
    assert(r.disconnect + r.sendError > 0, "the restarts went unnoticed");
    assertEquals(r.resumed, 10, "every client called again after each restart");
    assert(r.ok > 100, `${r.ok} successful calls`);
  } finally {
    await server.close();
  }
});

Deno.test("soak: registerForever kites are back with a restarted Kontrol on KV within 15 s, 0 lost", async () => {
  const kontrol = await kontrolInProcess();
  try {
    const r = await kontrolRestart(kontrol, {
      kites: 10,
      loadClients: 2,
      downMs: 200,
    });
    assertEquals(r.registeredBefore, 10);
    assertEquals(r.back, 10);
    assert(r.allBackMs >= 0 && r.allBackMs <= 15_000, `${r.allBackMs} ms`);
    assertEquals(
      [r.listed, r.listedOurs],
      [10, 10],
      "lost or duplicated kites",
    );
    assertEquals(r.loadHung, 0);
    assert(r.loadOk > 0, "the load clients never got an answer");
  } finally {
    await kontrol.close();
  }
});
