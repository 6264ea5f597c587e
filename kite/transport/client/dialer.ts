/**
 * Dialing a kite, whatever the runtime: picks the client transport —
 * SockJS WebSocket (what Go clients use), raw WebSocket (kite.js's default)
 * or xhr-polling (Go's `XHRPolling`) — docs/protocol.md §1.5–§1.7. The
 * runtime's WebSocket comes in as a {@linkcode ConnectTextSocket}: `dial.ts`
 * gives Deno's, `kite/browser/` the browser's. Nothing here touches `Deno`.
 *
 * @module
 */

import type {
  ClientSession,
  ClientTransportOptions,
  ConnectTextSocket,
} from "./client_session.ts";
import { dialRawWebsocket } from "./raw_websocket_client.ts";
import type { SessionHandler } from "../session.ts";
import { dialSockjsWebsocket } from "./sockjs_websocket_client.ts";
import { dialXhrPolling } from "./xhr_polling_client.ts";
import type { ClientTransport } from "./transport_name.ts";

export type { ClientSession } from "./client_session.ts";

export { type ClientTransport, parseTransport } from "./transport_name.ts";

/** Options for {@linkcode dial}. */
export interface DialOptions {
  /** The transport. @default {"websocket"} */
  transport?: ClientTransport;
  /**
   * Handshake / XHR open timeout, ms (docs/protocol.md §1.4 `Config.Timeout`).
   * @default {15000}
   */
  timeoutMs?: number;
  /**
   * XHR: how long a poll may wait for its first byte before it is dropped
   * and sent again, ms. Keep it above the server's heartbeat (10 s on Go
   * kites). @default {15000}
   */
  pollTimeoutMs?: number;
  /** Largest accepted incoming frame, bytes. @default {1048576} */
  maxMessageBytes?: number;
  /**
   * Outgoing bytes waiting for a server that does not read; a send past it
   * closes the session with code 4008. @default {16777216}
   */
  maxBufferedBytes?: number;
  /** Aborts the dial; once the session is open, aborting closes it. */
  signal?: AbortSignal;
}

/** The transport Go clients use. */
export const DEFAULT_TRANSPORT: ClientTransport = "websocket";
/** Go's `Config.Timeout` (docs/protocol.md §1.4). */
export const DEFAULT_TIMEOUT_MS = 15_000;
/** Go waits `Config.Timeout` for a poll's first byte (docs/protocol.md §1.4). */
export const DEFAULT_POLL_TIMEOUT_MS = 15_000;
/** 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES: number = 1 << 20;
/** 16 MiB, as a serving kite allows its peers. */
export const DEFAULT_MAX_BUFFERED_BYTES: number = 16 << 20;

/** Dials a kite URL and resolves once the session can send (see `dial`). */
export type Dial = (
  url: string,
  handler: SessionHandler,
  options?: DialOptions,
) => Promise<ClientSession>;

/** A {@linkcode Dial} whose WebSocket transports run on `connectWebSocket`. */
export function makeDial(connectWebSocket: ConnectTextSocket): Dial {
  return (url, handler, options = {}) => {
    try {
      const target = kiteUrl(url);
      const settings = transportOptions(options, connectWebSocket);
      const transport = options.transport ?? DEFAULT_TRANSPORT;
      switch (transport) {
        case "websocket":
          return dialSockjsWebsocket(target, handler, settings);
        case "raw-websocket":
          return dialRawWebsocket(target, handler, settings);
        case "xhr-polling":
          return dialXhrPolling(target, handler, settings);
      }
      throw new RangeError(
        `unknown transport ${
          JSON.stringify(transport)
        }: expected websocket, raw-websocket or xhr-polling`,
      );
    } catch (error) {
      return Promise.reject(error);
    }
  };
}

const SCHEMES = new Set(["http:", "https:", "ws:", "wss:"]);

function kiteUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(
      `invalid kite URL ${
        JSON.stringify(url)
      }: expected e.g. http://127.0.0.1:3636/kite`,
    );
  }
  if (!SCHEMES.has(parsed.protocol)) {
    throw new TypeError(
      `unsupported scheme in kite URL ${
        JSON.stringify(url)
      }: expected http, https, ws or wss`,
    );
  }
  return parsed;
}

function transportOptions(
  options: DialOptions,
  connectWebSocket: ConnectTextSocket,
): ClientTransportOptions {
  return {
    connectWebSocket,
    timeoutMs: positive("timeoutMs", options.timeoutMs, DEFAULT_TIMEOUT_MS),
    pollTimeoutMs: positive(
      "pollTimeoutMs",
      options.pollTimeoutMs,
      DEFAULT_POLL_TIMEOUT_MS,
    ),
    maxMessageBytes: positive(
      "maxMessageBytes",
      options.maxMessageBytes,
      DEFAULT_MAX_MESSAGE_BYTES,
    ),
    maxBufferedBytes: positive(
      "maxBufferedBytes",
      options.maxBufferedBytes,
      DEFAULT_MAX_BUFFERED_BYTES,
    ),
    signal: options.signal,
  };
}

function positive(name: string, value: number | undefined, fallback: number) {
  if (value === undefined) return fallback;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
  return value;
}
