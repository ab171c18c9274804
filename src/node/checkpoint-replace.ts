/**
 * Full-sync replace of the SQLite checkpoint (the port's beginReplace / addReplace /
 * commitReplace), on the checkpoint worker (src/node/checkpoint-worker.ts owns the connection
 * and hands it here).
 *
 * Staging. `beginReplace` drops and recreates the table `kv_replace` (same shape as `kv`);
 * `addReplace` upserts a chunk of rows into it, one transaction per chunk. Those transactions
 * run with synchronous=NORMAL: in WAL mode that skips the fsync at their commit but never risks
 * corruption (SQLite syncs the WAL before it checkpoints it), and staged rows need not be
 * durable: a crash before the commit discards the replace anyway (the next full sync begins
 * again, and its `beginReplace` drops whatever a crash left).
 *
 * Commit. One IMMEDIATE transaction with synchronous=FULL (its WAL fsync also covers the staged
 * rows written before it): `DROP TABLE kv`, `ALTER TABLE kv_replace RENAME TO kv` (a rename,
 * not a copy of a million rows), all request ids replaced, and in `meta` the new `applied_lsn`
 * plus `log_base_lsn`, `log_base_checksum` and `log_base_term`. The log base rows are removed by
 * the first `apply` whose applied LSN passes the base (see `clearLogBase`).
 *
 * Statements prepared on `kv` before the swap are recompiled by SQLite on their next use
 * (sqlite3_prepare_v3 statements re-prepare after a schema change).
 */
import type Database from 'better-sqlite3';
import type { CheckpointLogBase, RequestIdRecord } from '../ports/checkpoint.js';
import { forEachPackedRow, type PackedRows } from './checkpoint-sqlite.js';

export type ReplaceRequest =
  | { kind: 'replaceBegin'; id: number }
  | { kind: 'replaceAdd'; id: number; rows: PackedRows[] }
  | {
      kind: 'replaceCommit';
      id: number;
      appliedLsn: number;
      requestIds: RequestIdRecord[];
      logBase: CheckpointLogBase;
    };

/** Rows per multi-row INSERT while staging. */
const rowsPerStatement = 16;
const createStaging =
  'CREATE TABLE kv_replace (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;';
const logBaseNames = ['log_base_lsn', 'log_base_checksum', 'log_base_term'] as const;

/** An INVALID failure as the worker reports it (its `code` crosses the thread boundary). */
function invalid(message: string): Error {
  return Object.assign(new Error(message), { code: 'INVALID' });
}

function shapeFailure(message: string): Error {
  return Object.assign(new Error(message), { code: 'SHAPE' });
}

export class CheckpointReplacer {
  readonly #db: Database.Database;
  readonly #put: Database.Statement<[Uint8Array, Uint8Array]>;
  readonly #putMany: Database.Statement<Uint8Array[]>;
  readonly #readMeta: Database.Statement<[string], { value: unknown }>;
  readonly #writeMeta: Database.Statement<[string, number]>;
  readonly #clearLogBase: Database.Statement<[number]>;
  /** A replace was begun by this process (staging rows of an earlier process are stale). */
  #staging = false;

