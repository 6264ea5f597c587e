/**
 * A kite's metrics: what its method pipeline and connections record, and
 * what is read from them at each scrape. Hung off `Kite.serveCall` (every
 * served call answers through one `respond`) and `Client` (every call out
 * settles one promise), so handlers never see it.
 *
 * Label values are bounded: `method` is a registered name (or `unknown`),
 * `outcome` is `ok` or a `KiteError` type (others count as `genericError`),
 * client methods beyond {@linkcode MAX_CLIENT_METHODS} count as `other`.
 *
 * @module
 */
import { KiteError } from "../errors.ts";
import type { Auth } from "../protocol.ts";
import {
  type Counter,
  type CounterChild,
  type GaugeSample,
  type Histogram,
  type HistogramChild,
  Registry,
} from "./metrics.ts";

import { UNKNOWN_METHOD } from "./labels.ts";

export { UNKNOWN_METHOD };
/** Distinct remote method labels a kite records before using `other`. */
export const MAX_CLIENT_METHODS = 256;

/** What a connection tells the scrape about itself. */
export interface ConnectionSample {
  /** The transport (`websocket`, `xhr-polling`, …), `none` while not connected. */
  readonly transport: string;
  /** `accepted` or `dialed`. */
  readonly side: string;
  /** Calls waiting for a reply. */
  readonly pendingCalls: number;
  /** Local callbacks held for the remote (pending calls included). */
  readonly callbackCount: number;
}

/** Where the scrape reads the kite's current state. */
export interface KiteMetricsSource {
  /** Every open connection, accepted and dialed. */
  connections(): Iterable<ConnectionSample>;
  /** XHR sessions the SockJS endpoint holds. */
  xhrSessions(): number;
}

/**
 * The series of one method, looked up once per call by the method's name
 * (no key built per call): `ok` kept apart, errors by type on first use.
 */
class MethodSeries {
  readonly #count: Counter;
  readonly #latency: Histogram;
  readonly #method: string;
  readonly #okCount: CounterChild;
  readonly #okLatency: HistogramChild;
  readonly #failed = new Map<
    string,
    { count: CounterChild; latency: HistogramChild }
  >();

  constructor(count: Counter, latency: Histogram, method: string) {
    this.#count = count;
    this.#latency = latency;
    this.#method = method;
    this.#okCount = count.labels(method, "ok");
    this.#okLatency = latency.labels(method, "ok");
  }

  /** Counts one call ended with `outcome` that started at `start` (ms). */
  record(outcome: string, start: number): void {
    const seconds = (performance.now() - start) / 1000;
    if (outcome === "ok") {
      this.#okCount.inc();
      this.#okLatency.observe(seconds);
      return;
    }
    let s = this.#failed.get(outcome);
    if (!s) {
      s = {
        count: this.#count.labels(this.#method, outcome),
        latency: this.#latency.labels(this.#method, outcome),
      };
      this.#failed.set(outcome, s);
    }
    s.count.inc();
    s.latency.observe(seconds);
  }
}

/** Why a request was refused by a limit (the `limit` label). */
export type LimitName = "connection" | "kite" | "rate";

/** The metrics of one kite (`KITE_METRICS=1` or `config.metrics`). */
export class KiteMetrics {
  /** The registry `GET /kite/metrics` exposes; add your own metrics to it. */
  readonly registry: Registry;
  readonly #serverCount: Counter;
  readonly #serverLatency: Histogram;
  readonly #clientCount: Counter;
  readonly #clientLatency: Histogram;
  readonly #server = new Map<string, MethodSeries>();
  readonly #client = new Map<string, MethodSeries>();
  /** See {@linkcode KiteMetrics.#arrival}; -1 between turns. */
  #arrived = -1;
  readonly #turnEnded = () => void (this.#arrived = -1);
  /** Remote methods beyond {@linkcode MAX_CLIENT_METHODS}. */
  #clientOther: MethodSeries | undefined;
  readonly #bytesIn: CounterChild;
  readonly #bytesOut: CounterChild;
  readonly #authFailures: Counter;
  readonly #limited: Counter;

