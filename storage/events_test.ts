import { assertEquals } from "../tests/helpers/assert.ts";
import { makeIdentity, makeQuery } from "../kite/protocol.ts";
import { registerEvent, WatcherSet } from "./events.ts";

const QUERY = makeQuery({ username: "u" });

Deno.test("WatcherSet.emit() delivers to every listener even when async ones reject", async () => {
  const watchers = new WatcherSet();
  const got: string[] = [];
  watchers.add(QUERY, async () => {
    await Promise.resolve();
    throw new Error("Slow consumer");
  });
  watchers.add(QUERY, () => {
    throw new Error("sync");
  });
  watchers.add(
    QUERY,
    (ev) => void got.push(ev.action),
  );
  const quiet = console.error;
  const reported: unknown[][] = [];
  console.error = (...args: unknown[]) => void reported.push(args);
  try {
    watchers.emit(registerEvent({
      kite: makeIdentity({ name: "math", username: "u", id: "1" }),
      url: "http://127.0.0.1:1/kite",
      keyId: "k",
      updatedAt: 0,
    } as never));
    // Let the rejection happen: an unhandled one would fail this test.
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  } finally {
    console.error = quiet;
  }
  assertEquals(got, ["REGISTER"]);
  assertEquals(reported.length, 2);
});
