/**
 * What every server-side session shares, whatever carries it: the handler
 * plumbing, the outgoing queue that batches the messages of one tick, and
 * the close-once bookkeeping.
 *
 * @module
 */

import type { Clock } from "../../clock.ts";
import type {
  CloseInfo,
  Session,
  SessionHandler,
  TransportName,
} from "../session.ts";
import {
  backlogTooBig,
  CLOSE_REASONS,
  encodeMessages,
  utf8Length,
} from "../sockjs_frames.ts";

/** What a session needs from the server that owns it. */
export interface SessionHost {
  /** Source of timers. */
  readonly clock: Clock;
  /** `h` interval in ms; 0 turns heartbeats off. */
  readonly heartbeatMs: number;
  /** Runs the `h` heartbeats of every session on one timer. */
  readonly heartbeats: Heartbeats;
  /** Largest accepted incoming frame or body, in UTF-8 bytes. */
  readonly maxMessageBytes: number;
  /** Unread outgoing data (UTF-16 units queued plus socket buffer) past which the session closes. */
  readonly maxBufferedBytes: number;
  /** True once the server is shutting down: sockets then close at once. */
  closing(): boolean;
  /** Reports a failure of the layer above (a throwing handler). */
  onError(error: unknown, session: Session): void;
  /** The session ended; forget it. */
  ended(session: Session): void;
  /** The session delivered its first message (it is no longer idle). */
  heard(session: Session): void;
  /**
   * A WebSocket session's socket closed (after the session may have):
   * what it held of `peer`'s connections is free.
   */
  socketClosed(peer: string): void;
}

/** Base of the WebSocket and XHR sessions. */
export abstract class SockJsSession implements Session {
  /** The transport in use. */
  readonly transport: TransportName;
  /** Session id. */
  readonly id: string;
  /** Remote `host:port`, or `""`. */
  readonly remoteAddr: string;
  /** The owning server. */
  protected readonly host: SessionHost;
  /** Messages waiting for the next flush. */
  protected readonly queue: string[] = [];
  /** Total length of the queued messages. */
  protected queuedLength = 0;
  #handler: SessionHandler | undefined;
  #closeInfo: CloseInfo | undefined;
  #flushScheduled = false;
  #heard = false;

  /** Makes a session; {@linkcode SockJsSession.start} hands it out. */
  constructor(
    host: SessionHost,
    transport: TransportName,
    id: string,
    remoteAddr: string,
  ) {
    this.host = host;
    this.transport = transport;
    this.id = id;
    this.remoteAddr = remoteAddr;
  }

  /** True once closed by either side. */
  get closed(): boolean {
    return this.#closeInfo !== undefined;
  }

  /** Why the session ended, once it has. */
  get closeInfo(): CloseInfo | undefined {
    return this.#closeInfo;
  }

