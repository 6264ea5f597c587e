/**
 * SockJS framing (docs/protocol.md §1.3): the frames a server writes (`o`, `h`,
 * `a[...]`, `c[code,"reason"]`) and the client frames it reads (a JSON array
 * of strings). Knows nothing of dnode: every message is an opaque string.
 *
 * @module
 */

import type { CloseInfo } from "./session.ts";

/** The frame a server sends first, once per session. */
export const OPEN_FRAME = "o";

/** The heartbeat frame. */
export const HEARTBEAT_FRAME = "h";

/**
 * What an `xhr_streaming` response starts with: 2048 `h` and a newline, so
 * that browsers start delivering the body at once (docs/protocol.md §1.2).
 */
export const XHR_STREAMING_PRELUDE: string = "h".repeat(2048) + "\n";

/** A close code and reason, as carried by a `c[...]` frame. */
export interface CloseReason {
  /** SockJS close code. */
  readonly code: number;
  /** Human-readable reason. */
  readonly reason: string;
}

/**
 * The close reasons this transport produces. Codes 4002, 4008, 4009 and 4011
 * lie in the private WebSocket range so that the same code can go into the
 * `c` frame and the WebSocket close frame; they mirror 1002, 1008, 1009 and
 * 1011.
 */
export const CLOSE_REASONS: {
  /** The local side closed the session (docs/protocol.md Appendix A). */
  readonly goAway: CloseReason;
  /** A second receiver tried to attach to an XHR session (docs/protocol.md §1.3). */
  readonly anotherConnection: CloseReason;
  /** The client dropped a pending XHR request (docs/protocol.md §1.6 step 5). */
  readonly interrupted: CloseReason;
  /** An XHR client stopped polling for longer than the disconnect delay. */
  readonly timedOut: CloseReason;
  /** A client frame was not a JSON array of strings (docs/protocol.md §12 #2). */
  readonly brokenFraming: CloseReason;
  /** A client frame or body exceeded the configured limit. */
  readonly tooBig: CloseReason;
  /** The peer left more than the configured bytes unread. */
  readonly backlog: CloseReason;
} = {
  goAway: { code: 3000, reason: "Go away!" },
  anotherConnection: { code: 2010, reason: "Another connection still open" },
  interrupted: { code: 1002, reason: "Connection interrupted" },
  timedOut: { code: 1006, reason: "Session timed out" },
  brokenFraming: {
    code: 4002,
    reason: "Broken framing: expected a JSON array of strings",
  },
  tooBig: { code: 4009, reason: "Message too big" },
  backlog: { code: 4008, reason: "Slow consumer: too much unread data" },
};

/**
 * Encodes queued messages as one `a[...]` frame. Never call it with an empty
 * list: Go clients treat `a[]` as a fatal error (docs/protocol.md §12 #3).
 *
 * `<`, `>` and `&` are not escaped as Go's `quote` does; no peer depends on
 * it (docs/protocol.md §12 #22).
 */
export function encodeMessages(messages: readonly string[]): string {
  // One message is the common case; skip stringifying the array around it.
  if (messages.length === 1) return "a[" + JSON.stringify(messages[0]) + "]";
  return "a" + JSON.stringify(messages);
}

/** Encodes a close frame, e.g. `c[3000,"Go away!"]`. */
export function encodeClose(code: number, reason: string): string {
  return "c[" + code + "," + JSON.stringify(reason) + "]";
}

/**
 * Decodes a frame sent by a SockJS client (WebSocket text message or
 * `xhr_send` body): a JSON array of strings. A bare JSON string is accepted
 * as one message, as the SockJS protocol allows (sockjs-go would end the
 * session instead; no known client sends one).
 *
 * @returns the messages, or `undefined` when the text is not such a frame.
 */
export function decodeClientFrame(text: string): string[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value === "string") return [value];
  if (!Array.isArray(value)) return undefined;
  for (let i = 0; i < value.length; i++) {
    if (typeof value[i] !== "string") return undefined;
  }
  return value;
}

/** One decoded server frame. */
export type ServerFrame =
  | { readonly type: "open" }
  | { readonly type: "heartbeat" }
  | { readonly type: "messages"; readonly messages: string[] }
  | { readonly type: "close"; readonly code: number; readonly reason: string };

/**
 * Decodes a frame sent by a SockJS server, without the trailing newline XHR
 * transports add. Also accepts the non-standard `m"…"` single-message frame
 * that the Go client reads (docs/protocol.md §1.5 step 6).
 *
 * @throws {SyntaxError} when the text is not a valid server frame, including
 * an empty frame and `a[]`.
 */
export function decodeServerFrame(text: string): ServerFrame {
  switch (text[0]) {
    case "o":
      if (text.length === 1) return { type: "open" };
      break;
    case "h":
      if (text.length === 1) return { type: "heartbeat" };
      break;
    case "a": {
      const messages = decodeClientFrame(text.slice(1));
      if (messages && messages.length > 0 && text[1] === "[") {
        return { type: "messages", messages };
      }
      break;
    }
    case "m": {
      const message = parseJson(text.slice(1));
      if (typeof message === "string") {
        return { type: "messages", messages: [message] };
      }
      break;
    }
    case "c": {
      const value = parseJson(text.slice(1));
      if (
        Array.isArray(value) && value.length === 2 &&
        typeof value[0] === "number" && typeof value[1] === "string"
      ) {
        return { type: "close", code: value[0], reason: value[1] };
      }
      break;
    }
  }
  throw new SyntaxError(
    `Invalid SockJS server frame: ${JSON.stringify(text.slice(0, 64))}`,
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Any code unit outside ASCII; global so a scan can start at `lastIndex`. */
const NON_ASCII = /[\u0080-\uffff]/g;

/**
 * UTF-8 length of `text` from index `from` on, in bytes, counted without
 * allocating. Lone surrogates count as 3 bytes, as TextEncoder encodes
 * them as U+FFFD.
 */
export function utf8Length(text: string, from = 0): number {
  // Most messages are ASCII: one native regex scan beats a loop in JS.
  NON_ASCII.lastIndex = from;
  if (!NON_ASCII.test(text)) return text.length - from;
  let i = NON_ASCII.lastIndex - 1;
  let bytes = text.length - from;
  for (; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) continue;
    if (unit < 0x800) {
      bytes += 1;
    } else if (
      unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length &&
      (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      bytes += 2; // the pair: 2 code units, 4 bytes
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/** True when `text` is longer than `limit` bytes once UTF-8 encoded. */
export function exceedsUtf8(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return utf8Length(text) > limit;
}

/** The close reason for a peer that left more than `limit` bytes unread. */
export function backlogTooBig(limit: number): CloseInfo {
  return {
    code: CLOSE_REASONS.backlog.code,
    reason: `${CLOSE_REASONS.backlog.reason}, over ${limit} bytes`,
  };
}
