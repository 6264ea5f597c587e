/**
 * One caller's WebSocket carried to a kite and back, message by message,
 * for an upgrade that reached the proxy's internal `Deno.serve` (a
 * keep-alive connection that upgrades after a plain request; a connection
 * whose first request is the upgrade is spliced instead, `splice.ts`):
 * SockJS-framed (`…/<server>/<session>/websocket`) and raw alike, since the
 * proxy reads no frame. Each side is bounded: a caller's message above
 * `maxMessageBytes` closes the caller (1009-like SockJS code, as the kite
 * itself would), either side that stops reading past `maxBufferedBytes`
 * closes both, and binary messages (kites speak text) close the caller.
 *
 * @module
 */
import { TcpWebSocket } from "../../kite/transport/sockets/deno_websocket.ts";
import {
  backlogTooBig,
  exceedsUtf8,
  utf8Length,
} from "../../kite/transport/sockjs_frames.ts";
import {
  closeWhenWritten,
  tooBig,
} from "../../kite/transport/server/sockjs_websocket.ts";
import { proxyError } from "./answers.ts";

/** Options for {@linkcode forwardWebSocket}. */
export interface WebSocketForwardOptions {
  /** The kite's WebSocket URL to dial. */
  backend: URL;
  /** What the caller is told the kite is, in errors (`kite <id>`). */
  name: string;
  /** Largest message a caller may send, bytes. */
  maxMessageBytes: number;
  /** Largest message the kite may send, bytes. */
  maxKiteMessageBytes: number;
  /** Bytes either side may leave unread before both are closed. */
  maxBufferedBytes: number;
  /** Dial and handshake timeout for the kite, ms. */
  timeoutMs: number;
  /** Counts forwarded bytes (UTF-16 code units: bytes for ASCII JSON). */
  count(toKite: number, toCaller: number): void;
  /** Called once when both sides are closed (or the dial failed). */
  done(): void;
  /** Gets the function that closes both sides with a reason. */
  onOpen(close: (reason: string) => void): void;
}

/** Close code for "the kite left the proxy" (a 4xxx code: only those and 1000 may be sent). */
export const KITE_GONE_CODE = 4410;
/** Close code for "the kite's own connection failed". */
export const KITE_FAILED_CODE = 4502;
/** Close code for a binary message from a caller. */
const UNSUPPORTED_CODE = 4003;

/**
 * Dials the kite, then upgrades the caller; answers `502` (naming the kite
 * and the cause) when the kite cannot be reached.
 */
export async function forwardWebSocket(
  request: Request,
  o: WebSocketForwardOptions,
): Promise<Response> {
  let kite: TcpWebSocket;
  try {
    kite = await TcpWebSocket.connect(o.backend, {
      timeoutMs: o.timeoutMs,
      maxMessageBytes: o.maxKiteMessageBytes,
      maxBufferedBytes: o.maxBufferedBytes,
      origin: request.headers.get("origin") ?? undefined,
      signal: request.signal,
    });
  } catch (err) {
    o.done();
    return proxyError(
      502,
      `${o.name} cannot be reached: ${(err as Error).message}`,
    );
  }
  let upgrade: { socket: WebSocket; response: Response };
  try {
    upgrade = Deno.upgradeWebSocket(request);
  } catch {
    kite.close(1000, "caller's upgrade failed");
    o.done();
    return proxyError(400, "expected a WebSocket upgrade");
  }
  const socket = upgrade.socket;
  // What the kite sends before the caller's socket is open (SockJS `o`).
  let early: string[] | undefined = [];
  let earlyBytes = 0;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    o.done();
  };
  let callerClosing = false;
  // Not before Deno has written what the caller was sent: a caller that
  // reads nothing would keep its connection past the close event, and
  // past the per-caller count (sockjs_websocket.ts, closeWhenWritten).
  const closeCaller = (code: number, reason: string) => {
    if (callerClosing || socket.readyState === WebSocket.CLOSED) return;
    callerClosing = true;
    closeWhenWritten(socket, {
      code: sendable(code),
      reason: clipReason(reason),
    });
  };
  const closeBoth = (code: number, reason: string) => {
    closeCaller(code, reason);
    kite.close(sendable(code), clipReason(reason));
  };
  o.onOpen((reason) => closeBoth(KITE_GONE_CODE, reason));
  kite.start({
    onText(text) {
      if (early) {
        early.push(text);
        earlyBytes += text.length;
        if (earlyBytes > o.maxBufferedBytes) {
          const { code, reason } = backlogTooBig(o.maxBufferedBytes);
          closeBoth(code, reason);
        }
        return;
      }
      if (socket.readyState !== WebSocket.OPEN) return;
      if (socket.bufferedAmount > o.maxBufferedBytes) {
        const { code, reason } = backlogTooBig(o.maxBufferedBytes);
        return closeBoth(code, reason);
      }
      socket.send(text);
      o.count(0, utf8Length(text));
    },
    onClose(code, reason) {
      if (code === 1006 || code === 0) {
        return closeCaller(
          KITE_FAILED_CODE,
          `${o.name} is gone: ${reason || "its connection dropped"}`,
        );
      }
      closeCaller(
        code,
        reason || `${o.name} closed the connection (code ${code})`,
      );
    },
  });
  socket.onopen = () => {
    const waiting = early ?? [];
    early = undefined;
    for (const text of waiting) {
      socket.send(text);
      o.count(0, utf8Length(text));
    }
  };
  socket.onmessage = (event) => {
    const data = event.data;
    if (typeof data !== "string") {
      return closeBoth(UNSUPPORTED_CODE, "binary messages are not forwarded");
    }
    if (exceedsUtf8(data, o.maxMessageBytes)) {
      const { code, reason } = tooBig(o.maxMessageBytes);
      closeCaller(code, reason);
      kite.close(1000, "the caller sent too big a message");
      return;
    }
    // false: the kite stopped reading and its socket closed (onClose tells the caller).
    if (kite.send(data)) o.count(utf8Length(data), 0);
  };
  socket.onclose = (event) => {
    kite.close(sendable(event.code), clipReason(event.reason));
    kite.finished.then(finish, finish);
  };
  return upgrade.response;
}

/** A code a WebSocket may send: 1000 or 3000–4999; others become 1000. */
function sendable(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

/** A close reason fits in 123 bytes. */
function clipReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= 123) return reason;
  return new TextDecoder().decode(bytes.slice(0, 120)).replace(/\uFFFD$/, "") +
    "…";
}
