/**
 * Dialing a kite from Deno: {@linkcode makeDial} with the WebSocket client
 * on `Deno.connect` (docs/protocol.md §1.5–§1.7). The browser build uses
 * `dialer.ts` with the browser's `WebSocket` instead.
 *
 * @module
 */

import { type Dial, makeDial } from "../client/dialer.ts";
import { TcpWebSocket } from "./deno_websocket.ts";

export type { ClientSession } from "../client/client_session.ts";
export {
  type ClientTransport,
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_POLL_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_TRANSPORT,
  type Dial,
  type DialOptions,
  parseTransport,
} from "../client/dialer.ts";

/**
 * Dials a kite URL such as `http://127.0.0.1:3636/kite` and resolves once
 * the session can send.
 *
 * @example
 * ```ts ignore
 * const session = await dial("http://127.0.0.1:3636/kite", {
 *   onMessage: (message) => console.log(message),
 *   onClose: ({ code, reason }) => console.log("closed", code, reason),
 * });
 * session.send('{"method":"kite.ping","arguments":[],"callbacks":{}}');
 * ```
 *
 * @throws {TypeError} for a URL that does not parse or is not http(s)/ws(s).
 * @throws {RangeError} for an unknown transport or a bad number option.
 * @throws {Error} naming the URL and the cause when the dial fails
 * (refused, bad handshake, timeout, aborted).
 */
export const dial: Dial = makeDial((url, options) =>
  TcpWebSocket.connect(url, options)
);
