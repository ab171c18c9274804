/**
 * The real checkpoint store (src/ports/checkpoint.ts): a SQLite file driven by better-sqlite3 on
 * a `node:worker_threads` Worker. better-sqlite3 is synchronous, so every SQLite call runs on
 * the worker (src/node/checkpoint-worker.ts) and the event loop only posts requests and receives
 * replies; it never waits on SQLite or on an fsync.
 *
 * Protocol. Each request carries an id and gets exactly one final reply (`done` or `error`);
 * a load is preceded by any number of `loadChunk` and `loadRequestIds` messages. The worker
 * handles one message at a time, so requests complete in the order they were posted.
 *
 * Bytes cross the thread boundary packed: the keys and values of a batch are copied into
 * chunks of at most `rowsPerChunkMax` rows and `chunkBytesMax` bytes (`PackedRows`), and those
 * chunks are moved with a transfer list, never cloned. The copy is what makes the transfer
 * safe: the caller's own buffers are never detached, and it may reuse them as soon as `apply`
 * returns. Loaded rows come back the same way, so a load of a million keys is a hundred
 * messages, not one giant one; the entries a load returns are views into those chunks. The
 * worker keeps at most `loadChunksInflightMax` chunks on their way (a counter in shared memory
 * that the main thread decrements), because Node hands a thread every message already queued
 * in one go: without the bound, a fast worker would queue the whole state and the main thread
 * would unpack all of it in one turn of its event loop.
 *
 * Errors. SQLITE_CORRUPT* and SQLITE_NOTADB become CORRUPT (the segment is the file name),
 * SQLITE_FULL becomes NOSPACE, and every other failure becomes IOERR. After an IOERR or CORRUPT
 * from `apply` the store is fenced: every later call rejects with IOERR and the caller must
 * close and reopen it. The reason is that a commit that failed in its WAL fsync may still be
 * found durable by SQLite's WAL recovery on the next open, so this handle no longer knows what
 * the file holds. INVALID and NOSPACE leave the store usable (the transaction rolled back). A
 * crashed worker fences the store the same way.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { assert } from '../core/assert.js';
import { latin1Of } from '../core/latin1.js';
import {
  ClosedError,
  CorruptionError,
  InvalidError,
  IoError,
  NoSpaceError,
  type SyncwalError,
} from '../core/errors.js';
import type { ReplaceRequest } from './checkpoint-replace.js';
import type {
  CheckpointBatch,
  CheckpointEntry,
  CheckpointLogBase,
  CheckpointReplaceCommit,
  CheckpointSnapshot,
  CheckpointStore,
  RequestIdRecord,
} from '../ports/checkpoint.js';

/** Most rows in one packed chunk (and most request ids in one load message). */
export const rowsPerChunkMax = 10_000;
/** A chunk closes before it would pass this many bytes (a single larger row gets its own). */
export const chunkBytesMax = 16 * 1024 * 1024;
/** Most load chunks posted by the worker and not yet unpacked by the main thread. */
export const loadChunksInflightMax = 4;
/** The worker waits for room in slices of this long, so that a stall is noticed. */
export const loadChunkWaitSliceMs = 100;
/** How long the worker waits for the main thread to take a chunk before failing the load. */
export const loadChunkWaitMs = 5 * 60 * 1000;
/** The file a store keeps in its directory unless `fileName` says otherwise. */
export const checkpointFileNameDefault = 'checkpoint.sqlite';

/**
 * Rows of byte fields packed into one buffer, so that a chunk crosses threads as one transfer.
 * Row r's field f has length `lengths[r * fields + f]`; the bytes of all fields lie back to
 * back in `bytes`, in the same order.
 */
export interface PackedRows {
  fields: number;
  lengths: Uint32Array;
  bytes: Uint8Array;
}

/** Packs rows into chunks and hands each chunk to `emit` as soon as it is full. */
export class RowPacker {
  readonly #fields: number;
  readonly #emit: (chunk: PackedRows) => void;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;

