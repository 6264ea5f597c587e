/**
 * SockJS sessions carried by HTTP requests: `xhr` polling and
 * `xhr_streaming` receive, `xhr_send` delivers (docs/protocol.md §1.2, §1.6). One
 * receiving request is attached at a time; between requests the outgoing
 * messages wait in the session's queue.
 *
 * @module
 */

import type { CloseInfo, TransportName } from "../session.ts";
import {
  CLOSE_REASONS,
  encodeClose,
  HEARTBEAT_FRAME,
  OPEN_FRAME,
  XHR_STREAMING_PRELUDE,
} from "../sockjs_frames.ts";
import { type SessionHost, SockJsSession } from "./sockjs_session.ts";

const encoder = new TextEncoder();
const PRELUDE_BYTES = encoder.encode(XHR_STREAMING_PRELUDE);
const ANOTHER_CONNECTION = encodeClose(
  CLOSE_REASONS.anotherConnection.code,
  CLOSE_REASONS.anotherConnection.reason,
);

/** A pending HTTP response that frames are written to. */
export interface XhrReceiver {
  /**
   * Writes one frame (the newline is added here).
   * @returns false when the response is finished after this frame.
   */
  write(frame: string): boolean;
  /** Finishes the response, if it is not finished yet. */
  end(): void;
}

/** An `xhr` poll: answered with exactly one frame (docs/protocol.md §1.3). */
export class XhrPollReceiver implements XhrReceiver {
  /** The response the request handler returns. */
  readonly response: Promise<Response>;
  #resolve!: (response: Response) => void;
  #headers: Headers;
  readonly #wrap: (frame: string) => string;
  #done = false;

  /**
   * Answers will carry `headers`; `wrap` makes the body of one frame
   * (`xhr`: the frame and a newline; `jsonp`: a call of the page's callback).
   */
  constructor(
    headers: Headers,
    wrap: (frame: string) => string = (frame) => frame + "\n",
  ) {
    this.#headers = headers;
    this.#wrap = wrap;
    this.response = new Promise((resolve) => this.#resolve = resolve);
  }

  /** True once the poll has its answer. */
  get done(): boolean {
    return this.#done;
  }

  /** Answers the poll with `frame`; a poll holds only one. */
  write(frame: string): boolean {
    if (!this.#done) {
      this.#done = true;
      this.#resolve(
        new Response(this.#wrap(frame), { headers: this.#headers }),
      );
    }
    return false;
  }

  /** Answers the poll with an empty body if it has no answer yet. */
  end(): void {
    if (!this.#done) {
      this.#done = true;
      this.#resolve(new Response("", { headers: this.#headers }));
    }
  }

  /**
   * Calls `onInterrupt` when the client drops the request before it has an
   * answer. Later aborts (Deno also aborts after a sent response) are
   * ignored.
   */
  watch(signal: AbortSignal, onInterrupt: () => void): void {
    const abort = (): void => {
      if (this.#done) return;
      this.end();
      onInterrupt();
    };
    if (signal.aborted) abort();
    else signal.addEventListener("abort", abort, { once: true });
  }
}

/** How a streaming response frames: what opens it and what wraps each frame. */
export interface StreamFraming {
  /** Sent first. */
  prelude: Uint8Array;
  /** The bytes that carry one frame. */
  wrap(frame: string): string;
}

/** `xhr_streaming`: 2048 `h` then a newline, one frame per line. */
export const XHR_STREAM_FRAMING: StreamFraming = {
  prelude: PRELUDE_BYTES,
  wrap: (frame) => frame + "\n",
};

/**
 * `eventsource`: an empty line, then each frame as one server-sent event
 * (`data: <frame>` and a blank line); frames never hold a raw CR or LF,
 * since SockJS frames are JSON-encoded (docs/protocol.md §1.3).
 */
export const EVENTSOURCE_FRAMING: StreamFraming = {
  prelude: encoder.encode("\r\n"),
  wrap: (frame) => "data: " + frame + "\r\n\r\n",
};

/**
 * `htmlfile`: a page of at least 1024 bytes whose script hands each frame
 * to `parent.<callback>`, then one `<script>` per frame. `<` is escaped in
 * the frame's string literal, so that no message can end the script.
 * `callback` must already be checked (a plain JavaScript path).
 */
export function htmlfileFraming(callback: string): StreamFraming {
  const head = `<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.${callback};
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>
`;
  // Some browsers render nothing of a page shorter than 1024 bytes.
  const padding = " ".repeat(Math.max(0, 1024 - head.length + 1));
  return {
    prelude: encoder.encode(head + padding + "\r\n\r\n"),
    wrap: (frame) =>
      `<script>\np(${
        JSON.stringify(frame).replaceAll("<", "\\u003c")
      });\n</script>\r\n`,
  };
}

/**
 * A streaming response (`xhr_streaming`, `eventsource`, `htmlfile`): the prelude, then
 * frames until `responseLimit` bytes of frames have gone out; the client
 * then reconnects.
 */
export class XhrStreamReceiver implements XhrReceiver {
  /** The response body. */
  readonly body: ReadableStream<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #limit: number;
  #bytes = 0;
  #done = false;
  #onInterrupt: (() => void) | undefined;

  readonly #framing: StreamFraming;

  /** `limit` is the number of frame bytes after which the response ends. */
  constructor(limit: number, framing: StreamFraming = XHR_STREAM_FRAMING) {
    this.#limit = limit;
    this.#framing = framing;
    this.body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        controller.enqueue(framing.prelude);
      },
      cancel: () => {
        if (this.#done) return;
        this.#done = true;
        this.#onInterrupt?.();
      },
    });
  }

