/**
 * `kite.heartbeat` (docs/protocol.md §5, §8.5): the caller's function is
 * called every interval while the connection is up. No Deno API: a page
 * kite registered with Kontrol serves it too.
 *
 * @module
 */
import type { Client } from "./client.ts";
import type { Clock } from "./clock.ts";
import { KiteError } from "./errors.ts";
import type { Handler, Method } from "./method.ts";

/** Shortest `kite.heartbeat` period granted to a caller on an accepted connection. */
const MIN_REMOTE_HEARTBEAT_MS = 1_000;

/** Heartbeat tickers, one per connection (Go keeps one per kite; docs/protocol.md §12 #24). */
const heartbeats = new WeakMap<Client, () => void>();

/** The part of a kite `kite.heartbeat` uses. */
export interface HeartbeatHost {
  /** Registers a method. */
  handle(name: string, handler: Handler): Method;
  /** Time source for heartbeats. */
  readonly clock: Clock;
}

/** Registers `kite.heartbeat` on `kite`. */
export function addHeartbeatHandler(kite: HeartbeatHost): void {
  kite.handle("kite.heartbeat", (r) => {
    const [interval, ping] = r.args.sliceOfLength(2);
    const seconds = interval.number();
    const fn = ping.func();
    if (!(seconds > 0)) {
      throw new KiteError(
        "argumentError",
        "heartbeat interval must be a positive number of seconds",
      );
    }
    heartbeats.get(r.client)?.();
    // A caller on an accepted connection could ask for a ping every
    // microsecond; Go's whole-second ticker cannot go below 1 s either.
    // Kontrol calls over the connection the kite dialed, so it is not held
    // to this floor.
    const periodMs = r.client.side === "accepted"
      ? Math.max(seconds * 1000, MIN_REMOTE_HEARTBEAT_MS)
      : seconds * 1000;
    const clock = kite.clock;
    let timer = 0;
    const tick = () => {
      if (!r.client.connected) return;
      fn();
      timer = clock.setTimeout(tick, periodMs);
    };
    // The first ping goes out before the reply (docs/protocol.md §5, §8.5).
    fn();
    timer = clock.setTimeout(tick, periodMs);
    const stop = () => {
      clock.clearTimeout(timer);
      off();
      heartbeats.delete(r.client);
    };
    const off = r.client.onDisconnect(stop);
    heartbeats.set(r.client, stop);
    return null;
  });
}