  constructor(fields: number, emit: (chunk: PackedRows) => void) {
    assert(Number.isSafeInteger(fields), 'RowPacker: fields must be an integer');
    assert(fields >= 1, 'RowPacker: a row has at least one field');
    this.#fields = fields;
    this.#emit = emit;
  }

  add(row: readonly Uint8Array[]): void {
    assert(row.length === this.#fields, 'RowPacker.add: wrong number of fields');
    let rowBytes = 0;
    for (const field of row) {
      assert(field instanceof Uint8Array, 'RowPacker.add: a field must be a Uint8Array');
      rowBytes += field.length;
    }
    const rows = this.#pending.length / this.#fields;
    const full = rows >= rowsPerChunkMax || this.#pendingBytes + rowBytes > chunkBytesMax;
    if (full && rows > 0) this.flush();
    for (const field of row) this.#pending.push(field);
    this.#pendingBytes += rowBytes;
  }

  /** Emits the rows added since the last chunk, if there are any. */
  flush(): void {
    if (this.#pending.length === 0) return;
    const lengths = new Uint32Array(this.#pending.length);
    const bytes = new Uint8Array(this.#pendingBytes);
    let offset = 0;
    for (let index = 0; index < this.#pending.length; index++) {
      const field = this.#pending[index] as Uint8Array;
      lengths[index] = field.length;
      bytes.set(field, offset);
      offset += field.length;
    }
    assert(offset === bytes.length, 'RowPacker.flush: bytes and lengths disagree');
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#emit({ fields: this.#fields, lengths, bytes });
  }
}

/**
 * Packs `count` rows of `fields` fields, read through `fieldAt`, into chunks. It copies, so the
 * caller keeps its buffers. Two passes per chunk (measure, then copy) make one allocation each.
 */
export function packRows(
  count: number,
  fields: number,
  fieldAt: (row: number, field: number) => Uint8Array,
): PackedRows[] {
  const chunks: PackedRows[] = [];
  let start = 0;
  // Every pass packs at least one row, so `count` passes always suffice.
  for (let pass = 0; start < count && pass < count; pass++) {
    let end = start;
    let size = 0;
    for (; end < count && end - start < rowsPerChunkMax; end++) {
      let rowBytes = 0;
      for (let field = 0; field < fields; field++) rowBytes += fieldAt(end, field).length;
      if (end > start && size + rowBytes > chunkBytesMax) break;
      size += rowBytes;
    }
    const lengths = new Uint32Array((end - start) * fields);
    const bytes = new Uint8Array(size);
    let offset = 0;
    for (let row = start; row < end; row++) {
      for (let field = 0; field < fields; field++) {
        const value = fieldAt(row, field);
        lengths[(row - start) * fields + field] = value.length;
        bytes.set(value, offset);
        offset += value.length;
      }
    }
    assert(offset === size, 'packRows: measured and copied sizes differ');
    chunks.push({ fields, lengths, bytes });
    start = end;
  }
  assert(start === count, 'packRows: rows left over');
  return chunks;
}

/**
 * Calls `visit` with each row of a chunk, as views into its bytes (no copy). The row array is
 * reused between calls, so `visit` must not keep it (the views it holds may be kept).
 */
export function forEachPackedRow(chunk: PackedRows, visit: (row: Uint8Array[]) => void): void {
  const { fields, lengths, bytes } = chunk;
  assert(lengths.length % fields === 0, 'forEachPackedRow: a partial row');
  const row: Uint8Array[] = [];
  let offset = 0;
  for (let index = 0; index < lengths.length; index += fields) {
    for (let field = 0; field < fields; field++) {
      const length = lengths[index + field] as number;
      assert(offset + length <= bytes.length, 'forEachPackedRow: field past the end');
      row[field] = new Uint8Array(bytes.buffer, bytes.byteOffset + offset, length);
      offset += length;
    }
    visit(row);
  }
  assert(offset === bytes.length, 'forEachPackedRow: bytes left over');
}

/**
 * Calls `visit` with every row of the chunks in ascending byte order of the first field (the
 * key), as views like `forEachPackedRow`. The keys of one apply are unique (the port says so).
 * A B-tree takes sorted keys as appends to its rightmost pages, while random keys touch a page
 * anywhere in the table per row and spill SQLite's page cache: measured for a million new keys,
 * 14 s unsorted and 2.3 s sorted. The sort runs on the worker, off the event loop.
 */
export function forEachPackedRowSorted(
  chunks: readonly PackedRows[],
  visit: (row: Uint8Array[]) => void,
): void {
  let rows = 0;
  for (const chunk of chunks) rows += chunk.lengths.length / chunk.fields;
  // Each row: its key as a latin1 string (compares in byte order), chunk, index and offset.
  const keys: string[] = [];
  const chunkOf = new Int32Array(rows);
  const rowOf = new Int32Array(rows);
  const offsetOf = new Int32Array(rows);
  let row = 0;
  chunks.forEach((chunk, chunkIndex) => {
    const { fields, lengths, bytes } = chunk;
    let offset = 0;
    for (let index = 0; index < lengths.length; index += fields) {
      const keyBytes = lengths[index] as number;
      assert(offset + keyBytes <= bytes.length, 'forEachPackedRowSorted: key past the end');
      keys.push(latin1Of(bytes, offset, offset + keyBytes));
      chunkOf[row] = chunkIndex;
      rowOf[row] = index / fields;
      offsetOf[row] = offset;
      for (let field = 0; field < fields; field++) offset += lengths[index + field] as number;
      row += 1;
    }
    assert(offset === bytes.length, 'forEachPackedRowSorted: bytes left over');
  });
  const order = Array.from({ length: rows }, (_, index) => index);
  order.sort((left, right) => {
    const a = keys[left] as string;
    const b = keys[right] as string;
    return a < b ? -1 : a > b ? 1 : 0;
  });
  const fieldsOf = (chunk: PackedRows, index: number, offset: number): Uint8Array[] => {
    const views: Uint8Array[] = [];
    let at = offset;
    for (let field = 0; field < chunk.fields; field++) {
      const length = chunk.lengths[index * chunk.fields + field] as number;
      views.push(new Uint8Array(chunk.bytes.buffer, chunk.bytes.byteOffset + at, length));
      at += length;
    }
    return views;
  };
  for (const index of order) {
    const chunk = chunks[chunkOf[index] as number];
    assert(chunk !== undefined, 'forEachPackedRowSorted: a row of no chunk');
    visit(fieldsOf(chunk, rowOf[index] as number, offsetOf[index] as number));
  }
}

/** The buffers of packed chunks, for a transfer list. */
export function transferablesOf(chunks: readonly PackedRows[]): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const chunk of chunks) {
    // Chunks own whole buffers (packRows and RowPacker.flush allocate them), so moving them
    // detaches nothing that anyone else holds.
    assert(chunk.bytes.byteLength === chunk.bytes.buffer.byteLength, 'chunk shares a buffer');
    buffers.push(chunk.bytes.buffer as ArrayBuffer, chunk.lengths.buffer as ArrayBuffer);
  }
  return buffers;
}

// ---------------------------------------------------------------------------------------------
// Messages between the store and its worker.

/** What the worker is started with (`workerData`). */
export interface WorkerSetup {
  path: string;
  /** One Int32 over shared memory: load chunks posted and not yet unpacked. */
  chunksInflight: Int32Array;
}

export type WorkerRequest =
  | {
      kind: 'apply';
      id: number;
      appliedLsn: number;
      puts: PackedRows[];
      deletes: PackedRows[];
      requestIds: RequestIdRecord[];
      requestIdsBelowLsnForget: number;
    }
  | { kind: 'load'; id: number }
  | { kind: 'close'; id: number }
  | ReplaceRequest;

/** An error as it crosses the thread boundary: SQLite's code (or INVALID / SHAPE) and text. */
export interface WorkerFailure {
  code: string;
  message: string;
}

/** The id the worker answers its start-up with (requests count from 1). */
export const openRequestId = 0;

export type WorkerReply =
  | { kind: 'done'; id: number }
  | { kind: 'error'; id: number; failure: WorkerFailure }
  | { kind: 'loadChunk'; id: number; chunk: PackedRows }
  | { kind: 'loadRequestIds'; id: number; records: RequestIdRecord[] }
  | {
      kind: 'loadDone';
      id: number;
      appliedLsn: number;
      entries: number;
      requestIds: number;
      logBase: CheckpointLogBase | null;
    };

// ---------------------------------------------------------------------------------------------
// The store.

export interface SqliteCheckpointOptions {
  /** The file in `dir` (default `checkpoint.sqlite`). */
  fileName?: string;
}

/**
 * Opens (creating if needed) the checkpoint store in `dir`, which must exist. Rejects with
 * CORRUPT if the file is not a SQLite database or holds tables of the wrong shape.
 */
export async function openSqliteCheckpoint(
  dir: string,
  options: SqliteCheckpointOptions = {},
): Promise<CheckpointStore> {
  const fileName = options.fileName ?? checkpointFileNameDefault;
  assert(fileName.length > 0, 'openSqliteCheckpoint: empty file name');
  assert(basename(fileName) === fileName, 'openSqliteCheckpoint: fileName is a bare name');
  const store = new SqliteCheckpointStore(join(dir, fileName), fileName);
  await store.opened;
  return store;
}

/**
 * How to start the worker. From the compiled output, the script is the `.js` next to this file.
 * From the TypeScript sources (vitest, tsx) it is the `.ts`, which a plain worker cannot load,
 * and on Node 20 `execArgv: ['--import', 'tsx']` does not reach a worker's entry module either.
 * So the worker starts from a one-line bootstrap that registers tsx's loader first and then
 * imports the script. tsx is found from this file, so the working directory does not matter.
 */
function workerStart(): { script: string | URL; eval: boolean } {
  const compiled = new URL('./checkpoint-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(compiled))) return { script: compiled, eval: false };
  const source = new URL('./checkpoint-worker.ts', import.meta.url);
  assert(existsSync(fileURLToPath(source)), 'checkpoint: the worker script is missing');
  const api = JSON.stringify(tsxEsmApiUrl());
  const target = JSON.stringify(source.href);
  const script = `import(${api}).then((tsx) => { tsx.register(); return import(${target}); });`;
  return { script, eval: true };
}

/** The file URL of tsx's ESM API, read from the `exports` its package.json declares. */
function tsxEsmApiUrl(): string {
  const manifestPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    exports?: Record<string, { import?: { default?: unknown } } | undefined>;
  };
  const entry = manifest.exports?.['./esm/api']?.import?.default;
  assert(typeof entry === 'string', 'checkpoint: tsx does not export ./esm/api');
  return pathToFileURL(join(dirname(manifestPath), entry)).href;
}

interface PendingRequest {
  operation: 'open' | 'apply' | 'load' | 'close' | 'replace';
  resolve: () => void;
  reject: (error: SyncwalError) => void;
}

interface LoadInProgress {
  entries: CheckpointEntry[];
  requestIds: RequestIdRecord[];
  snapshot: CheckpointSnapshot | null;
}

type StoreState = 'open' | 'closing' | 'closed' | 'fenced';

class SqliteCheckpointStore implements CheckpointStore {
  readonly opened: Promise<void>;
  /** Not #private: a test terminates it to check how a crashed worker is handled. */
  private readonly worker: Worker;
  readonly #fileName: string;
  readonly #pending = new Map<number, PendingRequest>();
  readonly #loads = new Map<number, LoadInProgress>();
  #requestIdNext = openRequestId + 1;
  #state: StoreState = 'open';
  #fence: SyncwalError | null = null;
  #applying = false;
  /** The worker crashed or sent something unreadable; it answers nothing more. */
  #workerFailed = false;
  readonly #exit: Promise<void>;
  readonly #chunksInflight = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));

  constructor(path: string, fileName: string) {
    this.#fileName = fileName;
    const start = workerStart();
    const setup: WorkerSetup = { path, chunksInflight: this.#chunksInflight };
    this.worker = new Worker(start.script, { eval: start.eval, workerData: setup });
    this.opened = new Promise<void>((resolve, reject) => {
      this.#pending.set(openRequestId, { operation: 'open', resolve, reject });
    });
    this.#exit = new Promise<void>((resolve) => {
      this.worker.once('exit', (code) => {
        this.#onExit(code);
        resolve();
      });
    });
    this.worker.on('message', (reply: WorkerReply) => this.#onReply(reply));
    this.worker.on('error', (error) =>
      this.#fail(new IoError('worker', error.message, { cause: error })),
    );
    this.worker.on('messageerror', (error) => {
      this.#fail(new IoError('worker', `unreadable message: ${error.message}`, { cause: error }));
    });
    // An open that fails leaves nothing to close: stop the worker, then report the failure.
    this.opened.then(
      () => this.#idle(),
      () => void this.worker.terminate(),
    );
  }

  load(): Promise<CheckpointSnapshot> {
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const id = this.#requestIdNext++;
    const load: LoadInProgress = { entries: [], requestIds: [], snapshot: null };
    this.#loads.set(id, load);
    return this.#request({ kind: 'load', id }, 'load', []).then(
      () => {
        assert(load.snapshot !== null, 'checkpoint load: done without a snapshot');
        return load.snapshot;
      },
      (error: unknown) => {
        this.#loads.delete(id);
        throw error;
      },
    );
  }

  apply(batch: CheckpointBatch): Promise<void> {
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    assert(!this.#applying, 'CheckpointStore.apply: overlapping applies (callers serialize)');
    assertBatch(batch);
    const putList = batch.puts;
    const deleteList = batch.deletes;
    const puts = packRows(putList.length, 2, (row, field) => {
      const entry = putList[row] as CheckpointEntry;
      return field === 0 ? entry.key : entry.value;
    });
    const deletes = packRows(deleteList.length, 1, (row) => deleteList[row] as Uint8Array);
    const request: WorkerRequest = {
      kind: 'apply',
      id: this.#requestIdNext++,
      appliedLsn: batch.appliedLsn,
      puts,
      deletes,
      requestIds: batch.requestIds.map((record) => ({ ...record })),
      requestIdsBelowLsnForget: batch.requestIdsBelowLsnForget,
    };
    this.#applying = true;
    const transfer = [...transferablesOf(puts), ...transferablesOf(deletes)];
    return this.#request(request, 'apply', transfer).finally(() => {
      this.#applying = false;
    });
  }

