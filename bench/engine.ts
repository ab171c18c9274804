/**
 * The `engine` suite: one syncwal node on the real disk used as a key-value store, side by side
 * with better-sqlite3 doing the same work. Keys are 16 bytes over a 100k keyspace, visited in a
 * scrambled order; values are 100 bytes.
 *
 * - `syncwal-put`: `await node.put(key, value)` at 1, 16 and 256 concurrent writers; each put
 *   is one intent, concurrent puts share one write + fdatasync (records/sync = puts per sync).
 * - `better-sqlite3-put`: kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID, WAL,
 *   synchronous=FULL, INSERT OR REPLACE, one transaction per put.
 * - `better-sqlite3-batch100`: the same with 100 puts per transaction (for reference).
 * - `syncwal-get`: `await node.get(key)` over 100k loaded keys, at 1 (a tight loop) and 256.
 * - `syncwal-getSync`: `node.getSync(key)` (the same read without the promise) in a plain loop.
 * - `better-sqlite3-get`: a prepared SELECT over the same 100k keys, in a plain loop.
 *   Read rows time one operation in 16 for p50/p99 and count every one for ops/s (timing costs
 *   about as much as a read; see ConcurrentRun.latencySampleEvery).
 * - `syncwal-1m`: load, replay, checkpoint and memory at a million keys (bench/engine-million.ts);
 *   printed as figures under the table, and as `figures` in `--json`.
 */
import {
  type BenchResult,
  budgetFull,
  budgetQuick,
  findResult,
  formatRatio,
  formatTarget,
  printReport,
  progress,
  type SystemRun,
  withTemporaryDirectory,
} from './lib.js';
import type { SuiteOptions } from './log.js';
import { type EngineRun, valueBytes } from './engine-workload.js';
import { runSqliteBatch, runSqliteGet, runSqlitePut } from './engine-sqlite.js';
import {
  getLatencySampleEvery,
  runSyncwalGet,
  runSyncwalGetSync,
  runSyncwalPut,
} from './engine-syncwal.js';
import {
  millionKeys,
  millionKeysQuick,
  runMillion,
  type MillionFigures,
} from './engine-million.js';

interface EngineSystem {
  name: string;
  concurrencies: readonly number[];
  /** Printed under the table: how to read this system's rows. */
  note: string | null;
  run: (options: SystemRun) => Promise<EngineRun>;
}

/** A system that adds no figures to its rows. */
function rowsOnly(run: (options: SystemRun) => Promise<BenchResult>) {
  return async (options: SystemRun): Promise<EngineRun> => ({
    result: await run(options),
    figures: null,
  });
}

const sqliteSynchronousNote =
  'synchronous API, so concurrent callers would just run one after another; measured at c=1 ' +
  'only (c=16 and c=256 give the same number)';

export const engineSystems: readonly EngineSystem[] = [
  { name: 'syncwal-put', concurrencies: [1, 16, 256], note: null, run: runSyncwalPut },
  {
    name: 'better-sqlite3-put',
    concurrencies: [1],
    note: `better-sqlite3-put: one transaction (one WAL fsync) per put; ${sqliteSynchronousNote}`,
    run: rowsOnly(runSqlitePut),
  },
  {
    name: 'better-sqlite3-batch100',
    concurrencies: [1],
    note:
      'better-sqlite3-batch100: 100 puts per transaction; ops/s counts puts, p50/p99 are ' +
      'per transaction (for reference: a batching caller, not a like-for-like row)',
    run: rowsOnly(runSqliteBatch),
  },
  {
    name: 'syncwal-get',
    concurrencies: [1, 256],
    note:
      'syncwal-get / syncwal-getSync / better-sqlite3-get: reads, so records/sync is 0; ops/s ' +
      `counts every read, p50/p99 come from timing one read in ${getLatencySampleEvery} ` +
      '(timing each would cost about as much as the read itself); syncwal-get awaits ' +
      '`node.get` (C loops in flight), syncwal-getSync and better-sqlite3-get are plain ' +
      'synchronous loops',
    run: runSyncwalGet,
  },
  { name: 'syncwal-getSync', concurrencies: [1], note: null, run: runSyncwalGetSync },
  {
    name: 'better-sqlite3-get',
    concurrencies: [1],
    note: `better-sqlite3-get: prepared SELECT ... WHERE key = ?; ${sqliteSynchronousNote}`,
    run: rowsOnly(runSqliteGet),
  },
];

