/**
 * Low-level peers for the fuzzer, the soak scripts and the hardening tests:
 * a WebSocket that records every frame and how it closed, raw HTTP over
 * TCP, and a WebSocket spoken by hand over TCP that never reads (the slow
 * consumer). Loopback only: every helper refuses other hosts.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Throws unless `host` is a loopback address. */
export function assertLoopback(host: string): void {
  if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host)) {
    throw new RangeError(`refusing to talk to ${host}: loopback only`);
  }
}

/** How a {@linkcode FrameSocket} ended. */
export interface Closed {
  /** WebSocket close code (1006 for a dropped connection). */
  code: number;
  /** WebSocket close reason. */
  reason: string;
}

/**
 * A WebSocket client that queues every frame it receives and remembers how
 * it closed. Waits are bounded: they resolve `undefined` at the deadline.
 */
export class FrameSocket {
  /** The socket. */
  readonly socket: WebSocket;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<Closed>;
  /** Frames received and not yet taken. */
  readonly frames: string[] = [];
  #waiters: (() => void)[] = [];
  #closeInfo: Closed | undefined;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    this.closed = new Promise((resolve) => {
      socket.onclose = (ev) => {
        this.#closeInfo = { code: ev.code, reason: ev.reason };
        resolve(this.#closeInfo);
        this.#wake();
      };
    });
    socket.onmessage = (ev) => {
      this.frames.push(
        typeof ev.data === "string" ? ev.data : decoder.decode(ev.data),
      );
      this.#wake();
    };
  }

  /**
   * Opens `url` (ws://127.0.0.1:…) and waits for the handshake.
   * @throws {Error} when the handshake fails or takes longer than `timeoutMs`.
   */
  static open(url: string, timeoutMs = 10_000): Promise<FrameSocket> {
    assertLoopback(new URL(url).hostname);
    const socket = new WebSocket(url);
    const peer = new FrameSocket(socket);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error(`WebSocket handshake with ${url} timed out`));
      }, timeoutMs);
      socket.onopen = () => {
        clearTimeout(timer);
        resolve(peer);
      };
      socket.onerror = () => {
        clearTimeout(timer);
        reject(new Error(`cannot open ${url}`));
      };
    });
  }

  /** How the socket closed, once it has. */
  get closeInfo(): Closed | undefined {
    return this.#closeInfo;
  }

  /** Sends a text frame, or a binary one for bytes; false once closed. */
  send(data: string | Uint8Array): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(data);
    return true;
  }

  /** The next frame, skipping `h`; `undefined` on close or at the deadline. */
  async next(deadline: number): Promise<string | undefined> {
    for (;;) {
      const frame = this.frames.shift();
      if (frame !== undefined) {
        if (frame === "h") continue;
        return frame;
      }
      if (this.#closeInfo) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await this.#wait(left);
    }
  }

  /** Waits for the close until the deadline; `undefined` if still open. */
  async waitClosed(deadline: number): Promise<Closed | undefined> {
    while (!this.#closeInfo) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await this.#wait(left);
    }
    return this.#closeInfo;
  }

  /** Closes the socket and waits (bounded) for the close event. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    if (this.socket.readyState !== WebSocket.CLOSING) this.socket.close();
    await this.waitClosed(Date.now() + timeoutMs);
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#waiters.push(done);
    });
  }

  #wake(): void {
    for (const fn of this.#waiters.splice(0)) fn();
  }
}

/** What a raw HTTP exchange returned. */
export interface RawAnswer {
  /** Status code from the status line, or 0 when none arrived. */
  status: number;
  /** Everything received, as text. */
  text: string;
}

/**
 * Sends raw bytes to `127.0.0.1:port` and reads until the server closes, the
 * answer holds `enough` bytes, one whole response has arrived (with
 * `oneResponse`: Deno keeps a connection whose request body it refused
 * open until the client closes it), or `timeoutMs` passes.
 */
export async function rawHttp(
  port: number,
  request: string | Uint8Array,
  options: { timeoutMs?: number; enough?: number; oneResponse?: boolean } = {},
): Promise<RawAnswer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  let size = 0;
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* already closed */ }
  }, options.timeoutMs ?? 5_000);
  try {
    await writeAll(
      conn,
      typeof request === "string" ? encoder.encode(request) : request,
    );
    const buf = new Uint8Array(16 * 1024);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      size += n;
      if (size >= (options.enough ?? Infinity)) break;
      if (options.oneResponse && wholeResponse(chunks)) break;
    }
  } catch {
    // reset, or closed by the timer: report what arrived
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const text = decoder.decode(all);
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  return { status: m ? Number(m[1]) : 0, text };
}

