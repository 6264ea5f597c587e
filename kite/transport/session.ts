/**
 * The seam between transports (SockJS, raw WebSocket, XHR) and the dnode
 * layer above them: a session carries whole messages (strings) both ways.
 *
 * @module
 */

/** Names of the transports a session can run on. */
export type TransportName =
  | "websocket"
  | "raw-websocket"
  | "xhr-polling"
  | "xhr-streaming"
  | "eventsource"
  | "htmlfile"
  | "jsonp-polling";

/** Why a session ended. */
export interface CloseInfo {
  /** SockJS / WebSocket close code, e.g. 3000 or 1006 for a dropped peer. */
  code: number;
  /** Human-readable reason. */
  reason: string;
}

/** What a transport delivers to the layer above it. */
export interface SessionHandler {
  /** One complete incoming message (for kites: one dnode JSON text). */
  onMessage(message: string): void;
  /** The session ended. Called exactly once. */
  onClose(info: CloseInfo): void;
}

/** One logical connection, whatever the transport underneath. */
export interface Session {
  /** The transport in use. */
  readonly transport: TransportName;
  /** Session id (SockJS session id, or a generated one for raw sockets). */
  readonly id: string;
  /** Remote address as `host:port`, or `""` when unknown. */
  readonly remoteAddr: string;
  /** True once closed by either side. */
  readonly closed: boolean;
  /** Why the session ended, once it has (what `onClose` got). */
  readonly closeInfo: CloseInfo | undefined;
  /**
   * Queues one message for sending. Never blocks and never throws: a send
   * is a peer's business, and a peer that stopped reading must not end the
   * caller (a timer, a listener, a reply). On a closed session it returns
   * false. When the message would pass the session's backlog limit the
   * session closes itself (code 4008, `onClose` runs before this returns)
   * and it returns false; `closeInfo` then says why.
   * @returns true when the message was queued.
   */
  send(message: string): boolean;
  /**
   * Optional: sends `head + rest`, where `head` starts many messages in a
   * row (a caller's method and identity). Transports that escape messages
   * escape the same `head` once, not with every message. Same contract as
   * {@linkcode Session.send}.
   */
  sendJoined?(head: string, rest: string): boolean;
  /** Closes the session; `onClose` follows. Safe to call twice. */
  close(code?: number, reason?: string): void;
}
