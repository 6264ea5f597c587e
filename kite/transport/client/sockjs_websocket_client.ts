/**
 * The SockJS WebSocket client, as the Go client dials (docs/protocol.md §1.5): straight
 * to `{kite url}/{server}/{session}/websocket`, with no `/info` request.
 *
 * @module
 */

import type {
  ClientSession,
  ClientTransportOptions,
} from "./client_session.ts";
import type { SessionHandler } from "../session.ts";
import {
  encodeClientMessage,
  encodeJoinedClientMessage,
  readServerFrame,
} from "./sockjs_client_frames.ts";
import {
  randomServerId,
  randomSessionId,
  sockjsWebsocketUrl,
} from "./sockjs_client_url.ts";
import {
  openWebSocketSession,
  type WebSocketFraming,
} from "./websocket_client_session.ts";

/** SockJS framing over WebSocket: `["msg"]` out; `o`, `h`, `a`, `m`, `c` in. */
export const SOCKJS_WEBSOCKET_FRAMING: WebSocketFraming = {
  transport: "websocket",
  encode: encodeClientMessage,
  encodeJoined: encodeJoinedClientMessage,
  decode: readServerFrame,
};

/**
 * Dials a kite URL such as `http://127.0.0.1:3636/kite` over SockJS
 * WebSocket and resolves once the socket is open.
 *
 * @throws {Error} naming the URL and the cause when the dial fails.
 */
export function dialSockjsWebsocket(
  kiteUrl: URL,
  handler: SessionHandler,
  options: ClientTransportOptions,
): Promise<ClientSession> {
  const id = randomSessionId();
  const url = sockjsWebsocketUrl(kiteUrl, randomServerId(), id);
  return openWebSocketSession(url, SOCKJS_WEBSOCKET_FRAMING, handler, {
    ...options,
    id,
    // Go clients send `Origin: <scheme>://<host>` (docs/protocol.md §1.5 step 5).
    origin: `${kiteUrl.protocol}//${kiteUrl.host}`,
  });
}
