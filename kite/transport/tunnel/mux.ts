/**
 * Many streams over one text connection: the framing a tunnel proxy and
 * the kite behind it share on the kite's one outbound WebSocket (see
 * docs/proxy.md, "Tunnel proxy"). Each caller's session is one stream;
 * every message of it travels as one text frame:
 *
 * - `o<id> <transport> <remote address>` proxy → kite: a caller connected
 * - `m<id> <message>` either way: one whole message of the stream
 * - `c<id> <code> <reason>` either way: the stream ended
 * - `a<id> <n>` either way: the receiver took `n` more characters of the stream
 *
 * Besides these, the proxy sends `p` every `heartbeatMs` (its hello answer
 * says how often) so that the kite notices a proxy gone silent; the
 * connection handles it, not the mux.
 *
 * Flow control is per stream: a sender counts the characters the receiver
 * has not acknowledged yet; a stream holding more than `windowChars`
 * closes (code 4008), so one caller that floods, or reads nothing, loses
 * its own stream and nothing more. Knows nothing of dnode or of kites.
 *
 * @module
 */

import type { CloseInfo } from "../session.ts";

/** Options of a {@linkcode Mux}. */
export interface MuxOptions {
  /** Writes one frame on the shared connection; false once it is closed. */
  send(frame: string): boolean;
  /**
   * Unacknowledged characters one stream may have in flight toward the
   * peer before it closes with code 4008. @default {4194304}
   */
  windowChars?: number;
}

/** What arrives from the peer, stream by stream. */
export interface MuxHandler {
  /** The peer opened stream `id` (proxy → kite only); `close(id)` refuses it. */
  onOpen(id: number, transport: string, remoteAddr: string): void;
  /** One message of stream `id`. */
  onMessage(id: number, message: string): void;
  /** The peer closed stream `id`, or it ended here (backlog, tunnel gone). */
  onClose(id: number, info: CloseInfo): void;
}

/** Default flow-control window per stream, characters. */
export const DEFAULT_WINDOW_CHARS = 4 << 20;
/** Largest stream id either side accepts (ids are never reused before it). */
export const MAX_STREAM_ID = 2 ** 52;
/** The heartbeat frame a proxy sends on an idle tunnel. */
export const HEARTBEAT = "p";
/** The close of a stream whose tunnel went away. */
export const TUNNEL_GONE = 4010;

interface StreamState {
  /** Characters sent the peer has not acknowledged. */
  unacked: number;
  /** Characters received not acknowledged yet. */
  taken: number;
}

/**
 * Thrown by {@linkcode Mux.receive} for a frame that breaks the framing:
 * the peer is broken or hostile, and the whole connection should close.
 */
export class MuxProtocolError extends Error {
  override name = "MuxProtocolError";
}

/**
 * How a tunnel closes after {@linkcode Mux.receive} threw `err`: 1002 for a
 * frame that breaks the framing, 1011 for a failure of ours on the way.
 * Either way only that tunnel ends; nothing is thrown out of a listener.
 */
export function muxFailure(err: unknown): CloseInfo {
  if (err instanceof MuxProtocolError) {
    return { code: 1002, reason: err.message };
  }
  const why = err instanceof Error ? err.message : String(err);
  return { code: 1011, reason: `tunnel frame failed: ${why}` };
}

/** One side of a multiplexed connection. */
export class Mux {
  readonly #send: (frame: string) => boolean;
  readonly #window: number;
  readonly #ackEvery: number;
  readonly #streams = new Map<number, StreamState>();
  #handler: MuxHandler;

  /** Frames go out through `options.send`; what arrives goes to `handler`. */
  constructor(handler: MuxHandler, options: MuxOptions) {
    this.#handler = handler;
    this.#send = options.send;
    this.#window = options.windowChars ?? DEFAULT_WINDOW_CHARS;
    // Acknowledge in quarter windows: few frames, and the sender never
    // waits on an acknowledgement it needs to go on.
    this.#ackEvery = Math.max(1, this.#window >> 2);
  }

