/**
 * What every client transport returns and takes: a {@linkcode Session} that
 * can say when its sockets and requests are released, and the dial settings
 * with defaults applied.
 *
 * @module
 */

import type { Session } from "./session.ts";

/** A session opened by a client transport. */
export interface ClientSession extends Session {
  /**
   * Settles once the session is closed and none of its sockets, requests or
   * timers are left running (`onClose` may come earlier).
   */
  readonly finished: Promise<void>;
}

/** Dial settings a client transport needs, every default applied. */
export interface ClientTransportOptions {
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