  /** Metrics read from `source` at each scrape, in `registry` (a new one by default). */
  constructor(source: KiteMetricsSource, registry: Registry = new Registry()) {
    this.registry = registry;
    const r = registry;
    this.#serverCount = r.counter(
      "kite_server_requests_total",
      "Calls served, by method and outcome (ok or the error type).",
      ["method", "outcome"],
    );
    this.#serverLatency = r.histogram(
      "kite_server_request_duration_seconds",
      "Time from a call's arrival to its reply, by method and outcome.",
      ["method", "outcome"],
    );
    this.#clientCount = r.counter(
      "kite_client_requests_total",
      "Calls made to other kites, by remote method and outcome.",
      ["method", "outcome"],
    );
    this.#clientLatency = r.histogram(
      "kite_client_request_duration_seconds",
      "Time from sending a call to its settling, by remote method and outcome.",
      ["method", "outcome"],
    );
    this.#bytesIn = r.counter(
      "kite_received_bytes_total",
      "UTF-8 bytes of dnode messages received on all connections (before any SockJS framing).",
    ).labels();
    this.#bytesOut = r.counter(
      "kite_sent_bytes_total",
      "UTF-8 bytes of dnode messages sent on all connections (before any SockJS framing).",
    ).labels();
    this.#authFailures = r.counter(
      "kite_auth_failures_total",
      "Calls refused for their credentials, by reason and credential type.",
      ["reason", "type"],
    );
    this.#limited = r.counter(
      "kite_limited_requests_total",
      "Calls refused with requestLimitError, by the limit that refused them.",
      ["limit"],
    );
    r.gauge(
      "kite_connections",
      "Open connections by transport and side.",
      ["transport", "side"],
      () => countBy(source.connections(), (c) => `${c.transport}\0${c.side}`),
    );
    r.gauge("kite_xhr_sessions", "Open XHR-polling sessions.", [], () => [[
      [],
      source.xhrSessions(),
    ]]);
    r.gauge(
      "kite_pending_calls",
      "Calls made by this kite still waiting for a reply.",
      [],
      () => [[[], sum(source.connections(), (c) => c.pendingCalls)]],
    );
    r.gauge(
      "kite_callbacks",
      "Local functions held for remotes to call (pending calls included).",
      [],
      () => [[[], sum(source.connections(), (c) => c.callbackCount)]],
    );
  }

  /**
   * Wraps a served call's `respond` so its reply is counted under `method`
   * (a registered name or {@linkcode UNKNOWN_METHOD}).
   */
  serving<R extends { error: unknown }>(
    method: string,
    respond: ((reply: R) => void) | undefined,
  ): (reply: R) => void {
    const series = this.#server.get(method) ?? this.#serverSeries(method);
    const start = this.#arrival();
    return (reply) => {
      respond?.(reply);
      series.record(outcomeOf(reply.error), start);
    };
  }

  /** Records a call out when `p` settles; returns `p`. */
  calling<T>(method: string, p: Promise<T>): Promise<T> {
    const series = this.#client.get(method) ?? this.#clientSeries(method);
    const start = performance.now();
    p.then(
      () => series.record("ok", start),
      (err) => series.record(outcomeOf(err), start),
    );
    return p;
  }

  /**
   * When the calls being served now reached the kite, ms: read once per
   * turn of the event loop (a batch frame's calls arrived together), so a
   * call's latency includes its wait behind the calls before it.
   */
  #arrival(): number {
    if (this.#arrived < 0) {
      this.#arrived = performance.now();
      queueMicrotask(this.#turnEnded);
    }
    return this.#arrived;
  }

  #serverSeries(method: string): MethodSeries {
    // Callers pass registered names or UNKNOWN_METHOD: the map is bounded.
    const s = new MethodSeries(this.#serverCount, this.#serverLatency, method);
    this.#server.set(method, s);
    return s;
  }

  #clientSeries(method: string): MethodSeries {
    if (this.#client.size >= MAX_CLIENT_METHODS) {
      return this.#clientOther ??= new MethodSeries(
        this.#clientCount,
        this.#clientLatency,
        "other",
      );
    }
    const s = new MethodSeries(this.#clientCount, this.#clientLatency, method);
    this.#client.set(method, s);
    return s;
  }

  /** Counts the UTF-8 bytes of a received message. */
  received(bytes: number): void {
    this.#bytesIn.inc(bytes);
  }

  /** Counts the UTF-8 bytes of a sent message. */
  sent(bytes: number): void {
    this.#bytesOut.inc(bytes);
  }

  /** Counts a call refused by a limit. */
  limited(limit: LimitName): void {
    this.#limited.inc([limit]);
  }

  /** Counts a call whose credentials `auth` failed with `err`. */
  authFailed(auth: Auth | null | undefined, err: unknown): void {
    const type = auth && typeof auth === "object" ? String(auth.type) : "";
    const known = type === "kiteKey" || type === "token" ||
      type === "sessionID";
    const text = err instanceof Error ? err.message : "";
    const reason = !auth || typeof auth !== "object"
      ? "missing"
      : !known
      ? "unknown_type"
      : /expired/i.test(text)
      ? "expired"
      : "invalid";
    this.#authFailures.inc([reason, known ? type : "other"]);
  }
}

/** `ok`, or the error's type when it is one of ours, else `genericError`. */
function outcomeOf(error: unknown): string {
  if (error === null || error === undefined) return "ok";
  const type = (error as { type?: unknown }).type;
  return typeof type === "string" && KiteError.isKnownType(type)
    ? type
    : "genericError";
}

function countBy<T>(items: Iterable<T>, key: (t: T) => string): GaugeSample[] {
  const counts = new Map<string, number>();
  for (const t of items) {
    const k = key(t);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => [k.split("\0"), n]);
}

function sum<T>(items: Iterable<T>, value: (t: T) => number): number {
  let n = 0;
  for (const t of items) n += value(t);
  return n;
}
