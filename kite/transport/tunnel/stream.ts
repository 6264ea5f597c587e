/**
 * One caller's session as the kite behind a tunnel sees it: a
 * {@linkcode Session} whose messages travel as one stream of the tunnel's
 * {@linkcode Mux}. The kite serves it like any accepted session.
 *
 * @module
 */

import type {
  CloseInfo,
  Session,
  SessionHandler,
  TransportName,
} from "../session.ts";
import type { Mux } from "./mux.ts";

const TRANSPORTS: ReadonlySet<string> = new Set<TransportName>([
  "websocket",
  "raw-websocket",
  "xhr-polling",
  "xhr-streaming",
  "eventsource",
  "jsonp-polling",
]);

/** A stream of a tunnel, served as an accepted session. */
export class TunnelStream implements Session {
  readonly transport: TransportName;
  readonly id: string;
  readonly remoteAddr: string;
  readonly #mux: Mux;
  readonly #stream: number;
  #handler: SessionHandler | undefined;
  #closeInfo: CloseInfo | undefined;

  /** Stream `stream` of `mux`, opened by a caller on `transport` from `remoteAddr`. */
  constructor(mux: Mux, stream: number, transport: string, remoteAddr: string) {
    this.#mux = mux;
    this.#stream = stream;
    // The caller's transport at the proxy, when it names one.
    this.transport = TRANSPORTS.has(transport)
      ? transport as TransportName
      : "websocket";
    this.id = `tunnel-${stream}`;
    this.remoteAddr = remoteAddr.slice(0, 64);
  }

  /** Starts delivering to `handler`. */
  start(handler: SessionHandler): void {
    this.#handler = handler;
  }

  get closed(): boolean {
    return this.#closeInfo !== undefined;
  }

  get closeInfo(): CloseInfo | undefined {
    return this.#closeInfo;
  }

  /** Never throws; over the stream's window the stream closes (4008). */
  send(message: string): boolean {
    if (this.#closeInfo) return false;
    return this.#mux.message(this.#stream, message);
  }

  close(code = 3000, reason = "Go away!"): void {
    if (this.#closeInfo) return;
    this.#mux.close(this.#stream, { code, reason });
  }

  /** @internal A message of the stream arrived. */
  deliver(message: string): void {
    if (!this.#closeInfo) this.#handler?.onMessage(message);
  }

  /** @internal The stream ended (either side, or the tunnel). Once. */
  ended(info: CloseInfo): void {
    if (this.#closeInfo) return;
    this.#closeInfo = info;
    this.#handler?.onClose(info);
  }
}