/** The name that selects the million-key section with --system. */
const millionSystem = 'syncwal-1m';

type Figures = Record<string, Record<string, number>>;

/** The lines the targets are about; a line is left out if a row or figure is missing. */
function targetLines(results: readonly BenchResult[], figures: Figures): string[] {
  const lines = putTargetLines(results);
  for (const concurrency of [1, 256]) {
    const get = findResult(results, 'syncwal-get', concurrency);
    if (get === undefined) continue;
    const label = `syncwal gets/s, await node.get at c=${concurrency}`;
    lines.push(formatTarget(label, get.opsPerSec, 1_000_000));
  }
  const getSync = findResult(results, 'syncwal-getSync', 1);
  if (getSync !== undefined) {
    lines.push(formatTarget('syncwal gets/s, node.getSync loop', getSync.opsPerSec, 1_000_000));
  }
  const sqliteGet = findResult(results, 'better-sqlite3-get', 1);
  if (getSync !== undefined && sqliteGet !== undefined) {
    lines.push(
      formatRatio({
        label: 'syncwal-getSync / better-sqlite3-get (no target)',
        numerator: getSync.opsPerSec,
        denominator: sqliteGet.opsPerSec,
      }),
    );
  }
  const replay = figures[millionSystem]?.['replayMBps'];
  if (replay !== undefined) {
    lines.push(formatTarget('syncwal replay MB/s (whole reopen)', replay, 100));
  }
  return lines;
}

function putTargetLines(results: readonly BenchResult[]): string[] {
  const lines: string[] = [];
  const put256 = findResult(results, 'syncwal-put', 256);
  const sqlitePut = findResult(results, 'better-sqlite3-put', 1);
  const sqliteBatch = findResult(results, 'better-sqlite3-batch100', 1);
  if (put256 !== undefined) {
    lines.push(formatTarget('syncwal puts/s at c=256', put256.opsPerSec, 100_000));
  }
  if (put256 !== undefined && sqlitePut !== undefined) {
    lines.push(
      formatRatio({
        label: 'syncwal-put c=256 / better-sqlite3-put c=1',
        numerator: put256.opsPerSec,
        denominator: sqlitePut.opsPerSec,
        targetMin: 20,
        fractionDigits: 1,
      }),
    );
  }
  if (put256 !== undefined && sqliteBatch !== undefined) {
    lines.push(
      formatRatio({
        label: 'syncwal-put c=256 / better-sqlite3-batch100 (no target)',
        numerator: put256.opsPerSec,
        denominator: sqliteBatch.opsPerSec,
      }),
    );
  }
  return lines;
}

function formatCount(value: number, fractionDigits = 0): string {
  return value.toLocaleString('en-US', {
    minimumFractionDigits: fractionDigits,
    maximumFractionDigits: fractionDigits,
  });
}

