/**
 * A {@linkcode ClientSession} over a runtime's {@linkcode TextSocket}; the SockJS
 * and raw WebSocket clients differ only in their {@linkcode WebSocketFraming}.
 *
 * @module
 */

import type {
  ClientSession,
  ClientTransportOptions,
  TextSocket,
} from "./client_session.ts";
import { describeError, dialError } from "./dial_error.ts";
import type { CloseInfo, SessionHandler } from "../session.ts";
import { takeBatch } from "../batch_frames.ts";
import { backlogTooBig } from "../sockjs_frames.ts";
import type { EscapedHead } from "./sockjs_client_frames.ts";
import { hostPort } from "./sockjs_client_url.ts";

/** How one kind of WebSocket client puts messages into text frames. */
export interface WebSocketFraming {
  /** The transport name sessions report. */
  readonly transport: "websocket" | "raw-websocket";
  /** The text frame that carries one outgoing message. */
  encode(message: string): string;
  /**
   * The frame of `head + rest` (see `Session.sendJoined`); `memo` is the
   * session's own, kept between calls.
   */
  encodeJoined(head: string, rest: string, memo: EscapedHead): string;
  /**
   * What one incoming text frame means: one message, messages in order,
   * nothing (`undefined`), or how the session ends.
   */
  decode(frame: string): string | string[] | CloseInfo | undefined;
  /**
   * The dial offered batches (docs/protocol.md §1.8): once the server has
   * sent an array frame (its first is `[]`), the messages sent in one tick
   * leave in one frame.
   */
  readonly batches?: boolean;
}

/** What {@linkcode openWebSocketSession} needs besides the framing. */
export interface WebSocketSessionOptions extends ClientTransportOptions {
  /** Session id to report. */
  id: string;
  /** `Origin` header for the handshake. */
  origin?: string;
}

/** Close code for a message handler that threw. */
const INTERNAL_ERROR = 1011;

/**
 * Opens a WebSocket on `url` and resolves with a session as soon as the
 * handshake is done: the Go client does not wait for the SockJS `o` (docs/protocol.md §1.3).
 *
 * @throws {Error} naming `url` and the cause when the dial fails, times out
 * or is aborted.
 */
export async function openWebSocketSession(
  url: URL,
  framing: WebSocketFraming,
  handler: SessionHandler,
  options: WebSocketSessionOptions,
): Promise<ClientSession> {
  const { signal } = options;
  if (signal?.aborted) throw dialError(url.href, "aborted");
  let socket: TextSocket;
  try {
    socket = await options.connectWebSocket(url, {
      timeoutMs: options.timeoutMs,
      maxMessageBytes: options.maxMessageBytes,
      maxBufferedBytes: options.maxBufferedBytes,
      origin: options.origin,
      signal,
    });
  } catch (error) {
    throw dialError(url.href, error);
  }
  return new WebSocketClientSession(url, socket, framing, handler, options);
}

class WebSocketClientSession implements ClientSession {
  readonly transport: "websocket" | "raw-websocket";
  readonly id: string;
  readonly remoteAddr: string;
  readonly #socket: TextSocket;
  readonly #framing: WebSocketFraming;
  readonly #handler: SessionHandler;
  readonly #head: EscapedHead = { head: "", escaped: "" };
  readonly #signal: AbortSignal | undefined;
  readonly #maxBuffered: number;
  /** The server accepted batches: sends wait in `#pending` for the tick's end. */
  #batching = false;
  readonly #pending: string[] = [];
  #pendingLength = 0;
  #flushScheduled = false;
  /** Set once the session is ending: what `onClose` reports. */
  #ending: CloseInfo | undefined;
  #reported = false;
  #reportedInfo: CloseInfo | undefined;
  readonly #onAbort = () => this.close(1000, "aborted by signal");

  constructor(
    url: URL,
    socket: TextSocket,
    framing: WebSocketFraming,
    handler: SessionHandler,
    options: WebSocketSessionOptions,
  ) {
    this.transport = framing.transport;
    this.id = options.id;
    this.remoteAddr = hostPort(url);
    this.#socket = socket;
    this.#framing = framing;
    this.#handler = handler;
    this.#signal = options.signal;
    this.#maxBuffered = options.maxBufferedBytes;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    socket.start({
      onText: (text) => this.#receive(text),
      onClose: (code, reason) =>
        this.#report(
          this.#ending ??
            { code, reason: reason || "connection closed by peer" },
        ),
    });
  }

  get closed(): boolean {
    return this.#ending !== undefined || this.#reported;
  }

  get finished(): Promise<void> {
    return this.#socket.finished;
  }

  get closeInfo(): CloseInfo | undefined {
    return this.#ending ?? this.#reportedInfo;
  }

  send(message: string): boolean {
    if (this.closed) return false;
    if (this.#batching) return this.#queue(message);
    return this.#socket.send(this.#framing.encode(message));
  }

  sendJoined(head: string, rest: string): boolean {
    if (this.closed) return false;
    if (this.#batching) return this.#queue(head + rest);
    return this.#socket.send(
      this.#framing.encodeJoined(head, rest, this.#head),
    );
  }

  close(code = 1000, reason = "closed by client"): void {
    this.#end({ code, reason });
  }

  /** Queues a message for the tick's batch frame. */
  #queue(message: string): boolean {
    // The socket checks its own backlog; this bounds what one tick queues.
    if (this.#pendingLength + message.length > this.#maxBuffered) {
      this.#pending.length = 0;
      this.#pendingLength = 0;
      this.#end(backlogTooBig(this.#maxBuffered));
      return false;
    }
    this.#pending.push(message);
    this.#pendingLength += message.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(this.#flushTask);
    }
    return true;
  }

  readonly #flushTask = (): void => {
    this.#flushScheduled = false;
    if (!this.closed) this.#flush();
  };

  #flush(): void {
    const pending = this.#pending;
    while (pending.length > 0) {
      const { frame, length } = takeBatch(pending);
      this.#pendingLength -= length;
      if (!this.#socket.send(frame)) break;
    }
    pending.length = 0;
    this.#pendingLength = 0;
  }

  /** Closes the socket; `onClose` reports `info` before this returns. */
  #end(info: CloseInfo): void {
    if (this.closed) return;
    // What this side sent before closing still goes, as without batches.
    if (this.#pending.length > 0) this.#flush();
    this.#ending = info;
    // Only 1000 and 3000–4999 are for applications to send (RFC 6455 §7.4).
    const sendable = info.code === 1000 ||
      (info.code >= 3000 && info.code <= 4999);
    this.#socket.close(sendable ? info.code : 1000, info.reason);
    this.#report(info);
  }

  #report(info: CloseInfo): void {
    if (this.#reported) return;
    this.#reported = true;
    this.#reportedInfo = info;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    this.#handler.onClose(info);
  }

  #receive(text: string): void {
    if (this.closed) return;
    const got = this.#framing.decode(text);
    if (typeof got === "string") {
      this.#deliver(got);
    } else if (Array.isArray(got)) {
      if (this.#framing.batches) this.#batching = true;
      for (let i = 0; i < got.length && this.#deliver(got[i]); i++);
    } else if (got !== undefined) {
      this.#end(got);
    }
  }

  /** Hands one message up; false once the session takes no more. */
  #deliver(message: string): boolean {
    if (this.closed) return false;
    try {
      this.#handler.onMessage(message);
    } catch (error) {
      this.#end({
        code: INTERNAL_ERROR,
        reason: `message handler failed: ${describeError(error)}`,
      });
      return false;
    }
    return true;
  }
}
