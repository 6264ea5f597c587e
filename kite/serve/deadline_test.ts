import { ManualClock } from "../clock.ts";
import type { KiteError } from "../errors.ts";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { connectionScope, ServedDeadlines } from "./deadline.ts";

/** A connection as the deadlines see it: its signal aborts when it drops. */
function connection(): { signal: AbortSignal; drop(): void } {
  const c = new AbortController();
  return { signal: c.signal, drop: () => c.abort() };
}

Deno.test("ServedDeadlines: a served call's timer is armed only when its signal is asked for, and still fires at the deadline", async () => {
  const clock = new ManualClock();
  const deadlines = new ServedDeadlines(clock);
  const conn = connection();
  const served = deadlines.begin(conn, 1, 1000);
  assertEquals(clock.pending, 0, "no timer for a call nobody listens to");
  await clock.advance(400);
  const signal = served.signal;
  assertEquals(clock.pending, 1);
  await clock.advance(599);
  assert(!signal.aborted, "aborted before the deadline");
  await clock.advance(1);
  assert(signal.aborted, "not aborted at the deadline");
  assertEquals((signal.reason as KiteError).type, "timeout");
  served.end();
  assertEquals(clock.pending, 0);
});

Deno.test("ServedDeadlines: a call back over the served connection follows the call, not a signal joined to the connection", () => {
  const clock = new ManualClock();
  const deadlines = new ServedDeadlines(clock);
  const conn = connection();
  const other = connection();
  const served = deadlines.begin(conn, 1, 1000);
  const back = served.follow(conn.signal)!;
  assertEquals(clock.pending, 0, "a call back has a timer of its own");
  const elsewhere = served.follow(other.signal)!;
  assert(back !== served.signal, "the same connection got the joined signal");
  assert(elsewhere === served.signal, "another connection must follow it all");
  conn.drop();
  assert(!back.aborted, "a call back fails with its connection on its own");
  assert(elsewhere.aborted && served.givenUp);
  deadlines.cancel(conn, 1);
  assert(back.aborted, "kite.cancel must reach calls back too");
  served.end();
});

Deno.test("ServedDeadlines: kite.cancel finds each of several calls of one connection, and none once answered", () => {
  const deadlines = new ServedDeadlines(new ManualClock());
  const conn = connection();
  const first = deadlines.begin(conn, 1, 0);
  const second = deadlines.begin(conn, 2, 0);
  const third = deadlines.begin(conn, 3, 0);
  deadlines.cancel(conn, 2);
  assert(second.givenUp && second.signal.aborted);
  assert(!first.givenUp && !third.givenUp);
  first.end();
  deadlines.cancel(conn, 1);
  assert(!first.givenUp, "an answered call was cancelled");
  deadlines.cancel(conn, 3);
  assert(third.givenUp);
  // A lone call is found too, and forgotten once answered.
  const lone = connection();
  const only = deadlines.begin(lone, 7, 0);
  only.end();
  deadlines.cancel(lone, 7);
  assert(!only.givenUp);
  const next = deadlines.begin(lone, 8, 0);
  deadlines.cancel(lone, 7);
  assert(!next.givenUp, "kite.cancel of another id cancelled it");
  deadlines.cancel(lone, 8);
  assert(next.givenUp);
});

Deno.test("connectionScope: calls back over its own connection follow nothing, others its signal", () => {
  const conn = connection();
  const scope = connectionScope(conn.signal);
  assertEquals(scope.follow(conn.signal), undefined);
  assert(scope.follow(connection().signal) === conn.signal);
  assert(connectionScope(conn.signal) === scope, "one scope per connection");
});
