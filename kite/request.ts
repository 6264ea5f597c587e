/**
 * What a handler receives (Go `kite.Request`).
 *
 * @module
 */
import { Args } from "./args.ts";
import type { Client } from "./client.ts";
import type { CallReply, ServingKite } from "./serve/serving_kite.ts";
import { KiteError } from "./errors.ts";
import type { CallScope } from "./serve/deadline.ts";
import type { Auth, KiteIdentity } from "./protocol.ts";
import { type Logger, withFields } from "./log.ts";

/** One incoming call. */
export class Request {
  /** Method name. */
  readonly method: string;
  /** The call's arguments (`withArgs`), with typed accessors. */
  readonly args: Args;
  /** The connection the call came on: call methods back on the caller with it. */
  readonly client: Client;
  /** The kite serving the call. */
  readonly localKite: ServingKite<Client>;
  /** Credentials the caller sent, if any. */
  readonly auth: Auth | null;
  /** The caller's identity as it claimed it. */
  readonly remoteKite: KiteIdentity;
  /**
   * The username the caller's credential proved, or `undefined` when the
   * call was not authenticated: the method or kite has authentication off,
   * or the call came on a connection this kite dialed (docs/protocol.md §6.9). Never
   * the claimed name, so a handler that trusts it cannot be lied to. Unlike
   * Go's `Request.Username`, which falls back to the claimed name.
   */
  username: string | undefined;
  /**
   * The username the caller *says* it has (`kite.username` of the call),
   * never verified: fine for greetings and logs, never for decisions.
   */
  readonly claimedUsername: string;
  /** Verified claims of the credential, when authenticated. */
  claims: Record<string, unknown> | undefined;
  /**
   * When the caller gives up, ms since the epoch (on this kite's clock),
   * for calls sent with a timeout; `undefined` otherwise. Calls the
   * handler makes to other kites carry the time left automatically.
   */
  deadline: number | undefined;
  #scope: CallScope | undefined;
  #log: Logger | undefined;
  readonly #trace: { readonly traceId: string } | undefined;

  /** The W3C trace id of the call, when it carried a trace context or was traced. */
  get traceId(): string | undefined {
    return this.#trace?.traceId;
  }

  /**
   * The kite's logger with this call's fields: request id, method, caller
   * and trace id. For handlers' own lines; the kite logs nothing per call
   * at INFO.
   */
  get log(): Logger {
    const r = this.remoteKite;
    return this.#log ??= withFields(this.localKite.logger, {
      requestId: this.id,
      method: this.method,
      caller: `${r.username}/${r.name}/${r.id}`,
      traceId: this.traceId,
    });
  }

  #id: string | undefined;

  /** @internal Built by the kite. */
  constructor(init: {
    /** @default {a new random id, made when first read} */
    id?: string;
    method: string;
    withArgs: unknown[];
    client: Client;
    localKite: ServingKite<Client>;
    auth: Auth | null;
    remoteKite: KiteIdentity;
    /**
     * The trace the call belongs to, when it carried one or is traced (its
     * id read only when asked for).
     */
    trace?: { readonly traceId: string };
  }) {
    this.#trace = init.trace;
    this.#id = init.id;
    this.method = init.method;
    this.args = new Args(init.withArgs, "withArgs");
    this.client = init.client;
    this.localKite = init.localKite;
    this.auth = init.auth;
    this.remoteKite = init.remoteKite;
    this.username = undefined;
    this.claimedUsername = init.remoteKite.username;
    this.claims = undefined;
    this.deadline = undefined;
  }

  /**
   * 16-hex-char request id, also sent in error replies. Made on first use:
   * most calls succeed and never need one.
   */
  get id(): string {
    return this.#id ??= newRequestId();
  }

  /**
   * Aborted when the caller disconnects and, for calls sent with a
   * timeout, when its deadline passes or the caller cancels the call.
   */
  get signal(): AbortSignal {
    return this.#scope?.signal ?? this.client.signal;
  }

  /** @internal Set by the kite for a call that came with a deadline. */
  set scope(scope: CallScope) {
    this.#scope = scope;
    if (Number.isFinite(scope.deadline)) this.deadline = scope.deadline;
  }
}

const HEX = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);

/** A random 16-hex-char request id (docs/protocol.md §3.3). */
export function newRequestId(): string {
  const b = crypto.getRandomValues(new Uint8Array(8));
  let s = "";
  for (let i = 0; i < 8; i++) s += HEX[b[i]];
  return s;
}

/**
 * The arguments of a call as its handler sees them: Go sends
 * `withArgs: null` for none; kite.js may send a bare scalar
 * (docs/protocol.md §3.1, §12 #6).
 */
export function callArguments(withArgs: unknown): unknown[] {
  return withArgs === undefined || withArgs === null
    ? []
    : Array.isArray(withArgs)
    ? withArgs
    : [withArgs];
}

/**
 * Sends the reply of a served call through `respond`, when the caller
 * asked for one. A result JSON cannot carry (BigInt, a cycle) is answered
 * with a `genericError`: the caller must not wait forever.
 */
export function replyToCall(
  req: Request,
  respond: ((reply: CallReply) => void) | undefined,
  result: unknown,
  error: KiteError | undefined,
  logger: Logger,
): void {
  if (!respond) return;
  try {
    respond(
      error
        ? { error: error.toJSON(), result: null }
        : { error: null, result: result === undefined ? null : result },
    );
  } catch (err) {
    const text = `reply to ${req.method} not sent: ${(err as Error).message}`;
    logger.warning(text);
    if (error) return;
    try {
      respond({
        error: new KiteError("genericError", text, { id: req.id }).toJSON(),
        result: null,
      });
    } catch (again) {
      logger.warning(`error reply to ${req.method} not sent: ${again}`);
    }
  }
}
