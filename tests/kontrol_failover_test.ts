/**
 * Kites fail over on every failure of a Kontrol that answers, not only
 * when a dial fails, and go back to the first Kontrol of their list when
 * it takes registrations again (issue #16).
 */
import { ManualClock } from "../kite/clock.ts";
import { makeQuery } from "../kite/protocol.ts";
import { Kite } from "../mod.ts";
import { MemoryStorage } from "../storage/memory.ts";
import { PREFERRED_RETRY_MS } from "../kite/kontrol_client.ts";
import { signKiteKey } from "../kontrol/tokens.ts";
import { assertEquals } from "./helpers/assert.ts";
import { MemoryLogger, within } from "./helpers/kite_harness.ts";
import {
  KONTROL_PRIVATE,
  startSharingKontrol,
} from "./helpers/kontrol_cluster.ts";
import {
  eventually,
  freePort,
  KONTROL_PUBLIC,
  startTestKontrol,
  type TestKontrol,
} from "./helpers/kontrol_harness.ts";

async function kiteFor(urls: string[], clock?: ManualClock): Promise<Kite> {
  const kiteKey = await signKiteKey({
    username: "alice",
    kontrolUser: "kontrol",
    kontrolURL: urls.join(","),
    publicKeyPem: KONTROL_PUBLIC,
    privateKeyPem: KONTROL_PRIVATE,
  });
  return new Kite("mover", "1.0.0", {
    env: false,
    kiteKey,
    clock,
    logger: new MemoryLogger(),
    config: { ip: "127.0.0.1", port: 0, environment: "test" },
  });
}

const ALICE = makeQuery({ username: "alice" });

Deno.test("a kite registered with its second Kontrol moves back to the first once that one is up", async () => {
  const open: TestKontrol[] = [];
  const clock = new ManualClock(Date.now());
  const firstPort = freePort();
  const second = await startTestKontrol();
  open.push(second);
  const kite = await kiteFor(
    [`http://127.0.0.1:${firstPort}/kite`, second.url],
    clock,
  );
  try {
    await kite.serve();
    await kite.registerForever();
    assertEquals(kite.kontrol.registeredWith, second.url, "the first is down");

    const first = await startTestKontrol({ port: firstPort });
    open.push(first);
    await clock.advance(PREFERRED_RETRY_MS);
    await eventually(
      () => kite.kontrol.registeredWith === first.url,
      "the kite to move back to the first Kontrol",
      10_000,
    );
    assertEquals((await first.storage.get(ALICE)).length, 1);
    await eventually(
      async () => (await second.storage.get(ALICE)).length === 0,
      "the second Kontrol to let the kite go",
      10_000,
    );
  } finally {
    await kite.close();
    for (const k of open) await k.close();
  }
});

Deno.test("a Kontrol that refuses register sends the kite to the next one at once", async () => {
  // No probe to heal it, no grace: one reported failure makes it step aside.
  const refusing = await startTestKontrol({
    health: { probeIntervalMs: 1e9, graceMs: 0 },
  });
  const working = await startTestKontrol();
  const kite = await kiteFor([refusing.url, working.url]);
  try {
    await kite.serve();
    // It answers but refuses, as one that cannot use its storage does.
    refusing.kontrol.health.fail(new Error("storage gone"));
    assertEquals(refusing.kontrol.health.healthy, false, "setup");
    await within(kite.registerForever(), "registering elsewhere", 10_000);
    assertEquals(kite.kontrol.registeredWith, working.url);
    assertEquals((await refusing.storage.get(ALICE)).length, 0);
  } finally {
    await kite.close();
    await refusing.close();
    await working.close();
  }
});

Deno.test("HTTP registration skips a Kontrol that is away, and moves on when its Kontrol stops answering heartbeats", async () => {
  const clock = new ManualClock(Date.now());
  const first = await startTestKontrol();
  const second = await startTestKontrol();
  const open = [first, second];
  const kite = await kiteFor(
    [`http://127.0.0.1:${freePort()}/kite`, first.url, second.url],
    clock,
  );
  try {
    await kite.serve();
    // The first URL is closed: registerHTTP goes on to the next.
    await within(kite.registerHTTP(), "registering over HTTP", 10_000);
    assertEquals((await first.storage.get(ALICE)).length, 1);

    // The Kontrol it registered with goes away; after a few heartbeats
    // that get no answer the kite registers with the next one.
    await first.close();
    open.shift();
    for (let i = 0; i < 4; i++) {
      await clock.advance(10_000);
      await new Promise((r) => setTimeout(r, 50));
    }
    await eventually(
      async () => (await second.storage.get(ALICE)).length === 1,
      "the kite to register with the second Kontrol over HTTP",
      10_000,
    );
  } finally {
    await kite.close();
    for (const k of open) await k.close();
  }
});

Deno.test("an HTTP-registered kite leaves a Kontrol that cannot use its storage", async () => {
  const clock = new ManualClock(Date.now());
  // No probe to heal it, no grace: one reported failure makes it step aside.
  const failing = await startTestKontrol({
    health: { probeIntervalMs: 1e9, graceMs: 0 },
  });
  const working = await startTestKontrol();
  const kite = await kiteFor([failing.url, working.url], clock);
  try {
    await kite.serve();
    await within(kite.registerHTTP(), "registering over HTTP", 10_000);
    assertEquals((await failing.storage.get(ALICE)).length, 1);
    failing.kontrol.health.fail(new Error("storage gone"));
    // The next heartbeat is not "pong": the kite registers again, is
    // refused with 503 and goes to the next Kontrol.
    await clock.advance(10_000);
    await eventually(
      async () => (await working.storage.get(ALICE)).length === 1,
      "the kite to register with the working Kontrol",
      10_000,
    );
  } finally {
    await kite.close();
    await failing.close();
    await working.close();
  }
});

Deno.test("watchKites follows its Kontrol list: after a drop it watches again and delivers what changed meanwhile", async () => {
  // Two Kontrols on one in-memory storage.
  const storage = new MemoryStorage();
  const start = () => startSharingKontrol(storage);
  const a = await start();
  const b = await start();
  const kites: Kite[] = [];
  try {
    const early = await kiteFor([b.url]);
    kites.push(early);
    await early.serve();
    await early.registerForever();
    const watcher = await kiteFor([a.url, b.url]);
    kites.push(watcher);
    const events: string[] = [];
    await watcher.kontrol.watchKites(
      { username: "alice" },
      (e) => events.push(`${e.action} ${e.kite.id}${e.url ? " url" : ""}`),
    );

    await a.kontrol.kite.close(); // the watcher's Kontrol goes away
    await early.close(); // B deregisters it while the watcher is away
    const late = await kiteFor([b.url]);
    kites.push(late);
    await late.serve();
    await late.registerForever();
    await eventually(
      () =>
        events.includes(`DEREGISTER ${early.identity.id}`) &&
        events.includes(`REGISTER ${late.identity.id} url`),
      `the watcher to learn what changed while it was away (${events})`,
      10_000,
    );
    assertEquals(
      events.sort(),
      [
        `DEREGISTER ${early.identity.id}`,
        `REGISTER ${late.identity.id} url`,
      ].sort(),
    );
    assertEquals(watcher.kontrol.url, b.url, "it watches through B now");
    await late.close();
    await eventually(
      () => events.includes(`DEREGISTER ${late.identity.id}`),
      "events through B",
      10_000,
    );
  } finally {
    for (const k of kites) await k.close();
    await a.kontrol.kite.close();
    await b.kontrol.kite.close();
    await storage.close();
  }
});
