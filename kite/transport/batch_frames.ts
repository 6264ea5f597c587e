/**
 * Batched raw WebSocket frames, our extension to the raw transport
 * (docs/protocol.md §1.8): a client that dials with `?kite-batch=1` and a
 * server that answers with the frame `[]` may then put several messages
 * into one text frame, as a JSON array of them. One frame per message is
 * what costs most in a browser (each one crosses from the page to the
 * network process and back), so joining the messages of one tick is
 * what makes many calls in flight cheap. Knows nothing of dnode: each
 * element is an opaque message text, checked by the layer above exactly
 * as a message in a frame of its own.
 *
 * @module
 */

import type { CloseInfo } from "./session.ts";

/** The query parameter with which a client offers batching. */
export const BATCH_PARAM = "kite-batch";

/**
 * The frame a server that agreed to batch sends first: an empty batch,
 * which a client that did not offer never gets.
 */
export const BATCH_ACCEPTED = "[]";

/** Most messages one batch frame may carry; a receiver refuses more. */
export const MAX_BATCH_MESSAGES = 100;

/**
 * UTF-16 units a sender joins into one batch frame at most; a longer
 * message goes alone, as a plain frame.
 */
export const BATCH_FRAME_CHARS = 16_384;

/**
 * A batch frame a receiver reads even when its message limit is lower:
 * {@linkcode BATCH_FRAME_CHARS} units are at most this many UTF-8 bytes.
 */
export const MAX_BATCH_FRAME_BYTES: number = BATCH_FRAME_CHARS * 3;

/** How a receiver ends a connection whose batch frame breaks the rules. */
export const BROKEN_BATCH: CloseInfo = {
  code: 4002,
  reason:
    `Broken batch: expected a JSON array of 1 to ${MAX_BATCH_MESSAGES} messages`,
};

/** True when `frame` is a batch (a plain message is an object). */
export function isBatch(frame: string): boolean {
  return frame.charCodeAt(0) === OPEN_SQUARE;
}

/**
 * The `url` with batching offered: its query gains `kite-batch=1`. Servers
 * that do not know the parameter ignore it (routes match on the path).
 */
export function offerBatch(url: URL): URL {
  const offered = new URL(url);
  offered.searchParams.set(BATCH_PARAM, "1");
  return offered;
}

/** True when the request for `url` offers batching. */
export function offersBatch(url: URL): boolean {
  return url.searchParams.get(BATCH_PARAM) === "1";
}

/**
 * Takes the first messages of `queue` off it and returns the frame that
 * carries them: all of them while they fit in {@linkcode BATCH_FRAME_CHARS}
 * and {@linkcode MAX_BATCH_MESSAGES}, a lone message as it is. Each
 * message is JSON already, so joining needs no escaping.
 * @returns the frame and the length of the messages it took.
 */
export function takeBatch(
  queue: string[],
): { frame: string; length: number } {
  const first = queue[0];
  let length = first.length;
  let n = 1;
  const end = Math.min(queue.length, MAX_BATCH_MESSAGES);
  // The brackets and commas count too.
  while (n < end && length + queue[n].length + n + 2 <= BATCH_FRAME_CHARS) {
    length += queue[n].length;
    n++;
  }
  if (n === 1) {
    queue.shift();
    return { frame: first, length };
  }
  const frame = "[" + queue.slice(0, n).join(",") + "]";
  queue.splice(0, n);
  return { frame, length };
}

const OPEN_SQUARE = 0x5b;
const CLOSE_SQUARE = 0x5d;
const OPEN_CURLY = 0x7b;
const CLOSE_CURLY = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

function isSpace(unit: number): boolean {
  return unit === 0x20 || unit === 0x0a || unit === 0x0d || unit === 0x09;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/**
 * The message texts of a batch frame, in order, or `undefined` when the
 * frame is not an array of at most `maxMessages` non-empty elements. It
 * finds where each element ends by brackets and strings alone, in one
 * pass and without recursion (nesting costs a counter), and does not
 * parse: an element that is not valid JSON is the message layer's to
 * refuse, as it refuses a plain frame. `[]` gives an empty list.
 */
export function splitBatch(
  frame: string,
  maxMessages: number = MAX_BATCH_MESSAGES,
): string[] | undefined {
  const end = frame.length;
  let i = skipSpace(frame, 0);
  if (frame.charCodeAt(i) !== OPEN_SQUARE) return undefined;
  i = skipSpace(frame, i + 1);
  const messages: string[] = [];
  if (frame.charCodeAt(i) === CLOSE_SQUARE) {
    return skipSpace(frame, i + 1) === end ? messages : undefined;
  }
  for (;;) {
    const start = i;
    let depth = 0;
    let unit = 0;
    for (; i < end; i++) {
      unit = frame.charCodeAt(i);
      if (unit === QUOTE) {
        // Jump to the closing quote: one after an even run of backslashes.
        for (;;) {
          const close = frame.indexOf('"', i + 1);
          if (close < 0) return undefined;
          let slashes = 0;
          while (frame.charCodeAt(close - 1 - slashes) === BACKSLASH) slashes++;
          i = close;
          if ((slashes & 1) === 0) break;
        }
      } else if (unit === OPEN_CURLY || unit === OPEN_SQUARE) {
        depth++;
      } else if (unit === CLOSE_CURLY || unit === CLOSE_SQUARE) {
        if (depth === 0) break;
        depth--;
      } else if (unit === COMMA && depth === 0) {
        break;
      }
    }
    // Ran off the end, or an element that is empty or closes with `}`.
    if (i >= end || unit === CLOSE_CURLY) return undefined;
    const message = frame.slice(start, i).trim();
    if (message === "" || messages.length === maxMessages) return undefined;
    messages.push(message);
    if (unit === CLOSE_SQUARE) {
      return skipSpace(frame, i + 1) === end ? messages : undefined;
    }
    i++;
  }
}
