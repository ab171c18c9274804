/**
 * The better-sqlite3 systems of the `engine` suite: SQLite as a key-value store, the same keys
 * and values as syncwal. `kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID`, journal_mode=WAL,
 * synchronous=FULL (every commit fsyncs the WAL), INSERT OR REPLACE for puts.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type BenchResult, runConcurrent, runSync, type SystemRun } from './lib.js';
import { getLatencySampleEvery } from './engine-syncwal.js';
import { keyspace, keyspaceKeys, valueBytes, valueFor } from './engine-workload.js';

/** Puts per transaction of `better-sqlite3-batch100`. */
export const sqliteBatchPuts = 100;

function openKv(dir: string): Database.Database {
  const database = new Database(join(dir, 'kv.sqlite'));
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = FULL');
  database.exec('CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID');
  return database;
}

function insertStatement(database: Database.Database) {
  return database.prepare<[Buffer, Buffer]>('INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)');
}

/** One transaction (one INSERT OR REPLACE, one WAL fsync) per put. */
export async function runSqlitePut(options: SystemRun): Promise<BenchResult> {
  const database = openKv(options.dir);
  try {
    const insert = insertStatement(database);
    const putOne = database.transaction((key: Buffer, value: Buffer) => {
      insert.run(key, value);
    });
    const keys = keyspaceKeys();
    const value = valueFor(0);
    const measurement = await runConcurrent({
      concurrency: options.concurrency,
      budget: options.budget,
      operation: (index) => putOne(keys[index % keyspace]!, value),
    });
    return {
      system: 'better-sqlite3-put',
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

/** `sqliteBatchPuts` puts per transaction; reports puts/s, and latency per transaction. */
export async function runSqliteBatch(options: SystemRun): Promise<BenchResult> {
  const database = openKv(options.dir);
  try {
    const insert = insertStatement(database);
    const keys = keyspaceKeys();
    const value = valueFor(0);
    const putMany = database.transaction((first: number) => {
      for (let offset = 0; offset < sqliteBatchPuts; offset++) {
        insert.run(keys[(first + offset) % keyspace]!, value);
      }
    });
    const measurement = await runConcurrent({
      concurrency: options.concurrency,
      budget: options.budget,
      operation: (index) => putMany(index * sqliteBatchPuts),
    });
    return {
      system: 'better-sqlite3-batch100',
      concurrency: options.concurrency,
      opsPerSec: measurement.opsPerSec * sqliteBatchPuts,
      p50Ms: measurement.p50Ms,
      p99Ms: measurement.p99Ms,
      recordsPerSync: sqliteBatchPuts,
    };
  } finally {
    database.close();
  }
}

/** A prepared SELECT over the same 100k keys, loaded in one transaction first. */
export async function runSqliteGet(options: SystemRun): Promise<BenchResult> {
  const database = openKv(options.dir);
  try {
    const insert = insertStatement(database);
    const keys = keyspaceKeys();
    database.transaction(() => {
      keys.forEach((key, index) => insert.run(key, valueFor(index)));
    })();
    const select = database.prepare<[Buffer], Buffer>('SELECT value FROM kv WHERE key = ?');
    select.pluck(true);
    if (select.get(keys[0]!)?.length !== valueBytes) {
      throw new Error('better-sqlite3-get: a loaded key reads wrong');
    }
    // A synchronous API: a plain loop, timed like the syncwal get rows (one get in 16).
    const measurement = runSync({
      budget: options.budget,
      operation: (index) => select.get(keys[index % keyspace]!),
      latencySampleEvery: getLatencySampleEvery,
    });
    return {
      system: 'better-sqlite3-get',
      concurrency: options.concurrency,
      opsPerSec: measurement.opsPerSec,
      p50Ms: measurement.p50Ms,
      p99Ms: measurement.p99Ms,
      recordsPerSync: 0,
    };
  } finally {
    database.close();
  }
}
