/**
 * The raw WebSocket client, kite.js's default (docs/protocol.md §1.7): the URL exactly
 * as given, one bare message per text frame both ways.
 *
 * @module
 */

import type {
  ClientSession,
  ClientTransportOptions,
} from "./client_session.ts";
import type { SessionHandler } from "../session.ts";
import { toWebSocketUrl } from "./sockjs_client_url.ts";
import {
  openWebSocketSession,
  type WebSocketFraming,
} from "./websocket_client_session.ts";

const identity = (text: string): string => text;

/** No framing: each text frame is one message. */
export const RAW_WEBSOCKET_FRAMING: WebSocketFraming = {
  transport: "raw-websocket",
  encode: identity,
  encodeJoined: (head, rest) => head + rest,
  decode: identity,
};

/**
 * Dials `url` (`http:` becomes `ws:`, `https:` becomes `wss:`) as a raw
 * WebSocket and resolves once it is open.
 *
 * @throws {Error} naming the URL and the cause when the dial fails.
 */
export function dialRawWebsocket(
  url: URL,
  handler: SessionHandler,
  options: ClientTransportOptions,
): Promise<ClientSession> {
  return openWebSocketSession(
    toWebSocketUrl(url),
    RAW_WEBSOCKET_FRAMING,
    handler,
    { ...options, id: crypto.randomUUID() },
  );
}
