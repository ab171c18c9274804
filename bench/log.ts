/**
 * The `log` suite: how many 100-byte records per second each system makes durable, and how
 * long one waits, at 1, 16 and 256 concurrent writers.
 *
 * - `fdatasync-loop`: the disk's own limit. A plain loop on a preallocated file, positional
 *   writeSync + fdatasyncSync on the main thread. At c=1 it writes one record per fdatasync; at
 *   c=C it writes C records per fdatasync (what perfect group commit could reach).
 * - `better-sqlite3`: WAL mode, synchronous=FULL, one transaction (one INSERT) per record.
 * - `syncwal`: the project's log (src/storage/log.ts) over the real disk (src/node/disk.ts);
 *   concurrent appenders share one write + fdatasync.
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import {
  type BenchResult,
  budgetFull,
  budgetQuick,
  findResult,
  formatRatio,
  formatTarget,
  printReport,
  progress,
  runConcurrent,
  type SystemRun,
  withTemporaryDirectory,
} from './lib.js';

const payloadBytes = 100;
const concurrencyLevels = [1, 16, 256] as const;
const preallocatedBytes = 64 * 1024 * 1024;

interface LogSystem {
  name: string;
  concurrencies: readonly number[];
  /** Printed under the table: how to read this system's rows. */
  note: string | null;
  run: (options: SystemRun) => Promise<BenchResult>;
}

function writeZeros(fd: number, bytes: number): void {
  const chunk = Buffer.alloc(1024 * 1024);
  for (let position = 0; position < bytes; position += chunk.length) {
    writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - position), position);
  }
  fdatasyncSync(fd);
}

async function runFdatasyncLoop(options: SystemRun): Promise<BenchResult> {
  const { concurrency } = options;
  const fd = openSync(join(options.dir, 'loop.dat'), 'w+');
  try {
    writeZeros(fd, preallocatedBytes);
    const batch = Buffer.alloc(options.payloadBytes * concurrency, 0x5a);
    let position = 0;
    const measurement = await runConcurrent({
      concurrency: 1, // One synchronous writer; C is the number of records per fdatasync.
      budget: options.budget,
      operation: () => {
        if (position + batch.length > preallocatedBytes) position = 0;
        writeSync(fd, batch, 0, batch.length, position);
        fdatasyncSync(fd);
        position += batch.length;
      },
    });
    return {
      system: 'fdatasync-loop',
      concurrency,
      opsPerSec: measurement.opsPerSec * concurrency,
      p50Ms: measurement.p50Ms,
      p99Ms: measurement.p99Ms,
      recordsPerSync: concurrency,
    };
  } finally {
    closeSync(fd);
  }
}

async function runBetterSqlite3(options: SystemRun): Promise<BenchResult> {
  const database = new Database(join(options.dir, 'bench.sqlite'));
  try {
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = FULL');
    database.exec('CREATE TABLE log (id INTEGER PRIMARY KEY, v BLOB)');
    const insert = database.prepare('INSERT INTO log (v) VALUES (?)');
    const insertOne = database.transaction((value: Buffer) => {
      insert.run(value);
    });
    const payload = Buffer.alloc(options.payloadBytes, 0x5a);
    const measurement = await runConcurrent({
      concurrency: options.concurrency,
      budget: options.budget,
      operation: () => insertOne(payload),
    });
    return {
      system: 'better-sqlite3',
      concurrency: options.concurrency,
      opsPerSec: measurement.opsPerSec,
      p50Ms: measurement.p50Ms,
      p99Ms: measurement.p99Ms,
      recordsPerSync: 1,
    };
  } finally {
    database.close();
  }
}

async function runSyncwal(options: SystemRun): Promise<BenchResult> {
  const { runSyncwalLog } = await import('./log-syncwal.js');
  return runSyncwalLog(options, 'sync');
}

async function runSyncwalAsyncIo(options: SystemRun): Promise<BenchResult> {
  const { runSyncwalLog } = await import('./log-syncwal.js');
  return runSyncwalLog(options, 'async');
}

