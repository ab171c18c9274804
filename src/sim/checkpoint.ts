/**
 * The simulated checkpoint store: the checkpoint port (src/ports/checkpoint.ts) in memory, with
 * the crash semantics of the SQLite adapter, seeded so a run replays exactly. It passes the same
 * conformance suite as the real store (test/conformance/checkpoint.suite.ts).
 *
 * A `SimCheckpointDevice` is the file: it survives simulated crashes. `open()` returns the store
 * of the current process epoch, as `openSqliteCheckpoint` would after a restart.
 *
 * Fault model (all randomness comes from `seed`):
 *
 * - An `apply` takes effect, all of it, when it completes; a completed apply is durable. At
 *   `crash()`, an apply still in flight is applied entirely or not at all (a coin flip), as a
 *   SQLite transaction is either committed in the WAL or not. A load in flight has no effect.
 * - After a crash the old process is dead: its store's promises never settle, and calls on it
 *   return promises that never settle (as SimDisk does; a rejection would let dead code run).
 * - A replace (beginReplace, addReplace*, commitReplace) stages entries in a staging area that
 *   no crash keeps (as the SQLite adapter's staging table, written without fsync); the commit is
 *   an apply in every respect above (atomic, in flight until it completes, fault injection,
 *   in doubt after EIO) and swaps in the staged entries with its request ids and log base.
 * - `failNextApply('ENOSPC')`: the next apply (or replace commit) rejects with NOSPACE and
 *   changes nothing; the store stays usable (SQLite rolls back a transaction that ran out of
 *   space).
 * - `failNextApply('EIO')`: the next apply rejects with IOERR, changes nothing that this
 *   process can see, and fences the store (every later call rejects with IOERR until the
 *   device is opened again), as the real adapter does. The batch is then in doubt: a commit
 *   whose WAL fsync failed may still be found by SQLite's WAL recovery. So at the next `open()`
 *   or `crash()`, whichever comes first, a coin flip applies it entirely or drops it.
 * - With a `SimScheduler`, each operation completes after a seeded latency in virtual time
 *   (concurrent loads and applies may complete out of order); without one, in a microtask.
 *
 * Keys are held in a Map keyed by their bytes as a latin1 string: one UTF-16 code unit per byte,
 * so the default string sort is ascending byte order, which `load` needs.
 */
import { assert } from '../core/assert.js';
import { ClosedError, InvalidError, IoError, NoSpaceError } from '../core/errors.js';
import type {
  CheckpointBatch,
  CheckpointEntry,
  CheckpointLogBase,
  CheckpointReplaceCommit,
  CheckpointSnapshot,
  CheckpointStore,
  RequestIdRecord,
} from '../ports/checkpoint.js';
import type { LatencyRange } from './disk.js';
import { Random } from './random.js';
import type { SimScheduler } from './scheduler.js';

export interface SimCheckpointDeviceOptions {
  seed: number;
  /** Drives operation latency in virtual time. Without it, operations complete in microtasks. */
  scheduler?: SimScheduler;
  /** Latency range of every operation, in virtual milliseconds (default 1 to 10). */
  latencyMs?: LatencyRange;
}

export type SimCheckpointFault = 'EIO' | 'ENOSPC';

const latencyDefault: LatencyRange = { min: 1, max: 10 };

/**
 * An apply between its call and its completion (what a crash decides the fate of). A replace
 * commit is one too: its `batch` carries the commit's appliedLsn and request ids, and `replace`
 * the staged entries and the log base.
 */
export interface SimCheckpointApply {
  batch: CheckpointBatch;
  fault: SimCheckpointFault | null;
  replace?: SimCheckpointReplace;
}

export interface SimCheckpointReplace {
  entries: Map<string, CheckpointEntry>;
  logBase: CheckpointLogBase;
}

export class SimCheckpointDevice {
  readonly #scheduler: SimScheduler | null;
  readonly #latency: LatencyRange;
  /** Separate streams, so that extra latency draws never shift crash outcomes. */
  readonly #latencyRandom: Random;
  readonly #crashRandom: Random;

