import { build, type Histogram } from 'hdr-histogram-js';

/**
 * Server counters for INFO stats: totals since start (or CONFIG RESETSTAT), operations per
 * second over the last few whole seconds, and write commit latency as a high dynamic range
 * histogram (microseconds, three significant digits: fixed memory however many writes run).
 *
 * Time comes from the monotonic clock the server is given; nothing here reads a clock itself.
 */

const windowSeconds = 3;
const ringSize = 8;

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
  readonly #commands = new PerSecond();
  readonly #writes = new PerSecond();
  readonly #latency: Histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });

  recordCommand(nowMs: number): void {
    this.commandsProcessed++;
    this.#commands.add(nowMs);
  }

  /** A write that committed, `latencyMs` after the server started it. */
  recordWrite(nowMs: number, latencyMs: number): void {
    this.writesCommitted++;
    this.#writes.add(nowMs);
    this.#latency.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
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
    this.commandsProcessed = 0;
    this.connectionsReceived = 0;
    this.connectionsRejected = 0;
    this.netInputBytes = 0;
    this.netOutputBytes = 0;
    this.errorReplies = 0;
    this.protocolErrors = 0;
    this.writesCommitted = 0;
    this.keyspaceHits = 0;
    this.keyspaceMisses = 0;
    this.#commands.reset();
    this.#writes.reset();
    this.#latency.reset();
  }
}
