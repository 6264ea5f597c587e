/**
 * A small seeded PRNG (sfc32) and the random values the fuzzer builds
 * inputs from. The same seed gives the same inputs, so a failure can be
 * replayed with `--seed`.
 *
 * @module
 */

/** Seeded random numbers. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** Starts the sequence for `seed`. */
  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** A float in [0, 1). */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [min, max]. */
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Picks a key of `weights` with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    let total = 0;
    for (const [, w] of entries) total += w;
    let r = this.next() * total;
    for (const [k, w] of entries) {
      r -= w;
      if (r < 0) return k;
    }
    return entries[entries.length - 1][0];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A string of `n` characters from `alphabet`. */
  string(n: number, alphabet = ALNUM): string {
    let s = "";
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }

  /**
   * A string of `n` UTF-16 units mixing ASCII, controls, quotes and
   * backslashes, brackets, astral characters and lone surrogates.
   */
  nastyString(n: number): string {
    let s = "";
    while (s.length < n) {
      switch (this.int(8)) {
        case 0:
          s += String.fromCharCode(this.int(0x20)); // control
          break;
        case 1:
          s += this.pick(['"', "\\", "[", "]", "{", "}", "\u2028", "\u0000"]);
          break;
        case 2:
          s += String.fromCharCode(0xd800 + this.int(0x800)); // lone surrogate
          break;
        case 3:
          s += String.fromCodePoint(0x10000 + this.int(0xfffff)); // astral pair
          break;
        case 4:
          s += String.fromCharCode(0x80 + this.int(0xd800 - 0x80));
          break;
        default:
          s += ALNUM[this.int(ALNUM.length)];
      }
    }
    return s;
  }

  /**
   * A JSON-safe value (it survives `JSON.stringify`/`parse` unchanged),
   * at most `depth` levels of arrays/objects deep.
   */
  jsonValue(depth: number, breadth = 4): unknown {
    const kind = this.int(depth > 0 ? 8 : 5);
    switch (kind) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.chance(0.5)
          ? this.range(-1e9, 1e9)
          : (this.next() - 0.5) * 10 ** this.range(-300, 300);
      case 3:
        return this.nastyString(this.int(12));
      case 4:
        return this.string(this.int(8));
      case 5:
      case 6: {
        const n = this.int(breadth);
        const out: unknown[] = [];
        for (let i = 0; i < n; i++) {
          out.push(this.jsonValue(depth - 1, breadth));
        }
        return out;
      }
      default: {
        const n = this.int(breadth);
        const out: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          // Integer-like keys would be reordered by JSON.parse; keep them out.
          out["k" + this.nastyString(this.int(6))] = this.jsonValue(
            depth - 1,
            breadth,
          );
        }
        return out;
      }
    }
  }
}

/** Letters and digits. */
export const ALNUM =
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
