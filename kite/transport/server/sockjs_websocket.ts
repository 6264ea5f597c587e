/**
 * Server sessions over a WebSocket: SockJS-framed
 * (`{prefix}/{server}/{session}/websocket`) and raw (docs/protocol.md §1.3, §1.7).
 *
 * @module
 */

// Deno's one end-of-turn callback: setTimeout(fn, 0) waits a millisecond
// or more, which made a caller waiting for each reply 6× slower.
import { setImmediate } from "node:timers";
import type { CloseInfo, Session, SessionHandler } from "../session.ts";
import {
  BATCH_ACCEPTED,
  BROKEN_BATCH,
  isBatch,
  MAX_BATCH_FRAME_BYTES,
  splitBatch,
  takeBatch,
} from "../batch_frames.ts";
import {
  CLOSE_REASONS,
  decodeClientFrame,
  encodeClose,
  exceedsUtf8,
  HEARTBEAT_FRAME,
  OPEN_FRAME,
} from "../sockjs_frames.ts";
import {
  type Beating,
  type SessionHost,
  SockJsSession,
} from "./sockjs_session.ts";

const decoder = new TextDecoder();

/** A session on one upgraded WebSocket, framed or raw. */
export class WebSocketSession extends SockJsSession implements Beating {
  #socket: WebSocket;
  #framed: boolean;
  /** Raw, and the client offered batches (docs/protocol.md §1.8). */
  #batch: boolean;
  /** Batching: frames read in this turn of the event loop. */
  #framesThisTurn = 0;
  /** Made by the first batching read: most sessions never batch. */
  #newTurn: (() => void) | undefined;

