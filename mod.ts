/**
 * Kite for Deno: micro-services that find and call each other.
 *
 * A {@linkcode Kite} is an RPC server and client in one object. Kites talk
 * SockJS/WebSocket with dnode messages, so functions can be passed as
 * arguments and called back across the wire, and they are wire-compatible
 * with the Go `koding/kite` and `kite.js`.
 *
 * @example
 * ```ts ignore
 * import { Kite } from "jsr:@kite/core";
 *
 * const math = new Kite("math", "1.0.0", { config: { disableAuthentication: true } });
 * math.handle("square", (r) => r.args.one().number() ** 2);
 * await math.serve({ port: 3636 });
 *
 * const me = new Kite("caller", "1.0.0");
 * const client = me.newClient("http://127.0.0.1:3636/kite");
 * await client.dial();
 * console.log(await client.tell("square", 4)); // 16
 * ```
 *
 * @module
 */
export { Kite } from "./kite/kite.ts";
export { Client } from "./kite/client.ts";
export { Request } from "./kite/request.ts";
export { Method } from "./kite/method.ts";
export { Args } from "./kite/args.ts";
export { KiteError } from "./kite/errors.ts";
export {
  configFromEnv,
  DEFAULT_CONFIG,
  parseGoDuration,
} from "./kite/config.ts";
export { ManualClock, systemClock } from "./kite/clock.ts";
export { createLogger, withFields } from "./kite/log.ts";
export { Backoff, DEFAULT_BACKOFF } from "./kite/backoff.ts";
export { KontrolClient } from "./kite/kontrol_client.ts";
export { TokenRenewer } from "./kite/auth/token_renewer.ts";
export { TokenBucket } from "./kite/throttle.ts";
export { DEFAULT_POOL_OPTIONS, KitePool } from "./kite/discovery/pool.ts";
export {
  PowerOfTwoChoices,
  RandomBalancer,
  RoundRobin,
} from "./kite/discovery/balancer.ts";
export { CircuitBreaker, DEFAULT_BREAKER } from "./kite/discovery/breaker.ts";
export {
  KiteMetrics,
  MAX_CLIENT_METHODS,
  UNKNOWN_METHOD,
} from "./kite/observe/kite_metrics.ts";
export {
  Counter,
  DEFAULT_LATENCY_BUCKETS,
  EXPOSITION_CONTENT_TYPE,
  Histogram,
  Registry as MetricsRegistry,
} from "./kite/observe/metrics.ts";
export {
  DEFAULT_RETRY_BUDGET,
  RetryBudget,
} from "./kite/discovery/retry_budget.ts";
export {
  identityProblem,
  kiteFromString,
  kiteToString,
  makeIdentity,
  makeQuery,
  QUERY_FIELDS,
} from "./kite/protocol.ts";

export type {
  AuthOutcome,
  HttpHandler,
  KiteOptions,
  RequestAuthenticator,
  ServeOptions,
} from "./kite/kite.ts";
export type {
  CallOptions,
  ClientOptions,
  ConnectionSide,
} from "./kite/client.ts";
export type { FinalFunc, Handler } from "./kite/method.ts";
export type {
  KiteErrorJSON,
  KiteErrorOptions,
  KiteErrorType,
} from "./kite/errors.ts";
export type { KiteConfig, LogFormat, LogLevel } from "./kite/config.ts";
export type {
  ConnectionSample,
  KiteMetricsSource,
  LimitName,
} from "./kite/observe/kite_metrics.ts";
export type {
  CallbackSpan,
  CallTracer,
  ClientSpan,
  ServerSpan,
} from "./kite/observe/call_tracer.ts";
export type { TraceParent } from "./kite/observe/trace_context.ts";
export type { LogFields, LoggerOptions } from "./kite/log.ts";
export type {
  CounterChild,
  GaugeSample,
  HistogramChild,
} from "./kite/observe/metrics.ts";
export type { Clock } from "./kite/clock.ts";
export type { BackoffOptions } from "./kite/backoff.ts";
export type { Logger } from "./kite/log.ts";
export type { SystemInfo } from "./kite/handlers.ts";
export type {
  CancelWatch,
  FoundKite,
  GetKitesOptions,
  RegisterHTTPOptions,
} from "./kite/kontrol_client.ts";
export type {
  GetTokenOptions,
  KontrolToken,
  WatchKitesOptions,
} from "./kite/kontrol_client.ts";
export type {
  KiteTunnel,
  RegisterToTunnelOptions,
} from "./kite/tunnel_client.ts";
export type {
  PoolCallOptions,
  PoolEvent,
  PoolFallback,
  PoolHost,
  PoolInstance,
  PoolOptions,
  PoolResult,
} from "./kite/discovery/pool.ts";
export type {
  Balanceable,
  Balancer,
  BalancerName,
} from "./kite/discovery/balancer.ts";
export type { BreakerOptions, BreakerState } from "./kite/discovery/breaker.ts";
export type { RetryBudgetOptions } from "./kite/discovery/retry_budget.ts";
export type { ClusterOptions } from "./kite/serve/cluster.ts";
export type {
  TokenRenewerOptions,
  TokenRenewerState,
} from "./kite/auth/token_renewer.ts";
export type { AnyFunction } from "./kite/dnode/scrub.ts";
export type { CallbackPath, Callbacks } from "./kite/dnode/message.ts";
export type {
  Auth,
  ContractQuery,
  ContractRef,
  KiteEvent,
  KiteIdentity,
  KiteWithToken,
  KontrolQuery,
  QueryField,
  RegisterResult,
} from "./kite/protocol.ts";
export type {
  CloseInfo,
  Session,
  TransportName,
} from "./kite/transport/session.ts";
export type { ClientTransport } from "./kite/transport/sockets/deno_dial.ts";
export type {
  CallMeta,
  CallReply,
  CallServer,
  ServingKite,
} from "./kite/serve/serving_kite.ts";
