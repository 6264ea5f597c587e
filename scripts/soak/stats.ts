/**
 * What the soak scripts read from a server kite: memory and the
 * bookkeeping that must come back to zero once clients leave.
 *
 * @module
 */
import type { Client } from "../../kite/client.ts";
import type { Kite } from "../../mod.ts";

/** A server's memory and per-connection bookkeeping at one moment. */
export interface ServerStats {
  /** Resident set size, bytes. */
  rss: number;
  /** V8 heap in use, bytes. */
  heapUsed: number;
  /** Accepted connections (the observer's own left out). */
  connections: number;
  /** Local callbacks held over those connections. */
  callbacks: number;
  /** Calls those connections wait on. */
  pending: number;
}

/** Runs V8's collector when the process was started with `--expose-gc`. */
export function collectGarbage(): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  gc();
  gc();
  return true;
}

/** Reads `kite`'s stats, leaving out `observer` (the connection asking). */
export function kiteStats(
  kite: Kite,
  observer?: Client,
  gc = false,
): ServerStats {
  if (gc) collectGarbage();
  const m = Deno.memoryUsage();
  let connections = 0;
  let callbacks = 0;
  let pending = 0;
  for (const c of kite.connections) {
    if (c === observer) continue;
    connections++;
    callbacks += c.callbackCount;
    pending += c.pendingCalls;
  }
  return { rss: m.rss, heapUsed: m.heapUsed, connections, callbacks, pending };
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20 * 10) / 10;
}
