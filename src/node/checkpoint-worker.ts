/**
 * The worker thread of the SQLite checkpoint store (src/node/checkpoint-sqlite.ts). It owns the
 * only connection to the file and does all SQLite work synchronously, one request at a time,
 * so the main thread's event loop never waits on SQLite.
 *
 * Schema (format version 1):
 *
 *   kv          (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID
 *   meta        (name TEXT PRIMARY KEY, value)   -- 'format_version' = 1, 'applied_lsn' = n
 *   request_ids (request_id TEXT PRIMARY KEY, lsn INTEGER NOT NULL, outcome TEXT NOT NULL,
 *                value BLOB)
 *               + index request_ids_by_lsn (lsn)
 *
 * Durability: journal_mode=WAL with synchronous=FULL, so a transaction is durable when its
 * COMMIT returns (the WAL is fsynced at every commit), and SQLite's WAL recovery makes a commit
 * atomic across a crash. A new file's directory entry is fsynced once after it is created, since
 * SQLite does not promise that for the main database file.
 *
 * Blobs compare with memcmp() in SQLite, so `ORDER BY key` is ascending byte order, as the port
 * promises. Rows that do not have the shape above are reported as SHAPE (CORRUPT to callers).
 */
import { closeSync, existsSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { AssertionError, assert } from '../core/assert.js';
import type { RequestIdRecord } from '../ports/checkpoint.js';
import {
  RowPacker,
  forEachPackedRowSorted,
  loadChunkWaitMs,
  loadChunkWaitSliceMs,
  loadChunksInflightMax,
  openRequestId,
  rowsPerChunkMax,
  transferablesOf,
  type WorkerFailure,
  type WorkerReply,
  type WorkerRequest,
  type WorkerSetup,
} from './checkpoint-sqlite.js';
import { CheckpointReplacer } from './checkpoint-replace.js';

const formatVersion = 1;
/** SQLite's page cache for this connection, in KiB (negative: a size, not a page count). */
const cacheKibibytes = 64 * 1024;
/** After a checkpoint, SQLite truncates the WAL file back to at most this many bytes. */
const walBytesKeptMax = 64 * 1024 * 1024;

const schema = `
  CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value);
  CREATE TABLE IF NOT EXISTS request_ids (
    request_id TEXT PRIMARY KEY,
    lsn INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    value BLOB
  );
  CREATE INDEX IF NOT EXISTS request_ids_by_lsn ON request_ids (lsn);
`;

/**
 * A failure that is not SQLite's own: the caller's INVALID, data of the wrong SHAPE (CORRUPT to
 * callers), or a load STALLED by a main thread that stopped reading (IOERR to callers).
 */
class CheckpointFailure extends Error {
  constructor(
    readonly code: 'INVALID' | 'SHAPE' | 'STALLED',
    message: string,
  ) {
    super(message);
  }
}

type ApplyRequest = Extract<WorkerRequest, { kind: 'apply' }>;

class CheckpointDatabase {
  readonly #db: Database.Database;
  readonly #chunksInflight: Int32Array;
  readonly #readMeta: Database.Statement<[string], { value: unknown }>;
  readonly #writeMeta: Database.Statement<[string, number]>;
  readonly #put: Database.Statement<[Uint8Array, Uint8Array]>;
  readonly #delete: Database.Statement<[Uint8Array]>;
  /** The same for `rowsPerStatement` rows at a time (see `#applyIn`). */
  readonly #putMany: Database.Statement<[Uint8Array[]]>;
  readonly #deleteMany: Database.Statement<[Uint8Array[]]>;
  readonly #rememberRequestId: Database.Statement<[string, number, string, Uint8Array | null]>;
  readonly #forgetRequestIds: Database.Statement<[number]>;
  readonly #selectEntries: Database.Statement<[]>;
  readonly #selectRequestIds: Database.Statement<[]>;
  readonly #applyTransaction: Database.Transaction<(request: ApplyRequest) => void>;
  /** Full-sync replaces (checkpoint-replace.ts). */
  readonly replacer: CheckpointReplacer;

  constructor(db: Database.Database, chunksInflight: Int32Array) {
    this.#db = db;
    this.#chunksInflight = chunksInflight;
    this.#readMeta = db.prepare('SELECT value FROM meta WHERE name = ?');
    this.#writeMeta = db.prepare(
      'INSERT INTO meta (name, value) VALUES (?, ?) ' +
        'ON CONFLICT (name) DO UPDATE SET value = excluded.value',
    );
    this.#put = db.prepare(
      'INSERT INTO kv (key, value) VALUES (?, ?) ' +
        'ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.#delete = db.prepare('DELETE FROM kv WHERE key = ?');
    this.#putMany = db.prepare<[Uint8Array[]]>(
      `INSERT INTO kv (key, value) VALUES ${Array(rowsPerStatement).fill('(?, ?)').join(', ')} ` +
        'ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.#deleteMany = db.prepare<[Uint8Array[]]>(
      `DELETE FROM kv WHERE key IN (${Array(rowsPerStatement).fill('?').join(', ')})`,
    );
    this.#rememberRequestId = db.prepare(
      'INSERT INTO request_ids (request_id, lsn, outcome, value) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (request_id) DO UPDATE SET lsn = excluded.lsn, ' +
        'outcome = excluded.outcome, value = excluded.value',
    );
    this.#forgetRequestIds = db.prepare('DELETE FROM request_ids WHERE lsn < ?');
    this.#selectEntries = db.prepare('SELECT key, value FROM kv ORDER BY key').raw(true);
    this.#selectRequestIds = db
      .prepare('SELECT request_id, lsn, outcome, value FROM request_ids ORDER BY lsn, request_id')
      .raw(true);
    this.#applyTransaction = db.transaction((request: ApplyRequest) => this.#applyIn(request));
    this.replacer = new CheckpointReplacer(db);
  }

  /** Opens (creating if needed) the file, sets it up and checks its format version. */
  static open(path: string, chunksInflight: Int32Array): CheckpointDatabase {
    const created = !existsSync(path);
    const db = new Database(path);
    try {
      // WAL: readers never block the writer and a commit is one append plus one fsync.
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new CheckpointFailure('SHAPE', `journal_mode is ${String(mode)}`);
      // FULL: the WAL is fsynced at every commit, so a resolved apply survives power loss.
      db.pragma('synchronous = FULL');
      assert(db.pragma('synchronous', { simple: true }) === 2, 'checkpoint: synchronous=FULL');
      db.pragma(`cache_size = -${cacheKibibytes}`);
      db.pragma(`journal_size_limit = ${walBytesKeptMax}`);
      db.transaction(() => setUp(db)).immediate();
      if (created) syncDirectory(dirname(path));
      return new CheckpointDatabase(db, chunksInflight);
    } catch (error: unknown) {
      db.close();
      throw error;
    }
  }

  apply(request: ApplyRequest): void {
    // .immediate takes the write lock at BEGIN; a failure anywhere rolls the whole batch back.
    this.#applyTransaction.immediate(request);
  }

  #applyIn(request: ApplyRequest): void {
    const stored = this.#appliedLsn();
    if (request.appliedLsn < stored) {
      const message = `appliedLsn ${request.appliedLsn} is below the stored ${stored}`;
      throw new CheckpointFailure('INVALID', message);
    }
    // In key order (see forEachPackedRowSorted), and several rows per statement: a statement
    // run costs about as much as SQLite's work for one row (measured: a million sorted puts
    // take 3.6 s one row per statement, 1.9 s sixteen rows per statement). Keys are unique in
    // a batch, so the rows of one statement never conflict with each other.
    const puts = new StatementBatcher(
      (args) => this.#putMany.run(args),
      (row) => this.#put.run(row[0] as Uint8Array, row[1] as Uint8Array),
    );
    forEachPackedRowSorted(request.puts, (row) => puts.add(row));
    puts.flush();
    const deletes = new StatementBatcher(
      (args) => this.#deleteMany.run(args),
      (row) => this.#delete.run(row[0] as Uint8Array),
    );
    forEachPackedRowSorted(request.deletes, (row) => deletes.add(row));
    deletes.flush();
    for (const record of request.requestIds) {
      this.#rememberRequestId.run(record.requestId, record.lsn, record.outcome, record.value);
    }
    // Forgetting runs after remembering, so an id below the bound is gone even if just added.
    if (request.requestIdsBelowLsnForget > 0) {
      this.#forgetRequestIds.run(request.requestIdsBelowLsnForget);
    }
    this.#writeMeta.run('applied_lsn', request.appliedLsn);
    this.replacer.clearLogBase(request.appliedLsn);
  }

  /**
   * Streams the state to the main thread: entries in chunks of packed rows, request ids in
   * groups, then a summary with the counts. One read transaction makes it one snapshot.
   */
  load(id: number, post: (reply: WorkerReply, transfer?: ArrayBuffer[]) => void): void {
    this.#db.transaction(() => {
      const appliedLsn = this.#appliedLsn();
      let entries = 0;
      const packer = new RowPacker(2, (chunk) => {
        waitForRoom(this.#chunksInflight);
        Atomics.add(this.#chunksInflight, 0, 1);
        post({ kind: 'loadChunk', id, chunk }, transferablesOf([chunk]));
      });
      for (const row of this.#selectEntries.iterate() as Iterable<unknown[]>) {
        packer.add(entryOf(row));
        entries++;
      }
      packer.flush();
      let records: RequestIdRecord[] = [];
      let requestIds = 0;
      for (const row of this.#selectRequestIds.iterate() as Iterable<unknown[]>) {
        records.push(requestIdOf(row));
        requestIds++;
        if (records.length < rowsPerChunkMax) continue;
        post({ kind: 'loadRequestIds', id, records });
        records = [];
      }
      if (records.length > 0) post({ kind: 'loadRequestIds', id, records });
      const logBase = this.replacer.logBase();
      post({ kind: 'loadDone', id, appliedLsn, entries, requestIds, logBase });
    })();
  }

  close(): void {
    // Closing the last connection checkpoints the WAL into the main file and removes it.
    this.#db.close();
  }

  #appliedLsn(): number {
    const row = this.#readMeta.get('applied_lsn');
    const value = row?.value;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new CheckpointFailure('SHAPE', `meta.applied_lsn is ${String(value)}`);
    }
    return value;
  }
}