  /**
   * Queues one message; messages queued in one tick leave together (see
   * {@linkcode SockJsSession.takeFrame}). Never throws: false when the
   * session is closed, or when the peer has left more than
   * `maxBufferedBytes` unread (the session is then closed with code 4008
   * and its backlog dropped).
   */
  send(message: string): boolean {
    if (this.#closeInfo || !this.checkBacklog()) return false;
    this.queue.push(message);
    this.queuedLength += message.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      this.scheduleFlush(this.#flushTask);
    }
    return true;
  }

  /** Closes the session locally; the peer gets `c[code,reason]`. */
  close(
    code: number = CLOSE_REASONS.goAway.code,
    reason: string = CLOSE_REASONS.goAway.reason,
  ): void {
    if (this.#closeInfo) return;
    this.closeLocally({ code, reason });
  }

  /**
   * Asks the server's `onSession` for the handler. A handler that throws is
   * reported and the session is closed.
   */
  start(onSession: (session: Session) => SessionHandler): void {
    let handler: SessionHandler;
    try {
      handler = onSession(this);
    } catch (error) {
      this.host.onError(error, this);
      this.close();
      return;
    }
    this.#handler = handler;
    // The session may have been closed inside onSession.
    if (this.#closeInfo) this.#notifyClose(this.#closeInfo);
  }

  /** Runs `flush` once the tick's messages are queued: at the tick's end. */
  protected scheduleFlush(flush: () => void): void {
    queueMicrotask(flush);
  }

  /**
   * Bytes written but not yet taken by the peer, beyond the queue
   * (the WebSocket `bufferedAmount`); 0 for transports without one.
   */
  protected get unreadBytes(): number {
    return 0;
  }

  /** Empties the outgoing queue. */
  protected clearQueue(): void {
    this.queue.length = 0;
    this.queuedLength = 0;
  }

  /**
   * Closes the session when its peer stopped reading: a client that never
   * reads must not grow server memory without bound. Checked before each
   * send, so one message bigger than the limit still goes out.
   * @returns false when the limit was passed (the session is then closed).
   */
  protected checkBacklog(): boolean {
    const limit = this.host.maxBufferedBytes;
    const backlog = this.queuedLength + this.unreadBytes;
    if (backlog <= limit) return true;
    // The backlog is what the limit protects: drop it rather than flush it.
    this.clearQueue();
    const info = backlogTooBig(limit);
    this.close(info.code, info.reason);
    return false;
  }

  /**
   * Takes the next `a[...]` frame off the queue: every queued message when
   * they fit in `maxMessageBytes` (the usual case, decided without
   * encoding), else as many as fit, and at least one. A frame is then never
   * larger than what a peer with our limits accepts, unless one message
   * alone is (docs/protocol.md §1.3: a frame may carry any number of messages).
   */
  protected takeFrame(): string {
    const queue = this.queue;
    const limit = this.host.maxMessageBytes;
    // JSON escaping turns one UTF-16 unit into at most 6 bytes.
    if (this.queuedLength * 6 + queue.length * 3 + 3 <= limit) {
      const frame = encodeMessages(queue);
      this.clearQueue();
      return frame;
    }
    let bytes = 3; // a[ ]
    let n = 0;
    let length = 0;
    const parts: string[] = [];
    for (; n < queue.length; n++) {
      const part = JSON.stringify(queue[n]);
      const size = utf8Length(part) + 1; // and its comma
      if (n > 0 && bytes + size > limit) break;
      bytes += size;
      length += queue[n].length;
      parts.push(part);
    }
    queue.splice(0, n);
    this.queuedLength -= length;
    return "a[" + parts.join(",") + "]";
  }

  /** Writes the queued messages out, if a receiver can take them. */
  protected abstract flush(): void;

  /** Closes from this side: send what can still be sent, then the close. */
  protected abstract closeLocally(info: CloseInfo): void;

  /** Hands one incoming message to the handler. */
  protected deliver(message: string): void {
    const handler = this.#handler;
    if (!handler || this.#closeInfo) return;
    if (!this.#heard) {
      this.#heard = true;
      this.host.heard(this);
    }
    try {
      handler.onMessage(message);
    } catch (error) {
      this.host.onError(error, this);
    }
  }

  /**
   * Marks the session closed and tells the handler and the server, once.
   * @returns false when it was already closed.
   */
  protected markClosed(info: CloseInfo): boolean {
    if (this.#closeInfo) return false;
    this.#closeInfo = info;
    this.host.ended(this);
    if (this.#handler) this.#notifyClose(info);
    return true;
  }

  #notifyClose(info: CloseInfo): void {
    try {
      this.#handler?.onClose(info);
    } catch (error) {
      this.host.onError(error, this);
    }
  }

  #flushTask = (): void => {
    this.#flushScheduled = false;
    if (this.queue.length > 0) this.flush();
  };
}

/** A member of {@linkcode Heartbeats}. */
export interface Beating {
  /** Sends one heartbeat; false when the member is gone for good. */
  beat(): boolean;
}

/**
 * Beats each member every `periodMs`, counted from when it joined (and then
 * from its previous beat), on one shared timer instead of one per session.
 */
export class Heartbeats {
  readonly #clock: Clock;
  readonly #periodMs: number;
  /** Members with their next beat time, earliest first. */
  readonly #due = new Map<Beating, number>();
  #timer: number | undefined;
  #timerAt = Infinity;

  /** An empty group; `periodMs` must be positive. */
  constructor(clock: Clock, periodMs: number) {
    this.#clock = clock;
    this.#periodMs = periodMs;
  }

  /** Number of members. */
  get size(): number {
    return this.#due.size;
  }

  /** Adds a member, first beat one period from now. */
  add(member: Beating): void {
    this.#due.delete(member);
    this.#due.set(member, this.#clock.now() + this.#periodMs);
    this.#arm();
  }

  /** Removes a member; no further beats. */
  delete(member: Beating): void {
    if (!this.#due.delete(member) || this.#due.size > 0) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #arm(): void {
    const first = this.#due.values().next();
    if (first.done) return;
    const at = first.value;
    if (this.#timer !== undefined) {
      if (this.#timerAt <= at) return;
      this.#clock.clearTimeout(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(
      this.#fire,
      Math.max(0, at - this.#clock.now()),
    );
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    // Members beaten here go to the end, due a period later: the loop stops
    // before reaching them again.
    for (const [member, at] of this.#due) {
      if (at > now) break;
      this.#due.delete(member);
      if (member.beat()) this.#due.set(member, now + this.#periodMs);
    }
    this.#arm();
  };
}
