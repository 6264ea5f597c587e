/**
 * Kontrol's metrics, added to its kite's registry (so `/kite/metrics`
 * shows the kite's calls — `register`, `getKites` rates included — beside
 * these): registered kites by environment, watchers, and storage latency
 * per adapter and operation, measured by wrapping the storage.
 *
 * @module
 */
import type { KiteMetrics } from "../kite/observe/kite_metrics.ts";
import type { HistogramChild } from "../kite/observe/metrics.ts";
import type { Storage } from "../storage/storage.ts";

/** Environments named in `kontrol_registered_kites`; the rest count as `other`. */
export const MAX_ENVIRONMENT_LABELS = 50;

/** The storage calls timed; others pass through untimed. */
const TIMED: ReadonlySet<string> = new Set([
  "add",
  "update",
  "upsert",
  "upsertOwned",
  "delete",
  "get",
  "deleteStale",
  "deleteOlderThan",
  "deleteOwn",
  "getKeyFromId",
  "getKeyFromPublic",
  "addKey",
  "deleteKey",
  "listKeys",
]);

/** What the scrape reads of Kontrol. */
export interface KontrolMetricsSource {
  /** Environments of the kites this process supervises, one per kite. */
  environments(): Iterable<string>;
  /** Watchers open on this process. */
  watchers(): number;
}

/** Adds Kontrol's gauges to `metrics`. */
export function addKontrolMetrics(
  metrics: KiteMetrics,
  source: KontrolMetricsSource,
): void {
  const r = metrics.registry;
  r.gauge(
    "kontrol_registered_kites",
    "Kites this Kontrol process supervises, by environment.",
    ["environment"],
    () => {
      const counts = new Map<string, number>();
      for (const env of source.environments()) {
        const label = counts.has(env) || counts.size < MAX_ENVIRONMENT_LABELS
          ? env
          : "other";
        counts.set(label, (counts.get(label) ?? 0) + 1);
      }
      return [...counts].map(([env, n]) => [[env], n] as const);
    },
  );
  r.gauge("kontrol_watchers", "Open watchKites watchers.", [], () => [[
    [],
    source.watchers(),
  ]]);
}

/**
 * `storage`, with each call of a timed operation observed in
 * `kontrol_storage_duration_seconds{adapter, operation, outcome}`.
 */
export function timedStorage(storage: Storage, metrics: KiteMetrics): Storage {
  const h = metrics.registry.histogram(
    "kontrol_storage_duration_seconds",
    "Time of storage operations, by adapter, operation and outcome (ok or error).",
    ["adapter", "operation", "outcome"],
  );
  const adapter = storage.engine;
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(storage, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      let fn = wrapped.get(prop);
      if (fn) return fn;
      if (typeof prop === "string" && TIMED.has(prop)) {
        // Series made on first use: no empty error series per operation.
        let ok: HistogramChild | undefined;
        let failed: HistogramChild | undefined;
        fn = (...args: unknown[]) => {
          const start = performance.now();
          const took = () => (performance.now() - start) / 1000;
          return (value as (...a: unknown[]) => Promise<unknown>).apply(
            target,
            args,
          ).then(
            (v) => {
              (ok ??= h.labels(adapter, prop, "ok")).observe(took());
              return v;
            },
            (err) => {
              (failed ??= h.labels(adapter, prop, "error")).observe(took());
              throw err;
            },
          );
        };
      } else {
        fn = value.bind(target);
      }
      wrapped.set(prop, fn);
      return fn;
    },
  });
}