  beginReplace(): Promise<void> {
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    return this.#request({ kind: 'replaceBegin', id: this.#requestIdNext++ }, 'replace', []);
  }

  addReplace(entries: readonly CheckpointEntry[]): Promise<void> {
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    for (const entry of entries) {
      assert(entry.key instanceof Uint8Array, 'CheckpointStore.addReplace: bytes for a key');
      assert(entry.value instanceof Uint8Array, 'CheckpointStore.addReplace: bytes for a value');
    }
    const rows = packRows(entries.length, 2, (row, field) => {
      const entry = entries[row] as CheckpointEntry;
      return field === 0 ? entry.key : entry.value;
    });
    const request: WorkerRequest = { kind: 'replaceAdd', id: this.#requestIdNext++, rows };
    return this.#request(request, 'replace', transferablesOf(rows));
  }

  commitReplace(commit: CheckpointReplaceCommit): Promise<void> {
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    assertLsn(commit.appliedLsn, 'appliedLsn');
    const { lsn, checksum, term } = commit.logBase;
    assertLsn(lsn, 'logBase.lsn');
    assertLsn(term, 'logBase.term');
    assert(Number.isSafeInteger(checksum) && checksum >= 0 && checksum <= 0xffffffff, 'checksum');
    const request: WorkerRequest = {
      kind: 'replaceCommit',
      id: this.#requestIdNext++,
      appliedLsn: commit.appliedLsn,
      requestIds: commit.requestIds.map((record) => ({ ...record })),
      logBase: { lsn, checksum, term },
    };
    assert(!this.#applying, 'CheckpointStore.commitReplace: overlaps an apply (callers serialize)');
    this.#applying = true;
    return this.#request(request, 'replace', []).finally(() => {
      this.#applying = false;
    });
  }

