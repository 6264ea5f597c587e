/**
 * Client transport names and `KITE_TRANSPORT` parsing, apart from the
 * dialers: configuration reads them, and `deno task kontrol`'s launcher
 * reads configuration without loading any client transport.
 *
 * @module
 */

/** Transports a client can dial with. */
export type ClientTransport = "websocket" | "raw-websocket" | "xhr-polling";

/**
 * Parses `KITE_TRANSPORT` values as Go does (`WebSocket`, `XHRPolling`,
 * `auto`; case-sensitive), plus `raw-websocket` and our own names. `auto`
 * means `websocket`: Go's fallback to XHR after a failed WebSocket
 * handshake is not done here.
 *
 * @throws {RangeError} for anything else.
 */
export function parseTransport(value: string): ClientTransport {
  switch (value) {
    case "WebSocket":
    case "websocket":
    case "auto":
      return "websocket";
    case "XHRPolling":
    case "xhr-polling":
      return "xhr-polling";
    case "RawWebSocket":
    case "raw-websocket":
      return "raw-websocket";
  }
  throw new RangeError(
    `unknown transport ${
      JSON.stringify(value)
    }: expected WebSocket, XHRPolling, auto or raw-websocket`,
  );
}
