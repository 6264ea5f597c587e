/**
 * Where HTTP/1.1 responses end, read from the bytes of a stream as they
 * pass (heads, then bodies by `Content-Length` or chunked framing, no
 * body after `HEAD`, `204` and `304`), so that the proxy's front knows
 * when a keep-alive connection carries no response any more and starts
 * the deadline for the caller's next request head. Bodies are skipped,
 * not read; only heads and chunk-size lines are looked at.
 *
 * @module
 */

/** Largest response head followed, bytes; past it the stream is {@linkcode ResponseTracker.lost}. */
const MAX_HEAD = 16 * 1024;

type State =
  | "head"
  | "length"
  | "size"
  | "data"
  | "dataEnd"
  | "trailer"
  | "raw";

/** Follows responses on one connection; see the module doc. */
export class ResponseTracker {
  #state: State = "head";
  #headBytes = 0;
  #left = 0;
  /** The methods of the requests sent, oldest first (a `HEAD`'s answer has no body). */
  readonly #methods: string[] = [];

  /** A request was sent: its response is expected after those before it. */
  expect(method: string): void {
    this.#methods.push(method);
  }

  /**
   * Whether responses can no longer be told apart: the stream switched
   * protocols (`101`), a body runs until the connection closes, or a head
   * was malformed or too long.
   */
  get lost(): boolean {
    return this.#state === "raw";
  }

  /** Takes the next bytes of the stream; returns how many responses ended in them. */
  feed(chunk: Uint8Array): number {
    let ended = 0;
    let i = 0;
    while (i < chunk.length && this.#state !== "raw") {
      switch (this.#state) {
        case "length":
        case "data": {
          const take = Math.min(this.#left, chunk.length - i);
          this.#left -= take;
          i += take;
          if (this.#left > 0) break;
          if (this.#state === "length") {
            ended++;
            this.#state = "head";
          } else {
            this.#state = "dataEnd";
            this.#left = 2; // the CRLF after a chunk's data
          }
          break;
        }
        case "dataEnd":
          i++;
          if (--this.#left === 0) this.#state = "size";
          break;
        default: {
          // head, size, trailer: line by line.
          const lf = chunk.indexOf(10, i);
          if (lf < 0) {
            this.#carry(chunk.subarray(i));
            i = chunk.length;
            break;
          }
          let line = chunk.subarray(i, lf);
          i = lf + 1;
          if (this.#partial) {
            this.#carry(line);
            line = this.#partial;
            this.#partial = undefined;
          }
          if ((this.#state as State) === "raw") break; // the cut line was too long
          if (line[line.length - 1] === 13) line = line.subarray(0, -1);
          if (this.#state === "head") ended += this.#headLine(line);
          else if (this.#state === "size") this.#sizeLine(line);
          else if (line.length === 0) { // the trailer's end
            ended++;
            this.#state = "head";
          }
        }
      }
    }
    return ended;
  }

  #status = 0;
  #length = -1;
  #chunked = false;
  /** A line cut by a chunk's end, so far. */
  #partial: Uint8Array | undefined;

  #carry(bytes: Uint8Array): void {
    const had = this.#partial?.length ?? 0;
    if (had + bytes.length > MAX_HEAD) {
      this.#state = "raw";
      this.#partial = undefined;
      return;
    }
    const joined = new Uint8Array(had + bytes.length);
    if (this.#partial) joined.set(this.#partial);
    joined.set(bytes, had);
    this.#partial = joined;
  }

  /** One line of a head; 1 when it ended a response (a head with no body). */
  #headLine(line: Uint8Array): number {
    this.#headBytes += line.length + 2;
    if (this.#headBytes > MAX_HEAD) {
      this.#state = "raw";
      return 0;
    }
    if (this.#status === 0) {
      if (line.length === 0) return 0; // stray CRLF between responses
      const status = statusOf(line);
      if (status === undefined) {
        this.#state = "raw";
        return 0;
      }
      this.#status = status;
      this.#length = -1;
      this.#chunked = false;
      return 0;
    }
    if (line.length) {
      if (startsWith(line, CONTENT_LENGTH)) {
        this.#length = Number(latin1(line.subarray(CONTENT_LENGTH.length)));
      } else if (startsWith(line, TRANSFER_ENCODING)) {
        this.#chunked = /chunked\s*$/i.test(
          latin1(line.subarray(TRANSFER_ENCODING.length)),
        );
      }
      return 0;
    }
    // The blank line: the head is complete.
    const status = this.#status;
    this.#status = 0;
    this.#headBytes = 0;
    if (status === 101) {
      this.#state = "raw";
      return 0;
    }
    if (status < 200) return 0; // 100 Continue and the like: a head follows
    const method = this.#methods.shift();
    if (method === "HEAD" || status === 204 || status === 304) return 1;
    if (this.#chunked) {
      this.#state = "size";
      return 0;
    }
    if (Number.isSafeInteger(this.#length) && this.#length >= 0) {
      if (this.#length === 0) return 1;
      this.#left = this.#length;
      this.#state = "length";
      return 0;
    }
    this.#state = "raw"; // a body that ends with the connection
    return 0;
  }

  #sizeLine(line: Uint8Array): void {
    const text = latin1(line);
    const size = /^[0-9a-f]+/i.test(text) ? parseInt(text, 16) : NaN;
    if (!Number.isSafeInteger(size) || size < 0) {
      this.#state = "raw";
    } else if (size === 0) {
      this.#state = "trailer";
    } else {
      this.#left = size;
      this.#state = "data";
    }
  }
}

const CONTENT_LENGTH = bytesOf("content-length:");
const TRANSFER_ENCODING = bytesOf("transfer-encoding:");
const HTTP_1 = bytesOf("http/1.");

function bytesOf(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Whether `line` starts with `lower` (lower-case ASCII), case-insensitively. */
function startsWith(line: Uint8Array, lower: Uint8Array): boolean {
  if (line.length < lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    const b = line[k];
    if ((b >= 65 && b <= 90 ? b | 0x20 : b) !== lower[k]) return false;
  }
  return true;
}

/** The status of a status line `HTTP/1.x NNN …`; undefined when it is not one. */
function statusOf(line: Uint8Array): number | undefined {
  if (!startsWith(line, HTTP_1) || line.length < 12 || line[8] !== 32) return;
  let status = 0;
  for (let k = 9; k < 12; k++) {
    const d = line[k] - 48;
    if (d < 0 || d > 9) return;
    status = status * 10 + d;
  }
  return status;
}

function latin1(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}