  #appliedLsn = 0;
  #entries = new Map<string, CheckpointEntry>();
  #logBase: CheckpointLogBase | null = null;
  /** Entries of a replace in progress (null: none begun); lost at every crash. */
  #staging: Map<string, CheckpointEntry> | null = null;
  readonly #requestIds = new Map<string, RequestIdRecord>();

  /** Bumped by every crash; stores and operations of an older epoch belong to the dead. */
  #epoch = 0;
  readonly #inflight = new Map<number, SimCheckpointApply>();
  #operationIdNext = 0;
  readonly #faults: SimCheckpointFault[] = [];
  /** A batch whose apply failed with EIO: it may or may not turn out durable. */
  #inDoubt: SimCheckpointApply | null = null;
  #storeOpen: SimCheckpointStore | null = null;

  constructor(options: SimCheckpointDeviceOptions) {
    const random = new Random(options.seed);
    this.#latencyRandom = random.fork();
    this.#crashRandom = random.fork();
    this.#scheduler = options.scheduler ?? null;
    const latency = options.latencyMs ?? latencyDefault;
    assert(Number.isSafeInteger(latency.min), 'SimCheckpointDevice: integer latency min');
    assert(Number.isSafeInteger(latency.max), 'SimCheckpointDevice: integer latency max');
    assert(latency.min >= 0, 'SimCheckpointDevice: latency must not be negative');
    assert(latency.min <= latency.max, 'SimCheckpointDevice: latency min must not exceed max');
    this.#latency = { min: latency.min, max: latency.max };
  }

  /** The applied LSN the device holds for certain (an in-doubt batch not counted). */
  get appliedLsn(): number {
    return this.#appliedLsn;
  }

