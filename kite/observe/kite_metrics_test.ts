import { assertEquals } from "../../tests/helpers/assert.ts";
import { KiteMetrics } from "./kite_metrics.ts";

/** The server latency histogram's count at or below `le` for `method`. */
function atMost(m: KiteMetrics, method: string, le: string): number {
  const line = m.registry.expose().split("\n").find((l) =>
    l.startsWith(
      `kite_server_request_duration_seconds_bucket{method="${method}",outcome="ok",le="${le}"}`,
    )
  );
  return Number(line?.split(" ")[1]);
}

Deno.test("KiteMetrics: calls served in one turn arrived together; a later turn reads the clock again", async () => {
  const m = new KiteMetrics({ connections: () => [], xhrSessions: () => 0 });
  const ok = { error: null };
  const first = m.serving("first", undefined);
  const until = performance.now() + 30;
  while (performance.now() < until) { /* the first call's handler, busy */ }
  first(ok);
  // Delivered in the same turn (as a batch frame's calls are): it waited
  // behind the first, and that wait is part of its latency.
  m.serving("second", undefined)(ok);
  await new Promise((resolve) => setTimeout(resolve, 0));
  m.serving("third", undefined)(ok);
  assertEquals(atMost(m, "first", "0.025"), 0);
  assertEquals(atMost(m, "second", "0.025"), 0);
  assertEquals(atMost(m, "third", "0.025"), 1);
});
