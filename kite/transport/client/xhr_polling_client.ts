/**
 * The SockJS xhr-polling client, Go's `XHRPolling` (docs/protocol.md §1.6): `POST …/xhr`
 * opens the session and then long-polls for one frame per answer;
 * `POST …/xhr_send` carries the client's messages.
 *
 * @module
 */

import type {
  ClientSession,
  ClientTransportOptions,
} from "./client_session.ts";
import { describeError, dialError } from "./dial_error.ts";
import type { CloseInfo, SessionHandler } from "../session.ts";
import {
  encodeClientMessage,
  readServerFrame,
} from "./sockjs_client_frames.ts";
import {
  hostPort,
  randomServerId,
  randomSessionId,
  type XhrSessionUrls,
  xhrSessionUrls,
} from "./sockjs_client_url.ts";
import { backlogTooBig } from "../sockjs_frames.ts";

/** Close code for a session lost to the network or to the server. */
const ABNORMAL_CLOSURE = 1006;
/** Close code for a poll answer over `maxMessageBytes`. */
const MESSAGE_TOO_BIG = 1009;
/** Close code for a message handler that threw. */
const INTERNAL_ERROR = 1011;

/**
 * Most message text (UTF-16 units) one `xhr_send` carries: half the usual
 * 1 MiB body limit, leaving room for JSON escaping.
 */
const XHR_SEND_BATCH_UNITS = 512 * 1024;
/** Go sends every XHR request as `text/plain` (docs/protocol.md §1.6). */
const TEXT_PLAIN: HeadersInit = { "Content-Type": "text/plain" };

/**
 * Dials a kite URL such as `http://127.0.0.1:3636/kite` over xhr-polling
 * and resolves once the server has answered the opening poll with `o`.
 *
 * @throws {Error} naming the URL and the cause when the open fails, times
 * out or is aborted.
 */
export async function dialXhrPolling(
  kiteUrl: URL,
  handler: SessionHandler,
  options: ClientTransportOptions,
): Promise<ClientSession> {
  const id = randomSessionId();
  const urls = xhrSessionUrls(kiteUrl, randomServerId(), id);
  await openSession(urls.poll, options);
  return new XhrPollingSession(urls, id, hostPort(kiteUrl), handler, options);
}

/** The opening `POST …/xhr`: status 200 and frame `o` within `timeoutMs`. */
async function openSession(
  url: string,
  options: ClientTransportOptions,
): Promise<void> {
  const { signal, timeoutMs } = options;
  if (signal?.aborted) throw dialError(url, "aborted");
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  const both = signal ? AbortSignal.any([timeout.signal, signal]) : undefined;
  let answer: PollAnswer;
  try {
    answer = await postPoll(
      url,
      both ?? timeout.signal,
      options.maxMessageBytes + 1,
      () => clearTimeout(timer),
    );
  } catch (error) {
    throw dialError(
      url,
      signal?.aborted
        ? "aborted"
        : timeout.signal.aborted
        ? `no answer within ${timeoutMs} ms`
        : error,
    );
  } finally {
    clearTimeout(timer);
  }
  if (answer.status !== 200) {
    throw dialError(url, `xhr open answered HTTP ${answer.status}`);
  }
  const frame = answer.body.split("\n", 1)[0];
  if (frame !== "o") {
    throw dialError(
      url,
      `xhr open answered ${JSON.stringify(frame.slice(0, 60))}, not "o"`,
    );
  }
}

interface PollAnswer {
  status: number;
  /** The body of a 200 answer; `""` for any other status. */
  body: string;
}

/**
 * One `POST …/xhr` with an empty body. `onFirstByte` runs when the answer
 * starts to arrive.
 *
 * @throws {RangeError} when the body exceeds `maxBytes`.
 */
async function postPoll(
  url: string,
  signal: AbortSignal,
  maxBytes: number,
  onFirstByte: () => void,
): Promise<PollAnswer> {
  const response = await fetch(url, {
    method: "POST",
    headers: TEXT_PLAIN,
    body: "",
    signal,
  });
  if (response.status !== 200 || response.body === null) {
    onFirstByte();
    await response.body?.cancel();
    return { status: response.status, body: "" };
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size === 0) onFirstByte();
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel();
      throw new RangeError(`poll answer larger than ${maxBytes - 1} bytes`);
    }
    chunks.push(value);
  }
  return { status: 200, body: decodeUtf8(chunks, size) };
}

