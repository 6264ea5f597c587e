/**
 * One connection to a remote kite, in either direction (Go `kite.Client`):
 * the dialing side and the accepting side can both call methods and
 * callbacks on each other over it (docs/protocol.md §1.1).
 *
 * @module
 */
import { Backoff, type BackoffOptions } from "./backoff.ts";
import {
  anonymousHead,
  encodeAuth,
  encodeIdentity,
  envelopeText,
  headText,
} from "./call_heads.ts";
import { CallTemplates } from "./call_templates.ts";
import {
  type AnyFunction,
  type Callbacks,
  CallbackTable,
  decodeMessage,
  encodeMessage,
  encodeResultMessage,
  FUNCTION_PLACEHOLDER,
  scrub,
  unscrub,
} from "./dnode/mod.ts";
import { KiteError } from "./errors.ts";
import { guard, isThenable } from "./guard.ts";
import {
  exceedsJsonDepth,
  tooDeepReason,
  tooManyCallbacks,
  tooManyPendingCalls,
} from "./limits.ts";
import type { Auth, KiteIdentity } from "./protocol.ts";
import type {
  CloseInfo,
  Session,
  SessionHandler,
} from "./transport/session.ts";
import type { ClientTransport } from "./transport/client/dialer.ts";
import { utf8Length } from "./transport/sockjs_frames.ts";
import type { ClientSpan } from "./observe/call_tracer.ts";
import { parseTraceparent } from "./observe/trace_context.ts";
import {
  CANCEL_METHOD,
  currentScope,
  TIMEOUT_FIELD,
} from "./serve/deadline.ts";

const TIMEOUT_SUFFIX = ',"' + TIMEOUT_FIELD + '":';
import type { CallReply, ServingKite } from "./serve/serving_kite.ts";

export type { CallReply } from "./serve/serving_kite.ts";

/** Options for {@linkcode Kite.newClient}. */
export interface ClientOptions {
  /** Transport to dial with. @default {the kite's `transport` config} */
  transport?: ClientTransport;
  /** Credentials sent with every call. @default {kiteKey auth when the kite has a kite.key} */
  auth?: Auth | null;
  /** Handshake timeout, ms. @default {the kite's `timeoutMs`} */
  timeoutMs?: number;
  /** Reconnect delays for {@linkcode Client.dialForever}. */
  reconnect?: BackoffOptions;
  /** What is known of the remote kite (e.g. from Kontrol). */
  remote?: KiteIdentity;
  /**
   * Fetches a fresh token when the remote answers "token is expired"; the
   * call is then retried once (docs/protocol.md §6.10). Gets the token the failed call
   * carried, so a renewal that already happened need not be repeated.
   */
  renewToken?: (expired: string) => Promise<string>;
}

/** Which side opened the connection; only accepted ones authenticate (docs/protocol.md §6.9). */
export type ConnectionSide = "dialed" | "accepted";

/** Options of {@linkcode Client.call}. */
export interface CallOptions {
  /** Fail with `timeout` after this many ms; sent along as the callee's deadline. @default {0 (none)} */
  timeoutMs?: number;
  /** Gives the call up: it fails at once and the callee's `r.signal` aborts (`kite.cancel`). */
  signal?: AbortSignal;
}

interface PendingCall {
  method: string;
  /** Removes the abort listener, when the call has a signal. */
  off?: () => void;
  resolve(value: unknown): void;
  reject(error: KiteError): void;
  timer?: number;
  /** The call's span, when tracing: functions in its reply hang under it. */
  span?: ClientSpan;
}

const DISCONNECT_MESSAGE = "Remote kite has disconnected";

/**
 * A connection to a remote kite. Get one with {@linkcode Kite.newClient}
 * (dialing) or from `request.client` in a handler (accepted).
 *
 * @example
 * ```ts ignore
 * const client = kite.newClient("http://127.0.0.1:3636/kite");
 * await client.dial();
 * console.log(await client.tell("square", 4)); // 16
 * client.close();
 * ```
 */
export class Client {
  /** The URL dialed, `""` for accepted connections. */
  readonly url: string;
  /** Which side opened the connection. */
  readonly side: ConnectionSide;
  /** The remote kite's identity, once known. */
  remote: KiteIdentity | undefined;
  /** Credentials sent with every call (`null`: none). */
  auth: Auth | null;

