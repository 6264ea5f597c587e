import { assertEquals } from "../tests/helpers/assert.ts";
import { ManualClock } from "../kite/clock.ts";
import { createLogger } from "../kite/log.ts";
import { makeIdentity, makeQuery } from "../kite/protocol.ts";
import { MemoryStorage } from "../storage/memory.ts";
import {
  DEFAULT_TIMING,
  FOREIGN_WRITE_MARGIN_MS,
  Registry,
} from "./registry.ts";

const KITE = makeIdentity({
  username: "alice",
  environment: "test",
  name: "mover",
  version: "1.0.0",
  region: "eu",
  hostname: "h",
  id: "7f3a0c52-6d0e-4f7e-9d0a-1c2b3d4e5f60",
});
const SILENCE_MS = DEFAULT_TIMING.heartbeatIntervalMs +
  DEFAULT_TIMING.heartbeatGraceMs;

/** Two Kontrols' registries on one shared storage, on one manual clock. */
async function withCluster(
  fn: (c: Omit<ReturnType<typeof cluster>, "close">) => Promise<void>,
): Promise<void> {
  const c = cluster();
  try {
    await fn(c);
  } finally {
    await c.close();
  }
}

function cluster() {
  const clock = new ManualClock();
  const storage = new MemoryStorage({ clock });
  const logger = createLogger("registry-test", "ERROR");
  const a = new Registry(storage, clock, logger);
  const b = new Registry(storage, clock, logger);
  const stored = async () =>
    (await storage.get(makeQuery({ id: KITE.id }))).map((k) => k.url);
  const close = () => {
    a.close();
    b.close();
    return storage.close();
  };
  return { clock, a, b, stored, close };
}

Deno.test("Registry: a kite that goes silent is deregistered from storage", () =>
  withCluster(async ({ clock, a, stored }) => {
    await a.register({ kite: KITE, url: "http://a/kite", keyId: "k" });
    await clock.advance(SILENCE_MS + 1);
    assertEquals(a.has(KITE.id), false);
    assertEquals(await stored(), []);
  }));

Deno.test("Registry: a Kontrol that loses a kite late leaves its newer registration elsewhere alone", () =>
  withCluster(async ({ clock, a, b, stored }) => {
    await a.register({ kite: KITE, url: "http://old/kite", keyId: "k" });
    // The kite's link to A dies unseen by A; it registers through B.
    await clock.advance(5_000);
    await b.register({ kite: KITE, url: "http://new/kite", keyId: "k" });
    // A's heartbeat timer ends its supervision; B's entry must survive.
    await clock.advance(SILENCE_MS - 5_000 + 1);
    assertEquals([a.has(KITE.id), b.has(KITE.id)], [false, true]);
    assertEquals(await stored(), ["http://new/kite"]);
  }));

Deno.test("Registry: a write within the margin still counts as this Kontrol's own", () =>
  withCluster(async ({ clock, a, b, stored }) => {
    await a.register({ kite: KITE, url: "http://a/kite", keyId: "k" });
    await clock.advance(FOREIGN_WRITE_MARGIN_MS);
    // Same instant within the margin (clock skew): A's deregistration wins.
    await b.register({ kite: KITE, url: "http://b/kite", keyId: "k" });
    await a.deregister(KITE.id, "connection closed");
    assertEquals(await stored(), []);
  }));

Deno.test("Registry counts registrations in flight against maxKitesPerUser", async () => {
  const clock = new ManualClock();
  const storage = new MemoryStorage({ clock });
  const registry = new Registry(
    storage,
    clock,
    createLogger("registry-test", "ERROR"),
    {},
    { maxKitesPerUser: 3, idRetentionMs: 60_000, httpProofMs: 60_000 },
  );
  try {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        registry.register({
          kite: { ...KITE, id: `id-${i}` },
          url: `http://127.0.0.1:${i + 1}/kite`,
          keyId: "k",
        })),
    );
    assertEquals(outcomes.map((o) => o.status), [
      "fulfilled",
      "fulfilled",
      "fulfilled",
      "rejected",
      "rejected",
    ]);
    assertEquals(registry.size, 3);
    // Registering one of them again does not count twice.
    await registry.register({
      kite: { ...KITE, id: "id-0" },
      url: "http://127.0.0.1:9/kite",
      keyId: "k",
    });
    assertEquals(registry.size, 3);
  } finally {
    registry.close();
    await storage.close();
  }
});