  /**
   * Closes the file and stops the worker once the requests already made complete. Closing
   * twice is harmless. A fenced store still closes its file if its worker is alive, but does
   * not report a failure to do so: it already reported the failure that fenced it.
   */
  async close(): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return this.#exit;
    const fenced = this.#state === 'fenced';
    this.#state = 'closing';
    try {
      if (!this.#workerFailed) {
        await this.#request({ kind: 'close', id: this.#requestIdNext++ }, 'close', []);
      }
    } catch (error: unknown) {
      if (!fenced) throw error;
    } finally {
      this.#state = 'closed';
      // The database is closed (or failed to close); nothing is left for the worker to do.
      await this.worker.terminate();
      await this.#exit;
    }
  }

  #refusal(): SyncwalError | null {
    if (this.#state === 'closing' || this.#state === 'closed') {
      return new ClosedError('checkpoint store is closed');
    }
    if (this.#state === 'fenced') {
      assert(this.#fence !== null, 'checkpoint: fenced without a reason');
      return new IoError('checkpoint', `store is fenced; reopen it (${this.#fence.message})`, {
        cause: this.#fence,
      });
    }
    return null;
  }

  #request(
    request: WorkerRequest,
    operation: PendingRequest['operation'],
    transfer: ArrayBuffer[],
  ): Promise<void> {
    assert(!this.#pending.has(request.id), 'checkpoint: request id reused');
    const done = new Promise<void>((resolve, reject) => {
      this.#pending.set(request.id, { operation, resolve, reject });
    });
    // A pending request keeps the process alive until its reply comes (see #idle).
    this.worker.ref();
    this.worker.postMessage(request, transfer);
    return done;
  }

  #onReply(reply: WorkerReply): void {
    // Replies still queued from a worker that failed answer requests that were already failed.
    if (this.#workerFailed) return;
    switch (reply.kind) {
      case 'loadChunk': {
        const load = this.#loads.get(reply.id);
        assert(load !== undefined, 'checkpoint: a load chunk for no load');
        forEachPackedRow(reply.chunk, (row) => {
          load.entries.push({ key: row[0] as Uint8Array, value: row[1] as Uint8Array });
        });
        // Room for the next chunk: wake the worker if it waits for some.
        const inflight = Atomics.sub(this.#chunksInflight, 0, 1);
        assert(inflight >= 1, 'checkpoint: more chunks unpacked than posted');
        Atomics.notify(this.#chunksInflight, 0);
        return;
      }
      case 'loadRequestIds': {
        const load = this.#loads.get(reply.id);
        assert(load !== undefined, 'checkpoint: request ids for no load');
        for (const record of reply.records) load.requestIds.push(record);
        return;
      }
      case 'loadDone':
        this.#onLoadDone(reply);
        return;
      case 'done':
        this.#settle(reply.id, null);
        return;
      case 'error':
        this.#settle(reply.id, this.#typedError(reply.failure));
        return;
    }
  }

  #onLoadDone(reply: Extract<WorkerReply, { kind: 'loadDone' }>): void {
    const load = this.#loads.get(reply.id);
    assert(load !== undefined, 'checkpoint: load done for no load');
    this.#loads.delete(reply.id);
    // Pair assertions: the worker counted what it sent, we count what arrived.
    assert(load.entries.length === reply.entries, 'checkpoint load: entries lost in transit');
    assert(load.requestIds.length === reply.requestIds, 'checkpoint load: request ids lost');
    load.snapshot = {
      appliedLsn: reply.appliedLsn,
      entries: load.entries,
      requestIds: load.requestIds,
    };
    if (reply.logBase !== null) load.snapshot.logBase = reply.logBase;
    // The request settles with the 'done' that follows.
  }

  #settle(id: number, error: SyncwalError | null): void {
    const pending = this.#pending.get(id);
    assert(pending !== undefined, 'checkpoint: a reply to no request');
    this.#pending.delete(id);
    if (error === null) {
      pending.resolve();
    } else {
      // A failed apply may still surface on the next open (see the top of this file).
      const fences = error.code !== 'INVALID' && error.code !== 'NOSPACE';
      const writes = pending.operation === 'apply' || pending.operation === 'replace';
      if (writes && fences) this.#fenceWith(error);
      pending.reject(error);
    }
    this.#idle();
  }

  /** Lets the process exit while nothing is pending (a store left open must not hang it). */
  #idle(): void {
    if (this.#pending.size === 0 && this.#state === 'open') this.worker.unref();
  }

  #fenceWith(error: SyncwalError): void {
    if (this.#state === 'open') this.#state = 'fenced';
    if (this.#fence === null) this.#fence = error;
  }

  /** The worker is gone or unusable: every pending request fails, and the store is fenced. */
  #fail(error: SyncwalError): void {
    this.#fenceWith(error);
    this.#workerFailed = true;
    // A worker whose messages cannot be read may still be running: stop it.
    void this.worker.terminate();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#loads.clear();
    for (const request of pending) request.reject(error);
  }

  /** Only a close stops the worker on purpose; any other exit is a crash. */
  #onExit(code: number): void {
    if (this.#state === 'closed') return;
    this.#fail(new IoError('worker', `checkpoint worker exited (code ${code})`));
  }

  #typedError(failure: WorkerFailure): SyncwalError {
    const { code, message } = failure;
    const cause = Object.assign(new Error(message), { code });
    if (code === 'INVALID') return new InvalidError(message);
    if (code === 'SQLITE_FULL') return new NoSpaceError(`checkpoint: ${message}`, { cause });
    const corrupt = code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB';
    if (corrupt || code === 'SHAPE') {
      const site = { segment: this.#fileName, offset: 0, lsn: null };
      return new CorruptionError(site, `${code}: ${message}`);
    }
    return new IoError('sqlite', `${code}: ${message}`, { cause });
  }
}

