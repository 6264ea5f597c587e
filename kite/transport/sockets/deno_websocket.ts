/**
 * A minimal RFC 6455 WebSocket client on `Deno.connect`.
 *
 * Why not the built-in `WebSocket`: it leaves Nagle's algorithm on and
 * writes a frame's header and payload separately, so every message above
 * ~1 KB — any call carrying a kite key or token — waits ~40 ms for the
 * peer's delayed ACK. Here the socket has `TCP_NODELAY` and each frame is
 * one write.
 *
 * @module
 */

import { backlogTooBig } from "../sockjs_frames.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const encoder = new TextEncoder();

/** Options for {@linkcode TcpWebSocket.connect}. */
export interface TcpWebSocketOptions {
  /** Handshake timeout, ms. */
  timeoutMs: number;
  /** Largest accepted incoming message, bytes. */
  maxMessageBytes: number;
  /**
   * Bytes of frames waiting behind a write the peer does not take; a send
   * past it closes the socket with code 4008.
   */
  maxBufferedBytes: number;
  /** `Origin` header to send (Go clients send one, docs/protocol.md §1.5). */
  origin?: string;
  /** Aborts the connect and handshake. */
  signal?: AbortSignal;
}

/** Events of a {@linkcode TcpWebSocket}. */
export interface TcpWebSocketHandler {
  /** One complete text message. */
  onText(text: string): void;
  /** The connection ended (once). */
  onClose(code: number, reason: string): void;
}

async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    encoder.encode(key + GUID),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

const lenient = new TextDecoder();
const strict = new TextDecoder("utf-8", { fatal: true });

/**
 * The text of UTF-8 `bytes`, or `undefined` when they are not valid UTF-8.
 * The lenient decoder is Deno's fast path (~3× faster than a fatal one);
 * only a text holding U+FFFD, which invalid input turns into, is checked
 * again strictly.
 */
