import { ManualClock } from "../kite/clock.ts";
import { assertEquals, assertRejects } from "../tests/helpers/assert.ts";
import { MemoryStorage } from "../storage/memory.ts";
import type { Storage } from "../storage/storage.ts";
import { codeStorageOf, MachineCodes } from "./machine_codes.ts";

Deno.test("MachineCodes: a code works once, until it expires, for its user only", async () => {
  const clock = new ManualClock(1_000);
  const codes = new MachineCodes({ clock });
  const a = await codes.create({ ttlMs: 60_000 });
  const b = await codes.create({ ttlMs: 60_000, username: "carol" });
  assertEquals(a === b, false);
  await codes.consume(a, "alice");
  await assertRejects(() => codes.consume(a, "alice"), Error, "already used");
  await assertRejects(() => codes.consume(b, "bob"), Error, "for user carol");
  await clock.advance(60_000);
  await assertRejects(() => codes.consume(b, "carol"), Error, "expired");
  await assertRejects(
    () => codes.create({ ttlMs: 0 }),
    RangeError,
    "ttl must be 1 ms to 30 days",
  );
});

Deno.test("MachineCodes: two Kontrols on one storage share codes; each is used once", async () => {
  const storage = new MemoryStorage();
  const a = new MachineCodes({ storage: codeStorageOf(storage) });
  const b = new MachineCodes({ storage: codeStorageOf(storage) });
  const code = await a.create({ username: "alice" });
  await assertRejects(() => a.consume(code, "bob"), Error, "for user alice");
  await b.consume(code, "alice");
  await assertRejects(() => a.consume(code, "alice"), Error, "already used");
  const unknown = await assertRejects(
    () => b.consume("00000000-00000000-00000000-00000000-00000000", "alice"),
    Error,
    "unknown or expired",
  );
  assertEquals(unknown.message.includes("cannot hold codes"), false);
});

Deno.test("MachineCodes: without code storage, codes stay in memory and the refusal says so", async () => {
  // A storage written before the code methods existed.
  const older = { engine: "custom" } as unknown as Storage;
  assertEquals(codeStorageOf(older), undefined);
  const a = new MachineCodes();
  const b = new MachineCodes();
  const code = await a.create();
  await assertRejects(
    () => b.consume(code, "alice"),
    Error,
    "this Kontrol's storage cannot hold codes, so a code works only on the Kontrol that made it",
  );
  await a.consume(code, "alice");
});

Deno.test("MachineCodes: at most 10,000 codes are held; expired ones are swept to make room", async () => {
  const clock = new ManualClock(1_000);
  const codes = new MachineCodes({
    clock,
    storage: codeStorageOf(new MemoryStorage()),
  });
  const first = await codes.create({ ttlMs: 1_000 });
  for (let i = 1; i < 10_000; i++) await codes.create({ ttlMs: 60_000 });
  await assertRejects(
    () => codes.create({ ttlMs: 60_000 }),
    RangeError,
    "already holds 10000 one-time codes",
  );
  await clock.advance(1_000);
  const next = await codes.create({ ttlMs: 60_000 });
  await assertRejects(() => codes.consume(first, "alice"), Error, "expired");
  await codes.consume(next, "alice");
});

Deno.test("MachineCodes: a storage failure is logged, and the caller hears no storage details", async () => {
  const logged: unknown[] = [];
  const codes = new MachineCodes({
    storage: {
      addCode: () => Promise.resolve(true),
      deleteExpiredCodes: () => Promise.resolve(0),
      claimCode: () =>
        Promise.reject(new Error("etcd claimCode failed (10.0.0.7:2379)")),
    },
    onStorageError: (err) => logged.push(err),
  });
  const code = await codes.create();
  const err = await assertRejects(
    () => codes.consume(code, "alice"),
    Error,
    "cannot check one-time codes now",
  );
  assertEquals(err.message.includes("10.0.0.7"), false);
  assertEquals(String(logged[0]).includes("10.0.0.7"), true);
});
