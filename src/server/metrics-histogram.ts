import { assert } from '../core/assert.js';

/**
 * A fixed-bucket histogram for the write path, rendered in the Prometheus text format.
 *
 * Why not prom-client's Histogram here: its `observe` validates, hashes the (empty) label set
 * and builds a closure on every call, and a committed write is observed once per write. On
 * the development machine (2 cores, loaded), observing each write's commit latency added 0.85
 * to 1.35 µs to `ServerStats.recordWrite` with prom-client and 0.03 to 0.11 µs with this class,
 * where a whole SET costs the server 7 to 9 µs of CPU at pipeline 16. prom-client still renders
 * every other metric; this class renders only its own lines, in the same exposition format
 * (`_bucket{le="..."}` cumulative counts ending at `+Inf`, then `_sum` and `_count`).
 */

const metricNamePattern = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
/** Buckets per histogram: a bucket scan stays a short loop on the write path. */
export const histogramBucketsMax = 32;

export class BucketHistogram {
  readonly name: string;
  readonly help: string;
  readonly #bounds: Float64Array;
  /** Observations per bucket (not cumulative); the last one is `+Inf`. */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(options: { name: string; help: string; buckets: readonly number[] }) {
    const { name, help, buckets } = options;
    assert(metricNamePattern.test(name), `bad metric name ${name}`);
    assert(!/[\n\\]/.test(help), 'help is one plain line');
    assert(buckets.length > 0 && buckets.length <= histogramBucketsMax, 'bucket count');
    for (let index = 0; index < buckets.length; index++) {
      assert(Number.isFinite(buckets[index]), 'bucket bounds are finite');
      assert(index === 0 || buckets[index - 1]! < buckets[index]!, 'bucket bounds ascend');
    }
    this.name = name;
    this.help = help;
    this.#bounds = Float64Array.from(buckets);
    this.#counts = new Float64Array(buckets.length + 1);
  }

  /** Counts `value` in the first bucket whose upper bound is at least `value`. */
  observe(value: number): void {
    assert(value >= 0, 'observed values are durations and sizes');
    const bounds = this.#bounds;
    let index = 0;
    while (index < bounds.length && value > bounds[index]!) index++;
    this.#counts[index]! += 1;
    this.#sum += value;
    this.#count += 1;
  }

  get count(): number {
    return this.#count;
  }

  get sum(): number {
    return this.#sum;
  }

  /** The metric's lines: HELP, TYPE, the cumulative buckets, sum and count (no final newline). */
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    let cumulative = 0;
    for (let index = 0; index < this.#bounds.length; index++) {
      cumulative += this.#counts[index]!;
      lines.push(`${this.name}_bucket{le="${this.#bounds[index]}"} ${cumulative}`);
    }
    cumulative += this.#counts[this.#bounds.length]!;
    assert(cumulative === this.#count, 'every observation is in one bucket');
    lines.push(`${this.name}_bucket{le="+Inf"} ${cumulative}`);
    lines.push(`${this.name}_sum ${this.#sum}`, `${this.name}_count ${this.#count}`);
    return lines.join('\n');
  }
}
