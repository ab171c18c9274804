import { build, type Histogram } from 'hdr-histogram-js';
import { assert } from '../core/assert.js';

/**
 * Server counters for INFO stats: totals since start (or CONFIG RESETSTAT), operations per
 * second over the last few whole seconds, and write commit latency as a high dynamic range
 * histogram (microseconds, three significant digits: fixed memory however many writes run).
 *
 * The Prometheus endpoint (metrics.ts) needs counters that only go up, so CONFIG RESETSTAT
 * must not rewind what it exports: `totals()` adds back what every reset cleared, calls per
 * command are counted since start and never reset, and `watchWrites` hands each committed
 * write's latency to a watcher (the endpoint's histogram) as it happens.
 *
 * Time comes from the monotonic clock the server is given; nothing here reads a clock itself.
 */

const windowSeconds = 3;
const ringSize = 8;

/** Distinct names counted per command: the command table plus `unknown`, with room to spare. */
export const commandNamesMax = 512;
/** Watchers of committed writes (the metrics endpoint is one). */
const writeWatchersMax = 8;

/** The label of a command the dispatcher rejected before finding it (unknown, wrong arity). */
export const unknownCommandName = 'unknown';

/** The counters CONFIG RESETSTAT clears; `totals()` reports them as if it never had. */
const resettable = [
  'commandsProcessed',
  'connectionsReceived',
  'connectionsRejected',
  'netInputBytes',
  'netOutputBytes',
  'errorReplies',
  'protocolErrors',
  'writesCommitted',
  'keyspaceHits',
  'keyspaceMisses',
] as const;

export type CounterName = (typeof resettable)[number];
export type CounterTotals = Record<CounterName, number>;

class PerSecond {
  readonly #seconds = new Array<number>(ringSize).fill(-1);
  readonly #counts = new Array<number>(ringSize).fill(0);

  add(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    const slot = second % ringSize;
    if (this.#seconds[slot] !== second) {
      this.#seconds[slot] = second;
      this.#counts[slot] = 0;
    }
    this.#counts[slot]! += 1;
  }

  /** Average per second over the last `windowSeconds` whole seconds. */
  rate(nowMs: number): number {
    const current = Math.floor(nowMs / 1000);
    let total = 0;
    for (let back = 1; back <= windowSeconds; back++) {
      const second = current - back;
      const slot = ((second % ringSize) + ringSize) % ringSize;
      if (this.#seconds[slot] === second) total += this.#counts[slot]!;
    }
    return Math.round(total / windowSeconds);
  }

  reset(): void {
    this.#seconds.fill(-1);
    this.#counts.fill(0);
  }
}

export interface LatencySummary {
  count: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

export class ServerStats {
  commandsProcessed = 0;
  connectionsReceived = 0;
  connectionsRejected = 0;
  netInputBytes = 0;
  netOutputBytes = 0;
  errorReplies = 0;
  protocolErrors = 0;
  writesCommitted = 0;
  keyspaceHits = 0;
  keyspaceMisses = 0;
  /** What every CONFIG RESETSTAT cleared, per counter. */
  readonly #cleared = Object.fromEntries(resettable.map((name) => [name, 0])) as CounterTotals;
  /** Calls per command name since start (never reset). */
  readonly #calls = new Map<string, number>();
  readonly #writeWatchers: ((latencyMs: number) => void)[] = [];
  readonly #commands = new PerSecond();
  readonly #writes = new PerSecond();
  readonly #latency: Histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });

  /**
   * A command started. `name` is its command table name (lower case), or null when the
   * dispatcher answered it without running it (an unknown command, a wrong arity): those are
   * counted as `unknown`, so the names stay a fixed, small set.
   */
  recordCommand(nowMs: number, name: string | null = null): void {
    this.commandsProcessed++;
    this.#commands.add(nowMs);
    const label = name ?? unknownCommandName;
    const calls = this.#calls.get(label);
    if (calls === undefined) {
      assert(this.#calls.size < commandNamesMax, 'command names come from the command table');
      this.#calls.set(label, 1);
    } else {
      this.#calls.set(label, calls + 1);
    }
  }

  /** A write that committed, `latencyMs` after the server started it. */
  recordWrite(nowMs: number, latencyMs: number): void {
    this.writesCommitted++;
    this.#writes.add(nowMs);
    this.#latency.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
    for (const watcher of this.#writeWatchers) watcher(latencyMs);
  }

  /**
   * Calls `watcher` with the latency (ms) of every write that commits from now on, until the
   * returned function is called. Watchers run on the write path: they must be cheap.
   */
  watchWrites(watcher: (latencyMs: number) => void): () => void {
    assert(this.#writeWatchers.length < writeWatchersMax, 'too many write watchers');
    this.#writeWatchers.push(watcher);
    return () => {
      const index = this.#writeWatchers.indexOf(watcher);
      if (index >= 0) this.#writeWatchers.splice(index, 1);
    };
  }

  /** Every counter since start, CONFIG RESETSTAT notwithstanding (they only go up). */
  totals(): CounterTotals {
    const totals = { ...this.#cleared };
    for (const name of resettable) totals[name] += this[name];
    return totals;
  }

  /** Calls per command name since start, in first-seen order (never reset). */
  commandCalls(): ReadonlyMap<string, number> {
    return this.#calls;
  }

  opsPerSecond(nowMs: number): number {
    return this.#commands.rate(nowMs);
  }

  writesPerSecond(nowMs: number): number {
    return this.#writes.rate(nowMs);
  }

  commitLatency(): LatencySummary {
    const histogram = this.#latency;
    return {
      count: histogram.totalCount,
      p50Us: histogram.getValueAtPercentile(50),
      p99Us: histogram.getValueAtPercentile(99),
      p999Us: histogram.getValueAtPercentile(99.9),
      maxUs: histogram.maxValue,
    };
  }

  /** CONFIG RESETSTAT. */
  reset(): void {
    for (const name of resettable) {
      this.#cleared[name] += this[name];
      this[name] = 0;
    }
    this.#commands.reset();
    this.#writes.reset();
    this.#latency.reset();
  }
}