  /**
   * The store for the current process epoch. One store may be open at a time (one process owns
   * the file); open again after closing it, or after a crash.
   */
  open(): CheckpointStore {
    const current = this.#storeOpen;
    assert(current === null || current.closed, 'SimCheckpointDevice.open: a store is open');
    this.#resolveInDoubt();
    // A replace belongs to the process that began it (the SQLite store drops stale staging).
    this.#staging = null;
    const store = new SimCheckpointStore(this, this.#epoch);
    this.#storeOpen = store;
    return store;
  }

  /** Power loss (see the fault model at the top of this file). */
  crash(): void {
    this.#epoch++;
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const operation of inflight) {
      // ENOSPC means the transaction could not be written; it can never be found later.
      if (operation.fault === 'ENOSPC') continue;
      if (this.#crashRandom.bool(0.5)) this.#applyIfValid(operation);
    }
    this.#resolveInDoubt();
    this.#staging = null;
    this.#storeOpen = null;
  }

  /** The next `apply` called (on any store of this device) fails with `code`. */
  failNextApply(code: SimCheckpointFault): void {
    assert(code === 'EIO' || code === 'ENOSPC', 'SimCheckpointDevice.failNextApply: bad code');
    this.#faults.push(code);
  }

  /** What a store opened now would load (an in-doubt batch is not in it). Copies. */
  durableState(): CheckpointSnapshot {
    return this.snapshot();
  }

  /** Applies issued and not yet completed. */
  get inflightCount(): number {
    return this.#inflight.size;
  }

  // ----------------------------------------------------------------------------------------
  // The store's side of the device. SimCheckpointStore is the only caller.

  /** @internal Whether `epoch` is the living process. */
  alive(epoch: number): boolean {
    return epoch === this.#epoch;
  }

  /** @internal Takes the fault injected for the next apply, if any. */
  takeFault(): SimCheckpointFault | null {
    return this.#faults.shift() ?? null;
  }

  /** @internal The state as a snapshot: keys ascending, request ids oldest first. Copies. */
  snapshot(): CheckpointSnapshot {
    const keys = [...this.#entries.keys()].sort();
    const entries = keys.map((key) => {
      const entry = this.#entries.get(key);
      assert(entry !== undefined);
      return { key: copyBytes(entry.key), value: copyBytes(entry.value) };
    });
    const requestIds = [...this.#requestIds.values()].map((record) => ({
      ...record,
      value: record.value === null ? null : copyBytes(record.value),
    }));
    requestIds.sort(compareRequestIds);
    const snapshot: CheckpointSnapshot = { appliedLsn: this.#appliedLsn, entries, requestIds };
    if (this.#logBase !== null) snapshot.logBase = { ...this.#logBase };
    return snapshot;
  }

  /**
   * @internal Runs `perform` when the operation completes, in `epoch`. An apply (`tracked`)
   * stays in flight until then, so that a crash can decide its fate.
   */
  operation<T>(epoch: number, perform: () => T, tracked: SimCheckpointApply | null): Promise<T> {
    assert(epoch === this.#epoch, 'SimCheckpointDevice: an operation of a dead process');
    const id = this.#operationIdNext++;
    if (tracked !== null) this.#inflight.set(id, tracked);
    return new Promise<T>((resolve, reject) => {
      const complete = (): void => {
        // The process that issued it died: nobody is left to hear the outcome.
        if (epoch !== this.#epoch) return;
        this.#inflight.delete(id);
        try {
          resolve(perform());
        } catch (error: unknown) {
          reject(error);
        }
      };
      if (this.#scheduler === null) {
        queueMicrotask(complete);
      } else {
        const delayMs = this.#latencyRandom.range(this.#latency.min, this.#latency.max);
        this.#scheduler.schedule(delayMs, complete);
      }
    });
  }

  /** @internal Completes an apply: the fault, or the monotonic check, or the whole batch. */
  applyComplete(operation: SimCheckpointApply): void {
    if (operation.fault === 'ENOSPC') {
      throw new NoSpaceError('checkpoint: no space left on device (simulated)');
    }
    const stored = this.#appliedLsn;
    if (operation.batch.appliedLsn < stored) {
      throw new InvalidError(`appliedLsn ${operation.batch.appliedLsn} is below ${stored}`);
    }
    if (operation.fault === 'EIO') {
      this.#inDoubt = operation;
      throw new IoError('sqlite', 'SQLITE_IOERR_FSYNC: disk I/O error (simulated)');
    }
    this.#perform(operation);
  }

  #resolveInDoubt(): void {
    const operation = this.#inDoubt;
    this.#inDoubt = null;
    if (operation !== null && this.#crashRandom.bool(0.5)) this.#applyIfValid(operation);
  }

  /** A batch below the stored LSN would have been refused, so it can never turn up later. */
  #applyIfValid(operation: SimCheckpointApply): void {
    if (operation.batch.appliedLsn >= this.#appliedLsn) this.#perform(operation);
  }

  #perform(operation: SimCheckpointApply): void {
    if (operation.replace === undefined) this.#applyBatch(operation.batch);
    else this.#replaceState(operation.batch, operation.replace);
  }

  /** @internal Completes a beginReplace: an empty staging area. */
  replaceBegin(): void {
    this.#staging = new Map();
  }

  /** @internal Completes an addReplace (entries already copied). */
  replaceAdd(entries: readonly CheckpointEntry[]): void {
    const staging = this.#staging;
    if (staging === null) throw new InvalidError('addReplace without beginReplace');
    for (const entry of entries) staging.set(latin1(entry.key), entry);
  }

  /** @internal The staged entries a commit called now swaps in. */
  replaceStaged(): Map<string, CheckpointEntry> | null {
    return this.#staging;
  }

  /** The same steps as the SQLite adapter's replace transaction. */
  #replaceState(batch: CheckpointBatch, replace: SimCheckpointReplace): void {
    assert(batch.appliedLsn >= this.#appliedLsn, 'SimCheckpointDevice: appliedLsn went back');
    this.#entries = replace.entries;
    this.#requestIds.clear();
    for (const record of batch.requestIds) this.#requestIds.set(record.requestId, record);
    this.#appliedLsn = batch.appliedLsn;
    this.#logBase = { ...replace.logBase };
    if (this.#staging === replace.entries) this.#staging = null;
  }

  /** The same steps, in the same order, as the SQLite adapter's transaction. */
  #applyBatch(batch: CheckpointBatch): void {
    assert(batch.appliedLsn >= this.#appliedLsn, 'SimCheckpointDevice: appliedLsn went back');
    for (const entry of batch.puts) this.#entries.set(latin1(entry.key), entry);
    for (const key of batch.deletes) this.#entries.delete(latin1(key));
    for (const record of batch.requestIds) this.#requestIds.set(record.requestId, record);
    if (batch.requestIdsBelowLsnForget > 0) {
      for (const [requestId, record] of this.#requestIds) {
        if (record.lsn < batch.requestIdsBelowLsnForget) this.#requestIds.delete(requestId);
      }
    }
    this.#appliedLsn = batch.appliedLsn;
    // An apply beyond the base proves the log was reset to it (records after it were applied).
    if (this.#logBase !== null && batch.appliedLsn > this.#logBase.lsn) this.#logBase = null;
  }
}

/**
 * One process's handle on a SimCheckpointDevice (from `device.open()`). It refuses overlapping
 * applies with an assertion, as the real adapter does, and copies each batch when `apply` is
 * called, so the caller may reuse its buffers at once.
 */
export class SimCheckpointStore implements CheckpointStore {
  readonly #device: SimCheckpointDevice;
  readonly #epoch: number;
  #closed = false;
  #closing: Promise<void> | null = null;
  #fence: IoError | null = null;
  #applying = false;
  readonly #pending = new Set<Promise<unknown>>();

  /** Use `SimCheckpointDevice.open()`. */
  constructor(device: SimCheckpointDevice, epoch: number) {
    this.#device = device;
    this.#epoch = epoch;
  }

  /** True once `close` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  load(): Promise<CheckpointSnapshot> {
    if (!this.#device.alive(this.#epoch)) return never();
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const device = this.#device;
    return this.#track(device.operation(this.#epoch, () => device.snapshot(), null));
  }

  apply(batch: CheckpointBatch): Promise<void> {
    if (!this.#device.alive(this.#epoch)) return never();
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    assert(!this.#applying, 'CheckpointStore.apply: overlapping applies (callers serialize)');
    const operation: SimCheckpointApply = {
      batch: copyBatch(batch),
      fault: this.#device.takeFault(),
    };
    return this.#settleApply(operation);
  }

  /** Runs an apply (or a replace commit) as one tracked operation; IOERR fences the store. */
  #settleApply(operation: SimCheckpointApply): Promise<void> {
    this.#applying = true;
    const device = this.#device;
    const done = device.operation(this.#epoch, () => device.applyComplete(operation), operation);
    const settled = done.then(
      () => {
        this.#applying = false;
      },
      (error: unknown) => {
        this.#applying = false;
        if (error instanceof IoError && this.#fence === null) this.#fence = error;
        throw error;
      },
    );
    return this.#track(settled);
  }

  beginReplace(): Promise<void> {
    if (!this.#device.alive(this.#epoch)) return never();
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const device = this.#device;
    return this.#track(device.operation(this.#epoch, () => device.replaceBegin(), null));
  }

  addReplace(entries: readonly CheckpointEntry[]): Promise<void> {
    if (!this.#device.alive(this.#epoch)) return never();
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const copies = entries.map(copyEntry);
    const device = this.#device;
    return this.#track(device.operation(this.#epoch, () => device.replaceAdd(copies), null));
  }

  commitReplace(commit: CheckpointReplaceCommit): Promise<void> {
    if (!this.#device.alive(this.#epoch)) return never();
    const refusal = this.#refusal();
    if (refusal !== null) return Promise.reject(refusal);
    assert(!this.#applying, 'CheckpointStore.commitReplace: overlaps an apply (callers serialize)');
    const batch = copyBatch({
      appliedLsn: commit.appliedLsn,
      puts: [],
      deletes: [],
      requestIds: commit.requestIds,
      requestIdsBelowLsnForget: 0,
    });
    const logBase = checkedLogBase(commit.logBase);
    const staged = this.#device.replaceStaged();
    if (staged === null) return Promise.reject(new InvalidError('commitReplace without a replace'));
    if (logBase.lsn !== commit.appliedLsn) {
      const message = `logBase.lsn ${logBase.lsn} is not appliedLsn ${commit.appliedLsn}`;
      return Promise.reject(new InvalidError(message));
    }
    const operation: SimCheckpointApply = {
      batch,
      fault: this.#device.takeFault(),
      replace: { entries: staged, logBase },
    };
    return this.#settleApply(operation);
  }

  /**
   * Closes once this store's operations have completed. Closing twice is harmless. Everything
   * is scheduled before this returns, so a caller driving virtual time sees the work queued.
   */
  close(): Promise<void> {
    if (!this.#device.alive(this.#epoch)) return never();
    if (this.#closing !== null) return this.#closing;
    this.#closed = true;
    const closed = this.#device.operation(this.#epoch, () => undefined, null);
    this.#closing = Promise.allSettled([...this.#pending, closed]).then(() => undefined);
    return this.#closing;
  }

  #refusal(): Error | null {
    if (this.#closed) return new ClosedError('checkpoint store is closed');
    if (this.#fence !== null) {
      const message = `store is fenced; reopen it (${this.#fence.message})`;
      return new IoError('checkpoint', message, { cause: this.#fence });
    }
    return null;
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#pending.add(promise);
    const forget = (): void => {
      this.#pending.delete(promise);
    };
    promise.then(forget, forget);
    return promise;
  }
}

/** The batch as the store keeps it: validated, with private copies of every byte array. */
function copyBatch(batch: CheckpointBatch): CheckpointBatch {
  assertLsn(batch.appliedLsn, 'appliedLsn');
  assertLsn(batch.requestIdsBelowLsnForget, 'requestIdsBelowLsnForget');
  const puts = batch.puts.map((entry) => {
    assert(entry.key instanceof Uint8Array, 'CheckpointStore.apply: a key must be bytes');
    assert(entry.value instanceof Uint8Array, 'CheckpointStore.apply: a value must be bytes');
    return { key: copyBytes(entry.key), value: copyBytes(entry.value) };
  });
  const deletes = batch.deletes.map((key) => {
    assert(key instanceof Uint8Array, 'CheckpointStore.apply: a key must be bytes');
    return copyBytes(key);
  });
  const requestIds = batch.requestIds.map((record) => {
    assert(typeof record.requestId === 'string', 'CheckpointStore.apply: bad request id');
    assertLsn(record.lsn, 'request id lsn');
    const known = record.outcome === 'committed' || record.outcome === 'aborted';
    assert(known, 'CheckpointStore.apply: bad request id outcome');
    const value = record.value === null ? null : copyBytes(record.value);
    return { requestId: record.requestId, lsn: record.lsn, outcome: record.outcome, value };
  });
  return {
    appliedLsn: batch.appliedLsn,
    puts,
    deletes,
    requestIds,
    requestIdsBelowLsnForget: batch.requestIdsBelowLsnForget,
  };
}

function assertLsn(value: number, what: string): void {
  assert(Number.isSafeInteger(value), `CheckpointStore.apply: ${what} must be an integer`);
  assert(value >= 0, `CheckpointStore.apply: ${what} must not be negative`);
}

function copyEntry(entry: CheckpointEntry): CheckpointEntry {
  assert(entry.key instanceof Uint8Array, 'CheckpointStore.addReplace: a key must be bytes');
  assert(entry.value instanceof Uint8Array, 'CheckpointStore.addReplace: a value must be bytes');
  return { key: copyBytes(entry.key), value: copyBytes(entry.value) };
}

function checkedLogBase(base: CheckpointLogBase): CheckpointLogBase {
  assertLsn(base.lsn, 'logBase.lsn');
  assertLsn(base.term, 'logBase.term');
  const checksum = base.checksum;
  assert(Number.isSafeInteger(checksum) && checksum >= 0 && checksum <= 0xffffffff, 'checksum');
  return { lsn: base.lsn, checksum, term: base.term };
}

/**
 * A private copy as a plain Uint8Array. Not `.slice()`: on a Buffer that returns a view of the
 * same memory, so the caller could still change what the store holds.
 */
function copyBytes(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * By LSN, then by request id in UTF-8 byte order, which is how SQLite orders TEXT (memcmp) in
 * the real adapter's `ORDER BY lsn, request_id`.
 */
function compareRequestIds(a: RequestIdRecord, b: RequestIdRecord): number {
  if (a.lsn !== b.lsn) return a.lsn - b.lsn;
  return Buffer.compare(Buffer.from(a.requestId, 'utf8'), Buffer.from(b.requestId, 'utf8'));
}

function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}