const decoder = new TextDecoder();

function decodeUtf8(chunks: Uint8Array[], size: number): string {
  if (chunks.length <= 1) return chunks.length ? decoder.decode(chunks[0]) : "";
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return decoder.decode(all);
}

class XhrPollingSession implements ClientSession {
  readonly transport = "xhr-polling" as const;
  readonly id: string;
  readonly remoteAddr: string;
  readonly #urls: XhrSessionUrls;
  readonly #handler: SessionHandler;
  readonly #options: ClientTransportOptions;
  /** Set once the session is ending: what `onClose` reported. */
  #ending: CloseInfo | undefined;
  /** Set when no request may run any more. */
  #stopped = false;
  #queue: string[] = [];
  /** Length of the queued messages, in UTF-16 units. */
  #queuedLength = 0;
  #sending: Promise<void> | undefined;
  #sendAbort: AbortController | undefined;
  #pollAbort: AbortController | undefined;
  readonly #receiving: Promise<void>;
  readonly #finished: PromiseWithResolvers<void> = Promise.withResolvers();
  readonly #onAbort = () => this.close(1000, "aborted by signal");

  constructor(
    urls: XhrSessionUrls,
    id: string,
    remoteAddr: string,
    handler: SessionHandler,
    options: ClientTransportOptions,
  ) {
    this.#urls = urls;
    this.id = id;
    this.remoteAddr = remoteAddr;
    this.#handler = handler;
    this.#options = options;
    options.signal?.addEventListener("abort", this.#onAbort, { once: true });
    // Go polls again as soon as the opening `o` is in (docs/protocol.md §1.6).
    this.#receiving = this.#receiveLoop();
  }

  get closed(): boolean {
    return this.#ending !== undefined;
  }

  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  get closeInfo(): CloseInfo | undefined {
    return this.#ending;
  }

  send(message: string): boolean {
    if (this.#ending !== undefined) return false;
    const limit = this.#options.maxBufferedBytes;
    if (this.#queuedLength > limit) {
      // The server takes no xhr_send: what waits would never get there.
      this.#end(backlogTooBig(limit), false);
      return false;
    }
    this.#queue.push(message);
    this.#queuedLength += message.length;
    this.#sending ??= this.#sendLoop();
    return true;
  }

  close(code = 1000, reason = "closed by client"): void {
    this.#end({ code, reason }, true);
  }

  /**
   * Ends the session and reports `info`. A local close (`drain`) first lets
   * messages queued by `send` go out, as a WebSocket would; then it drops
   * the poll in flight, which ends the session on sockjs-go (docs/protocol.md §1.6 step 5).
   */
  #end(info: CloseInfo, drain: boolean): void {
    if (this.#ending !== undefined) {
      // A failure while a local close drains the queue ends the drain.
      if (!drain) this.#stop();
      return;
    }
    this.#ending = info;
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    const stopped = drain && this.#sending
      ? this.#sending.then(() => this.#stop())
      : Promise.resolve(this.#stop());
    stopped
      .then(() => Promise.all([this.#receiving, this.#sending]))
      .then(() => this.#finished.resolve(), this.#finished.reject);
    this.#handler.onClose(info);
  }

  #stop(): void {
    this.#stopped = true;
    this.#queue = [];
    this.#queuedLength = 0;
    this.#sendAbort?.abort();
    this.#pollAbort?.abort();
  }

  async #receiveLoop(): Promise<void> {
    while (this.#ending === undefined) {
      const answer = await this.#poll();
      // Whatever arrives after close is dropped.
      if (this.#ending !== undefined || answer === undefined) continue;
      if (typeof answer !== "string") return this.#end(answer, false);
      this.#receiveBody(answer);
    }
  }

  /**
   * One poll: the 200 body, `undefined` to poll again (no first byte within
   * `pollTimeoutMs`, docs/protocol.md §1.4), or how the session ends.
   */
  async #poll(): Promise<string | CloseInfo | undefined> {
    const abort = new AbortController();
    this.#pollAbort = abort;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, this.#options.pollTimeoutMs);
    try {
      const { status, body } = await postPoll(
        this.#urls.poll,
        abort.signal,
        this.#options.maxMessageBytes + 1,
        () => clearTimeout(timer),
      );
      if (status === 200) return body;
      return {
        code: ABNORMAL_CLOSURE,
        reason: status === 404
          ? "sockjs: session not found (poll answered 404)"
          : `sockjs: poll answered HTTP ${status}`,
      };
    } catch (error) {
      if (timedOut || this.#stopped) return undefined;
      if (error instanceof RangeError) {
        return { code: MESSAGE_TOO_BIG, reason: error.message };
      }
      return {
        code: ABNORMAL_CLOSURE,
        reason: `xhr poll failed: ${describeError(error)}`,
      };
    } finally {
      clearTimeout(timer);
      this.#pollAbort = undefined;
    }
  }

  /** Handles each `\n`-ended frame of a poll answer (one, from sockjs-go). */
  #receiveBody(body: string): void {
    let start = 0;
    do {
      let end = body.indexOf("\n", start);
      if (end < 0) end = body.length;
      const got = readServerFrame(body.slice(start, end));
      if (Array.isArray(got)) {
        for (const message of got) if (!this.#deliver(message)) return;
      } else if (got !== undefined) {
        return this.#end(got, false);
      }
      start = end + 1;
    } while (start < body.length);
  }

  /** Hands one message up; false once the session takes no more. */
  #deliver(message: string): boolean {
    if (this.#ending !== undefined) return false;
    try {
      this.#handler.onMessage(message);
    } catch (error) {
      this.#end({
        code: INTERNAL_ERROR,
        reason: `message handler failed: ${describeError(error)}`,
      }, false);
      return false;
    }
    return true;
  }

  /** Sends queued messages one `xhr_send` at a time, in order, batching what queued up meanwhile. */
  async #sendLoop(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#stopped) {
        const batch = this.#takeBatch();
        const failure = await this.#postSend(
          batch.length === 1
            ? encodeClientMessage(batch[0])
            : JSON.stringify(batch),
        );
        if (failure !== undefined) return this.#end(failure, false);
      }
    } finally {
      this.#sending = undefined;
    }
  }

  /**
   * The queued messages for one `xhr_send`: all of them, unless together
   * they pass {@linkcode XHR_SEND_BATCH_UNITS} (then as many as fit, at
   * least one), so a burst of calls does not make a body the server
   * refuses (413 past its `maxMessageBytes`, 1 MiB by default).
   */
  #takeBatch(): string[] {
    const queue = this.#queue;
    if (this.#queuedLength <= XHR_SEND_BATCH_UNITS) {
      this.#queue = [];
      this.#queuedLength = 0;
      return queue;
    }
    let n = 0;
    let units = 0;
    while (
      n < queue.length &&
      (n === 0 || units + queue[n].length <= XHR_SEND_BATCH_UNITS)
    ) units += queue[n++].length;
    this.#queue = queue.slice(n);
    this.#queuedLength -= units;
    return queue.slice(0, n);
  }

  /** One `POST …/xhr_send`; `undefined` when it went through (or was stopped). */
  async #postSend(body: string): Promise<CloseInfo | undefined> {
    const abort = new AbortController();
    this.#sendAbort = abort;
    const { timeoutMs } = this.#options;
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const response = await fetch(this.#urls.send, {
        method: "POST",
        headers: TEXT_PLAIN,
        body,
        signal: abort.signal,
      });
      await response.body?.cancel();
      const { status } = response;
      if (status === 200 || status === 204) return undefined;
      return {
        code: ABNORMAL_CLOSURE,
        reason: status === 404
          ? "sockjs: session not found (xhr_send answered 404)"
          : `sockjs: xhr_send answered HTTP ${status}`,
      };
    } catch (error) {
      if (this.#stopped) return undefined;
      return {
        code: ABNORMAL_CLOSURE,
        reason: abort.signal.aborted
          ? `xhr_send: no answer within ${timeoutMs} ms`
          : `xhr_send failed: ${describeError(error)}`,
      };
    } finally {
      clearTimeout(timer);
      this.#sendAbort = undefined;
    }
  }
}
