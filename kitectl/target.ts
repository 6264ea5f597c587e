/**
 * Calling a kite named on kitectl's command line: a URL is dialed directly
 * (with the kite.key, when there is one), a query goes through a pool of
 * the kites Kontrol finds for it.
 *
 * @module
 */
import type { Kite } from "../mod.ts";
import type { Parsed } from "./cli.ts";
import { callerKite, isURL, ownedQuery, queryFrom } from "./session.ts";

/** Calls one method on the target; `args` may hold functions. */
export type Tell = (method: string, ...args: unknown[]) => Promise<unknown>;

/**
 * Runs `fn` with a `tell` bound to `target` (a URL or `/user/env/name/…`
 * plus the query flags), then closes everything.
 */
export async function withTarget<T>(
  p: Parsed,
  target: string,
  fn: (tell: Tell, kite: Kite) => Promise<T>,
): Promise<T> {
  const kite = callerKite(p);
  const ms = kite.config.timeoutMs;
  try {
    if (isURL(target)) {
      const client = kite.newClient(target);
      try {
        await client.dial();
      } catch (err) {
        throw new Error(
          `cannot connect to ${target}: ${(err as Error).message}`,
        );
      }
      return await fn(
        (method, ...args) => client.tellWithTimeout(method, ms, ...args),
        kite,
      );
    }
    const pool = kite.pool(ownedQuery(queryFrom(p, target), kite));
    try {
      return await fn(
        (method, ...args) => pool.tellWithTimeout(method, ms, ...args),
        kite,
      );
    } finally {
      await pool.close();
    }
  } finally {
    await kite.close();
  }
}