  /** Sets what runs when the client drops the response (a cancelled body). */
  set onInterrupt(fn: () => void) {
    this.#onInterrupt = fn;
  }

  /** Writes a frame; false once the response limit is reached. */
  write(frame: string): boolean {
    if (this.#done) return false;
    const chunk = encoder.encode(this.#framing.wrap(frame));
    this.#controller.enqueue(chunk);
    this.#bytes += chunk.length;
    if (this.#bytes < this.#limit) return true;
    this.end();
    return false;
  }

  /** Ends the response body. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#controller.close();
  }
}

/** What an XHR session needs beyond {@linkcode SessionHost}. */
export interface XhrSessionOptions {
  /** `xhr-polling` or `xhr-streaming`, after the request that opened it. */
  transport: TransportName;
  /** The `{session}` part of the URL. */
  id: string;
  /** Remote `host:port`, or `""`. */
  remoteAddr: string;
  /** How long the session lives without an attached receiver. */
  disconnectDelayMs: number;
  /** Removes the session from the server's table. */
  remove(session: XhrSession): void;
}

/**
 * One XHR session. Like sockjs-go: `o` goes to the first receiver; queued
 * messages go out as one `a[...]` frame when a receiver is attached; `h`
 * goes out every heartbeat period while one is attached; with none attached
 * for `disconnectDelayMs` the session ends. After a local close, the session
 * stays in the table for `disconnectDelayMs` so that the next poll receives
 * the `c` frame.
 */
export class XhrSession extends SockJsSession {
  #options: XhrSessionOptions;
  #receiver: XhrReceiver | undefined;
  #opened = false;
  #closeFrame = "";
  /** Heartbeat while a receiver is attached, expiry while none is. */
  #timer: number | undefined;

  /** Makes a session that no receiver has attached to yet. */
  constructor(host: SessionHost, options: XhrSessionOptions) {
    super(host, options.transport, options.id, options.remoteAddr);
    this.#options = options;
  }

  /** Attaches the receiving request that has just arrived. */
  attach(receiver: XhrReceiver): void {
    if (this.#receiver) {
      receiver.write(ANOTHER_CONNECTION);
      receiver.end();
      return;
    }
    if (this.closed) {
      // A local close left the c frame (and perhaps messages) for this
      // poll. A session closed inside onSession still opens first: the
      // client gets `o`, then (on a poll, with the next one) `c[...]`.
      const open = this.#opened || receiver.write(OPEN_FRAME);
      this.#opened = true;
      if (
        open && (this.queue.length === 0 || this.#writeQueueTo(receiver))
      ) receiver.write(this.#closeFrame);
      receiver.end();
      return;
    }
    this.#clearTimer();
    this.#receiver = receiver;
    if (!this.#opened) {
      this.#opened = true;
      if (!receiver.write(OPEN_FRAME)) return this.#detach();
    }
    if (this.queue.length > 0 && !this.#writeQueueTo(receiver)) {
      return this.#detach();
    }
    this.#armHeartbeat();
  }

  /** Delivers the messages of one `xhr_send` body, in order. */
  receive(messages: readonly string[]): void {
    for (let i = 0; i < messages.length && !this.closed; i++) {
      this.deliver(messages[i]);
    }
  }

  /**
   * The client dropped `receiver` while it waited: like sockjs-go, the
   * session ends at once (docs/protocol.md §1.6 step 5).
   */
  interrupted(receiver: XhrReceiver): void {
    if (receiver !== this.#receiver) return;
    this.#receiver = undefined;
    this.#end(CLOSE_REASONS.interrupted);
  }

  /** Stops the timers of a closed session (server shutdown). */
  dispose(): void {
    this.#clearTimer();
  }

  /** Sends the queue as one frame if a receiver is attached. */
  protected flush(): void {
    const receiver = this.#receiver;
    if (receiver && !this.#writeQueueTo(receiver)) this.#detach();
  }

  /**
   * Sends what is queued and the `c` frame to the attached receiver, or
   * keeps both for the next one.
   */
  protected closeLocally(info: CloseInfo): void {
    this.#clearTimer();
    this.#closeFrame = encodeClose(info.code, info.reason);
    const receiver = this.#receiver;
    if (receiver) {
      this.#receiver = undefined;
      if (this.queue.length === 0 || this.#writeQueueTo(receiver)) {
        receiver.write(this.#closeFrame);
      }
      receiver.end();
    }
    this.#timer = this.host.clock.setTimeout(
      this.#expire,
      this.#options.disconnectDelayMs,
    );
    this.markClosed(info);
  }

  /**
   * Writes the queue in frames a peer with our limits reads (a poll takes
   * one; what is left waits for the next); false when the receiver is
   * finished.
   */
  #writeQueueTo(receiver: XhrReceiver): boolean {
    while (this.queue.length > 0) {
      if (!receiver.write(this.takeFrame())) return false;
    }
    return true;
  }

  #detach(): void {
    this.#receiver = undefined;
    this.#clearTimer();
    this.#timer = this.host.clock.setTimeout(
      this.#expire,
      this.#options.disconnectDelayMs,
    );
  }

  #expire = (): void => {
    this.#timer = undefined;
    if (this.closed) this.#options.remove(this);
    else this.#end(CLOSE_REASONS.timedOut);
  };

  /** Ends the session without a close frame and forgets it at once. */
  #end(info: CloseInfo): void {
    this.#clearTimer();
    this.#receiver?.end();
    this.#receiver = undefined;
    this.clearQueue();
    this.#options.remove(this);
    this.markClosed(info);
  }

  #armHeartbeat(): void {
    const { clock, heartbeatMs } = this.host;
    if (heartbeatMs <= 0) return;
    const beat = (): void => {
      this.#timer = undefined;
      const receiver = this.#receiver;
      if (!receiver) return;
      if (receiver.write(HEARTBEAT_FRAME)) {
        this.#timer = clock.setTimeout(beat, heartbeatMs);
      } else {
        this.#detach();
      }
    };
    this.#timer = clock.setTimeout(beat, heartbeatMs);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      this.host.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}
