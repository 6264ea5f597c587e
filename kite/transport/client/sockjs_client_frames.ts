/**
 * The SockJS frames as a client sees them (docs/protocol.md §1.3, §1.5 steps 6–7): what
 * a server frame means for the session, and how a message goes out.
 *
 * @module
 */

import { decodeServerFrame, type ServerFrame } from "../sockjs_frames.ts";
import type { CloseInfo } from "../session.ts";

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
  // frame (docs/protocol.md §1.3); the Go client fails with "unexpected empty message".
  if (frame === "") {
    return { code: PROTOCOL_ERROR, reason: "sockjs: unexpected empty frame" };
  }
  let decoded: ServerFrame;
  try {
    decoded = decodeServerFrame(frame);
  } catch (error) {
    return {
      code: PROTOCOL_ERROR,
      // An empty batch is fatal to Go clients too ("no message", docs/protocol.md §12 #3).
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
      // `o` may arrive after the first send (docs/protocol.md §1.3); `h` is ignored (§1.4).
      return undefined;
  }
}

/**
 * One outgoing message as a client frame: a JSON array of one string
 * (sockjs-go ends the session on anything else, docs/protocol.md §12 #2). Same text as
 * `JSON.stringify([message])` without the array.
 */
export function encodeClientMessage(message: string): string {
  return "[" + JSON.stringify(message) + "]";
}

/**
 * The last head a session sent, and `JSON.stringify(head)` without its
 * closing `"`.
 */
export interface EscapedHead {
  head: string;
  escaped: string;
}

/**
 * The same text as {@linkcode encodeClientMessage}`(head + rest)`, with the
 * JSON escape of `head` kept in `memo` for the next message with that head.
 * A head that could end inside a surrogate pair is not split off.
 */
export function encodeJoinedClientMessage(
  head: string,
  rest: string,
  memo: EscapedHead,
): string {
  if (head !== memo.head) {
    const last = head.charCodeAt(head.length - 1);
    if (!(last < 0x80)) return encodeClientMessage(head + rest);
    memo.head = head;
    memo.escaped = JSON.stringify(head).slice(0, -1);
  }
  return "[" + memo.escaped + JSON.stringify(rest).slice(1) + "]";
}