/** The batch's shape is the caller's responsibility: a bad one is a bug, not an I/O error. */
function assertBatch(batch: CheckpointBatch): void {
  assertLsn(batch.appliedLsn, 'appliedLsn');
  assertLsn(batch.requestIdsBelowLsnForget, 'requestIdsBelowLsnForget');
  for (const entry of batch.puts) {
    assert(entry.key instanceof Uint8Array, 'CheckpointStore.apply: a key must be bytes');
    assert(entry.value instanceof Uint8Array, 'CheckpointStore.apply: a value must be bytes');
  }
  for (const key of batch.deletes) {
    assert(key instanceof Uint8Array, 'CheckpointStore.apply: a key must be bytes');
  }
  for (const record of batch.requestIds) {
    assert(typeof record.requestId === 'string', 'CheckpointStore.apply: bad request id');
    assertLsn(record.lsn, 'request id lsn');
    const known = record.outcome === 'committed' || record.outcome === 'aborted';
    assert(known, 'CheckpointStore.apply: bad request id outcome');
  }
}

function assertLsn(value: number, what: string): void {
  assert(Number.isSafeInteger(value), `CheckpointStore.apply: ${what} must be an integer`);
  assert(value >= 0, `CheckpointStore.apply: ${what} must not be negative`);
}
