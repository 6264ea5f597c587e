/**
 * A small metrics registry and its Prometheus text exposition (format
 * 0.0.4): counters, histograms and gauges read when scraped. Label values
 * are the caller's business to bound; every metric here is keyed by a
 * fixed list of label names.
 *
 * @module
 */

/** The content type of {@linkcode Registry.expose}'s text. */
export const EXPOSITION_CONTENT_TYPE =
  "text/plain; version=0.0.4; charset=utf-8";

/** Latency buckets, seconds: 0.5 ms to 10 s. */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  write(out: string[]): void;
}

/** One counter series: a number that only goes up. */
export interface CounterChild {
  /** Adds `n` (default 1). */
  inc(n?: number): void;
}

/** One histogram series. */
export interface HistogramChild {
  /** Records one observation. */
  observe(value: number): void;
}

/** A counter with labels. */
export class Counter {
  readonly #labels: readonly string[];
  readonly #series = new Map<string, { values: string[]; n: number }>();

  /** @internal Use {@linkcode Registry.counter}. */
  constructor(labels: readonly string[]) {
    this.#labels = labels;
  }

  /** The series for `values` (one per label name, in order), made on first use. */
  labels(...values: string[]): CounterChild {
    const key = values.join("\u0000");
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, s = { values, n: 0 });
    const series = s;
    return { inc: (n = 1) => void (series.n += n) };
  }

  /** Adds `n` to the series for `values`. */
  inc(values: string[], n = 1): void {
    this.labels(...values).inc(n);
  }

  /** @internal */
  write(name: string, out: string[]): void {
    for (const s of this.#series.values()) {
      out.push(`${name}${labelText(this.#labels, s.values)} ${num(s.n)}`);
    }
  }
}

/** A histogram with labels and fixed buckets. */
export class Histogram {
  readonly #labels: readonly string[];
  readonly #buckets: readonly number[];
  readonly #series = new Map<
    string,
    { values: string[]; counts: number[]; sum: number; count: number }
  >();

  /** @internal Use {@linkcode Registry.histogram}. */
  constructor(labels: readonly string[], buckets: readonly number[]) {
    this.#labels = labels;
    this.#buckets = buckets;
  }

  /** The series for `values`, made on first use. */
  labels(...values: string[]): HistogramChild {
    const key = values.join("\u0000");
    let s = this.#series.get(key);
    if (!s) {
      s = { values, counts: this.#buckets.map(() => 0), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    const series = s;
    const buckets = this.#buckets;
    return {
      observe: (v) => {
        // Counts are per bucket here; the exposition makes them cumulative.
        let i = 0;
        while (i < buckets.length && v > buckets[i]) i++;
        if (i < buckets.length) series.counts[i]++;
        series.sum += v;
        series.count++;
      },
    };
  }

  /** @internal */
  write(name: string, out: string[]): void {
    for (const s of this.#series.values()) {
      let acc = 0;
      for (let i = 0; i < this.#buckets.length; i++) {
        acc += s.counts[i];
        out.push(
          `${name}_bucket${
            labelText([...this.#labels, "le"], [
              ...s.values,
              num(this.#buckets[i]),
            ])
          } ${acc}`,
        );
      }
      out.push(
        `${name}_bucket${
          labelText([...this.#labels, "le"], [...s.values, "+Inf"])
        } ${s.count}`,
      );
      const l = labelText(this.#labels, s.values);
      out.push(`${name}_sum${l} ${num(s.sum)}`, `${name}_count${l} ${s.count}`);
    }
  }
}

/** What a gauge's collect function returns: label values and a value. */
export type GaugeSample = readonly [values: readonly string[], value: number];

/** Metrics of one process (or one kite), exposed together. */
export class Registry {
  readonly #families = new Map<string, Family>();

  /** A counter named `name` (ending in `_total`) with `labels`. */
  counter(name: string, help: string, labels: readonly string[] = []): Counter {
    const c = new Counter(check(name, labels));
    this.#add({
      name,
      help,
      type: "counter",
      write: (out) => c.write(name, out),
    });
    return c;
  }

  /** A histogram named `name` with `labels` and `buckets` (ascending). */
  histogram(
    name: string,
    help: string,
    labels: readonly string[] = [],
    buckets: readonly number[] = DEFAULT_LATENCY_BUCKETS,
  ): Histogram {
    for (let i = 1; i < buckets.length; i++) {
      if (!(buckets[i] > buckets[i - 1])) {
        throw new RangeError(`${name}: buckets must ascend`);
      }
    }
    const h = new Histogram(
      check(name, [...labels, "le"]).slice(0, -1),
      buckets,
    );
    this.#add({
      name,
      help,
      type: "histogram",
      write: (out) => h.write(name, out),
    });
    return h;
  }

  /** A gauge whose samples `collect` reads at each scrape. */
  gauge(
    name: string,
    help: string,
    labels: readonly string[],
    collect: () => Iterable<GaugeSample>,
  ): void {
    check(name, labels);
    this.#add({
      name,
      help,
      type: "gauge",
      write: (out) => {
        for (const [values, v] of collect()) {
          out.push(`${name}${labelText(labels, values)} ${num(v)}`);
        }
      },
    });
  }

  #add(f: Family): void {
    if (this.#families.has(f.name)) {
      throw new TypeError(`metric ${f.name} is registered twice`);
    }
    this.#families.set(f.name, f);
  }

  /** The Prometheus text exposition of every metric. */
  expose(): string {
    const out: string[] = [];
    for (const f of this.#families.values()) {
      out.push(
        `# HELP ${f.name} ${
          f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
        }`,
      );
      out.push(`# TYPE ${f.name} ${f.type}`);
      f.write(out);
    }
    return out.join("\n") + "\n";
  }

  /** `GET` answers with {@linkcode Registry.expose}; other methods get 405. */
  handle = (request: globalThis.Request): Response => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("use GET\n", {
        status: 405,
        headers: { allow: "GET" },
      });
    }
    return new Response(this.expose(), {
      headers: { "content-type": EXPOSITION_CONTENT_TYPE },
    });
  };
}

function check(name: string, labels: readonly string[]): readonly string[] {
  if (!NAME.test(name)) throw new TypeError(`invalid metric name ${name}`);
  for (const l of labels) {
    if (!LABEL.test(l) || l.startsWith("__")) {
      throw new TypeError(`invalid label name ${l} on ${name}`);
    }
  }
  return labels;
}

function labelText(
  names: readonly string[],
  values: readonly string[],
): string {
  if (names.length === 0) return "";
  const parts = names.map((n, i) =>
    `${n}="${
      String(values[i] ?? "").replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
        .replace(/"/g, '\\"')
    }"`
  );
  return `{${parts.join(",")}}`;
}

function num(v: number): string {
  return Number.isNaN(v)
    ? "NaN"
    : v === Infinity
    ? "+Inf"
    : v === -Infinity
    ? "-Inf"
    : String(v);
}