  /** Open streams. */
  get size(): number {
    return this.#streams.size;
  }

  /** True while stream `id` is open. */
  has(id: number): boolean {
    return this.#streams.has(id);
  }

  /** Opens stream `id` toward the peer (proxy side). */
  open(id: number, transport: string, remoteAddr: string): boolean {
    if (this.#streams.has(id)) return false;
    this.#streams.set(id, { unacked: 0, taken: 0 });
    return this.#send(`o${id} ${transport} ${remoteAddr}`);
  }

  /**
   * Sends one message of stream `id`. Never throws. False when the stream
   * is closed, or when its unacknowledged characters passed the window:
   * the stream is then closed (4008) on both sides and `onClose` has run.
   */
  message(id: number, message: string): boolean {
    const s = this.#streams.get(id);
    if (!s) return false;
    if (s.unacked > this.#window) {
      this.close(id, {
        code: 4008,
        reason:
          `tunnel stream backlog over ${this.#window} characters: the other side does not read`,
      });
      return false;
    }
    s.unacked += message.length;
    return this.#send(`m${id} ${message}`);
  }

  /** Closes stream `id` on both sides; `onClose` runs here. Safe twice. */
  close(id: number, info: CloseInfo): void {
    if (!this.#streams.delete(id)) return;
    this.#send(`c${id} ${info.code} ${info.reason}`);
    this.#handler.onClose(id, info);
  }

  /** Ends every stream here only (the shared connection is gone). */
  closeAll(info: CloseInfo): void {
    const ids = [...this.#streams.keys()];
    this.#streams.clear();
    for (const id of ids) this.#handler.onClose(id, info);
  }

  /**
   * Handles one frame from the peer. Frames of streams already closed here
   * are dropped (they crossed a close).
   * @throws {MuxProtocolError} for a frame that is not one of the four.
   */
  receive(frame: string): void {
    const space = frame.indexOf(" ");
    const id = space > 1 ? Number(frame.slice(1, space)) : NaN;
    if (!Number.isSafeInteger(id) || id <= 0 || id > MAX_STREAM_ID) {
      throw new MuxProtocolError(
        `bad tunnel frame: ${JSON.stringify(frame.slice(0, 40))}`,
      );
    }
    const kind = frame.charCodeAt(0);
    const s = this.#streams.get(id);
    switch (kind) {
      case 109: { // m
        if (!s) return;
        const message = frame.slice(space + 1);
        s.taken += message.length;
        if (s.taken >= this.#ackEvery) {
          this.#send(`a${id} ${s.taken}`);
          s.taken = 0;
        }
        this.#handler.onMessage(id, message);
        return;
      }
      case 97: { // a
        const n = Number(frame.slice(space + 1));
        if (!Number.isSafeInteger(n) || n < 0) {
          throw new MuxProtocolError(`bad acknowledgement on stream ${id}`);
        }
        if (s) s.unacked = Math.max(0, s.unacked - n);
        return;
      }
      case 99: { // c
        if (!s) return;
        this.#streams.delete(id);
        const rest = frame.slice(space + 1);
        const gap = rest.indexOf(" ");
        const code = Number(gap < 0 ? rest : rest.slice(0, gap));
        this.#handler.onClose(id, {
          code: Number.isInteger(code) ? code : 1006,
          reason: gap < 0 ? "" : rest.slice(gap + 1),
        });
        return;
      }
      case 111: { // o
        if (s) throw new MuxProtocolError(`stream ${id} opened twice`);
        // Open here before the handler runs: it may refuse with close().
        this.#streams.set(id, { unacked: 0, taken: 0 });
        const rest = frame.slice(space + 1);
        const gap = rest.indexOf(" ");
        this.#handler.onOpen(
          id,
          gap < 0 ? rest : rest.slice(0, gap),
          gap < 0 ? "" : rest.slice(gap + 1),
        );
        return;
      }
      default:
        throw new MuxProtocolError(
          `bad tunnel frame kind ${JSON.stringify(frame[0])}`,
        );
    }
  }
}