function decodeUtf8(bytes: Uint8Array): string | undefined {
  const text = lenient.decode(bytes);
  // indexOf, not includes: V8 answers at once for a one-byte text.
  if (text.indexOf("\uFFFD") < 0) return text;
  try {
    return strict.decode(bytes);
  } catch {
    return undefined;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A client WebSocket connection carrying text messages. */
export class TcpWebSocket {
  readonly #conn: Deno.Conn;
  readonly #max: number;
  readonly #maxBuffered: number;
  #handler: TcpWebSocketHandler | undefined;
  #buf: Uint8Array = new Uint8Array(0);
  #fragments: Uint8Array[] = [];
  #fragmentBytes = 0;
  /** The bytes of the write under way; `undefined` while none is. */
  #inFlight: Uint8Array | undefined;
  /** Frames sent while a write is under way: they go out together next. */
  #queued: Uint8Array[] = [];
  #queuedBytes = 0;
  /** Settles when writing stops; made only when a close waits for it. */
  #drained: PromiseWithResolvers<void> | undefined;
  #closed = false;
  #reading: Promise<void> = Promise.resolve();
  readonly #released: PromiseWithResolvers<void> = Promise.withResolvers();

  private constructor(
    conn: Deno.Conn,
    options: TcpWebSocketOptions,
    leftover: Uint8Array,
  ) {
    this.#conn = conn;
    this.#max = options.maxMessageBytes;
    this.#maxBuffered = options.maxBufferedBytes;
    this.#buf = leftover;
  }

  /**
   * Connects and performs the opening handshake.
   * @throws {Error} naming the cause (refused, bad status, bad accept key,
   * timeout, aborted).
   */
  static async connect(
    url: URL,
    options: TcpWebSocketOptions,
  ): Promise<TcpWebSocket> {
    const secure = url.protocol === "wss:";
    const port = Number(url.port || (secure ? 443 : 80));
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = options.signal
      ? AbortSignal.any([timeout, options.signal])
      : timeout;
    const failure = () =>
      options.signal?.aborted
        ? new Error("aborted")
        : new Error(`no WebSocket handshake within ${options.timeoutMs} ms`);
    let conn: Deno.Conn;
    try {
      conn = secure
        ? await Deno.connectTls({ hostname, port })
        : await Deno.connect({ hostname, port, signal } as Deno.ConnectOptions);
    } catch (err) {
      throw signal.aborted ? failure() : err;
    }
    try {
      if (!secure) (conn as Deno.TcpConn).setNoDelay(true);
      const key = btoa(
        String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))),
      );
      const head = [
        `GET ${url.pathname}${url.search} HTTP/1.1`,
        `Host: ${url.host}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${key}`,
        "Sec-WebSocket-Version: 13",
        ...(options.origin ? [`Origin: ${options.origin}`] : []),
        "",
        "",
      ].join("\r\n");
      await writeAll(conn, encoder.encode(head));
      const { status, headers, rest } = await readHead(conn, signal);
      if (status !== 101) throw new Error(`handshake answered HTTP ${status}`);
      if (headers.get("sec-websocket-accept") !== await acceptKey(key)) {
        throw new Error("handshake answered a wrong Sec-WebSocket-Accept");
      }
      return new TcpWebSocket(conn, options, rest);
    } catch (err) {
      conn.close();
      throw signal.aborted ? failure() : err;
    }
  }

  /** Starts delivering messages to `handler`. */
  start(handler: TcpWebSocketHandler): void {
    this.#handler = handler;
    this.#reading = this.#readLoop();
  }

  /** Settles once the socket is closed and nothing of it is left running. */
  get finished(): Promise<void> {
    return Promise.all([this.#released.promise, this.#reading]).then(() => {});
  }

  /**
   * Sends one text message (masked, one write). Never throws: false when
   * closed, or when more than `maxBufferedBytes` wait for a peer that
   * stopped reading (the socket is then closed, code 4008, and `onClose`
   * has run).
   */
  send(text: string): boolean {
    if (this.#closed) return false;
    if (this.#queuedBytes > this.#maxBuffered) return this.#abandon();
    if (text.length <= SCRATCH_CHARS) {
      // Idle socket, shared buffer free (the usual case one call at a
      // time): the frame is built in place there and written from there.
      if (this.#inFlight === undefined && wireOwner === undefined) {
        wireOwner = this;
        this.#writeOut(wireTextFrame(text));
        return true;
      }
      // Else encoded into shared scratch space, which frame() copies.
      const n = encoder.encodeInto(text, scratch).written;
      this.#write(frame(1, scratch.subarray(0, n)));
      return true;
    }
    this.#write(frame(1, encoder.encode(text)));
    return true;
  }

  /**
   * Closes at once on a peer that does not read: what waits for it, the
   * close frame too, would never get there.
   */
  #abandon(): false {
    const { code, reason } = backlogTooBig(this.#maxBuffered);
    this.#queued = [];
    this.#queuedBytes = 0;
    this.#finish(code, reason);
    try {
      this.#conn.close(); // fails the write under way, which lets #finish end
    } catch { /* already closed */ }
    return false;
  }

  /** Sends a close frame and closes the socket. */
  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    const r = encoder.encode(reason).slice(0, 123);
    const payload = new Uint8Array(2 + r.length);
    payload[0] = code >> 8;
    payload[1] = code & 0xff;
    payload.set(r, 2);
    this.#write(frame(8, payload));
    this.#finish(code, reason);
  }

  /**
   * Writes at once when the socket is idle; frames sent while a write is
   * under way go out together in the next one (many calls in flight → few
   * syscalls). No async function per write: one promise, two reused
   * callbacks, nothing else allocated.
   */
  #write(bytes: Uint8Array): void {
    if (this.#inFlight === undefined) return this.#writeOut(bytes);
    this.#queued.push(bytes);
    this.#queuedBytes += bytes.length;
  }

  #writeOut(bytes: Uint8Array): void {
    this.#inFlight = bytes;
    try {
      this.#conn.write(bytes).then(this.#wrote, this.#writeFailed);
    } catch {
      // A connection closed under us may refuse at once, not in a promise.
      this.#writeFailed();
    }
  }

  #wrote = (n: number): void => {
    const bytes = this.#inFlight!;
    if (n < bytes.length) return this.#writeOut(bytes.subarray(n));
    const frames = this.#queued;
    if (wireOwner === this) wireOwner = undefined;
    if (frames.length === 0) {
      this.#inFlight = undefined;
      this.#drained?.resolve();
      return;
    }
    let out = frames[0];
    if (frames.length > 1) {
      out = new Uint8Array(this.#queuedBytes);
      let at = 0;
      for (const f of frames) {
        out.set(f, at);
        at += f.length;
      }
    }
    this.#queued = [];
    this.#queuedBytes = 0;
    this.#writeOut(out);
  };

  #writeFailed = (): void => {
    if (wireOwner === this) wireOwner = undefined;
    this.#inFlight = undefined;
    this.#queued = [];
    this.#queuedBytes = 0;
    this.#drained?.resolve();
    this.#finish(1006, "write failed");
  };

  #finish(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const release = () => {
      try {
        this.#conn.close();
      } catch { /* already closed */ }
      this.#released.resolve();
    };
    // Let queued writes (e.g. the close frame) go out before the socket closes.
    if (this.#inFlight === undefined) release();
    else (this.#drained ??= Promise.withResolvers()).promise.then(release);
    this.#handler?.onClose(code, reason);
  }

  async #readLoop(): Promise<void> {
    // 16 KiB per connection: larger frames just take more reads.
    const chunk = new Uint8Array(16 * 1024);
    try {
      this.#parse();
      while (!this.#closed) {
        const n = await this.#conn.read(chunk);
        if (n === null) return this.#finish(1006, "connection closed");
        if (this.#buf.length === 0) {
          // Parsed straight from the read buffer; what is left is copied
          // out before the next read overwrites it.
          this.#buf = chunk.subarray(0, n);
          this.#parse();
          if (this.#buf.length > 0) this.#buf = this.#buf.slice();
        } else {
          this.#buf = concat(this.#buf, chunk.subarray(0, n));
          this.#parse();
        }
      }
    } catch (err) {
      if (!this.#closed) this.#finish(1006, (err as Error).message);
    }
  }

  #parse(): void {
    for (;;) {
      if (this.#closed) return;
      const b = this.#buf;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0;
      const opcode = b[0] & 0x0f;
      const masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f;
      let offset = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = (b[2] << 8) | b[3];
        offset = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(
          new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0),
        );
        offset = 10;
      }
      if (len > this.#max || this.#fragmentBytes + len > this.#max) {
        return this.close(1009, `Message too big: limit is ${this.#max} bytes`);
      }
      const maskAt = offset;
      if (masked) offset += 4;
      if (b.length < offset + len) return;
      // Server frames are unmasked (RFC 6455 §5.1): a view saves a copy. It
      // is used before the next read, except a fragment (copied in #frame).
      const payload = masked
        ? b.slice(offset, offset + len)
        : b.subarray(offset, offset + len);
      if (masked) {
        for (let i = 0; i < len; i++) payload[i] ^= b[maskAt + (i & 3)];
      }
      this.#buf = b.subarray(offset + len);
      this.#frame(fin, opcode, payload);
    }
  }

  #frame(fin: boolean, opcode: number, payload: Uint8Array): void {
    switch (opcode) {
      case 0:
      case 1:
      case 2: {
        let whole = payload;
        if (opcode === 0 || !fin) {
          if (opcode !== 0) this.#fragments = [];
          this.#fragments.push(fin ? payload : payload.slice());
          this.#fragmentBytes += payload.length;
          if (!fin) return;
          whole = this.#fragments.reduce(concat);
          this.#fragments = [];
          this.#fragmentBytes = 0;
        }
        // An unfragmented message (the usual case) skips the list.
        const text = decodeUtf8(whole);
        if (text === undefined) return this.close(1007, "invalid UTF-8");
        this.#handler?.onText(text);
        return;
      }
      case 8: {
        const code = payload.length >= 2
          ? (payload[0] << 8) | payload[1]
          : 1005;
        const reason = payload.length > 2
          ? new TextDecoder().decode(payload.subarray(2))
          : "";
        this.#write(frame(8, payload.slice(0, 2)));
        return this.#finish(code, reason);
      }
      case 9:
        return this.#write(frame(10, payload));
      case 10:
        return;
      default:
        return this.close(1002, `unknown opcode ${opcode}`);
    }
  }
}

