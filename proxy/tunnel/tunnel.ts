/**
 * One kite's tunnel at the proxy: the kite's WebSocket, the streams over
 * it, and the SockJS endpoint callers reach at `/<kite id>/kite`. Each
 * caller's session is one stream; what one caller does costs only its own
 * stream (its window, its message size, its session's backlog).
 *
 * @module
 */

import type { KiteConfig } from "../../kite/config.ts";
import type { Logger } from "../../kite/log.ts";
import type { KiteIdentity } from "../../kite/protocol.ts";
import { SockJsServer } from "../../kite/transport/server/sockjs_server.ts";
import { utf8Length } from "../../kite/transport/sockjs_frames.ts";
import type {
  CloseInfo,
  Session,
  SessionHandler,
} from "../../kite/transport/session.ts";
import {
  HEARTBEAT,
  Mux,
  muxFailure,
  TUNNEL_GONE,
} from "../../kite/transport/tunnel/mux.ts";

/** Limits of one tunnel. */
export interface TunnelLimits {
  /** Caller sessions one tunnel carries at once; more get `503`. */
  maxStreams: number;
  /** Unacknowledged characters per stream and direction. */
  windowChars: number;
  /** Largest frame the kite may send (one message of a stream). */
  maxFrameChars: number;
  /** Bytes the kite's socket may leave unread before the tunnel closes. */
  maxBufferedBytes: number;
}

/** What a tunnel tells its proxy: metrics, and callers over all tunnels. */
export interface TunnelCounters {
  streamOpened(): void;
  bytes(direction: "to_kite" | "to_caller", n: number): void;
  /**
   * A caller's session opened (`host:port`); the reason to close it when
   * its address holds too many over the whole proxy, else undefined.
   */
  admit(remoteAddr: string): string | undefined;
  /** A session `admit` took ended. */
  release(remoteAddr: string): void;
}

/** A kite's tunnel: its socket, its streams, its callers' endpoint. */
export class Tunnel {
  readonly kite: KiteIdentity;
  readonly #socket: WebSocket;
  readonly #mux: Mux;
  readonly #callers: SockJsServer;
  readonly #sessions = new Map<number, Session>();
  readonly #limits: TunnelLimits;
  readonly #counters: TunnelCounters;
  readonly #logger: Logger;
  #next = 0;
  #closed = false;
  readonly #ended = Promise.withResolvers<void>();

  /** Serves `kite`'s callers over `socket` (open, hello answered). */
  constructor(
    kite: KiteIdentity,
    socket: WebSocket,
    config: KiteConfig,
    limits: TunnelLimits,
    counters: TunnelCounters,
    logger: Logger,
  ) {
    this.kite = kite;
    this.#socket = socket;
    this.#limits = limits;
    this.#counters = counters;
    this.#logger = logger;
    this.#mux = new Mux({
      onOpen: (id) => this.#mux.close(id, { code: 1002, reason: "not here" }),
      onMessage: (id, message) => {
        counters.bytes("to_caller", utf8Length(message));
        // A session over its backlog closes itself; its onClose ends the stream.
        this.#sessions.get(id)?.send(message);
      },
      onClose: (id, info) => {
        const session = this.#sessions.get(id);
        this.#sessions.delete(id);
        session?.close(info.code, info.reason);
      },
    }, { send: (frame) => this.#send(frame), windowChars: limits.windowChars });
    this.#callers = new SockJsServer({
      prefix: `/${kite.id}/kite`,
      heartbeatMs: config.sockjsHeartbeatMs,
      disconnectDelayMs: config.sockjsDisconnectDelayMs,
      maxMessageBytes: config.maxMessageBytes,
      maxSessions: Math.min(config.maxXhrSessions, limits.maxStreams),
      maxConnections: limits.maxStreams,
      maxBufferedBytes: config.maxBufferedBytes,
      maxConnectionsPerAddress: config.maxConnectionsPerAddress,
      maxXhrSessionsPerAddress: config.maxXhrSessionsPerAddress,
      idleSessionMs: config.idleSessionMs,
      bodyTimeoutMs: config.timeoutMs,
      onSession: (session) => this.#accept(session),
      onError: (err) => logger.error(`tunnel ${kite.id}: ${err}`),
    });
    socket.onmessage = (event) => this.#receive(event.data);
    socket.onclose = (event) =>
      this.#gone(`the kite's tunnel closed (${event.code} ${event.reason})`);
  }

  /** Caller sessions open. */
  get streams(): number {
    return this.#sessions.size;
  }

  /** Resolves once the tunnel is closed. */
  get ended(): Promise<void> {
    return this.#ended.promise;
  }

  /** Answers a caller's request under `/<kite id>/kite`. */
  handle(
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> | Response | undefined {
    return this.#callers.handle(request, info);
  }

  /** Sends a heartbeat (the kite closes a tunnel silent for three). */
  beat(): void {
    this.#send(HEARTBEAT);
  }

  /** Closes the tunnel and every caller's session with `reason`. */
  close(code: number, reason: string): void {
    if (this.#socket.readyState === WebSocket.OPEN) {
      this.#socket.close(code, reason.slice(0, 120));
    }
    this.#gone(reason);
  }

  #accept(session: Session): SessionHandler {
    const id = ++this.#next;
    if (this.#closed) {
      queueMicrotask(() =>
        session.close(TUNNEL_GONE, "the kite's tunnel closed")
      );
      return { onMessage: () => {}, onClose: () => {} };
    }
    const refused = this.#counters.admit(session.remoteAddr);
    if (refused) {
      queueMicrotask(() => session.close(4503, refused));
      return { onMessage: () => {}, onClose: () => {} };
    }
    this.#sessions.set(id, session);
    this.#counters.streamOpened();
    this.#mux.open(id, session.transport, session.remoteAddr);
    return {
      onMessage: (message) => {
        this.#counters.bytes("to_kite", utf8Length(message));
        // Past its window the stream closes both ways (and this session).
        this.#mux.message(id, message);
      },
      onClose: (info: CloseInfo) => {
        this.#sessions.delete(id);
        this.#counters.release(session.remoteAddr);
        this.#mux.close(id, info);
      },
    };
  }

  #send(frame: string): boolean {
    const socket = this.#socket;
    if (this.#closed || socket.readyState !== WebSocket.OPEN) return false;
    if (socket.bufferedAmount > this.#limits.maxBufferedBytes) {
      this.close(
        4008,
        `the kite left over ${this.#limits.maxBufferedBytes} bytes of its tunnel unread`,
      );
      return false;
    }
    socket.send(frame);
    return true;
  }

  #receive(data: unknown): void {
    if (this.#closed) return;
    if (typeof data !== "string") {
      return this.close(1003, "tunnel frames are text");
    }
    if (data.length > this.#limits.maxFrameChars) {
      return this.close(
        1009,
        `tunnel frame over ${this.#limits.maxFrameChars} characters`,
      );
    }
    try {
      this.#mux.receive(data);
    } catch (err) {
      const { code, reason } = muxFailure(err);
      this.#logger.warning(`tunnel ${this.kite.id}: ${reason}`);
      this.close(code, reason);
    }
  }

  #gone(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    // Each caller's session closes saying why (onClose above), then the rest.
    this.#mux.closeAll({
      code: TUNNEL_GONE,
      reason: `${reason}; the kite dials its tunnel again, call again later`,
    });
    this.#callers.close();
    this.#ended.resolve();
  }
}