/** True once `chunks` hold a response head and its `content-length` body. */
function wholeResponse(chunks: Uint8Array[]): boolean {
  const text = chunks.map((c) => decoder.decode(c)).join("");
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
  return length !== null &&
    encoder.encode(text.slice(end + 4)).length >= Number(length[1]);
}

/** Writes every byte (`Conn.write` may take fewer than it is given). */
export async function writeAll(
  conn: Deno.Conn,
  bytes: Uint8Array,
): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

/** A masked client frame (RFC 6455 §5.2): opcode 1 text, 2 binary. */
export function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = new Uint8Array(head + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) {
    out[1] = 0x80 | 126;
    out[2] = len >> 8;
    out[3] = len & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(len));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  out.set(mask, head);
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i] ^ mask[i & 3];
  return out;
}

/**
 * A WebSocket opened by hand over TCP that never reads after the
 * handshake: a consumer that stops reading, so the server's unread backlog
 * grows until its limit.
 */
export class DeafSocket {
  readonly #conn: Deno.Conn;
  /** The server's handshake answer. */
  readonly handshake: string;

  private constructor(conn: Deno.Conn, handshake: string) {
    this.#conn = conn;
    this.handshake = handshake;
  }

  /**
   * Upgrades `path` on `127.0.0.1:port`.
   * @throws {Error} unless the server answers 101.
   */
  static async open(port: number, path: string): Promise<DeafSocket> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const key = btoa(
      String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))),
    );
    await writeAll(
      conn,
      encoder.encode(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
          `Upgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    // Read only the response head; frames after it are left unread.
    const buf = new Uint8Array(1);
    let head = "";
    while (!head.endsWith("\r\n\r\n") && head.length < 4096) {
      const n = await conn.read(buf);
      if (n === null) break;
      head += String.fromCharCode(buf[0]);
    }
    if (!head.startsWith("HTTP/1.1 101")) {
      conn.close();
      throw new Error(`upgrade refused: ${head.split("\r\n")[0]}`);
    }
    return new DeafSocket(conn, head);
  }

  /** Sends one text frame. */
  async sendText(text: string): Promise<void> {
    await writeAll(this.#conn, clientFrame(1, encoder.encode(text)));
  }

  /**
   * Starts reading at last: skips the server's frames up to its close
   * frame and answers its code, or how the connection ended without one
   * (`"end"`, `"reset"`), or `"timeout"` after `ms`.
   */
  async readToClose(ms: number): Promise<number | string> {
    const buf = new Uint8Array(64 * 1024);
    let pending = new Uint8Array(0);
    const deadline = Date.now() + ms;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), ms);
    });
    try {
      while (Date.now() < deadline) {
        const n = await Promise.race([this.#conn.read(buf), late]);
        if (n === null) return Date.now() < deadline ? "end" : "timeout";
        const joined = new Uint8Array(pending.length + n);
        joined.set(pending);
        joined.set(buf.subarray(0, n), pending.length);
        pending = joined;
        // Whole server frames (unmasked): header, then the payload.
        for (;;) {
          if (pending.length < 2) break;
          let len = pending[1] & 0x7f;
          let at = 2;
          if (len === 126) {
            if (pending.length < 4) break;
            len = (pending[2] << 8) | pending[3];
            at = 4;
          } else if (len === 127) {
            if (pending.length < 10) break;
            len = Number(new DataView(pending.buffer).getBigUint64(2));
            at = 10;
          }
          if (pending.length < at + len) break;
          if ((pending[0] & 0x0f) === 8) {
            return len >= 2 ? (pending[at] << 8) | pending[at + 1] : 1005;
          }
          pending = pending.slice(at + len);
        }
      }
      return "timeout";
    } catch (err) {
      return err instanceof Deno.errors.ConnectionReset
        ? "reset"
        : (err as Error).message;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops the TCP connection. */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}
