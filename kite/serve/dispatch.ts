/**
 * How a call reaches its method: the one dispatch path of the Deno `Kite`
 * and the page's `BrowserKite`. It reads the options object, answers
 * `kite.cancel`, counts and traces the call (when the kite has metrics or
 * a tracer), applies the concurrency limits, authenticates on accepted
 * connections, runs the method's and the kite's handlers and replies.
 * Runtime-neutral: what needs a process (listening, kite.key, Kontrol)
 * stays in `kite.ts`, so the browser build reaches none of it.
 *
 * @module
 */
import type { Client } from "../client.ts";
import type { Callbacks } from "../dnode/mod.ts";
import { KiteError } from "../errors.ts";
import { guard, isThenable } from "../guard.ts";
import { tooManyKiteRequests, tooManyRequests } from "../limits.ts";
import type { FinalFunc, Handler, Method } from "../method.ts";
import { UNKNOWN_METHOD } from "../observe/labels.ts";
import {
  parseTraceparent,
  TRACEPARENT_FIELD,
  TRACESTATE_FIELD,
  wireTracestate,
} from "../observe/trace_context.ts";
import {
  type Auth,
  identityFromJSON,
  type KiteIdentity,
  makeIdentity,
  responseCallbackId,
} from "../protocol.ts";
import {
  callArguments,
  newRequestId,
  replyToCall,
  Request,
} from "../request.ts";
import {
  CANCEL_METHOD,
  connectionScope,
  ServedDeadlines,
  TIMEOUT_FIELD,
  wireTimeout,
  withScope,
} from "./deadline.ts";
import type {
  CallMeta,
  CallReply,
  CallServer,
  ServingKite,
} from "./serving_kite.ts";

/** What an authenticator returns for valid credentials. */
export interface AuthOutcome {
  /** The authenticated username. */
  username: string;
  /** Verified claims, if the credential had any. */
  claims?: Record<string, unknown>;
}

/** Checks the `authentication` field of accepted calls (docs/protocol.md §6). */
export interface RequestAuthenticator {
  /** Resolves for valid credentials; throws an `authenticationError` otherwise. */
  authenticate(auth: Auth | null | undefined): Promise<AuthOutcome>;
}

/** The kite a {@linkcode Dispatcher} serves calls for. */
export interface DispatchingKite extends ServingKite<Client> {
  /** Checks credentials of calls on accepted connections; a page has none. */
  readonly authenticator?: RequestAuthenticator;
}

/** Serves the calls of a kite's connections (see the module doc). */
export class Dispatcher implements CallServer<Client> {
  /** Registered methods by name. */
  readonly methods: Map<string, Method> = new Map();
  /** Handlers run before every method (after the method's own). */
  readonly pre: Handler[] = [];
  /** Handlers run after every method (after the method's own). */
  readonly post: Handler[] = [];
  /** Functions run after every call. */
  readonly final: FinalFunc[] = [];
  /** Called on the first request of an accepted connection. */
  readonly firstRequest: Set<(c: Client) => void> = new Set();

  readonly #kite: DispatchingKite;
  /** Requests being served, per connection (limit `maxConcurrentRequests`). */
  readonly #inFlight = new WeakMap<Client, number>();
  /** Calls served with a caller's deadline, for `kite.cancel`. */
  readonly #deadlines: ServedDeadlines<Client>;
  /** Requests being served over all connections (limit `maxKiteRequests`). */
  #serving = 0;

  /** A dispatcher for `kite`'s calls. */
  constructor(kite: DispatchingKite) {
    this.#kite = kite;
    this.#deadlines = new ServedDeadlines(kite.clock);
  }