/** Rows per multi-row statement of an apply. */
const rowsPerStatement = 16;

/**
 * Gathers rows into the arguments of a `rowsPerStatement`-row statement and runs it when full;
 * `flush` runs the rest one row at a time.
 */
class StatementBatcher {
  readonly #args: Uint8Array[] = [];
  #rows: Uint8Array[][] = [];

  constructor(
    readonly runMany: (args: Uint8Array[]) => void,
    readonly runOne: (row: Uint8Array[]) => void,
  ) {}

  add(row: Uint8Array[]): void {
    this.#rows.push([...row]);
    if (this.#rows.length < rowsPerStatement) return;
    this.#args.length = 0;
    for (const fields of this.#rows) for (const field of fields) this.#args.push(field);
    this.runMany(this.#args);
    this.#rows = [];
  }

  flush(): void {
    for (const row of this.#rows) this.runOne(row);
    this.#rows = [];
  }
}

/** Creates the tables of a new file, and checks the format version of an existing one. */
function setUp(db: Database.Database): void {
  db.exec(schema);
  const insert = db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING');
  insert.run('format_version', formatVersion);
  insert.run('applied_lsn', 0);
  const row = db.prepare('SELECT value FROM meta WHERE name = ?').get('format_version') as
    { value: unknown } | undefined;
  if (row?.value !== formatVersion) {
    throw new CheckpointFailure('SHAPE', `format version ${String(row?.value)}, expected 1`);
  }
}

/** The row itself, once both columns are known to be blobs (a TEXT or NULL is damage). */
function entryOf(row: unknown[]): Uint8Array[] {
  if (!(row[0] instanceof Uint8Array)) throw new CheckpointFailure('SHAPE', 'a key is not a blob');
  if (!(row[1] instanceof Uint8Array)) {
    throw new CheckpointFailure('SHAPE', 'a value is not a blob');
  }
  return row as Uint8Array[];
}

function requestIdOf(row: unknown[]): RequestIdRecord {
  const [requestId, lsn, outcome, value] = row;
  const lsnValid = typeof lsn === 'number' && Number.isSafeInteger(lsn) && lsn >= 0;
  const outcomeValid = outcome === 'committed' || outcome === 'aborted';
  const valueValid = value === null || value instanceof Uint8Array;
  if (typeof requestId !== 'string' || !lsnValid || !outcomeValid || !valueValid) {
    throw new CheckpointFailure('SHAPE', `request id row ${String(requestId)} is malformed`);
  }
  return { requestId, lsn, outcome, value: value === null ? null : Uint8Array.from(value) };
}

/**
 * Blocks this thread until fewer than `loadChunksInflightMax` chunks are on their way to the
 * main thread (see the top of checkpoint-sqlite.ts). A worker may block; that is what it is for.
 * A main thread that takes nothing for `loadChunkWaitMs` fails the load instead of hanging it.
 */
function waitForRoom(chunksInflight: Int32Array): void {
  const slices = Math.ceil(loadChunkWaitMs / loadChunkWaitSliceMs);
  for (let slice = 0; slice < slices; slice++) {
    const inflight = Atomics.load(chunksInflight, 0);
    if (inflight < loadChunksInflightMax) return;
    Atomics.wait(chunksInflight, 0, inflight, loadChunkWaitSliceMs);
  }
  throw new CheckpointFailure('STALLED', 'the main thread took no load chunk for too long');
}

/** fsync(2) of a directory: makes the new file's entry in it durable. */
function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Turns a thrown error into a failure for the main thread. Assertions are bugs: rethrown. */
function failureOf(error: unknown): WorkerFailure {
  if (error instanceof AssertionError) throw error;
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  return { code: typeof code === 'string' ? code : 'UNKNOWN', message };
}

function main(): void {
  const port = parentPort;
  assert(port !== null, 'checkpoint worker: not started as a worker');
  const post = (reply: WorkerReply, transfer: ArrayBuffer[] = []): void => {
    port.postMessage(reply, transfer);
  };
  const setup = workerData as WorkerSetup;
  let database: CheckpointDatabase;
  try {
    database = CheckpointDatabase.open(setup.path, setup.chunksInflight);
  } catch (error: unknown) {
    // Without a message listener the worker has nothing left to do, and exits.
    post({ kind: 'error', id: openRequestId, failure: failureOf(error) });
    return;
  }
  post({ kind: 'done', id: openRequestId });
  port.on('message', (request: WorkerRequest) => {
    try {
      if (request.kind === 'apply') database.apply(request);
      else if (request.kind === 'load') database.load(request.id, post);
      else if (request.kind === 'close') database.close();
      else database.replacer.handle(request);
      post({ kind: 'done', id: request.id });
    } catch (error: unknown) {
      post({ kind: 'error', id: request.id, failure: failureOf(error) });
    }
  });
}

main();