  readonly #kite: ServingKite<Client>;
  readonly #options: ClientOptions;
  readonly #callbacks = new CallbackTable();
  /**
   * When tracing: the span of the call that passed each local function,
   * so a peer that calls it back without a trace context (kite.js, Go)
   * still lands under that call. Made when first needed.
   */
  #origins: WeakMap<AnyFunction, ClientSpan> | undefined;
  readonly #pending = new Map<number, PendingCall>();
  /** The call whose message is being handed to the session. */
  #sending: number | undefined;
  /** Made when first needed: accepted connections never reconnect. */
  #backoff: Backoff | undefined;
  #session: Session | undefined;
  /** The last call head whose bytes were counted (metrics on), and its bytes. */
  #countedHead = "";
  #countedHeadBytes = 0;
  #closedByUser = false;
  #reconnecting = false;
  #reconnectTimer: number | undefined;
  // Sets made on first use: a Kontrol or busy kite holds thousands of idle
  // accepted connections, most of which never get a listener.
  #foreverWaiters: Set<() => void> | undefined;
  #dialing: Promise<void> | undefined;
  #abort = new AbortController();
  #onConnectFns: Set<() => void> | undefined;
  #onDisconnectFns: Set<(info: CloseInfo) => void> | undefined;
  #onTokenExpireFns: Set<() => void> | undefined;
  /** Made on the first plain call received: most connections only call out. */
  #templates: CallTemplates | undefined;
  #lastEnvelope: { identity: string; auth: string; text: string } | undefined;
  #lastHead: { method: string; envelope: string; text: string } | undefined;

  /** @internal Use {@linkcode Kite.newClient}. */
  constructor(
    kite: ServingKite<Client>,
    url: string,
    options: ClientOptions = {},
    session?: Session,
  ) {
    this.#kite = kite;
    this.url = url;
    this.#options = options;
    this.side = session ? "accepted" : "dialed";
    this.remote = options.remote;
    // Calls back over an accepted connection carry no credentials, as in Go
    // (docs/protocol.md §6.9); a kite.js client would reject a kiteKey.
    this.auth = options.auth !== undefined
      ? options.auth
      : session
      ? null
      : kite.defaultAuth();
    if (!session) this.#backoff = new Backoff(options.reconnect);
    if (session) this.#attach(session);
  }

  /** @internal The handler an accepting transport attaches to a new session. */
  static acceptHandler(client: Client): SessionHandler {
    return client.#handler;
  }

  /** True while a session is open. */
  get connected(): boolean {
    return this.#session !== undefined && !this.#session.closed;
  }

  /** The transport session, while connected. */
  get session(): Session | undefined {
    return this.#session;
  }

  /** Aborted when the connection drops (Go's request `Context`). */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Number of calls waiting for a reply. */
  get pendingCalls(): number {
    return this.#pending.size;
  }

  /**
   * Number of live local callbacks on this connection: functions passed to
   * the remote, and the response callbacks of calls waiting for replies.
   */
  get callbackCount(): number {
    return this.#callbacks.size + this.#pending.size;
  }

  /** The local kite this connection belongs to. */
  get localKite(): ServingKite<Client> {
    return this.#kite;
  }

