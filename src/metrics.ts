// A small Prometheus text-format registry. Components register their metrics once at start-up and update them on
// the hot path with a property write or an array increment: no allocation, no string formatting until a scrape.
import assert from "node:assert/strict";

type Labels = Record<string, string>;

interface Metric {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  render(): string[];
}

function labelText(labels: Labels | undefined, extra?: Labels): string {
  const all = { ...labels, ...extra };
  const parts = Object.entries(all).map(
    ([key, value]) => `${key}="${value.replace(/["\\\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`))}"`,
  );
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

export class Counter {
  private readonly values = new Map<string, { labels: Labels | undefined; value: number }>();
  inc(amount = 1, labels?: Labels): void {
    assert.ok(amount >= 0, "a counter only goes up");
    const key = labels === undefined ? "" : JSON.stringify(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += amount;
    else this.values.set(key, { labels, value: amount });
  }
  get(labels?: Labels): number {
    return this.values.get(labels === undefined ? "" : JSON.stringify(labels))?.value ?? 0;
  }
  /** @internal */
  samples(): Array<{ labels: Labels | undefined; value: number }> {
    return [...this.values.values()];
  }
}

export class Gauge {
  private readonly values = new Map<string, { labels: Labels | undefined; value: number }>();
  private collector: (() => number) | undefined;
  set(value: number, labels?: Labels): void {
    const key = labels === undefined ? "" : JSON.stringify(labels);
    const entry = this.values.get(key);
    if (entry) entry.value = value;
    else this.values.set(key, { labels, value });
  }
  /** Reads the value at scrape time instead (e.g. a queue length). */
  collect(read: () => number): void {
    this.collector = read;
  }
  /** @internal */
  samples(): Array<{ labels: Labels | undefined; value: number }> {
    if (this.collector) return [{ labels: undefined, value: this.collector() }];
    return [...this.values.values()];
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(readonly bucketsUpperBounds: readonly number[]) {
    assert.ok(
      bucketsUpperBounds.every((b, i) => i === 0 || b > bucketsUpperBounds[i - 1]!),
      "buckets must increase",
    );
    this.counts = new Array<number>(bucketsUpperBounds.length).fill(0);
  }
  observe(value: number): void {
    this.sum += value;
    this.count += 1;
    for (let i = 0; i < this.bucketsUpperBounds.length; i++) {
      if (value <= this.bucketsUpperBounds[i]!) {
        this.counts[i]! += 1;
        return;
      }
    }
  }
  /** @internal */
  lines(name: string): string[] {
    const out: string[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bucketsUpperBounds.length; i++) {
      cumulative += this.counts[i]!;
      out.push(`${name}_bucket{le="${this.bucketsUpperBounds[i]}"} ${cumulative}`);
    }
    out.push(`${name}_bucket{le="+Inf"} ${this.count}`);
    out.push(`${name}_sum ${this.sum}`);
    out.push(`${name}_count ${this.count}`);
    return out;
  }
}

/** Latency buckets in seconds, from 100 µs to 10 s. */
export const LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  counter(name: string, help: string): Counter {
    const counter = new Counter();
    this.add({
      name,
      help,
      type: "counter",
      render: () => counter.samples().map((s) => `${name}${labelText(s.labels)} ${s.value}`),
    });
    return counter;
  }

  gauge(name: string, help: string): Gauge {
    const gauge = new Gauge();
    this.add({
      name,
      help,
      type: "gauge",
      render: () => gauge.samples().map((s) => `${name}${labelText(s.labels)} ${s.value}`),
    });
    return gauge;
  }

  histogram(name: string, help: string, buckets: readonly number[] = LATENCY_BUCKETS_SECONDS): Histogram {
    const histogram = new Histogram(buckets);
    this.add({ name, help, type: "histogram", render: () => histogram.lines(name) });
    return histogram;
  }

  /** The Prometheus text exposition format (version 0.0.4). */
  render(): string {
    const lines: string[] = [];
    for (const metric of this.metrics.values()) {
      lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} ${metric.type}`, ...metric.render());
    }
    return `${lines.join("\n")}\n`;
  }

  private add(metric: Metric): void {
    assert.ok(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(metric.name), `bad metric name ${metric.name}`);
    assert.ok(!this.metrics.has(metric.name), `metric ${metric.name} registered twice`);
    this.metrics.set(metric.name, metric);
  }
}