  #authenticate(auth: Auth | null | undefined): Promise<AuthOutcome> {
    const authenticator = this.#kite.authenticator;
    if (!authenticator) {
      return Promise.reject(
        new KiteError("authenticationError", "this kite checks no credentials"),
      );
    }
    return authenticator.authenticate(auth);
  }

  /** Serves one incoming call (docs/protocol.md §3.4). */
  serveRequest(
    client: Client,
    method: string,
    args: unknown[],
    callbacks: Callbacks,
    replyTo?: number,
  ): void {
    const options = args.length === 1 ? args[0] : undefined;
    if (
      options === null || typeof options !== "object" || Array.isArray(options)
    ) {
      this.#rejectMalformed(client, method, callbacks);
      return;
    }
    const o = options as Record<string, unknown>;
    // Replies go through client.reply (not the unscrubbed stub), which
    // throws for a result it cannot encode, so #reply can answer an error.
    const replyId = replyTo ?? responseCallbackId(callbacks);
    const respond: ((reply: CallReply) => void) | undefined =
      replyId !== undefined
        ? (reply) => client.reply(replyId, reply)
        : undefined;
    const timeoutMs = wireTimeout(o[TIMEOUT_FIELD]);
    const traceparent = o[TRACEPARENT_FIELD] === undefined
      ? undefined
      : parseTraceparent(o[TRACEPARENT_FIELD]);
    const meta: CallMeta | undefined = timeoutMs === undefined
      ? undefined
      : { timeoutMs, replyTo: replyTo ?? responseCallbackId(callbacks) };
    this.serveCall(
      client,
      method,
      identityFromJSON(o.kite) ?? makeIdentity({}),
      o.authentication as Auth | null | undefined,
      o.withArgs,
      respond,
      traceparent === undefined ? meta : {
        ...meta,
        traceparent,
        tracestate: wireTracestate(o[TRACESTATE_FIELD]),
      },
    );
  }

  /**
   * @internal Serves a call whose options object is already read: the
   * identity the caller claims (a fresh object: the request may keep it),
   * its credentials, `withArgs` as sent, and where the reply goes.
   */
  serveCall(
    client: Client,
    method: string,
    claimed: KiteIdentity,
    auth: Auth | null | undefined,
    w: unknown,
    respond: ((reply: CallReply) => void) | undefined,
    meta?: CallMeta,
  ): void {
    if (client.side === "accepted" && client.remote === undefined) {
      client.remote = claimed;
      for (const fn of this.firstRequest) this.#safely(() => fn(client));
    }
    if (method === CANCEL_METHOD) {
      // No reply: the caller has given up on the call it names.
      this.#deadlines.cancel(client, Array.isArray(w) ? w[0] : w);
      return;
    }
    const m = this.methods.get(method);
    // Every outcome below answers through respond: counting there sees them all.
    if (this.#kite.metrics) {
      respond = this.#kite.metrics.serving(
        m ? method : UNKNOWN_METHOD,
        respond,
      );
    }
    const tracer = this.#kite.tracer;
    if (tracer) {
      const span = tracer.server(
        m ? method : UNKNOWN_METHOD,
        claimed,
        client.session?.transport ?? "none",
        meta?.traceparent,
        meta?.tracestate,
      );
      const inner = respond;
      const reply = (reply: CallReply) => {
        try {
          inner?.(reply);
        } finally {
          span.end(reply.error);
        }
      };
      span.run(() =>
        this.#dispatch(client, method, m, claimed, auth, w, reply, meta, span)
      );
      return;
    }
    this.#dispatch(
      client,
      method,
      m,
      claimed,
      auth,
      w,
      respond,
      meta,
      meta?.traceparent,
    );
  }

  #dispatch(
    client: Client,
    method: string,
    m: Method | undefined,
    claimed: KiteIdentity,
    auth: Auth | null | undefined,
    w: unknown,
    respond: ((reply: CallReply) => void) | undefined,
    meta: CallMeta | undefined,
    trace: { readonly traceId: string } | undefined,
  ): void {
    if (!m) {
      respond?.({
        error: {
          type: "methodNotFound",
          message: `Method not found: ${method}`,
          code: "",
          id: "",
        },
        result: null,
      });
      return;
    }
    const busy = this.#inFlight.get(client) ?? 0;
    if (
      busy >= this.#kite.config.maxConcurrentRequests ||
      this.#serving >= this.#kite.config.maxKiteRequests
    ) {
      // Shed fast: a pool takes requestLimitError as "try another instance".
      const err = busy >= this.#kite.config.maxConcurrentRequests
        ? tooManyRequests(this.#kite.config.maxConcurrentRequests)
        : tooManyKiteRequests(this.#kite.config.maxKiteRequests);
      err.id = newRequestId();
      this.#kite.metrics?.limited(
        busy >= this.#kite.config.maxConcurrentRequests ? "connection" : "kite",
      );
      this.#kite.logger.debug(`${method} refused: ${err.message}`);
      respond?.({ error: err.toJSON(), result: null });
      return;
    }
    const request = new Request({
      method,
      withArgs: callArguments(w),
      client,
      localKite: this.#kite,
      auth: auth ?? null,
      remoteKite: claimed,
      trace,
    });
    // A call sent with a timeout (0: cancellable, no deadline) is one its
    // caller may cancel; any other ends with its connection.
    const served = meta?.timeoutMs !== undefined
      ? this.#deadlines.begin(client, meta.replyTo, meta.timeoutMs)
      : undefined;
    if (served) request.scope = served;
    const scope = served ?? connectionScope(client.signal);
    if (this.#isPlain(m, client)) {
      // No hooks, limits or authentication: call the handler directly, and
      // reply at once when it returns a plain value (no promise, no hop).
      let result: unknown;
      try {
        result = withScope(scope, () => m.handler(request));
      } catch (err) {
        served?.end();
        this.#reply(request, respond, null, this.#failure(request, err));
        return;
      }
      if (!isThenable(result)) {
        served?.end();
        this.#reply(request, respond, result, undefined);
        return;
      }
      this.#inFlight.set(client, busy + 1);
      this.#serving++;
      Promise.resolve(result).then(
        (value) => this.#reply(request, respond, value, undefined),
        (err) =>
          this.#reply(request, respond, null, this.#failure(request, err)),
      ).finally(() => {
        served?.end();
        this.#settled(client);
      });
      return;
    }
    this.#inFlight.set(client, busy + 1);
    this.#serving++;
    withScope(scope, () => this.#run(m, request, respond)).finally(() => {
      served?.end();
      this.#settled(client);
    });
  }

  #settled(client: Client): void {
    this.#serving--;
    const left = (this.#inFlight.get(client) ?? 1) - 1;
    if (left > 0) this.#inFlight.set(client, left);
    else this.#inFlight.delete(client);
  }

  /** Whether a call of `m` runs nothing but its handler. */
  #isPlain(m: Method, client: Client): boolean {
    return m.bucket === undefined &&
      !(m.authenticate && client.side === "accepted") &&
      m.pre.length === 0 && m.post.length === 0 && m.final.length === 0 &&
      this.pre.length === 0 && this.post.length === 0 &&
      this.final.length === 0;
  }

  #failure(req: Request, err: unknown): KiteError {
    const error = KiteError.from(err);
    if (!error.id) error.id = req.id;
    if (!(err instanceof KiteError) || error.type === "genericError") {
      req.log.debug(`${req.method} failed: ${error.message}`);
    }
    return error;
  }

  /** @internal Requests of `client` being served now (for tests and soak checks). */
  requestsInFlight(client: Client): number {
    return this.#inFlight.get(client) ?? 0;
  }

  async #run(
    m: Method,
    req: Request,
    respond?: (reply: CallReply) => void,
  ): Promise<void> {
    let result: unknown = null;
    let error: KiteError | undefined;
    try {
      // Only the side that accepted the connection authenticates (docs/protocol.md §6.9).
      if (m.authenticate && req.client.side === "accepted") {
        let outcome: AuthOutcome;
        try {
          outcome = await this.#authenticate(req.auth);
        } catch (err) {
          this.#kite.metrics?.authFailed(req.auth, err);
          throw err;
        }
        req.username = outcome.username;
        req.claims = outcome.claims;
        if (req.client.remote) req.client.remote.username = outcome.username;
      }
      if (m.bucket && !m.bucket.take()) {
        this.#kite.metrics?.limited("rate");
        throw new KiteError(
          "requestLimitError",
          "The maximum request rate is exceeded.",
        );
      }
      for (const h of m.pre) await h(req);
      for (const h of this.pre) await h(req);
      result = await m.handler(req);
      for (const h of m.post) await h(req);
      for (const h of this.post) await h(req);
    } catch (err) {
      error = this.#failure(req, err);
    }
    for (const fn of m.final) {
      await this.#safelyAsync(() => fn(req, result, error));
    }
    for (const fn of this.final) {
      await this.#safelyAsync(() => fn(req, result, error));
    }
    this.#reply(req, respond, result, error);
  }

  /** Sends the reply of a call, if the caller asked for one. */
  #reply(
    req: Request,
    respond: ((reply: CallReply) => void) | undefined,
    result: unknown,
    error: KiteError | undefined,
  ): void {
    replyToCall(req, respond, result, error, this.#kite.logger);
  }

  /**
   * A call whose `arguments` is not `[options]` (this crashes a Go kite,
   * docs/protocol.md §3.4): answer through its response callback when one is named,
   * else drop it.
   */
  #rejectMalformed(client: Client, method: string, callbacks: Callbacks): void {
    const text =
      `invalid request for "${method}": arguments must hold exactly one options object`;
    const id = responseCallbackId(callbacks);
    if (id === undefined) return this.#kite.logger.warning(text);
    client.callRemote(id, [{
      error: new KiteError("argumentError", text).toJSON(),
      result: null,
    }]);
  }

  #safely(fn: () => unknown): void {
    guard(
      fn,
      (err) => this.#kite.logger.warning(`hook failed: ${describe(err)}`),
    );
  }

  async #safelyAsync(fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#kite.logger.warning(`final function failed: ${err}`);
    }
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
