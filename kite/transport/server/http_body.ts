/**
 * Request bodies read with a bound: the size a peer declares is judged
 * before a byte is read, a chunked body is counted while it streams, and a
 * body that trickles in is given up after a deadline. Used by every route
 * that reads a body (`xhr_send`, Kontrol's `/register`).
 *
 * @module
 */

/** Options for {@linkcode readBoundedBody}. */
export interface ReadBodyOptions {
  /** Largest body accepted, in bytes. */
  limit: number;
  /** Give up a body not complete after this long, ms; 0 waits forever. @default {0} */
  timeoutMs?: number;
}

/** Why a body was refused: it was too big, or too slow. */
export type BodyRefusal = "tooBig" | "timeout";

/** What {@linkcode readBoundedBody} gives: the bytes, or why there are none. */
export type BoundedBody =
  | { ok: true; bytes: Uint8Array }
  | { ok: false; refusal: BodyRefusal };

const EMPTY = new Uint8Array(0);

/**
 * True when the request declares a body bigger than `limit` in its
 * `Content-Length` (a header check: nothing is read).
 */
export function declaresTooBig(request: Request, limit: number): boolean {
  const declared = request.headers.get("content-length");
  // Number("") is 0 and a malformed length never reaches us (the HTTP
  // parser refuses it), so anything above the limit is a real declaration.
  return declared !== null && Number(declared) > limit;
}

/**
 * Reads a request body, refusing more than `limit` bytes. A declared
 * length above the limit is refused before reading; a chunked body is cut
 * off as soon as it passes the limit. Never throws: a body the peer aborts
 * counts as empty.
 */
export async function readBoundedBody(
  request: Request,
  options: ReadBodyOptions,
): Promise<BoundedBody> {
  const { limit, timeoutMs = 0 } = options;
  if (declaresTooBig(request, limit)) {
    await cancelQuietly(request.body);
    return { ok: false, refusal: "tooBig" };
  }
  const body = request.body;
  if (!body) return { ok: true, bytes: EMPTY };
  const reader = body.getReader();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  if (timeoutMs > 0) {
    timer = setTimeout(() => {
      timedOut = true;
      reader.cancel().catch(() => {});
    }, timeoutMs);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel().catch(() => {});
        return { ok: false, refusal: "tooBig" };
      }
      chunks.push(value);
    }
  } catch {
    // The peer went away mid-body; what it sent is not a message.
    if (!timedOut) return { ok: true, bytes: EMPTY };
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) return { ok: false, refusal: "timeout" };
  if (chunks.length === 1) return { ok: true, bytes: chunks[0] };
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return { ok: true, bytes: all };
}

/** The text of a 413 reply: what the limit is and which setting holds it. */
export function bodyTooBigText(limit: number, setting: string): string {
  return `Request body too big: limit is ${limit} bytes (${setting})`;
}

/**
 * At most `max` characters of peer-supplied text for an error message, so
 * that a reply never echoes an unbounded input back.
 */
export function clip(text: string, max = 200): string {
  return text.length <= max
    ? text
    : `${text.slice(0, max)}… (${text.length} characters)`;
}

async function cancelQuietly(
  body: ReadableStream<Uint8Array> | null,
): Promise<void> {
  try {
    await body?.cancel();
  } catch {
    // already closed by the peer
  }
}
