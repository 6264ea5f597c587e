/**
 * A proxy kite's metrics, beside its kite's on `GET /kite/metrics` (with
 * `KITE_METRICS=1`): kites registered, what each has open and has
 * forwarded (read from the registry at each scrape, so a kite that left
 * leaves no series behind), bytes forwarded in all, and refusals by reason.
 *
 * @module
 */
import type { CounterChild, Registry } from "../kite/observe/metrics.ts";
import type { ProxyRegistry } from "./registry.ts";

/** Why the proxy refused a caller. */
export type Refusal =
  | "unknown_kite"
  | "proxy_full"
  | "kite_full"
  | "caller_full";

/** The proxy's metric families, registered on the kite's registry. */
export class ProxyMetrics {
  readonly #toKite: CounterChild;
  readonly #toCaller: CounterChild;
  readonly #refused: Record<Refusal, CounterChild>;

  /** Registers the families on `registry`, reading kites from `kites`. */
  constructor(registry: Registry, kites: ProxyRegistry<unknown>) {
    registry.gauge(
      "kite_proxy_registered_kites",
      "Kites registered with this proxy now.",
      [],
      () => [[[], kites.size]],
    );
    registry.gauge(
      "kite_proxy_kite_open",
      "Callers' connections and requests open to each kite now.",
      ["kite"],
      () => [...kites.values()].map((k) => [[k.id], k.open]),
    );
    registry.gauge(
      "kite_proxy_kite_forwarded",
      "Connections and requests forwarded to each kite since it registered.",
      ["kite"],
      () => [...kites.values()].map((k) => [[k.id], k.forwarded]),
    );
    registry.gauge(
      "kite_proxy_kite_bytes",
      "Bytes forwarded for each kite since it registered, by direction.",
      ["kite", "direction"],
      () =>
        [...kites.values()].flatMap((k) => [
          [[k.id, "to_kite"], k.bytesIn] as const,
          [[k.id, "to_caller"], k.bytesOut] as const,
        ]),
    );
    const bytes = registry.counter(
      "kite_proxy_bytes_total",
      "Bytes forwarded through this proxy, by direction.",
      ["direction"],
    );
    this.#toKite = bytes.labels("to_kite");
    this.#toCaller = bytes.labels("to_caller");
    const refused = registry.counter(
      "kite_proxy_refused_total",
      "Callers refused, by reason.",
      ["reason"],
    );
    this.#refused = {
      unknown_kite: refused.labels("unknown_kite"),
      proxy_full: refused.labels("proxy_full"),
      kite_full: refused.labels("kite_full"),
      caller_full: refused.labels("caller_full"),
    };
  }

  /** Counts forwarded bytes. */
  bytes(toKite: number, toCaller: number): void {
    if (toKite) this.#toKite.inc(toKite);
    if (toCaller) this.#toCaller.inc(toCaller);
  }

  /** Counts a refusal. */
  refused(reason: Refusal): void {
    this.#refused[reason].inc();
  }
}
