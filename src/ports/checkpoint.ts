/**
 * The checkpoint port: a durable, transactional key-value snapshot of committed state, advanced
 * incrementally (DESIGN §5). The real adapter (`src/node/checkpoint-sqlite.ts`) keeps it in a
 * SQLite file (`<dir>/checkpoint.sqlite`, better-sqlite3, WAL mode, synchronous=FULL) driven from
 * a worker thread so the event loop never waits on SQLite; the simulated adapter
 * (`src/sim/checkpoint.ts`) keeps it in memory with the same crash semantics. Both pass one
 * conformance suite (test/conformance/checkpoint.suite.ts).
 *
 * Contract:
 * - `apply` is atomic and durable: when it resolves, every change in the batch and the new
 *   `appliedLsn` are durable together; if the process dies first, either all of it or none of it
 *   is there after restart (a SQLite transaction). It never runs concurrently with another
 *   `apply` on the same store (callers serialize; adapters may assert it).
 * - A rejected `apply` is definitive only for INVALID and NOSPACE (nothing changed). After
 *   IOERR or CORRUPT the batch may still reappear when the store is next opened (an fsync may
 *   have failed after SQLite wrote it), so the store refuses every later call with IOERR until
 *   it is reopened, and the caller must not drop log records the failed batch would cover.
 * - A key appears at most once in a batch (in `puts` or in `deletes`, not both).
 * - `appliedLsn` only grows: `apply` with an `appliedLsn` below the stored one rejects with
 *   INVALID and changes nothing.
 * - `load` returns the state as of the last successful `apply` (or empty, appliedLsn 0, for a
 *   new store), with keys in ascending byte order.
 * - Keys and values are raw bytes. Request ids are kept with the LSN of the intent that carried
 *   them and its outcome, so a retried request is recognised across restarts.
 * - Errors are typed (src/core/errors.ts): IOERR for I/O failures, CORRUPT if the file fails
 *   SQLite's checks or holds data of the wrong shape, CLOSED after close.
 */
export interface CheckpointStore {
  load(): Promise<CheckpointSnapshot>;
  apply(batch: CheckpointBatch): Promise<void>;
  close(): Promise<void>;
  /**
   * Starts installing a full snapshot that replaces all state (a full sync, DESIGN §5): clears
   * the staging area, discarding any earlier replace that was never committed. The live state
   * is untouched until `commitReplace`.
   */
  beginReplace(): Promise<void>;
  /**
   * Stages entries of the replacement, in any order and any number of calls (a million keys
   * arrive in chunks). Staging the same key again keeps the last value. Entries staged are not
   * durable and not visible until `commitReplace`; a crash or a new `beginReplace` drops them.
   */
  addReplace(entries: readonly CheckpointEntry[]): Promise<void>;
  /**
   * Atomically replaces the whole state with what was staged: every key, all request ids (with
   * `requestIds`), `appliedLsn`, and the `logBase` the log must continue from. Durable when it
   * resolves; a crash before leaves the old state whole. INVALID (nothing changed, the staging
   * is kept) if `appliedLsn` is below the stored one or `logBase.lsn` differs from it.
   */
  commitReplace(commit: CheckpointReplaceCommit): Promise<void>;
}

/**
 * Ordering of the replace calls: `beginReplace` and `commitReplace` must not overlap any other
 * replace call, and `addReplace` calls (which may overlap each other) come after a resolved
 * `beginReplace`. `commitReplace` must not overlap an `apply` (it is one, in effect; adapters
 * assert it); the other replace calls may overlap `apply` and `load`. Like `apply`, they copy
 * what they are given when called, and an IOERR or CORRUPT fences the store.
 */
export interface CheckpointReplaceCommit {
  appliedLsn: number;
  requestIds: RequestIdRecord[];
  logBase: CheckpointLogBase;
}

/**
 * Where the log must start after a replace: right after record `lsn` (chain checksum
 * `checksum`, term `term`). A replica installs a snapshot by committing the checkpoint first and
 * resetting its log second (Log.resetTo); if it crashes in between, the next open finds the
 * checkpoint's `logBase` ahead of the log and finishes the reset from it.
 */
export interface CheckpointLogBase {
  lsn: number;
  checksum: number;
  term: number;
}

export interface CheckpointSnapshot {
  /** Every committed intent with LSN <= appliedLsn is reflected; 0 for a new store. */
  appliedLsn: number;
  /** Committed state, keys ascending (byte order). */
  entries: CheckpointEntry[];
  /** Remembered request ids, oldest first (by LSN). */
  requestIds: RequestIdRecord[];
  /**
   * Set by `commitReplace` and cleared by the next `apply`: the log must continue right after
   * this base (the engine resets the log to it at open unless the log already starts there).
   * Absent when no replace happened since the last apply.
   */
  logBase?: CheckpointLogBase;
}

export interface CheckpointEntry {
  key: Uint8Array;
  value: Uint8Array;
}

export interface RequestIdRecord {
  requestId: string;
  lsn: number;
  outcome: 'committed' | 'aborted';
  /**
   * The value a computed write produced (INCR's new value), so a retry after a restart still
   * answers what the first attempt did; null when there is none.
   */
  value: Uint8Array | null;
}

export interface CheckpointBatch {
  /** The new applied LSN; must be >= the stored one. */
  appliedLsn: number;
  /** Keys to set (latest committed value of each). */
  puts: CheckpointEntry[];
  /** Keys to remove (absent keys are ignored). */
  deletes: Uint8Array[];
  /** Request ids to remember (insert or replace). */
  requestIds: RequestIdRecord[];
  /** Forget request ids whose LSN is below this (bounded retention); 0 forgets none. */
  requestIdsBelowLsnForget: number;
}

/** Opens (creating if needed) the checkpoint store of a node directory. */
export type CheckpointStoreFactory = (dir: string) => Promise<CheckpointStore>;