/** Texts up to this many UTF-16 units are encoded without an allocation. */
const SCRATCH_CHARS = 16 * 1024;
const scratch = new Uint8Array(SCRATCH_CHARS * 3);

/**
 * Where frames of idle sockets are built and written from, one socket at a
 * time (`wireOwner`, until its write completes): the payload starts at byte
 * 16, the mask key sits at 12–15 and the header just before it.
 */
const WIRE_PAYLOAD = 16;
const wire = new Uint8Array(WIRE_PAYLOAD + SCRATCH_CHARS * 3);
const wirePayload = wire.subarray(WIRE_PAYLOAD);
const wire32 = new Uint32Array(wire.buffer);
let wireOwner: TcpWebSocket | undefined;

/** A masked text frame of at most {@linkcode SCRATCH_CHARS} in `wire`. */
function wireTextFrame(text: string): Uint8Array {
  const len = encoder.encodeInto(text, wirePayload).written;
  // At most 3 × 16 Ki bytes: a 7-bit or 16-bit length.
  const start = len < 126 ? WIRE_PAYLOAD - 6 : WIRE_PAYLOAD - 8;
  wire[start] = 0x81;
  if (len < 126) wire[start + 1] = 0x80 | len;
  else {
    wire[start + 1] = 0x80 | 126;
    wire[start + 2] = len >> 8;
    wire[start + 3] = len & 0xff;
  }
  const mask = nextMask();
  const first = WIRE_PAYLOAD >> 2;
  wire32[first - 1] = mask;
  const words = len >>> 2;
  for (let i = 0; i < words; i++) wire32[first + i] ^= mask;
  for (let i = words << 2; i < len; i++) {
    wire[WIRE_PAYLOAD + i] ^= wire[WIRE_PAYLOAD - 4 + (i & 3)];
  }
  return wire.subarray(start, WIRE_PAYLOAD + len);
}