  /**
   * Opens the connection once.
   * @throws {KiteError} `sendError` when the dial fails.
   */
  async dial(): Promise<void> {
    if (this.side === "accepted") {
      throw new TypeError("an accepted connection cannot be dialed");
    }
    if (this.connected) return;
    this.#closedByUser = false;
    // Concurrent dials share one attempt: a second session would be orphaned
    // and its close would detach the live one.
    this.#dialing ??= this.#dialOnce().finally(() => {
      this.#dialing = undefined;
    });
    return await this.#dialing;
  }

  async #dialOnce(): Promise<void> {
    const cfg = this.#kite.config;
    let session: Session;
    try {
      session = await this.#kite.dialer(this.url, this.#handler, {
        transport: this.#options.transport ?? cfg.transport,
        timeoutMs: this.#options.timeoutMs ?? cfg.timeoutMs,
        pollTimeoutMs: cfg.timeoutMs,
        // A server may answer with more than we accept from our callers.
        maxMessageBytes: cfg.maxDialedMessageBytes,
        maxBufferedBytes: cfg.maxBufferedBytes,
      });
    } catch (err) {
      const text = (err as Error).message;
      throw new KiteError(
        "sendError",
        text.startsWith("cannot dial")
          ? text
          : `cannot dial ${this.url}: ${text}`,
        { cause: err },
      );
    }
    if (this.#closedByUser) {
      session.close(3000, "Go away!");
      throw new KiteError("sendError", "can't send, client is closed");
    }
    this.#attach(session);
  }

  /**
   * Dials until it succeeds, and re-dials with backoff and jitter whenever
   * the connection drops, until {@linkcode Client.close}. Resolves on the
   * first connection.
   */
  dialForever(): Promise<void> {
    this.#reconnecting = true;
    this.#closedByUser = false;
    const waiters = this.#foreverWaiters ??= new Set();
    return new Promise((resolve) => {
      // close() cancels the retry timer, so it must settle this promise too.
      const done = () => {
        waiters.delete(done);
        resolve();
      };
      waiters.add(done);
      const attempt = () => {
        this.#reconnectTimer = undefined;
        if (this.#closedByUser) return done();
        this.dial().then(() => {
          this.#retry.reset();
          done();
        }, (err) => {
          if (this.#closedByUser) return done();
          this.#kite.logger.debug(
            `dial ${this.url} failed: ${(err as Error).message}`,
          );
          this.#reconnectTimer = this.#kite.clock.setTimeout(
            attempt,
            this.#retry.next(),
          );
        });
      };
      attempt();
    });
  }

  /** Closes the connection and stops reconnecting. Pending calls fail with `disconnect`. */
  close(): void {
    this.#closedByUser = true;
    this.#reconnecting = false;
    if (this.#reconnectTimer !== undefined) {
      this.#kite.clock.clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
    }
    for (const done of [...this.#foreverWaiters ?? []]) done();
    this.#session?.close(3000, "Go away!");
    if (this.side === "dialed") this.#kite.forgetClient(this);
  }

  /** Calls `fn` on every (re)connection; returns an unsubscribe function. */
  onConnect(fn: () => void): () => void {
    const fns = this.#onConnectFns ??= new Set();
    fns.add(fn);
    return () => fns.delete(fn);
  }

  /** Calls `fn` whenever the connection drops; returns an unsubscribe function. */
  onDisconnect(fn: (info: CloseInfo) => void): () => void {
    const fns = this.#onDisconnectFns ??= new Set();
    fns.add(fn);
    return () => fns.delete(fn);
  }

  /** Calls `fn` when a reply says the token expired; returns an unsubscribe function. */
  onTokenExpire(fn: () => void): () => void {
    const fns = this.#onTokenExpireFns ??= new Set();
    fns.add(fn);
    return () => fns.delete(fn);
  }

  /**
   * Calls a method on the remote kite and resolves with its result. Functions
   * anywhere in `args` can be called back by the remote.
   * @throws {KiteError} the remote's error, or `disconnect`/`sendError`.
   */
  tell(method: string, ...args: unknown[]): Promise<unknown> {
    return this.#callWithRenewal(method, args, 0, undefined);
  }

  /**
   * Like {@linkcode Client.tell}, failing with a `timeout` error after `ms`
   * (0 waits forever).
   */
  tellWithTimeout(
    method: string,
    ms: number,
    ...args: unknown[]
  ): Promise<unknown> {
    return this.#callWithRenewal(method, args, ms, undefined);
  }

  /**
   * Calls `method` with `args`, with a timeout and/or an abort signal.
   * Inside a handler serving a call that has a deadline, calls inherit the
   * time left and are cancelled with it, with or without these options.
   * @throws {KiteError} as {@linkcode Client.tell}; `timeout` when the time
   * runs out or the signal aborts.
   */
  call(
    method: string,
    args: unknown[] = [],
    options: CallOptions = {},
  ): Promise<unknown> {
    return this.#callWithRenewal(
      method,
      args,
      options.timeoutMs ?? 0,
      options.signal,
    );
  }

  /** Releases a function passed as an argument earlier, so the remote can no longer call it. */
  releaseCallback(fn: AnyFunction): boolean {
    return this.#callbacks.release(fn);
  }

  #callWithRenewal(
    method: string,
    args: unknown[],
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const tracer = this.#kite.tracer;
    const span = tracer?.client(
      method,
      this.remote,
      this.#session?.transport ?? "none",
    );
    // Without a renewer, no async wrapper: one promise per call, not two.
    const p = this.#options.renewToken
      ? this.#callRenewing(method, args, timeoutMs, signal, span)
      : this.#call(method, args, timeoutMs, signal, span);
    if (span) p.then(() => span.end(), (err) => span.end(err));
    const metrics = this.#kite.metrics;
    return metrics ? metrics.calling(method, p) : p;
  }

  async #callRenewing(
    method: string,
    args: unknown[],
    timeoutMs: number,
    signal: AbortSignal | undefined,
    span: ClientSpan | undefined,
  ): Promise<unknown> {
    const sent = this.auth;
    try {
      return await this.#call(method, args, timeoutMs, signal, span);
    } catch (err) {
      const renew = this.#options.renewToken;
      if (!renew || !isTokenExpired(err) || this.auth?.type !== "token") {
        throw err;
      }
      this.auth = { type: "token", key: await renew(sent?.key ?? "") };
      return await this.#call(method, args, timeoutMs, signal, span);
    }
  }

  /** `span`: the call's span, whose trace context goes after `withArgs` and `timeout`. */
  #call(
    method: string,
    args: unknown[],
    timeoutMs: number,
    signal: AbortSignal | undefined,
    span: ClientSpan | undefined,
  ): Promise<unknown> {
    // Inside a handler serving a call with a deadline: pass the rest on.
    const scope = currentScope();
    if (scope !== undefined && scope.active) {
      const left = Math.ceil(scope.deadline - this.#kite.clock.now());
      if (!(left > 0) || scope.givenUp) {
        return Promise.reject(
          new KiteError(
            "timeout",
            `"${method}" not sent: the call being served has been given up`,
          ),
        );
      }
      if (left !== Infinity && (timeoutMs <= 0 || left < timeoutMs)) {
        timeoutMs = left;
      }
      // A call back over the connection being served fails when that
      // connection drops: it follows only the rest (serve/deadline.ts).
      const follow = scope.follow(this.#abort.signal);
      if (follow) signal = signal ? AbortSignal.any([signal, follow]) : follow;
    }
    if (signal?.aborted) {
      return Promise.reject(
        new KiteError("timeout", `"${method}" not sent: cancelled`),
      );
    }
    const session = this.#session;
    if (!session || session.closed) {
      const text = this.#closedByUser
        ? "can't send, client is closed"
        : "can't send, session is not established yet";
      return Promise.reject(new KiteError("sendError", text));
    }
    const limits = this.#kite.config;
    if (this.#pending.size >= limits.maxPendingCalls) {
      return Promise.reject(tooManyPendingCalls(limits.maxPendingCalls));
    }
    if (this.callbackCount >= limits.maxCallbacks) {
      return Promise.reject(tooManyCallbacks(limits.maxCallbacks));
    }
    return new Promise((resolve, reject) => {
      const pending: PendingCall = { method, resolve, reject };
      if (span) pending.span = span;
      const callbacks: Callbacks = {};
      // The pending call is the response callback: its id comes from the
      // table's counter, the reply finds it in #pending (see #receive).
      const id = this.#callbacks.newId();
      callbacks[id] = [0, "responseCallback"];
      // Go field order: kite, authentication, responseCallback, withArgs (docs/protocol.md §3.1).
      // An empty list goes out as [] (not Go's null) so kite.js peers see a kite request (docs/protocol.md §12 #6).
      this.#pending.set(id, pending);
      if (signal) {
        const onAbort = () => {
          if (!this.#forget(id)) return;
          reject(new KiteError("timeout", `"${method}" cancelled`));
          this.#sendCancel(id);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        pending.off = () => signal.removeEventListener("abort", onAbort);
      }
      if (timeoutMs > 0) {
        pending.timer = this.#kite.clock.setTimeout(() => {
          this.#pending.delete(id);
          pending.off?.();
          reject(
            new KiteError(
              "timeout",
              `No response to "${method}" method in ${timeoutMs}ms`,
            ),
          );
        }, timeoutMs);
      }
      let sent: boolean;
      try {
        // Inside the try: a cyclic argument makes scrub() throw (and BigInt
        // makes encoding throw); the call then fails with sendError.
        const withArgs = scrub(
          args,
          [0, "withArgs"],
          callbacks,
          this.#register,
        );
        // scrub() hands `args` back as is when it holds no function: then
        // the response callback is the only entry in `callbacks`.
        const callbacksJSON = withArgs === args
          ? '{"' + id + '":[0,"responseCallback"]}'
          : JSON.stringify(callbacks);
        if (span && withArgs !== args) this.#noteOrigins(callbacks, id, span);
        const head = this.#head(method);
        // The time left rides after withArgs, where Go and kite.js skip
        // it (serve/deadline.ts).
        const rest = JSON.stringify(withArgs) +
          (timeoutMs > 0
            ? TIMEOUT_SUFFIX + Math.ceil(timeoutMs)
            : signal
            ? TIMEOUT_SUFFIX + "0"
            : "") +
          (span ? span.envelope : "") +
          '}],"callbacks":' + callbacksJSON + "}";
        // A send may end the session (a peer that stopped reading): this
        // call then fails with that reason, not as disconnected.
        this.#sending = id;
        this.#kite.metrics?.sent(this.#headBytes(head) + utf8Length(rest));
        sent = session.sendJoined
          ? session.sendJoined(head, rest)
          : session.send(head + rest);
        this.#sending = undefined;
      } catch (err) {
        this.#sending = undefined;
        this.#forget(id);
        reject(
          new KiteError("sendError", (err as Error).message, { cause: err }),
        );
        return;
      }
      if (!sent) {
        this.#forget(id);
        reject(notSent(session));
      }
    });
  }

  /**
   * The start of a call's options object, up to `"withArgs":` — the same
   * text as `JSON.stringify({kite, authentication, responseCallback:
   * "[Function]", withArgs})` starts with (Go field order, docs/protocol.md §3.1).
   */
  #envelope(): string {
    const identity = this.#kite.identity;
    const auth = this.auth;
    const authText = auth === null ? "null" : encodeAuth(auth);
    if (authText !== undefined) {
      // Both texts come from caches: the same strings while nothing changed.
      const identityText = encodeIdentity(identity);
      const last = this.#lastEnvelope;
      if (last?.identity === identityText && last.auth === authText) {
        return last.text;
      }
      const text = envelopeText(identityText, authText);
      this.#lastEnvelope = { identity: identityText, auth: authText, text };
      return text;
    }
    // Anything but null or a plain {type, key}: let JSON decide, every time.
    const probe = JSON.stringify({
      kite: identity,
      authentication: auth,
      responseCallback: FUNCTION_PLACEHOLDER,
      withArgs: 0,
    });
    return probe.slice(0, -2); // without the probe's `0}`
  }

  /**
   * A call's text up to its arguments' value: the same string as long as
   * the method and the envelope stay the same, so a transport that escapes
   * it can reuse the escape (`Session.sendJoined`).
   */
  #head(method: string): string {
    // Calls without credentials (back over accepted connections) start the
    // same on every connection: kept once per kite, not per connection.
    if (this.auth === null) {
      const shared = anonymousHead(this.#kite.identity, method);
      if (shared !== undefined) return shared;
    }
    const envelope = this.#envelope();
    const last = this.#lastHead;
    if (last?.method === method && last.envelope === envelope) return last.text;
    const text = headText(method, envelope);
    this.#lastHead = { method, envelope, text };
    return text;
  }

  get #retry(): Backoff {
    return this.#backoff ??= new Backoff(this.#options.reconnect);
  }

  #forget(id: number): PendingCall | undefined {
    const pending = this.#pending.get(id);
    if (!pending) return undefined;
    this.#pending.delete(id);
    if (pending.timer !== undefined) {
      this.#kite.clock.clearTimeout(pending.timer);
    }
    pending.off?.();
    return pending;
  }

  /** Tells the remote that the call with response callback `id` is given up. */
  #sendCancel(id: number): void {
    const session = this.#session;
    if (!session || session.closed) return;
    try {
      this.#send(
        session,
        JSON.stringify({
          method: CANCEL_METHOD,
          arguments: [{
            kite: this.#kite.identity,
            authentication: this.auth,
            withArgs: [id],
          }],
          callbacks: {},
        }),
      );
    } catch (err) {
      this.#kite.logger.debug(`kite.cancel not sent: ${err}`);
    }
  }

  /** Resolves a call from the arguments the remote passed to its response callback (docs/protocol.md §3.2). */
  #settle(id: number, reply: unknown[]): void {
    const pending = this.#forget(id);
    if (!pending) return;
    const first = reply[0];
    if (
      reply.length === 1 && first !== null && typeof first === "object" &&
      !Array.isArray(first) &&
      ("error" in first || "result" in first)
    ) {
      const { error, result } = first as { error?: unknown; result?: unknown };
      if (error !== undefined && error !== null) {
        return this.#fail(pending, error);
      }
      return pending.resolve(result ?? null);
    }
    // kite.js peers answer positionally: (err, result), or just (err) when
    // they fail (docs/protocol.md §12 #8).
    if (
      reply.length === 2 || (reply.length === 1 && first === null) ||
      (reply.length === 1 && looksLikeError(first))
    ) {
      if (first !== null && first !== undefined) {
        return this.#fail(pending, first);
      }
      return pending.resolve(reply[1] ?? null);
    }
    pending.reject(
      new KiteError(
        "invalidResponse",
        "Server has sent invalid response arguments",
      ),
    );
  }

  #fail(pending: PendingCall, error: unknown): void {
    const err = KiteError.from(error);
    if (isTokenExpired(err)) {
      for (const fn of this.#onTokenExpireFns ?? []) this.#guard(fn);
    }
    pending.reject(err);
  }

  /**
   * @internal Answers a call through the remote's response callback `id`.
   * A successful reply whose result is null, a number, a string or a
   * boolean cannot hold a function, so it is not scrubbed. A connection
   * that is gone or closes on this send (its peer stopped reading) is not
   * an error of the caller: false, logged.
   * @throws {KiteError} when the reply cannot be encoded (a cycle, a
   * BigInt, too many callbacks), so the kite can answer with an error.
   */
  reply(id: number, reply: CallReply): boolean {
    const { error, result } = reply;
    const plain = error === null &&
      (result === null || typeof result === "number" ||
        typeof result === "string" || typeof result === "boolean");
    if (!plain) return this.#sendToCallback(id, [reply]);
    const session = this.#session;
    if (!session || session.closed) return this.#notSent(id, session);
    const text = encodeResultMessage(id, result);
    // Only a string result can hold anything but ASCII.
    this.#kite.metrics?.sent(
      typeof result === "string" ? utf8Length(text) : text.length,
    );
    return session.send(text) || this.#notSent(id, session);
  }

  /**
   * Sends a call to callback `id` of the remote (a function it passed us).
   * Never throws, so timers and listeners may call it: false when the
   * connection is gone or closed on this send (see `onDisconnect`), or when
   * `args` cannot be sent (logged).
   */
  callRemote(id: number, args: unknown[], envelope = ""): boolean {
    try {
      return this.#sendToCallback(id, args, envelope);
    } catch (err) {
      this.#kite.logger.warning(
        `callback ${id} not sent: ${(err as Error).message}`,
      );
      return false;
    }
  }

  /** `envelope`: fields after `callbacks` (the callback span's trace context). */
  #sendToCallback(id: number, args: unknown[], envelope = ""): boolean {
    const session = this.#session;
    if (!session || session.closed) return this.#notSent(id, session);
    const callbacks: Callbacks = {};
    const scrubbed = scrub(args, [], callbacks, this.#register) as unknown[];
    const text = encodeMessage(id, scrubbed, callbacks);
    return this.#send(
      session,
      envelope === "" ? text : text.slice(0, -1) + envelope + "}",
    ) || this.#notSent(id, session);
  }

  /** Sends `text` on `session`, counting its bytes when metrics are on. */
  #send(session: Session, text: string): boolean {
    this.#kite.metrics?.sent(utf8Length(text));
    return session.send(text);
  }

  /** UTF-8 bytes of a call's head, counted once while it stays the same. */
  #headBytes(head: string): number {
    if (head !== this.#countedHead) {
      this.#countedHead = head;
      this.#countedHeadBytes = utf8Length(head);
    }
    return this.#countedHeadBytes;
  }

  #notSent(id: number, session: Session | undefined): false {
    const why = session?.closeInfo?.reason ?? "connection closed";
    this.#kite.logger.debug(`callback ${id} not sent: ${why}`);
    return false;
  }

  /**
   * Registers a local function being sent, within `maxCallbacks`. A function
   * already registered keeps its id and costs nothing.
   * @throws {KiteError} `sendError` when the table is full.
   */
  #register = (fn: AnyFunction, fresh?: boolean): number => {
    const table = this.#callbacks;
    const before = table.size;
    const id = table.register(fn, fresh);
    const max = this.#kite.config.maxCallbacks;
    if (table.size > before && this.callbackCount > max) {
      table.delete(id);
      throw tooManyCallbacks(max);
    }
    return id;
  };

  /** Remembers `span` as where the functions a call passed were sent from. */
  #noteOrigins(callbacks: Callbacks, responseId: number, span: ClientSpan) {
    const origins = this.#origins ??= new WeakMap();
    for (const key in callbacks) {
      const fn = Number(key) === responseId
        ? undefined
        : this.#callbacks.get(Number(key));
      if (fn) origins.set(fn, span);
    }
  }

  #remoteFunction = (id: number): AnyFunction => this.#stub(id, undefined);

  /**
   * The local stand-in for the remote's function `id`; `origin` is the
   * span of the call whose reply brought it, when tracing.
   */
  #stub(id: number, origin: ClientSpan | undefined): AnyFunction {
    return (...args: unknown[]) => {
      const span = this.#kite.tracer?.callback(
        this.#session?.transport ?? "none",
        origin?.origin(),
      );
      if (!span) return this.callRemote(id, args);
      const sent = this.callRemote(id, args, span.envelope);
      span.end(sent ? undefined : { type: "sendError" });
      return sent;
    };
  }

  readonly #handler: SessionHandler = {
    onMessage: (text) => this.#receive(text),
    onClose: (info) => this.#detach(info),
  };

  #attach(session: Session): void {
    this.#session = session;
    if (this.#abort.signal.aborted) this.#abort = new AbortController();
    for (const fn of this.#onConnectFns ?? []) this.#guard(fn);
    this.#kite.notifyConnect(this);
  }

  #detach(info: CloseInfo): void {
    this.#session = undefined;
    this.#callbacks.clear();
    const error = new KiteError("disconnect", DISCONNECT_MESSAGE);
    for (const [id, pending] of this.#pending) {
      if (id === this.#sending) continue; // its send fails it
      if (pending.timer !== undefined) {
        this.#kite.clock.clearTimeout(pending.timer);
      }
      pending.off?.();
      this.#pending.delete(id);
      pending.reject(error);
    }
    this.#abort.abort(error);
    for (const fn of this.#onDisconnectFns ?? []) this.#guard(() => fn(info));
    this.#kite.notifyDisconnect(this);
    if (this.#reconnecting && !this.#closedByUser) {
      this.#reconnectTimer = this.#kite.clock.setTimeout(
        () => void this.dialForever(),
        this.#retry.next(),
      );
    }
  }

  #receive(text: string): void {
    const metrics = this.#kite.metrics;
    const maxDepth = this.#kite.config.maxJsonDepth;
    const call = this.#templates?.match(text, maxDepth);
    if (call !== undefined) {
      // The template's bytes are known: only the rest is scanned.
      metrics?.received(call.startBytes + utf8Length(text, call.startLength));
      const replyTo = call.replyTo;
      this.#kite.calls.serveCall(
        this,
        call.method,
        call.claimed,
        call.auth,
        call.withArgs,
        (reply) => this.reply(replyTo, reply),
        call.timeoutMs === undefined && call.traceparent === undefined
          ? undefined
          : {
            timeoutMs: call.timeoutMs,
            replyTo,
            traceparent: call.traceparent,
          },
      );
      return;
    }
    metrics?.received(utf8Length(text));
    if (exceedsJsonDepth(text, maxDepth)) {
      this.#kite.logger.warning(
        `closing connection: ${tooDeepReason(maxDepth)}`,
      );
      this.#session?.close(3400, tooDeepReason(maxDepth));
      return;
    }
    let msg;
    try {
      msg = decodeMessage(text);
    } catch (err) {
      // The peer speaks something that is not dnode: this connection is the only casualty.
      this.#kite.logger.warning(
        `closing connection: ${(err as Error).message}`,
      );
      this.#session?.close(3400, `invalid message: ${(err as Error).message}`);
      return;
    }
    if (typeof msg.method === "string") {
      // A plain call names one function, its response callback: the reply
      // goes to that id directly, with no callable stub made for it.
      const replyTo = responseCallbackOnly(msg.callbacks);
      if (replyTo === undefined) {
        unscrub(msg.arguments, msg.callbacks, this.#remoteFunction);
      } else {
        (this.#templates ??= new CallTemplates()).learn(
          text,
          msg.method,
          msg.arguments,
        );
      }
      this.#kite.calls.serveRequest(
        this,
        msg.method,
        msg.arguments,
        msg.callbacks,
        replyTo,
      );
      return;
    }
    const pending = this.#pending.get(msg.method);
    if (pending) {
      const origin = pending.span;
      unscrub(
        msg.arguments,
        msg.callbacks,
        origin ? (id) => this.#stub(id, origin) : this.#remoteFunction,
      );
      return this.#settle(msg.method, msg.arguments);
    }
    unscrub(msg.arguments, msg.callbacks, this.#remoteFunction);
    const fn = this.#callbacks.get(msg.method);
    if (!fn) {
      this.#kite.logger.debug(`unknown callback id ${msg.method} ignored`);
      return;
    }
    const tracer = this.#kite.tracer;
    if (tracer) {
      const span = tracer.called(
        this.#session?.transport ?? "none",
        parseTraceparent(msg.traceparent),
        this.#origins?.get(fn)?.origin(),
      );
      span.run(() =>
        this.#runCallback(fn, msg.arguments, (error) => span.end(error))
      );
      return;
    }
    this.#runCallback(fn, msg.arguments, undefined);
  }

  /** Runs a local function the remote called; `done` hears how it ended. */
  #runCallback(
    fn: AnyFunction,
    args: unknown[],
    done: ((error?: unknown) => void) | undefined,
  ): void {
    // guard() inlined: callbacks are a hot path (no closure per call).
    try {
      const out = fn(...args);
      if (isThenable(out)) {
        out.then(done, (err) => {
          done?.(err);
          this.#callbackFailed(err);
        });
        return;
      }
      done?.();
    } catch (err) {
      done?.(err);
      this.#callbackFailed(err);
    }
  }

  #callbackFailed(err: unknown): void {
    this.#kite.logger.warning(`callback failed: ${err}`);
  }

  /** Runs a listener of this connection; its failure is logged, never thrown. */
  #guard(fn: () => unknown): void {
    guard(fn, (err) => this.#kite.logger.warning(`listener failed: ${err}`));
  }
}

/**
 * The id of the only callback of a call when it is the response callback
 * (path `[0, "responseCallback"]`, docs/protocol.md §3.1), else `undefined`.
 */
function responseCallbackOnly(callbacks: Callbacks): number | undefined {
  const ids = Object.keys(callbacks);
  if (ids.length !== 1) return undefined;
  const path = callbacks[ids[0]];
  return path.length === 2 && (path[0] === 0 || path[0] === "0") &&
      path[1] === "responseCallback"
    ? Number(ids[0])
    : undefined;
}

/** A bare kite.js error object, `{type?, message}`. */
function looksLikeError(value: unknown): boolean {
  return value !== null && typeof value === "object" &&
    !Array.isArray(value) &&
    typeof (value as { message?: unknown }).message === "string";
}

function isTokenExpired(err: unknown): boolean {
  return err instanceof KiteError && err.type === "authenticationError" &&
    err.message.includes("token is expired");
}

/** The `sendError` of a call its session refused (closed, or closed by this send). */
function notSent(session: Session): KiteError {
  const why = session.closeInfo?.reason ?? "session is closed";
  return new KiteError("sendError", `Cannot send: ${why}`);
}
