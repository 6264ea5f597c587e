/**
 * The SockJS frames as a client sees them (spec §1.3, §1.5 steps 6–7): what
 * a server frame means for the session, and how a message goes out.
 *
 * @module
 */

import { decodeServerFrame, type ServerFrame } from "./sockjs_frames.ts";
import type { CloseInfo } from "./session.ts";

/** Close code reported when a server breaks the SockJS framing. */
export const PROTOCOL_ERROR = 1002;

/**
 * What one server frame (without its XHR `\n`) means: messages to deliver
 * in order, `undefined` for `o` and `h`, or how the session ends (`c`
 * frame, or a frame that breaks the protocol).
 */
export function readServerFrame(
  frame: string,
): string[] | CloseInfo | undefined {
  // sockjs-go writes an empty frame when a session ends without a close
  // frame (§1.3); the Go client fails with "unexpected empty message".
  if (frame === "") {
    return { code: PROTOCOL_ERROR, reason: "sockjs: unexpected empty frame" };
  }
  let decoded: ServerFrame;
  try {
    decoded = decodeServerFrame(frame);
  } catch (error) {
    return {
      code: PROTOCOL_ERROR,
      // An empty batch is fatal to Go clients too ("no message", §12 #3).
      reason: frame === "a[]"
        ? "sockjs: empty a[] frame"
        : `sockjs: ${(error as Error).message}`,
    };
  }
  switch (decoded.type) {
    case "messages":
      return decoded.messages;
    case "close":
      return { code: decoded.code, reason: decoded.reason };
    default:
      // `o` may arrive after the first send (§1.3); `h` is ignored (§1.4).
      return undefined;
  }
}

/**
 * One outgoing message as a client frame: a JSON array of one string
 * (sockjs-go ends the session on anything else, §12 #2). Same text as
 * `JSON.stringify([message])` without the array.
 */
export function encodeClientMessage(message: string): string {
  return "[" + JSON.stringify(message) + "]";
}

/** Longest message kept to compare the next one with. */
const REMEMBERED_CHARS = 4096;
/** Shortest shared start worth keeping escaped. */
const MIN_SHARED_CHARS = 64;

/**
 * Encodes one session's outgoing messages, with the same text as
 * {@linkcode encodeClientMessage}. Calls on a connection start alike (the
 * method, the caller's identity, its credentials): the start two messages
 * in a row shared is kept escaped, and a message that starts with it has
 * only the rest escaped.
 */
export class ClientMessageEncoder {
  /** The last message that did not start with `#head`. */
  #last = "";
  #head = "";
  /** `JSON.stringify(#head)` without its closing quote. */
  #escapedHead = "";

  /** The client frame carrying `message`. */
  encode(message: string): string {
    const head = this.#head;
    if (head !== "" && message.startsWith(head)) {
      const rest = JSON.stringify(message.slice(head.length));
      return "[" + this.#escapedHead + rest.slice(1) + "]";
    }
    this.#learn(message);
    return encodeClientMessage(message);
  }

  #learn(message: string): void {
    const last = this.#last;
    this.#last = message.length <= REMEMBERED_CHARS ? message : "";
    let n = sharedStart(last, message);
    if (n < MIN_SHARED_CHARS) return;
    // Never end between the halves of a surrogate pair: each half would be
    // escaped on its own (same string, other bytes).
    const c = message.charCodeAt(n - 1);
    if (c >= 0xd800 && c <= 0xdbff) n--;
    this.#head = message.slice(0, n);
    this.#escapedHead = JSON.stringify(this.#head).slice(0, -1);
  }
}

/** Length of the longest common start of `a` and `b`. */
function sharedStart(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}
