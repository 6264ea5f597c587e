/**
 * What every client transport returns and takes: a {@linkcode Session} that
 * can say when its sockets and requests are released, and the dial settings
 * with defaults applied.
 *
 * @module
 */

import type { Session } from "../session.ts";

/** A session opened by a client transport. */
export interface ClientSession extends Session {
  /**
   * Settles once the session is closed and none of its sockets, requests or
   * timers are left running (`onClose` may come earlier).
   */
  readonly finished: Promise<void>;
}

/** What a WebSocket client transport needs of the runtime's socket. */
export interface TextSocket {
  /** Starts delivering; called once, right after the socket opened. */
  start(handler: {
    onText(text: string): void;
    onClose(code: number, reason: string): void;
  }): void;
  /** Queues one text frame; false when closed or past the send backlog. */
  send(text: string): boolean;
  /** Starts the closing handshake; `onClose` follows. */
  close(code?: number, reason?: string): void;
  /** Settles once the socket and its timers are released. */
  readonly finished: Promise<void>;
}

/** Settings a runtime's WebSocket connector gets. */
export interface TextSocketOptions {
  /** Handshake timeout, ms. */
  timeoutMs: number;
  /** Largest accepted incoming message, bytes. */
  maxMessageBytes: number;
  /** Outgoing bytes waiting, at most. */
  maxBufferedBytes: number;
  /** `Origin` header, where the runtime lets the caller set one. */
  origin?: string;
  /** Aborts the handshake. */
  signal?: AbortSignal;
}

/**
 * Opens a WebSocket on `url` and resolves once the handshake is done: the
 * runtime edge (Deno TCP, or a browser's `WebSocket`).
 */
export type ConnectTextSocket = (
  url: URL,
  options: TextSocketOptions,
) => Promise<TextSocket>;

/** Dial settings a client transport needs, every default applied. */
export interface ClientTransportOptions {
  /** Opens the WebSocket the websocket transports run on. */
  connectWebSocket: ConnectTextSocket;
  /** Handshake / XHR open timeout, ms. */
  timeoutMs: number;
  /** XHR: how long a poll may wait for its first byte, ms. */
  pollTimeoutMs: number;
  /** Largest accepted incoming frame, bytes. */
  maxMessageBytes: number;
  /** Outgoing bytes waiting for a server that does not read, at most. */
  maxBufferedBytes: number;
  /** Aborts the dial; once the session is open, closes it. */
  signal?: AbortSignal;
}
