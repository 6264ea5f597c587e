import { ManualClock } from "../kite/clock.ts";
import { storageConformance } from "./conformance.ts";
import { MemoryStorage } from "./memory.ts";

Deno.test("MemoryStorage passes the storage conformance suite", (t) =>
  storageConformance(t, () => {
    const clock = new ManualClock();
    const storage = new MemoryStorage({ clock });
    return Promise.resolve({ storage, clock, cleanup: () => storage.close() });
  }));

Deno.test("MemoryStorage also conforms on the system clock", (t) =>
  storageConformance(t, () => {
    const storage = new MemoryStorage();
    return Promise.resolve({ storage, cleanup: () => storage.close() });
  }));
