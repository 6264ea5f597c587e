/**
 * The browser's edge for the WebSocket client transports: a
 * {@linkcode ConnectTextSocket} on the page's `WebSocket`. The browser
 * does the handshake, masking and `Origin`; framing and sessions stay in
 * `kite/transport/`, shared with Deno.
 *
 * @module
 */

import type {
  ConnectTextSocket,
  TextSocket,
  TextSocketOptions,
} from "../client/client_session.ts";

/** What the page's `WebSocket` constructor must look like. */
export type WebSocketConstructor = new (url: string) => WebSocket;

/** A {@linkcode ConnectTextSocket} on `WebSocket` (the page's by default). */
export function browserWebSocket(
  ctor: WebSocketConstructor = globalThis.WebSocket,
): ConnectTextSocket {
  return (url, options) => open(ctor, url, options);
}

function open(
  ctor: WebSocketConstructor,
  url: URL,
  options: TextSocketOptions,
): Promise<TextSocket> {
  const { promise, resolve, reject } = Promise.withResolvers<TextSocket>();
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(new Error("aborted"));
  let ws: WebSocket;
  try {
    ws = new ctor(url.href);
  } catch (error) {
    return Promise.reject(error);
  }
  const fail = (why: string) => {
    done();
    ws.close();
    reject(new Error(why));
  };
  const timer = setTimeout(
    () => fail(`no WebSocket handshake within ${options.timeoutMs} ms`),
    options.timeoutMs,
  );
  const onAbort = () => fail("aborted");
  signal?.addEventListener("abort", onAbort, { once: true });
  const done = () => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    ws.onopen = ws.onerror = ws.onclose = null;
  };
  ws.onopen = () => {
    done();
    resolve(new BrowserTextSocket(ws, options));
  };
  // The browser hides why (refused, bad status): the close code says little.
  ws.onerror = () => fail("WebSocket handshake failed (refused or rejected)");
  ws.onclose = (e) => fail(`connection closed before open (code ${e.code})`);
  return promise;
}

class BrowserTextSocket implements TextSocket {
  readonly #ws: WebSocket;
  readonly #maxMessage: number;
  readonly #maxBuffered: number;
  readonly #released = Promise.withResolvers<void>();
  #closed = false;
  #onClose: ((code: number, reason: string) => void) | undefined;

  constructor(ws: WebSocket, options: TextSocketOptions) {
    this.#ws = ws;
    this.#maxMessage = options.maxMessageBytes;
    this.#maxBuffered = options.maxBufferedBytes;
  }

  get finished(): Promise<void> {
    return this.#released.promise;
  }

  start(handler: {
    onText(text: string): void;
    onClose(code: number, reason: string): void;
  }): void {
    this.#onClose = handler.onClose;
    this.#ws.onmessage = (e: MessageEvent) => {
      if (this.#closed) return;
      if (typeof e.data !== "string") {
        return this.close(1003, "binary frames are not accepted");
      }
      // Characters, not bytes: a cheap upper bound the browser already holds.
      if (e.data.length > this.#maxMessage) {
        return this.close(
          1009,
          `Message too big: limit is ${this.#maxMessage} bytes`,
        );
      }
      handler.onText(e.data);
    };
    this.#ws.onclose = (e: CloseEvent) => this.#finish(e.code, e.reason);
  }

  send(text: string): boolean {
    if (this.#closed) return false;
    if (this.#ws.bufferedAmount > this.#maxBuffered) {
      this.close(4008, "send backlog too big");
      return false;
    }
    try {
      this.#ws.send(text);
      return true;
    } catch {
      return false;
    }
  }

  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    try {
      this.#ws.close(code, reason.slice(0, 123));
    } catch {
      this.#ws.close();
    }
    this.#finish(code, reason);
  }

  #finish(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ws.onmessage = this.#ws.onclose = null;
    this.#released.resolve();
    this.#onClose?.(code, reason);
  }
}
