/**
 * A caller's plain-HTTP connection carried to the proxy's internal
 * `Deno.serve`, request by request. `Deno.serve` has no deadline for a
 * request head and none for an idle keep-alive connection, so the front
 * reads every head itself, not only the first: a head is forwarded only
 * once it is complete (at most 16 KiB), then its body by `Content-Length`;
 * the answers are followed on their way back ({@linkcode ResponseTracker}),
 * and once the connection carries no response the caller's next head must
 * be complete within `headTimeoutMs` (else `408` and the connection
 * closes; an idle connection just closes). A later request that is a
 * WebSocket upgrade under `/proxy/` is handed back to the front, which
 * splices it to the kite as it does a first one. A request the front
 * cannot frame (a chunked body) is sent with `Connection: close`, and
 * the rest of the connection passes unframed to its end.
 *
 * @module
 */
import {
  headEnd,
  header,
  isUpgrade,
  parseHead,
  rawAnswer,
  type RequestHead,
} from "./head.ts";
import { ResponseTracker } from "./responses.ts";
import {
  closeQuietly,
  SPLICE_BUFFER_BYTES,
  TimedWrites,
  writeWithin,
} from "./splice.ts";

/** Options for {@linkcode HttpSplice}. */
export interface HttpSpliceOptions {
  /** A head must be complete this long after the last response ended, ms. */
  headTimeoutMs: number;
  /**
   * Offered a later request that upgrades to a WebSocket (the connection
   * carries no response then); true when it took the caller's connection.
   */
  upgrade(
    head: RequestHead,
    url: URL,
    rest: Uint8Array,
    buffer: Uint8Array,
  ): boolean;
  /** Called once when the splice is over (both sides closed, or handed on). */
  done(): void;
}

/** The first request, as the front read it. */
export interface FirstRequest {
  head: RequestHead;
  /** Where the head ends in the buffer (after its blank line). */
  end: number;
  /** Bytes in the buffer. */
  len: number;
}

/** A caller's connection carried to the internal server; see the module doc. */
export class HttpSplice {
  readonly #caller: Deno.Conn;
  readonly #inner: Deno.Conn;
  readonly #o: HttpSpliceOptions;
  readonly #responses = new ResponseTracker();
  /** Requests sent whose responses have not ended. */
  #outstanding = 0;
  /** When the caller's next head is late (`performance.now()`); Infinity while a response is due. */
  #deadline = Infinity;
  /** Bytes of a next head read so far. */
  #partial = 0;
  /** Frames no more: the rest passes as it comes. */
  #raw = false;
  #closed = false;
  #handedOn = false;
  /** Writes to the caller (side 0) and the internal server (side 1). */
  readonly #writes = new TimedWrites();
  #ended = 0;

  constructor(
    caller: Deno.Conn,
    inner: Deno.Conn,
    first: FirstRequest,
    buffer: Uint8Array,
    o: HttpSpliceOptions,
  ) {
    this.#caller = caller;
    this.#inner = inner;
    this.#o = o;
    this.#requests(first, buffer).catch(() => {}).finally(() => this.#end());
    this.#toCaller().finally(() => this.#end());
  }

  /** Whether a write has been pending since before `since` (ms). */
  stalled(since: number): boolean {
    return this.#writes.stalled(since);
  }

