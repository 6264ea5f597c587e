/**
 * A registered method and its chainable settings (Go `kite.Method`).
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import type { KiteError } from "./errors.ts";
import type { Request } from "./request.ts";
import { TokenBucket } from "./throttle.ts";

/** Handles a call; its return value (or resolved value) is the result. */
export type Handler = (request: Request) => unknown;

/** Runs after a call whatever happened; cannot change the reply. */
export type FinalFunc = (
  request: Request,
  result: unknown,
  error: KiteError | undefined,
) => void | Promise<void>;

/**
 * A method of a kite. Returned by `kite.handle()`, so settings chain:
 * `kite.handle("square", fn).disableAuthentication().throttle(100, 10)`.
 */
export class Method {
  /** Method name. */
  readonly name: string;
  /** The handler. */
  readonly handler: Handler;
  /** Whether accepted calls must authenticate. */
  authenticate: boolean;
  /** Run before the handler, in order; a throw stops the call. */
  readonly pre: Handler[] = [];
  /** Run after the handler, in order; a throw turns the reply into an error. */
  readonly post: Handler[] = [];
  /** Run last, always. */
  readonly final: FinalFunc[] = [];
  /** Present when throttled. */
  bucket: TokenBucket | undefined;
  readonly #clock: Clock;

  /** @internal Use `kite.handle()`. */
  constructor(
    name: string,
    handler: Handler,
    authenticate: boolean,
    clock: Clock,
  ) {
    this.name = name;
    this.handler = handler;
    this.authenticate = authenticate;
    this.#clock = clock;
  }

  /**
   * True when running a call twice does no harm: pools that call this kite
   * learn it (`kite.idempotent`) and retry a call of it lost with its
   * connection on another instance.
   */
  isIdempotent = false;

  /** Declares the method safe to run twice (see {@linkcode Method.isIdempotent}). */
  idempotent(): this {
    this.isIdempotent = true;
    return this;
  }

  /** Lets calls through without credentials. */
  disableAuthentication(): this {
    this.authenticate = false;
    return this;
  }

  /**
   * Limits the call rate with a token bucket: one call allowed every
   * `fillIntervalMs` on average, bursts up to `capacity`. Excess calls get
   * `requestLimitError`.
   */
  throttle(fillIntervalMs: number, capacity: number): this {
    this.bucket = new TokenBucket(fillIntervalMs, capacity, this.#clock);
    return this;
  }

  /** Adds a handler run before the method. */
  preHandle(handler: Handler): this {
    this.pre.push(handler);
    return this;
  }

  /** Adds a handler run after the method. */
  postHandle(handler: Handler): this {
    this.post.push(handler);
    return this;
  }

  /** Adds a function run after everything, with the result or error. */
  finalFunc(fn: FinalFunc): this {
    this.final.push(fn);
    return this;
  }
}
