/**
 * Two connections joined byte for byte: one read/write loop per direction,
 * each with one fixed buffer and never reading again before its write is
 * done, so a side that stops reading stops the other side's reads (the
 * kernel's buffers, then the sender's own limits, push back) and the proxy
 * holds two buffers per splice whatever is sent. Either side ending ends
 * both. A write that stays pending past a deadline (a peer that stopped
 * reading) closes both: {@linkcode Splice.stalled} tells the sweeper.
 *
 * The kite's side is read as WebSocket frame headers only (lengths, no
 * payload), so that when the kite goes away between frames the caller can
 * be sent a close frame that says why.
 *
 * @module
 */

/** Bytes of each direction's buffer. */
export const SPLICE_BUFFER_BYTES = 16 * 1024;

/** Options for {@linkcode Splice}. */
export interface SpliceOptions {
  /** Counts forwarded bytes as they are written. */
  count(toKite: number, toCaller: number): void;
  /** Called once when both sides are closed. */
  done(): void;
  /**
   * The close frame the caller gets when the kite's side drops between
   * WebSocket frames; none when undefined.
   */
  kiteGone?: { code: number; reason: string };
  /** How long a kite that refused the upgrade may keep the splice, ms. */
  gateMs?: number;
}

/** A caller's connection spliced to a kite's. */
export class Splice {
  readonly #caller: Deno.Conn;
  readonly #kite: Deno.Conn;
  readonly #o: SpliceOptions;
  readonly #frames = new FrameTracker();
  #closed = false;
  #callerGone = false;
  /** `performance.now()` when the pending write started; 0 when none. */
  /** Writes to the caller (side 0) and the kite (side 1). */
  readonly #writes = new TimedWrites();
  #why: { code: number; reason: string } | undefined;
  #onClose = () => {};
  #ended = 0;

  /**
   * Starts both loops; `head` is written to the kite first. With `gated`,
   * `rest` (what the caller sent after its head) and everything after it
   * reach the kite only once the kite has answered `101`: a kite that
   * answers anything else gets nothing more from the caller (no second
   * request rides past the proxy's routing), and the splice ends once the
   * kite closes, or after `gateMs`. Without it, `rest` follows the head.
   */
  constructor(
    caller: Deno.Conn,
    kite: Deno.Conn,
    first: { head: Uint8Array; rest: Uint8Array; gated: boolean },
    buffer: Uint8Array,
    o: SpliceOptions,
  ) {
    this.#caller = caller;
    this.#kite = kite;
    this.#o = o;
    this.#toKite(first, buffer).finally(() => this.#end());
    this.#toCaller().finally(() => this.#end());
  }

  /** Whether a write has been pending since before `since` (ms, `performance.now()`). */
  stalled(since: number): boolean {
    return this.#writes.stalled(since);
  }

