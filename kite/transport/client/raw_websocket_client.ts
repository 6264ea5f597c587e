/**
 * The raw WebSocket client, kite.js's default (docs/protocol.md §1.7): the URL
 * as given, one bare message per text frame both ways; and, with a kite of
 * ours, batch frames (docs/protocol.md §1.8).
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
  BROKEN_BATCH,
  isBatch,
  offerBatch,
  splitBatch,
} from "../batch_frames.ts";
import {
  openWebSocketSession,
  type WebSocketFraming,
} from "./websocket_client_session.ts";

const identity = (text: string): string => text;

/**
 * No framing: each text frame is one message (an object), or a batch of
 * them (an array), which only a server that accepted our offer sends.
 */
export const RAW_WEBSOCKET_FRAMING: WebSocketFraming = {
  transport: "raw-websocket",
  encode: identity,
  encodeJoined: (head, rest) => head + rest,
  decode: (frame) => isBatch(frame) ? splitBatch(frame) ?? BROKEN_BATCH : frame,
  batches: true,
};

/**
 * Dials `url` (`http:` becomes `ws:`, `https:` becomes `wss:`) as a raw
 * WebSocket, offering batches (`?kite-batch=1`, which kite.js and Go
 * servers ignore), and resolves once it is open.
 *
 * @throws {Error} naming the URL and the cause when the dial fails.
 */
export function dialRawWebsocket(
  url: URL,
  handler: SessionHandler,
  options: ClientTransportOptions,
): Promise<ClientSession> {
  return openWebSocketSession(
    offerBatch(toWebSocketUrl(url)),
    RAW_WEBSOCKET_FRAMING,
    handler,
    { ...options, id: crypto.randomUUID() },
  );
}
