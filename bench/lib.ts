/**
 * Shared benchmark helpers: a latency recorder, a runner that keeps C operations in flight and
 * measures throughput and latency, temporary data directories, and output (a table, `--json`,
 * and ratio lines). Benchmarks are separate from tests: nothing here asserts a timing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { build, type Histogram } from 'hdr-histogram-js';

/** One measured configuration: a system at a concurrency level. */
export interface BenchResult {
  system: string;
  concurrency: number;
  /** Records made durable per second (an operation is one record). */
  opsPerSec: number;
  /** Median and 99th percentile latency of one record, from submission to durable. */
  p50Ms: number;
  p99Ms: number;
  /** Records covered by one fdatasync (or one SQLite commit), on average. */
  recordsPerSync: number;
}

export interface BenchReport {
  bench: string;
  results: BenchResult[];
}

/** How long and how much to run one configuration. */
export interface Budget {
  /** Stop starting operations after this long (in-flight ones still finish). */
  durationMs: number;
  /** Stop after this many operations even if time is left. */
  operationsMax: number;
  /** Run this long first without recording (page cache, JIT, file extents). */
  warmupMs: number;
}

export const budgetFull: Budget = { durationMs: 3_000, operationsMax: 2_000_000, warmupMs: 300 };
export const budgetQuick: Budget = { durationMs: 300, operationsMax: 20_000, warmupMs: 30 };

/**
 * Latencies in a high dynamic range histogram (hdr-histogram-js), kept in microseconds with
 * three significant digits, so memory stays fixed however many operations run.
 */
export class LatencyRecorder {
  readonly #histogram: Histogram;

  constructor() {
    this.#histogram = build({
      lowestDiscernibleValue: 1,
      highestTrackableValue: 60_000_000, // One minute, in microseconds; larger values resize.
      numberOfSignificantValueDigits: 3,
    });
  }

  recordMs(latencyMs: number): void {
    this.#histogram.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
  }

  get count(): number {
    return this.#histogram.totalCount;
  }

  percentileMs(percentile: number): number {
    return this.#histogram.getValueAtPercentile(percentile) / 1000;
  }
}

/** What one system is given for one configuration. */
export interface SystemRun {
  concurrency: number;
  budget: Budget;
  /** Bytes of one record's payload. */
  payloadBytes: number;
  /** An empty directory of its own, removed afterwards. */
  dir: string;
}

export interface Measurement {
  operations: number;
  elapsedMs: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export interface ConcurrentRun {
  concurrency: number;
  budget: Budget;
  /** One operation; `index` counts from 0. May be synchronous (then C only interleaves). */
  operation: (index: number) => Promise<unknown> | unknown;
  /** Called after the warm-up, just before the measured run starts (e.g. to read counters). */
  onMeasureStart?: () => void;
  /**
   * Time one operation in this many (default 1: every one). Timing an operation costs two
   * performance.now() calls and a histogram update, about as much as an in-memory read: a read
   * row that timed every operation would report the harness as much as the read. Sampled rows
   * time every Nth operation for the percentiles and count all of them for the throughput.
   */
  latencySampleEvery?: number;
}

async function runWorkers(
  run: ConcurrentRun,
  durationMs: number,
  operationsMax: number,
  recorder: LatencyRecorder | null,
): Promise<{ operations: number; elapsedMs: number }> {
  const every = run.latencySampleEvery ?? 1;
  if (every > 1) return runWorkersSampled(run, { durationMs, operationsMax, every }, recorder);
  const start = performance.now();
  let started = 0;
  let completed = 0;
  let end = start;
  const worker = async (): Promise<void> => {
    while (started < operationsMax && performance.now() - start < durationMs) {
      const index = started++;
      const operationStart = performance.now();
      await run.operation(index);
      end = performance.now();
      recorder?.recordMs(end - operationStart);
      completed++;
    }
  };
  await Promise.all(Array.from({ length: run.concurrency }, worker));
  return { operations: completed, elapsedMs: end - start };
}

/** `runWorkers` timing one operation in `every` (the clock is read only then). */
async function runWorkersSampled(
  run: ConcurrentRun,
  limits: { durationMs: number; operationsMax: number; every: number },
  recorder: LatencyRecorder | null,
): Promise<{ operations: number; elapsedMs: number }> {
  const start = performance.now();
  let started = 0;
  let completed = 0;
  let now = start;
  const worker = async (): Promise<void> => {
    while (started < limits.operationsMax && now - start < limits.durationMs) {
      const index = started++;
      if (index % limits.every === 0) {
        const operationStart = performance.now();
        await run.operation(index);
        now = performance.now();
        recorder?.recordMs(now - operationStart);
      } else {
        await run.operation(index);
      }
      completed++;
    }
  };
  await Promise.all(Array.from({ length: run.concurrency }, worker));
  return { operations: completed, elapsedMs: performance.now() - start };
}

export interface SyncRun {
  budget: Budget;
  /** One synchronous operation; `index` counts from 0. */
  operation: (index: number) => unknown;
  /** Time one operation in this many (see ConcurrentRun.latencySampleEvery). */
  latencySampleEvery: number;
}

function runLoop(run: SyncRun, durationMs: number, recorder: LatencyRecorder | null) {
  const start = performance.now();
  let now = start;
  let index = 0;
  for (; index < run.budget.operationsMax && now - start < durationMs; index++) {
    if (index % run.latencySampleEvery === 0) {
      const operationStart = performance.now();
      run.operation(index);
      now = performance.now();
      recorder?.recordMs(now - operationStart);
    } else {
      run.operation(index);
    }
  }
  return { operations: index, elapsedMs: performance.now() - start };
}

/**
 * A plain loop of a synchronous operation (a synchronous API has no concurrency to offer):
 * nothing awaited between operations, the budget and warm-up as in `runConcurrent`.
 */
export function runSync(run: SyncRun): Measurement {
  runLoop(run, run.budget.warmupMs, null);
  const recorder = new LatencyRecorder();
  const { operations, elapsedMs } = runLoop(run, run.budget.durationMs, recorder);
  return {
    operations,
    elapsedMs,
    opsPerSec: elapsedMs > 0 ? (operations * 1000) / elapsedMs : 0,
    p50Ms: recorder.percentileMs(50),
    p99Ms: recorder.percentileMs(99),
  };
}

/**
 * Keeps `concurrency` operations in flight until the budget runs out, after a warm-up that is
 * not recorded, and reports throughput and latency percentiles.
 */
export async function runConcurrent(run: ConcurrentRun): Promise<Measurement> {
  if (!Number.isInteger(run.concurrency) || run.concurrency < 1) {
    throw new Error(`concurrency must be a positive integer, got ${run.concurrency}`);
  }
  const { budget } = run;
  await runWorkers(run, budget.warmupMs, budget.operationsMax, null);
  run.onMeasureStart?.();
  const recorder = new LatencyRecorder();
  const { operations, elapsedMs } = await runWorkers(
    run,
    budget.durationMs,
    budget.operationsMax,
    recorder,
  );
  return {
    operations,
    elapsedMs,
    opsPerSec: elapsedMs > 0 ? (operations * 1000) / elapsedMs : 0,
    p50Ms: recorder.percentileMs(50),
    p99Ms: recorder.percentileMs(99),
  };
}

/** Runs `body` with a fresh directory under os.tmpdir() and removes it afterwards. */
export async function withTemporaryDirectory<T>(
  prefix: string,
  body: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `syncwal-bench-${prefix}-`));
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function formatNumber(value: number, fractionDigits: number): string {
  return value.toLocaleString('en-US', {
    minimumFractionDigits: fractionDigits,
    maximumFractionDigits: fractionDigits,
  });
}