  /**
   * Ends the splice with a reason for the caller: the kite's side is
   * closed, and the caller gets a close frame with `code` and `reason`
   * when the kite's stream stands between frames (else just the end).
   */
  close(code: number, reason: string): void {
    this.#why ??= { code, reason };
    if (this.#writes.pending(0)) this.#closeBoth();
    else closeQuietly(this.#kite);
  }

  /** Closes both sides at once. */
  abort(): void {
    this.#closeBoth();
  }

  async #toKite(
    first: { head: Uint8Array; rest: Uint8Array; gated: boolean },
    buf: Uint8Array,
  ): Promise<void> {
    try {
      // A kite that fails a write is closed; its loop then tells the caller.
      for (const bytes of [first.head, first.rest]) {
        if (bytes === first.rest && first.gated && !await this.#upgraded()) {
          return;
        }
        if (!bytes.length) continue;
        this.#o.count(bytes.length, 0);
        if (!await this.#writes.write(this.#kite, bytes, 1)) {
          return closeQuietly(this.#kite);
        }
      }
      while (true) {
        const n = await this.#caller.read(buf);
        if (n === null) break;
        this.#o.count(n, 0);
        if (!await this.#writes.write(this.#kite, buf.subarray(0, n), 1)) {
          return closeQuietly(this.#kite);
        }
      }
    } catch { /* the caller's side failed: end both */ }
    this.#callerGone = true;
    this.#closeBoth();
  }

  async #toCaller(): Promise<void> {
    const buf = new Uint8Array(SPLICE_BUFFER_BYTES);
    try {
      while (true) {
        const n = await this.#kite.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, n);
        this.#frames.feed(chunk);
        this.#o.count(0, n);
        if (!await this.#writes.write(this.#caller, chunk, 0)) {
          this.#callerGone = true;
          break;
        }
      }
    } catch { /* the kite's side failed or was closed: say so below */ }
    const why = this.#why ?? this.#o.kiteGone;
    if (why && !this.#callerGone && !this.#closed && this.#frames.between) {
      // A caller that does not read its close frame is not waited for.
      await writeWithin(this.#caller, closeFrame(why.code, why.reason), 1_000);
    }
    this.#closeBoth();
  }

  /**
   * Whether the kite answered `101`; otherwise the splice is left to end
   * when the kite closes, and is closed after `gateMs` in any case.
   */
  async #upgraded(): Promise<boolean> {
    if (await this.#frames.answered) return true;
    if (this.#closed) return false;
    const timer = setTimeout(() => this.#closeBoth(), this.#o.gateMs ?? 0);
    this.#onClose = () => clearTimeout(timer);
    return false;
  }

  #closeBoth(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose();
    this.#frames.ended();
    closeQuietly(this.#caller);
    closeQuietly(this.#kite);
  }

  #end(): void {
    if (++this.#ended === 2) this.#o.done();
  }
}

/**
 * Writes that remember since when each side's write has been pending, so
 * that a sweep can end a splice whose reader stopped.
 */
export class TimedWrites {
  /** `performance.now()` when each side's pending write started; 0 when none. */
  readonly #since = [0, 0];

  /** Whether side `side`'s write is pending. */
  pending(side: 0 | 1): boolean {
    return this.#since[side] !== 0;
  }

  /** Whether a write has been pending since before `since` (ms). */
  stalled(since: number): boolean {
    const [a, b] = this.#since;
    return (a !== 0 && a < since) || (b !== 0 && b < since);
  }

  /** Writes all of `bytes` as side `side`; false when `conn` is closed or failed. */
  async write(
    conn: Deno.Conn,
    bytes: Uint8Array,
    side: 0 | 1,
  ): Promise<boolean> {
    this.#since[side] = performance.now() || 1;
    try {
      for (let off = 0; off < bytes.length;) {
        off += await conn.write(bytes.subarray(off));
      }
      return true;
    } catch {
      return false;
    } finally {
      this.#since[side] = 0;
    }
  }
}

/**
 * Writes `bytes` to `conn`, waiting at most `ms` (a peer that does not
 * read is not waited for); never throws.
 */
export async function writeWithin(
  conn: Deno.Conn,
  bytes: Uint8Array,
  ms: number,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const write = (async () => {
    for (let off = 0; off < bytes.length;) {
      off += await conn.write(bytes.subarray(off));
    }
  })().catch(() => {});
  await Promise.race([
    write,
    new Promise((resolve) => timer = setTimeout(resolve, ms)),
  ]);
  clearTimeout(timer);
}

/** Closes `conn`, closed already or not. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed already */ }
}

/** A server's close frame (unmasked) with a code and a reason clipped to fit. */
export function closeFrame(code: number, reason: string): Uint8Array {
  let text = new TextEncoder().encode(reason);
  if (text.length > 123) {
    text = new TextEncoder().encode(
      new TextDecoder().decode(text.subarray(0, 120)).replace(/\uFFFD$/, "") +
        "…",
    );
  }
  const frame = new Uint8Array(4 + text.length);
  frame[0] = 0x88;
  frame[1] = 2 + text.length;
  frame[2] = code >> 8;
  frame[3] = code & 0xff;
  frame.set(text, 4);
  return frame;
}

/**
 * Follows an HTTP answer and, after a `101`, the WebSocket frames that
 * follow it by their headers alone, to know whether the stream stands
 * between frames (where a close frame may be put).
 */
export class FrameTracker {
  /** Bytes of the answer's head seen, up to its blank line. */
  #headBytes = 0;
  #status = "";
  #crlf = 0;
  #inHead = true;
  #upgraded = false;
  #sawClose = false;
  /** Payload bytes of the current frame still to come. */
  #payload = 0;
  readonly #header = new Uint8Array(14);
  #headerLen = 0;
  #answer!: (upgraded: boolean) => void;
  /** Resolves once the answer's head is in: whether it was a `101`. */
  readonly answered = new Promise<boolean>((resolve) => this.#answer = resolve);

  /** The stream ended: an answer that never came was no `101`. */
  ended(): void {
    this.#answer(false);
  }

  /**
   * Whether a close frame may be put here: the answer was a `101`, no
   * frame is cut, and the kite has sent no close frame of its own.
   */
  get between(): boolean {
    return !this.#inHead && this.#upgraded && !this.#sawClose &&
      this.#payload === 0 && this.#headerLen === 0;
  }

  /** Takes the next chunk of the stream. */
  feed(chunk: Uint8Array): void {
    let i = 0;
    while (this.#inHead && i < chunk.length) {
      const b = chunk[i++];
      if (this.#headBytes++ < 12) this.#status += String.fromCharCode(b);
      this.#crlf = b === CRLF[this.#crlf & 1]
        ? this.#crlf + 1
        : b === 13
        ? 1
        : 0;
      if (this.#crlf === 4) {
        this.#inHead = false;
        this.#upgraded = /^HTTP\/1\.[01] 101$/.test(this.#status);
        this.#answer(this.#upgraded);
      }
    }
    if (!this.#upgraded) return;
    while (i < chunk.length) {
      if (this.#payload > 0) {
        const take = Math.min(this.#payload, chunk.length - i);
        this.#payload -= take;
        i += take;
        continue;
      }
      this.#header[this.#headerLen++] = chunk[i++];
      const need = this.#headerNeeds();
      if (this.#headerLen < need) continue;
      if ((this.#header[0] & 0x0f) === 8) this.#sawClose = true;
      this.#payload = this.#length();
      this.#headerLen = 0;
    }
  }

  /** Length of the frame header being read, once its first two bytes are in. */
  #headerNeeds(): number {
    if (this.#headerLen < 2) return 2;
    const len7 = this.#header[1] & 0x7f;
    const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    return 2 + ext + (this.#header[1] & 0x80 ? 4 : 0);
  }

  #length(): number {
    const h = this.#header;
    const len7 = h[1] & 0x7f;
    if (len7 < 126) return len7;
    if (len7 === 126) return (h[2] << 8) | h[3];
    let n = 0;
    for (let k = 2; k < 10; k++) n = n * 256 + h[k];
    return n;
  }
}

const CRLF = [13, 10];