/** Masking keys, drawn from one getRandomValues call per 256 frames. */
const maskPool = new Uint32Array(256);
let maskNext = maskPool.length;

function nextMask(): number {
  if (maskNext === maskPool.length) {
    crypto.getRandomValues(maskPool);
    maskNext = 0;
  }
  return maskPool[maskNext++];
}

/**
 * A masked client frame: header, mask key and payload in one buffer, laid
 * out so that the key and payload start 4-byte aligned and masking goes a
 * word at a time.
 */
function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const headerLen = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const pad = (4 - (headerLen & 3)) & 3;
  const buffer = new ArrayBuffer(pad + headerLen + 4 + len);
  const out = new Uint8Array(buffer, pad);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out[2] = len >> 8;
    out[3] = len & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(buffer, pad).setBigUint64(2, BigInt(len));
  }
  const mask = nextMask();
  const words = (payload.byteOffset & 3) === 0 ? len >>> 2 : 0;
  const out32 = new Uint32Array(buffer, pad + headerLen, 1 + words);
  out32[0] = mask;
  if (words > 0) {
    const in32 = new Uint32Array(payload.buffer, payload.byteOffset, words);
    for (let i = 0; i < words; i++) out32[1 + i] = in32[i] ^ mask;
  }
  const body = headerLen + 4;
  for (let i = words << 2; i < len; i++) {
    out[body + i] = payload[i] ^ out[headerLen + (i & 3)];
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

async function readHead(
  conn: Deno.Conn,
  signal: AbortSignal,
): Promise<{ status: number; headers: Map<string, string>; rest: Uint8Array }> {
  // One listener for the whole head: the connection is closed on abort.
  let onAbort = () => {};
  const aborted = new Promise<null>((_, reject) => {
    onAbort = () => reject(new Error("handshake aborted"));
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => {});
  // Removed once the head is in: a listener on an `AbortSignal.timeout`
  // keeps the process alive until the timeout fires (15 s by default).
  try {
    return await readHeadUntilEnd(conn, aborted);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

async function readHeadUntilEnd(
  conn: Deno.Conn,
  aborted: Promise<null>,
): Promise<{ status: number; headers: Map<string, string>; rest: Uint8Array }> {
  let buf: Uint8Array = new Uint8Array(0);
  const chunk = new Uint8Array(4096);
  for (;;) {
    const n = await Promise.race([conn.read(chunk), aborted]);
    if (n === null) throw new Error("connection closed during handshake");
    buf = concat(buf, chunk.slice(0, n));
    const end = indexOfHeadEnd(buf);
    if (end < 0) {
      if (buf.length > 16 * 1024) {
        throw new Error("handshake response head too large");
      }
      continue;
    }
    const lines = new TextDecoder().decode(buf.subarray(0, end)).split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const i = line.indexOf(":");
      if (i > 0) {
        headers.set(
          line.slice(0, i).trim().toLowerCase(),
          line.slice(i + 1).trim(),
        );
      }
    }
    return { status, headers, rest: buf.slice(end + 4) };
  }
}

function indexOfHeadEnd(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}
