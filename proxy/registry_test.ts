import { assertEquals, assertThrows } from "../tests/helpers/assert.ts";
import { testKite } from "../tests/helpers/kite_harness.ts";
import { KiteError } from "../kite/errors.ts";
import { ProxyRegistry } from "./registry.ts";

Deno.test("ProxyRegistry: a kite id stays its first user's; the same user moves it and the old streams close; a dropped connection forgets its kites", async () => {
  const kite = testKite("proxy");
  const [a, b, c] = [1, 2, 3].map(() =>
    kite.newClient("http://127.0.0.1:1/kite")
  );
  const registry = new ProxyRegistry<string>(2);
  try {
    const first = registry.add("id-1", "alice", a, "http://10.0.0.5/kite");
    const closed: string[] = [];
    first.streams.add((reason) => closed.push(reason));
    const err = assertThrows(
      () => registry.add("id-1", "mallory", b, "http://evil/kite"),
      KiteError,
      "registered with this proxy by another user",
    ) as KiteError;
    assertEquals(err.type, "authenticationError");
    assertEquals(registry.get("id-1")?.target, "http://10.0.0.5/kite");
    // Again over the same connection: same entry, streams kept.
    assertEquals(
      registry.add("id-1", "alice", a, "http://10.0.0.6/kite"),
      first,
    );
    assertEquals(closed, []);
    // Over a new connection (a reconnect): the old entry's streams close.
    registry.add("id-1", "alice", b, "http://10.0.0.7/kite");
    assertEquals(closed, ["kite id-1 registered again"]);
    registry.add("id-2", "bob", c, "http://10.0.0.8/kite");
    const full = assertThrows(
      () => registry.add("id-3", "bob", c, "http://10.0.0.9/kite"),
      KiteError,
    ) as KiteError;
    assertEquals(full.type, "requestLimitError");
    assertEquals(registry.dropConnection(c).map((e) => e.id), ["id-2"]);
    assertEquals(registry.dropConnection(a).length, 0);
    assertEquals([...registry.values()].map((e) => e.id), ["id-1"]);
  } finally {
    await kite.close();
  }
});