  /**
   * Closes the connection when the caller's next head is late at `now`:
   * `408` when part of it came, else silently (an idle keep-alive).
   */
  expire(now: number): void {
    if (this.#closed || now < this.#deadline) return;
    this.#closed = true;
    closeQuietly(this.#inner);
    if (this.#partial === 0) return closeQuietly(this.#caller);
    const text =
      `request head not complete within ${this.#o.headTimeoutMs} ms (timeoutMs)`;
    writeWithin(this.#caller, rawAnswer(408, text), 1_000)
      .finally(() => closeQuietly(this.#caller));
  }

  /** Closes both sides at once. */
  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#caller);
    closeQuietly(this.#inner);
  }

  /** Caller → internal server, head by head. */
  async #requests(first: FirstRequest, buf: Uint8Array): Promise<void> {
    let { head, end, len } = first;
    while (!this.#closed) {
      if (isUpgrade(head) && this.#outstanding === 0) {
        const url = new URL(head.target, "http://front");
        this.#handedOn = true; // before the offer: the caller's side stays open
        if (this.#o.upgrade(head, url, buf.slice(end, len), buf)) {
          this.#closed = true;
          closeQuietly(this.#inner);
          return;
        }
        this.#handedOn = false;
      }
      const length = bodyLength(head);
      if (isUpgrade(head) || length === undefined) {
        // Not framed from here on: a WebSocket to the internal server (its
        // message relay), or a body whose end the front does not find.
        this.#raw = true;
        this.#deadline = Infinity;
        const bytes = isUpgrade(head) ? buf.subarray(0, end) : closing(head);
        if (!await this.#writes.write(this.#inner, bytes, 1)) {
          return this.abort();
        }
        if (!await this.#writes.write(this.#inner, buf.subarray(end, len), 1)) {
          return this.abort();
        }
        return await this.#pipe(buf);
      }
      this.#outstanding++;
      this.#deadline = Infinity;
      this.#responses.expect(head.method);
      const inBuffer = Math.min(length, len - end);
      if (
        !await this.#writes.write(
          this.#inner,
          buf.subarray(0, end + inBuffer),
          1,
        )
      ) {
        return this.abort();
      }
      let left = length - inBuffer;
      buf.copyWithin(0, end + inBuffer, len);
      len -= end + inBuffer;
      while (left > 0) {
        const n = await this.#caller.read(buf);
        if (n === null) return this.abort();
        const take = Math.min(n, left);
        if (!await this.#writes.write(this.#inner, buf.subarray(0, take), 1)) {
          return this.abort();
        }
        left -= take;
        buf.copyWithin(0, take, n);
        len = n - take;
      }
      // The next head: complete before it is forwarded.
      this.#partial = len;
      end = headEnd(buf, len, 0);
      while (end < 0) {
        if (len === buf.length) return this.#refuse(431);
        const n = await this.#caller.read(buf.subarray(len));
        if (n === null || this.#closed) return this.abort();
        end = headEnd(buf, len + n, len);
        len += n;
        this.#partial = len;
      }
      const next = parseHead(buf.subarray(0, end - 4));
      if (!next) return this.#refuse(400);
      head = next;
    }
  }

  /** Bytes as they come, caller → internal server. */
  async #pipe(buf: Uint8Array): Promise<void> {
    while (true) {
      const n = await this.#caller.read(buf);
      if (n === null) return this.abort();
      if (!await this.#writes.write(this.#inner, buf.subarray(0, n), 1)) {
        return this.abort();
      }
    }
  }

  /** Internal server → caller, following where responses end. */
  async #toCaller(): Promise<void> {
    const buf = new Uint8Array(SPLICE_BUFFER_BYTES);
    try {
      while (true) {
        const n = await this.#inner.read(buf);
        if (n === null) break;
        const chunk = buf.subarray(0, n);
        let ended = 0;
        if (!this.#raw) {
          ended = this.#responses.feed(chunk);
          if (this.#responses.lost) this.#raw = true;
        }
        if (!await this.#writes.write(this.#caller, chunk, 0)) break;
        // Counted once written: a response is over when the caller has it.
        this.#outstanding -= ended;
        if (ended && this.#outstanding === 0 && !this.#raw) {
          this.#deadline = performance.now() + this.#o.headTimeoutMs;
        }
      }
    } catch { /* the internal side failed or was closed */ }
    if (!this.#handedOn) this.abort();
  }

  /** A bad next head: answered when no response is due, else the connection just ends. */
  async #refuse(status: 400 | 431): Promise<void> {
    if (this.#outstanding > 0 || this.#closed) return this.abort();
    this.#closed = true;
    closeQuietly(this.#inner);
    const text = status === 431
      ? `request head over ${SPLICE_BUFFER_BYTES} bytes: send a shorter one`
      : "malformed request head";
    await writeWithin(this.#caller, rawAnswer(status, text), 1_000);
    closeQuietly(this.#caller);
  }

  #end(): void {
    if (++this.#ended === 2) this.#o.done();
  }
}

/** The body's length by `Content-Length` (0 without one); undefined when chunked or malformed. */
function bodyLength(head: RequestHead): number | undefined {
  if (header(head, "transfer-encoding") !== undefined) return undefined;
  const lengths = head.headers.filter(([n]) =>
    n.toLowerCase() === "content-length"
  );
  if (lengths.length === 0) return 0;
  const text = lengths[0][1];
  return lengths.length === 1 && /^\d{1,15}$/.test(text)
    ? Number(text)
    : undefined;
}

/** `head`'s bytes with `Connection: close` (the internal server closes after its answer). */
function closing(head: RequestHead): Uint8Array {
  const lines = [`${head.method} ${head.target} ${head.version}`];
  for (const [name, value] of head.headers) {
    if (name.toLowerCase() !== "connection") lines.push(`${name}: ${value}`);
  }
  lines.push("Connection: close", "", "");
  const text = lines.join("\r\n");
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