/** The results as an aligned text table. */
export function formatTable(results: readonly BenchResult[]): string {
  const header = ['system', 'c', 'records/sync', 'ops/s', 'p50 ms', 'p99 ms'];
  const rows = results.map((result) => [
    result.system,
    String(result.concurrency),
    formatNumber(result.recordsPerSync, 1),
    formatNumber(result.opsPerSec, 0),
    formatNumber(result.p50Ms, 3),
    formatNumber(result.p99Ms, 3),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  // The first column (names) is left-aligned, the numbers right-aligned.
  const pad = (cell: string, column: number): string =>
    column === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[column]!);
  const line = (cells: readonly string[]): string => cells.map(pad).join('  ');
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export interface Ratio {
  label: string;
  numerator: number;
  denominator: number;
  /** Printed as "(target >= N)" with a verdict, when given. */
  targetMin?: number;
  /** Digits after the point; 2 by default. */
  fractionDigits?: number;
}

/** "syncwal / fdatasync-loop at c=1: 0.93x (target >= 0.8x: met)". */
export function formatRatio(ratio: Ratio): string {
  const value = ratio.denominator > 0 ? ratio.numerator / ratio.denominator : Number.NaN;
  const digits = ratio.fractionDigits ?? 2;
  let text = `${ratio.label}: ${formatNumber(value, digits)}x`;
  if (ratio.targetMin !== undefined) {
    const verdict = value >= ratio.targetMin ? 'met' : 'NOT met';
    text += ` (target >= ${ratio.targetMin}x: ${verdict})`;
  }
  return text;
}

/** "syncwal records/s at c=256: 181,234 (target >= 150,000: met)". */
export function formatTarget(label: string, value: number, targetMin: number): string {
  const verdict = value >= targetMin ? 'met' : 'NOT met';
  const target = formatNumber(targetMin, 0);
  return `${label}: ${formatNumber(value, 0)} (target >= ${target}: ${verdict})`;
}

export function findResult(
  results: readonly BenchResult[],
  system: string,
  concurrency: number,
): BenchResult | undefined {
  return results.find((result) => result.system === system && result.concurrency === concurrency);
}

/**
 * Writes the report: in JSON mode exactly one JSON object on stdout (notes and ratios go to
 * stderr so stdout stays parseable); otherwise the table, then the notes and ratio lines.
 */
export function printReport(
  report: BenchReport,
  lines: readonly string[],
  options: { json: boolean },
): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    for (const line of lines) process.stderr.write(`${line}\n`);
    return;
  }
  console.log(`\n${report.bench}\n`);
  console.log(formatTable(report.results));
  if (lines.length > 0) console.log(`\n${lines.join('\n')}`);
}

/** Progress for a human; silent in JSON mode except on stderr. */
export function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}