  constructor(db: Database.Database) {
    this.#db = db;
    // Created here so the statement below can be prepared; beginReplace recreates it empty.
    db.exec(createStaging.replace('CREATE TABLE', 'CREATE TABLE IF NOT EXISTS'));
    const upsert = 'ON CONFLICT (key) DO UPDATE SET value = excluded.value';
    this.#put = db.prepare(`INSERT INTO kv_replace (key, value) VALUES (?, ?) ${upsert}`);
    const values = Array<string>(rowsPerStatement).fill('(?, ?)').join(', ');
    this.#putMany = db.prepare(`INSERT INTO kv_replace (key, value) VALUES ${values} ${upsert}`);
    this.#readMeta = db.prepare('SELECT value FROM meta WHERE name = ?');
    this.#writeMeta = db.prepare(
      'INSERT INTO meta (name, value) VALUES (?, ?) ' +
        'ON CONFLICT (name) DO UPDATE SET value = excluded.value',
    );
    this.#clearLogBase = db.prepare(
      `DELETE FROM meta WHERE name IN ('${logBaseNames.join("', '")}') AND ` +
        "? > (SELECT value FROM meta WHERE name = 'log_base_lsn')",
    );
  }

  handle(request: ReplaceRequest): void {
    if (request.kind === 'replaceBegin') this.#begin();
    else if (request.kind === 'replaceAdd') this.#add(request.rows);
    else this.#commit(request);
  }

  #begin(): void {
    // Dropping is much cheaper than deleting the rows of an abandoned replace one by one.
    this.#db
      .transaction(() => {
        this.#db.exec(`DROP TABLE kv_replace; ${createStaging}`);
      })
      .immediate();
    this.#staging = true;
  }

  #add(rows: readonly PackedRows[]): void {
    if (!this.#staging) throw invalid('addReplace without beginReplace');
    this.#withSynchronous('NORMAL', () => {
      this.#db
        .transaction(() => {
          // Several rows per statement: a statement run costs about as much as SQLite's own
          // work for a row (see the apply path in checkpoint-worker.ts).
          const args: Uint8Array[] = [];
          for (const chunk of rows) {
            forEachPackedRow(chunk, (row) => {
              args.push(row[0] as Uint8Array, row[1] as Uint8Array);
              if (args.length < 2 * rowsPerStatement) return;
              this.#putMany.run(...args);
              args.length = 0;
            });
          }
          for (let index = 0; index < args.length; index += 2) {
            this.#put.run(args[index] as Uint8Array, args[index + 1] as Uint8Array);
          }
        })
        .immediate();
    });
  }

  #commit(request: Extract<ReplaceRequest, { kind: 'replaceCommit' }>): void {
    if (!this.#staging) throw invalid('commitReplace without beginReplace');
    if (request.logBase.lsn !== request.appliedLsn) {
      throw invalid(`logBase.lsn ${request.logBase.lsn} is not appliedLsn ${request.appliedLsn}`);
    }
    this.#db
      .transaction(() => {
        const stored = this.#storedAppliedLsn();
        if (request.appliedLsn < stored) {
          throw invalid(`appliedLsn ${request.appliedLsn} is below the stored ${stored}`);
        }
        this.#db.exec(`DROP TABLE kv; ALTER TABLE kv_replace RENAME TO kv; ${createStaging}`);
        this.#db.exec('DELETE FROM request_ids');
        const remember = this.#db.prepare(
          'INSERT OR REPLACE INTO request_ids (request_id, lsn, outcome, value) ' +
            'VALUES (?, ?, ?, ?)',
        );
        for (const record of request.requestIds) {
          remember.run(record.requestId, record.lsn, record.outcome, record.value);
        }
        this.#writeMeta.run('applied_lsn', request.appliedLsn);
        this.#writeMeta.run('log_base_lsn', request.logBase.lsn);
        this.#writeMeta.run('log_base_checksum', request.logBase.checksum);
        this.#writeMeta.run('log_base_term', request.logBase.term);
      })
      .immediate();
    this.#staging = false;
  }

  /** Inside an apply's transaction: an applied LSN past the log base means the log moved on. */
  clearLogBase(appliedLsn: number): void {
    this.#clearLogBase.run(appliedLsn);
  }

  /** The log base of the last replace, until an apply passed it (for `load`). */
  logBase(): CheckpointLogBase | null {
    const values = logBaseNames.map((name) => this.#readMeta.get(name)?.value);
    if (values.every((value) => value === undefined)) return null;
    const valid = values.every(
      (value) => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0,
    );
    if (!valid) throw shapeFailure(`meta log base is ${values.map(String).join(', ')}`);
    const [lsn, checksum, term] = values as number[];
    return { lsn: lsn as number, checksum: checksum as number, term: term as number };
  }

  #storedAppliedLsn(): number {
    const value = this.#readMeta.get('applied_lsn')?.value;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw shapeFailure(`meta.applied_lsn is ${String(value)}`);
    }
    return value;
  }

  #withSynchronous(mode: 'NORMAL', body: () => void): void {
    this.#db.pragma(`synchronous = ${mode}`);
    try {
      body();
    } finally {
      this.#db.pragma('synchronous = FULL');
    }
  }
}
