/**
 * One-time codes in storage: what every adapter decides the same way
 * ({@linkcode claim}, {@linkcode checkDigest}), and
 * {@linkcode MemoryCodeStorage}, the codes of a {@linkcode MemoryStorage}
 * and Kontrol's fallback for storage without code methods. A code held in
 * memory works only in that process, until it ends.
 *
 * @module
 */
import type { CodeClaim, CodeStorage, StoredCode } from "./storage.ts";

interface Held {
  expiresAt: number;
  used: boolean;
  username?: string;
}

/** Codes in a `Map`; each call checks and writes with no `await` between. */
export class MemoryCodeStorage implements CodeStorage {
  #codes = new Map<string, Held>();

  /** Stores a code unless `max` are held; resolves false then. */
  addCode(code: StoredCode, max: number): Promise<boolean> {
    return settle(() => {
      checkDigest(code.digest);
      if (this.#codes.has(code.digest)) {
        throw new Error("a one-time code with this digest is stored already");
      }
      if (this.#codes.size >= max) return false;
      this.#codes.set(code.digest, {
        expiresAt: code.expiresAt,
        used: false,
        ...(code.username === undefined ? {} : { username: code.username }),
      });
      return true;
    });
  }

  /** Marks a code used for `username`; says why not otherwise. */
  claimCode(digest: string, username: string, now: number): Promise<CodeClaim> {
    return settle(() => {
      checkDigest(digest);
      const held = this.#codes.get(digest);
      return claim(held, username, now, () => held!.used = true);
    });
  }

  /** Removes codes expired at `now`; resolves how many. */
  deleteExpiredCodes(now: number): Promise<number> {
    let n = 0;
    for (const [digest, held] of this.#codes) {
      if (held.expiresAt <= now && this.#codes.delete(digest)) n++;
    }
    return Promise.resolve(n);
  }
}

/**
 * The outcome of claiming `held` (undefined: not stored) for `username` at
 * `now`, calling `take` when it is claimed. Every adapter decides the same
 * way; the atomic write around it is the adapter's.
 */
export function claim(
  held: { expiresAt: number; used: boolean; username?: string } | undefined,
  username: string,
  now: number,
  take: () => void = () => {},
): CodeClaim {
  if (!held || held.expiresAt <= now) return { result: "unknown" };
  if (held.used) return { result: "used" };
  if (held.username !== undefined && held.username !== username) {
    return { result: "otherUser", username: held.username };
  }
  take();
  return { result: "claimed" };
}

/** @throws {TypeError} unless `digest` is 64 lower-case hex digits. */
export function checkDigest(digest: string): void {
  if (typeof digest !== "string" || !/^[0-9a-f]{64}$/.test(digest)) {
    throw new TypeError(
      "a one-time code's digest must be its SHA-256 in 64 lower-case hex digits",
    );
  }
}

function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}