export const logSystems: readonly LogSystem[] = [
  {
    name: 'fdatasync-loop',
    concurrencies: concurrencyLevels,
    note:
      'fdatasync-loop: one synchronous writer; its c=C row writes C records per fdatasync ' +
      "(the disk's batch limit), so latency there is per batch",
    run: runFdatasyncLoop,
  },
  {
    name: 'better-sqlite3',
    concurrencies: [1],
    note:
      'better-sqlite3: synchronous API, so concurrent callers would just run one after ' +
      'another; measured at c=1 only (c=16 and c=256 give the same number)',
    run: runBetterSqlite3,
  },
  { name: 'syncwal', concurrencies: concurrencyLevels, note: null, run: runSyncwal },
  {
    name: 'syncwal-async-io',
    concurrencies: concurrencyLevels,
    note:
      "syncwal-async-io: the same log with NodeDisk({ io: 'async' }): write and fdatasync on " +
      'the libuv thread pool, so the event loop never blocks on the disk',
    run: runSyncwalAsyncIo,
  },
];

/** The lines the targets are about (DESIGN.md §8); a line is left out if a row is missing. */
function targetLines(results: readonly BenchResult[]): string[] {
  const lines: string[] = [];
  const syncwal1 = findResult(results, 'syncwal', 1);
  const syncwal256 = findResult(results, 'syncwal', 256);
  const loop1 = findResult(results, 'fdatasync-loop', 1);
  const loop256 = findResult(results, 'fdatasync-loop', 256);
  const sqlite = findResult(results, 'better-sqlite3', 1);
  if (syncwal1 !== undefined && loop1 !== undefined) {
    lines.push(
      formatRatio({
        label: 'syncwal / fdatasync-loop at c=1',
        numerator: syncwal1.opsPerSec,
        denominator: loop1.opsPerSec,
        targetMin: 0.8,
      }),
    );
  }
  if (syncwal256 !== undefined) {
    lines.push(formatTarget('syncwal records/s at c=256', syncwal256.opsPerSec, 150_000));
  }
  if (syncwal256 !== undefined && sqlite !== undefined) {
    lines.push(
      formatRatio({
        label: 'syncwal c=256 / better-sqlite3 c=1',
        numerator: syncwal256.opsPerSec,
        denominator: sqlite.opsPerSec,
        targetMin: 30,
        fractionDigits: 1,
      }),
    );
  }
  if (syncwal256 !== undefined && loop256 !== undefined) {
    lines.push(
      formatRatio({
        label: 'syncwal c=256 / fdatasync-loop 256 records per sync (no target)',
        numerator: syncwal256.opsPerSec,
        denominator: loop256.opsPerSec,
      }),
    );
  }
  if (loop1 !== undefined && sqlite !== undefined) {
    lines.push(
      formatRatio({
        label: 'better-sqlite3 / fdatasync-loop at c=1 (no target)',
        numerator: sqlite.opsPerSec,
        denominator: loop1.opsPerSec,
      }),
    );
  }
  return lines;
}

export interface SuiteOptions {
  json: boolean;
  quick: boolean;
  /** Names of the systems to run, or null for all. */
  systems: readonly string[] | null;
}

/** Runs the suite and prints its report; resolves with the process exit code. */
export async function runLogSuite(options: SuiteOptions): Promise<number> {
  const unknown = (options.systems ?? []).filter(
    (name) => !logSystems.some((system) => system.name === name),
  );
  if (unknown.length > 0) {
    const known = logSystems.map((system) => system.name).join(', ');
    progress(`log: unknown system(s) ${unknown.join(', ')}; known: ${known}`);
    return 64;
  }
  const budget = options.quick ? budgetQuick : budgetFull;
  const selected = logSystems.filter(
    (system) => options.systems === null || options.systems.includes(system.name),
  );
  const results: BenchResult[] = [];
  const failures: string[] = [];
  for (const system of selected) {
    for (const concurrency of system.concurrencies) {
      progress(`log: ${system.name} c=${concurrency} ...`);
      try {
        results.push(
          await withTemporaryDirectory(system.name, (dir) =>
            system.run({ concurrency, budget, payloadBytes, dir }),
          ),
        );
      } catch (error: unknown) {
        const message = error instanceof Error ? error.message : String(error);
        failures.push(`${system.name} c=${concurrency}: FAILED: ${message}`);
        break; // The other levels of a failing system would fail the same way.
      }
    }
  }
  const notes = selected.flatMap((system) => (system.note === null ? [] : [system.note]));
  const lines = [...notes, '', ...targetLines(results), ...failures];
  printReport({ bench: 'log', results }, lines, { json: options.json });
  return failures.length > 0 ? 1 : 0;
}