  /**
   * Wires the socket's events. `onSession` runs when the socket opens, just
   * after `o` is sent; frames the client sent before seeing `o` are read
   * after it (docs/protocol.md §1.3: the Go client does not wait for `o`).
   */
  constructor(
    host: SessionHost,
    socket: WebSocket,
    options: {
      framed: boolean;
      /** Raw only: the client offered batches; `[]` accepts them. */
      batch?: boolean;
      id: string;
      remoteAddr: string;
      /** The peer whose connection the socket counts as, until it closes. */
      peer: string;
      onSession(session: Session): SessionHandler;
    },
  ) {
    super(
      host,
      options.framed ? "websocket" : "raw-websocket",
      options.id,
      options.remoteAddr,
    );
    this.#socket = socket;
    this.#framed = options.framed;
    this.#batch = !options.framed && options.batch === true;
    // The handlers below share one closure context: keep `options` out of it.
    const onSession = options.onSession;
    const peer = options.peer;
    socket.binaryType = "arraybuffer";
    // Listeners, not `on…` handlers: each handler property costs a wrapper
    // (and the socket a map of them) on every one of many idle sockets. No
    // `error` listener: a close event follows every error.
    socket.addEventListener("open", () => {
      const closed = this.closeInfo;
      if (closed) {
        // Closed (e.g. by SockJsServer.close) before the handshake ended.
        if (this.#framed) socket.send(encodeClose(closed.code, closed.reason));
        closeSocket(socket, closed);
        return;
      }
      if (this.#framed) {
        socket.send(OPEN_FRAME);
        this.#armHeartbeat();
      } else if (this.#batch) {
        socket.send(BATCH_ACCEPTED);
      }
      this.start(onSession);
    }, { once: true });
    socket.addEventListener("message", (event) => this.#receive(event.data));
    // The socket's one close listener tells the server too.
    socket.addEventListener("close", (event) => {
      this.host.socketClosed(peer);
      this.#stopHeartbeat();
      // Deno reports a dropped TCP connection with code 0.
      this.markClosed({
        code: event.code === 0 ? 1006 : event.code,
        reason: event.reason,
      });
    });
  }

  /**
   * Raw sockets without batches send at once: there is no framing to batch
   * into. Framed and batching ones queue the messages of one tick.
   */
  override send(message: string): boolean {
    if (this.#framed || this.#batch) return super.send(message);
    if (this.closed || !this.checkBacklog()) return false;
    if (this.#socket.readyState !== WebSocket.OPEN) return false;
    this.#socket.send(message);
    return true;
  }

  /**
   * A batching session that has read more than one frame in this turn of
   * the event loop flushes once the loop has run them all (`setImmediate`),
   * not at the end of the microtask: the replies to calls that came in
   * separate frames (sent before the client saw `[]`, or after replies
   * that came apart) then share a frame, and a client that gets them
   * together sends its next calls together. One frame per turn, what a
   * caller waiting for each reply sends, still gets its reply at once.
   */
  protected override scheduleFlush(flush: () => void): void {
    if (this.#framesThisTurn > 1) setImmediate(flush);
    else super.scheduleFlush(flush);
  }

  /** What the socket still holds for a peer that reads slowly or not at all. */
  protected override get unreadBytes(): number {
    return this.#socket.bufferedAmount;
  }

  /** Sends the queued messages, in frames a peer with our limits reads. */
  protected flush(): void {
    if (this.#socket.readyState !== WebSocket.OPEN) return this.clearQueue();
    if (this.#batch) {
      while (this.queue.length > 0) {
        const { frame, length } = takeBatch(this.queue);
        this.queuedLength -= length;
        this.#socket.send(frame);
      }
      return;
    }
    while (this.queue.length > 0) this.#socket.send(this.takeFrame());
  }

  /** Sends pending messages and `c[code,reason]`, then closes the socket. */
  protected closeLocally(info: CloseInfo): void {
    this.#stopHeartbeat();
    const socket = this.#socket;
    if (socket.readyState === WebSocket.OPEN) {
      if (this.queue.length > 0) this.flush();
      if (this.#framed) socket.send(encodeClose(info.code, info.reason));
      if (this.host.closing()) closeSocket(socket, info);
      else closeWhenWritten(socket, info);
    }
    this.markClosed(info);
  }

  #receive(data: unknown): void {
    if (this.closed) return;
    const text = typeof data === "string"
      ? data
      : decoder.decode(data as ArrayBuffer);
    if (this.#batch) {
      if (this.#framesThisTurn++ === 0) {
        setImmediate(this.#newTurn ??= () => this.#framesThisTurn = 0);
      }
      if (isBatch(text)) return this.#receiveBatch(text);
    }
    if (exceedsUtf8(text, this.host.maxMessageBytes)) {
      this.closeLocally(tooBig(this.host.maxMessageBytes));
      return;
    }
    if (!this.#framed) {
      this.deliver(text);
      return;
    }
    const messages = decodeClientFrame(text);
    if (!messages) {
      this.closeLocally(CLOSE_REASONS.brokenFraming);
      return;
    }
    for (let i = 0; i < messages.length && !this.closed; i++) {
      this.deliver(messages[i]);
    }
  }

  /**
   * A batch frame: within the frame and message limits, every element is
   * delivered as a message of its own frame would be, or none is and the
   * session closes (docs/protocol.md §1.8).
   */
  #receiveBatch(text: string): void {
    const limit = this.host.maxMessageBytes;
    const frameLimit = Math.max(limit, MAX_BATCH_FRAME_BYTES);
    if (exceedsUtf8(text, frameLimit)) {
      return this.closeLocally(tooBig(frameLimit));
    }
    const messages = splitBatch(text);
    if (!messages || messages.length === 0) {
      return this.closeLocally(BROKEN_BATCH);
    }
    if (exceedsUtf8(text, limit)) {
      for (const message of messages) {
        if (exceedsUtf8(message, limit)) {
          return this.closeLocally(tooBig(limit));
        }
      }
    }
    for (let i = 0; i < messages.length && !this.closed; i++) {
      this.deliver(messages[i]);
    }
  }

  /** Sends one `h` frame; false once the socket is no longer open. */
  beat(): boolean {
    if (this.#socket.readyState !== WebSocket.OPEN) return false;
    this.#socket.send(HEARTBEAT_FRAME);
    return true;
  }

  #armHeartbeat(): void {
    // Fixed period from the open; traffic does not move it (docs/protocol.md §1.3).
    if (this.host.heartbeatMs > 0) this.host.heartbeats.add(this);
  }

  #stopHeartbeat(): void {
    this.host.heartbeats.delete(this);
  }
}

/** The close reason for an oversized frame, naming the limit. */
export function tooBig(limit: number): CloseInfo {
  return {
    code: CLOSE_REASONS.tooBig.code,
    reason: `${CLOSE_REASONS.tooBig.reason}: limit is ${limit} bytes`,
  };
}

/** Longest wait between checks of a closed session's socket for unwritten data, ms. */
const DRAIN_CHECK_MAX_MS = 1_000;

/**
 * Closes `socket` once Deno has written all that was sent on it. Deno's
 * close queues its frame behind the writes still pending, and a peer that
 * reads nothing keeps them pending for ever: the socket then reports
 * itself closed at once, while its TCP connection, the kernel's buffers and
 * the unwritten data stay held, counted by no limit (a deaf flooder could
 * pile up such connections one after another). Until the writes are done
 * the socket stays open and counted against the connection caps; what the
 * peer sends meanwhile is read and ignored (the session is closed). A peer
 * that reads again gets its close frame; one that goes away frees it all.
 * Checks come at once (a close frame just sent is written within the next
 * turn of the event loop), then less and less often, down to once a second.
 */
export function closeWhenWritten(socket: WebSocket, info: CloseInfo): void {
  if (socket.bufferedAmount === 0) return closeSocket(socket, info);
  let wait = 0;
  const check = () => {
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount === 0) return closeSocket(socket, info);
    wait = Math.min(DRAIN_CHECK_MAX_MS, wait * 2 || 2);
    Deno.unrefTimer(setTimeout(check, wait));
  };
  Deno.unrefTimer(setTimeout(check, 0));
}

/**
 * Closes a WebSocket with the session's code when the WebSocket API allows
 * it (1000 or 3000–4999), and with the reason when it fits a close frame.
 */
function closeSocket(socket: WebSocket, info: CloseInfo): void {
  const code = info.code === 1000 || (info.code >= 3000 && info.code <= 4999)
    ? info.code
    : 1000;
  socket.close(code, exceedsUtf8(info.reason, 123) ? "" : info.reason);
}