/** The million-key figures as lines (the replay target is in `targetLines`). */
function millionLines(figures: MillionFigures): string[] {
  const mb = (bytes: number) => formatCount(bytes / 1e6, 1);
  const keys = formatCount(figures.keys);
  return [
    `syncwal-1m: ${keys} keys of 16 bytes, ${valueBytes}-byte values, batches of 1,000 puts`,
    `  load: ${formatCount(figures.loadPutsPerSec)} puts/s (one batch in flight)`,
    `  memory after load: ${formatCount(figures.bytesPerKey)} bytes/key ` +
      `(heap ${formatCount(figures.heapBytesPerKey)} + array buffers ` +
      `${formatCount(figures.arrayBufferBytesPerKey)}); ` +
      `rss +${formatCount(figures.rssBytesPerKey)} bytes/key, ` +
      `rss ${mb(figures.rssAfterLoadBytes)} MB`,
    `  memory after replay: ${formatCount(figures.bytesPerKeyAfterReplay)} bytes/key, after ` +
      `the checkpoint that follows: ${formatCount(figures.bytesPerKeyAfterCheckpoint)} ` +
      '(heap + array buffers)',
    `  log: ${mb(figures.logBytes)} MB in ${figures.logSegments} segment(s) (used bytes: ` +
      'segment headers + frames, up to the last valid frame)',
    `  reopen (scan + replay + checkpoint worker start): ${formatCount(figures.reopenMs)} ms; ` +
      `reopen of a one-key node: ${formatCount(figures.reopenBaselineMs)} ms`,
    `  replay: ${formatCount(figures.replayMBps, 1)} MB/s of log over the whole reopen, ` +
      `${formatCount(figures.replayNetMBps, 1)} MB/s net of the one-key reopen (MB = 10^6 bytes)`,
    `  checkpoint after replay: ${formatCount(figures.checkpointMs)} ms, ` +
      `${formatCount(figures.checkpointKeysPerSec)} keys/s (no target)`,
    `  reopen from the checkpoint: ${formatCount(figures.reopenFromCheckpointMs)} ms, ` +
      `${formatCount(figures.checkpointLoadKeysPerSec)} keys/s (no target)`,
  ];
}

async function runRows(selected: readonly EngineSystem[], quick: boolean) {
  const budget = quick ? budgetQuick : budgetFull;
  const results: BenchResult[] = [];
  const figures: Figures = {};
  const failures: string[] = [];
  for (const system of selected) {
    for (const concurrency of system.concurrencies) {
      progress(`engine: ${system.name} c=${concurrency} ...`);
      try {
        const run = await withTemporaryDirectory(system.name, (dir) =>
          system.run({ concurrency, budget, payloadBytes: valueBytes, dir }),
        );
        results.push(run.result);
        if (run.figures !== null) figures[system.name] = run.figures;
      } catch (error: unknown) {
        const message = error instanceof Error ? error.message : String(error);
        failures.push(`${system.name} c=${concurrency}: FAILED: ${message}`);
        break; // The other levels of a failing system would fail the same way.
      }
    }
  }
  return { results, figures, failures };
}

async function runMillionSection(quick: boolean, failures: string[]) {
  const keys = quick ? millionKeysQuick : millionKeys;
  progress(`engine: ${millionSystem} (${keys} keys) ...`);
  try {
    return await runMillion(keys);
  } catch (error: unknown) {
    const message = error instanceof Error ? error.message : String(error);
    failures.push(`${millionSystem}: FAILED: ${message}`);
    return null;
  }
}

/** Runs the suite and prints its report; resolves with the process exit code. */
export async function runEngineSuite(options: SuiteOptions): Promise<number> {
  const known = [...engineSystems.map((system) => system.name), millionSystem];
  const unknown = (options.systems ?? []).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    progress(`engine: unknown system(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
    return 64;
  }
  const wanted = (name: string) => options.systems === null || options.systems.includes(name);
  const selected = engineSystems.filter((system) => wanted(system.name));
  const { results, figures, failures } = await runRows(selected, options.quick);
  const million = wanted(millionSystem) ? await runMillionSection(options.quick, failures) : null;
  if (million !== null) figures[millionSystem] = { ...million };
  const notes = selected.flatMap((system) => (system.note === null ? [] : [system.note]));
  const lines = [
    ...notes,
    '',
    ...(million === null ? [] : millionLines(million)),
    '',
    ...targetLines(results, figures),
    ...failures,
  ];
  const report = { bench: 'engine', results, figures };
  printReport(report, lines, { json: options.json });
  return failures.length > 0 ? 1 : 0;
}
