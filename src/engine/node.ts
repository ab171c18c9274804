import { EventEmitter } from 'node:events';
import { assert } from '../core/assert.js';
import { ClosedError, InvalidError, IoError, SyncwalError } from '../core/errors.js';
import { RecordType } from '../core/format/frame.js';
import {
  encodeCheckpoint,
  encodeCommit,
  encodeIntentTransient,
  type Effect,
} from '../core/format/record.js';
import { recordPayloadBytesMax } from '../core/limits.js';
import type { CheckpointStore } from '../ports/checkpoint.js';
import type { Log, LogRecordInput } from '../storage/log.js';
import { NoReplicasError, UnknownOutcomeError } from './errors.js';
import { keyBytes, keyString, keyStringOf, toBytes, type KeyString } from './keys.js';
import {
  computeCompareAndSet,
  computeDelete,
  computeIncrement,
  type Computed,
  type StateView,
} from './ops.js';
import type { NodeOptionsResolved } from './options.js';
import type { RequestIds } from './request-ids.js';
import type { CommittedState } from './state.js';

/**
 * A syncwal node in single-node mode: the storage engine of DESIGN §3.
 *
 * Ordering, owned here: a write is validated, computed into effects against committed state
 * plus the pending queue, logged as an INTENT (LSN assigned at once), and waits in the pending
 * queue; reads never see it. When the log reports the intent durable, the commit point passes
 * it: it is applied to the committed state and only then does the caller get its result. A
 * COMMIT record for the new commit point rides along with the next append (never a separate
 * fsync on the hot path); recovery commits durable intents after the last COMMIT itself.
 */
export type KeyInput = string | Uint8Array;
export type ValueInput = string | Uint8Array;

export interface WriteOptions {
  /** A client-chosen id stored in the intent: a retry with the same id is not applied twice. */
  requestId?: string;
}

export interface WriteResult {
  /** LSN of the intent; `get(key, { read: { after: lsn } })` waits for it anywhere. */
  lsn: number;
  /** True if this request id had already been written and this call returned that outcome. */
  duplicate: boolean;
}

export type BatchOperation =
  { op: 'put'; key: KeyInput; value: ValueInput } | { op: 'delete'; key: KeyInput };

/** Read modes (DESIGN §1). On a single node every mode reads the committed, applied state. */
export type ReadMode = 'linearizable' | 'lease' | 'stale' | { after: number };

export interface ReadOptions {
  read?: ReadMode;
}

export interface ScanOptions {
  /** Only keys starting with these bytes. */
  prefix?: KeyInput;
  /** Keys >= start (after applying `prefix`). */
  start?: KeyInput;
  /** Keys < end. */
  end?: KeyInput;
  /** Page size (default 100, at most the node's scanLimitMax). */
  limit?: number;
}

export interface ScanPage {
  entries: { key: Buffer; value: Buffer }[];
  /** Pass as `start` to read the next page; null when the range is exhausted. */
  next: Buffer | null;
}

export type RequestStatus =
  | { status: 'committed'; lsn: number }
  | { status: 'aborted'; lsn: number }
  | { status: 'pending'; lsn: number }
  | { status: 'unknown' };

export interface NodeInfo {
  role: 'primary';
  nodeId: string;
  term: number;
  firstLsn: number;
  lastLsn: number;
  commitLsn: number;
  appliedLsn: number;
  keys: number;
  pending: number;
  fenced: string | null;
  checkpointLsn: number;
  requestIdsRetained: number;
}

interface Pending {
  lsn: number;
  checksum: number;
  effects: Effect[];
  /** The effects' key strings, index for index. */
  names: KeyString[];
  requestId: string | null;
  /** The value a computed write produced (INCR), kept for duplicate retries. */
  value: Uint8Array | null;
  settle: (outcome: { ok: true } | { ok: false; error: SyncwalError }) => void;
  promise: Promise<void>;
}

interface AppliedWaiter {
  lsn: number;
  resolve: () => void;
  reject: (error: SyncwalError) => void;
}

export interface NodeParts {
  options: NodeOptionsResolved;
  log: Log;
  store: CheckpointStore;
  state: CommittedState;
  requestIds: RequestIds;
  term: number;
  checkpointLsn: number;
  lastIntent: { lsn: number; checksum: number };
}

const scanLimitDefault = 100;

export type NodeEvent = 'role' | 'fenced' | 'checkpoint' | 'checkpoint-failed';

export class SyncwalNode {
  readonly #options: NodeOptionsResolved;
  readonly #log: Log;
  readonly #store: CheckpointStore;
  readonly #state: CommittedState;
  readonly #ids: RequestIds;
  readonly #events = new EventEmitter();
  readonly #pending: Pending[] = [];
  #pendingHead = 0;
  readonly #overlay = new Map<KeyString, { value: Uint8Array | null; lsn: number }>();
  readonly #pendingIds = new Map<string, Pending>();
  #waiters: AppliedWaiter[] = [];
  #commitLsn: number;
  #commitRecorded: number;
  #lastIntent: { lsn: number; checksum: number };
  #term: number;
  #failure: SyncwalError | null = null;
  #closed = false;
  #checkpointing: Promise<{ lsn: number }> | null = null;
  #checkpointLsn: number;
  #bytesAtCheckpoint: number;
  readonly #view: StateView;

  /** Use `openNode` (src/index.ts); this constructor takes a recovered node's parts. */
  constructor(parts: NodeParts) {
    this.#options = parts.options;
    this.#log = parts.log;
    this.#store = parts.store;
    this.#state = parts.state;
    this.#ids = parts.requestIds;
    this.#term = parts.term;
    this.#checkpointLsn = parts.checkpointLsn;
    this.#lastIntent = parts.lastIntent;
    this.#commitLsn = parts.log.durableLsn;
    this.#commitRecorded = parts.log.durableLsn;
    this.#bytesAtCheckpoint = parts.log.stats().bytesWritten;
    assert(parts.state.appliedLsn <= this.#commitLsn, 'applied <= committed');
    this.#view = { read: (key) => this.#read(key) };
  }

  #read(key: KeyString): Uint8Array | null {
    const pending = this.#overlay.get(key);
    if (pending !== undefined) return pending.value;
    return this.#state.get(key) ?? null;
  }

  /**
   * 'role' (always 'primary' on a single node), 'fenced' (the error), 'checkpoint' (its
   * `{ lsn }`) and 'checkpoint-failed' (the error) for automatic checkpoints.
   */
  on(event: NodeEvent, listener: (value: unknown) => void): this {
    this.#events.on(event, listener);
    return this;
  }

  off(event: NodeEvent, listener: (value: unknown) => void): this {
    this.#events.off(event, listener);
    return this;
  }

  get role(): 'primary' {
    return 'primary';
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError('node is closed');
  }

  #checkWritable(): void {
    this.#checkOpen();
    if (this.#failure === null && this.#log.failure !== null) this.#fence(this.#log.failure);
    if (this.#failure !== null) throw this.#failure;
  }

  #key(input: unknown, field = 'key'): Uint8Array {
    const bytes = toBytes(input, field);
    if (bytes.length > this.#options.keyBytesMax) {
      throw new InvalidError(
        `${field} of ${bytes.length} bytes exceeds ${this.#options.keyBytesMax}`,
      );
    }
    // A string was just encoded into fresh bytes nobody else holds; caller bytes are copied.
    return typeof input === 'string' ? bytes : copyBytes(bytes);
  }

  #value(input: unknown, field = 'value'): Uint8Array {
    const bytes = toBytes(input, field);
    if (bytes.length > this.#options.valueBytesMax) {
      throw new InvalidError(
        `${field} of ${bytes.length} bytes exceeds ${this.#options.valueBytesMax}`,
      );
    }
    return typeof input === 'string' ? bytes : copyBytes(bytes);
  }

  #requestId(options: WriteOptions | undefined): string | null {
    const requestId = options?.requestId;
    if (requestId === undefined) return null;
    if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > 256) {
      throw new InvalidError('requestId must be a string of 1 to 256 characters');
    }
    return requestId;
  }

  /** Writes `value` under `key`. Resolves once durable and applied. */
  async put(key: KeyInput, value: ValueInput, options?: WriteOptions): Promise<WriteResult> {
    const effects: Effect[] = [{ op: 'put', key: this.#key(key), value: this.#value(value) }];
    const outcome = await this.#submit(this.#requestId(options), () => ({ effects, result: {} }));
    return { lsn: outcome.lsn, duplicate: outcome.duplicate };
  }

  /** Deletes `key`. A key that does not exist logs nothing and reports `deleted: false`. */
  async delete(key: KeyInput, options?: WriteOptions): Promise<WriteResult & { deleted: boolean }> {
    const bytes = this.#key(key);
    const outcome = await this.#submit(this.#requestId(options), (view) =>
      computeDelete(view, bytes),
    );
    return {
      lsn: outcome.lsn,
      duplicate: outcome.duplicate,
      deleted: outcome.result?.deleted ?? true,
    };
  }

  /** Applies all operations atomically: one intent, all visible together or none. */
  async batch(operations: readonly BatchOperation[], options?: WriteOptions): Promise<WriteResult> {
    if (!Array.isArray(operations) || operations.length === 0) {
      throw new InvalidError('batch needs a non-empty array of operations');
    }
    if (operations.length > this.#options.batchOpsMax) {
      throw new InvalidError(`batch of ${operations.length} exceeds ${this.#options.batchOpsMax}`);
    }
    const effects = operations.map((operation, index): Effect => {
      const key = this.#key(operation?.key, `operations[${index}].key`);
      if (operation.op === 'put') {
        return {
          op: 'put',
          key,
          value: this.#value(operation.value, `operations[${index}].value`),
        };
      }
      if (operation.op === 'delete') return { op: 'delete', key };
      throw new InvalidError(`operations[${index}].op must be 'put' or 'delete'`);
    });
    const outcome = await this.#submit(this.#requestId(options), () => ({ effects, result: {} }));
    return { lsn: outcome.lsn, duplicate: outcome.duplicate };
  }

  /** Adds 1; see `incrBy`. */
  incr(key: KeyInput, options?: WriteOptions) {
    return this.incrBy(key, 1, options);
  }

  /**
   * Adds `delta` to the signed 64-bit integer stored as decimal text under `key` (absent counts
   * as 0) and resolves with the new value, as Redis INCRBY does. Logged as a put of the result.
   */
  async incrBy(key: KeyInput, delta: number | bigint, options?: WriteOptions) {
    const bytes = this.#key(key);
    const step =
      typeof delta === 'bigint' ? delta : Number.isSafeInteger(delta) ? BigInt(delta) : null;
    if (step === null) throw new InvalidError('delta must be an integer');
    const outcome = await this.#submit(this.#requestId(options), (view) =>
      computeIncrement(view, bytes, step),
    );
    const value =
      outcome.result?.value ?? BigInt(new TextDecoder().decode(outcome.value ?? new Uint8Array()));
    return { lsn: outcome.lsn, duplicate: outcome.duplicate, value };
  }

  /**
   * Sets `key` to `next` (null deletes) only if it currently holds `expected` (null: absent),
   * comparing against committed state plus pending writes. A mismatch logs nothing.
   */
  async compareAndSet(
    key: KeyInput,
    expected: ValueInput | null,
    next: ValueInput | null,
    options?: WriteOptions,
  ) {
    const bytes = this.#key(key);
    const want = expected === null ? null : this.#value(expected, 'expected');
    const value = next === null ? null : this.#value(next, 'next');
    const outcome = await this.#submit(this.#requestId(options), (view) =>
      computeCompareAndSet(view, bytes, want, value),
    );
    const result = outcome.result ?? { ok: true, current: value };
    return {
      lsn: outcome.lsn,
      duplicate: outcome.duplicate,
      ok: result.ok,
      current: result.current,
    };
  }

  /** Runs a write: dedupe by request id, compute effects, log the intent, wait for commit. */
  async #submit<T>(requestId: string | null, compute: (view: StateView) => Computed<T>) {
    this.#checkWritable();
    if (requestId !== null) {
      const known = this.#ids.get(requestId);
      if (known !== undefined) {
        if (known.outcome === 'aborted') {
          throw new NoReplicasError(`request ${requestId} was aborted (lsn ${known.lsn})`);
        }
        return { lsn: known.lsn, duplicate: true, result: null, value: known.value };
      }
      const inflight = this.#pendingIds.get(requestId);
      if (inflight !== undefined) {
        await inflight.promise;
        return { lsn: inflight.lsn, duplicate: true, result: null, value: inflight.value };
      }
    }
    const computed = compute(this.#view);
    if (computed.effects.length === 0) {
      return { lsn: this.#commitLsn, duplicate: false, result: computed.result, value: null };
    }
    const pending = this.#logIntent(computed.effects, requestId);
    await pending.promise;
    return { lsn: pending.lsn, duplicate: false, result: computed.result, value: pending.value };
  }

  #commitRecord(): LogRecordInput {
    const payload = encodeCommit({
      commitLsn: this.#commitLsn,
      intentLsn: this.#lastIntent.lsn,
      intentChecksum: this.#lastIntent.checksum,
    });
    return { type: RecordType.Commit, term: this.#term, payload };
  }

  #logIntent(effects: Effect[], requestId: string | null): Pending {
    // A transient view: the log copies the payload into its frame before append returns.
    const payload = encodeIntentTransient({ requestId, effects });
    // Room for the intent plus a COMMIT record riding along (a 56-byte frame).
    if (payload.length + 32 + 64 > Math.min(this.#log.appendBytesMax, recordPayloadBytesMax)) {
      throw new InvalidError(
        `write of ${payload.length} bytes exceeds ${this.#log.appendBytesMax}`,
      );
    }
    const records: LogRecordInput[] = [];
    if (this.#commitLsn > this.#commitRecorded && this.#lastIntent.lsn > 0) {
      records.push(this.#commitRecord());
      this.#commitRecorded = this.#commitLsn;
    }
    records.push({ type: RecordType.Intent, term: this.#term, payload });
    const lsnBefore = this.#log.lastLsn;
    const durable = this.#log.append(records);
    assert(this.#log.lastLsn === lsnBefore + records.length, 'the log assigned the LSNs');
    const single = effects.length === 1 && effects[0]?.op === 'put' ? effects[0].value : null;
    let settle: Pending['settle'] = () => undefined;
    const promise = new Promise<void>((resolve, reject) => {
      settle = (outcome) => (outcome.ok ? resolve() : reject(outcome.error));
    });
    const lsn = this.#log.lastLsn;
    // Key strings once per write: the overlay, the apply and the overlay cleanup all use them.
    const names = effects.map((effect) => keyString(effect.key));
    const pending: Pending = {
      lsn,
      checksum: this.#log.lastChecksum,
      effects,
      names,
      requestId,
      value: single,
      settle,
      promise,
    };
    this.#pending.push(pending);
    effects.forEach((effect, index) => {
      const value = effect.op === 'put' ? effect.value : null;
      this.#overlay.set(names[index] ?? keyString(effect.key), { value, lsn });
    });
    if (requestId !== null) this.#pendingIds.set(requestId, pending);
    durable.then(
      (durableLsn) => this.#onDurable(durableLsn),
      (error: unknown) => this.#onAppendFailed(error),
    );
    return pending;
  }

  /** The log made everything up to `durableLsn` durable: on a single node that commits it. */
  #onDurable(durableLsn: number): void {
    if (this.#failure !== null || durableLsn <= this.#commitLsn) return;
    this.#commitLsn = durableLsn;
    for (; this.#pendingHead < this.#pending.length; this.#pendingHead++) {
      const entry = this.#pending[this.#pendingHead];
      assert(entry !== undefined, 'pending entries are dense');
      if (entry.lsn > durableLsn) break;
      this.#applyCommitted(entry);
    }
    // Drop applied entries so their keys and values can be collected: all at once when the
    // queue is drained (the common case), in bulk when a long tail keeps it from draining.
    if (this.#pendingHead === this.#pending.length) {
      this.#pending.length = 0;
      this.#pendingHead = 0;
    } else if (this.#pendingHead > 1024 && this.#pendingHead * 2 > this.#pending.length) {
      this.#pending.splice(0, this.#pendingHead);
      this.#pendingHead = 0;
    }
    this.#state.advance(durableLsn);
    this.#wakeWaiters();
    this.#maybeCheckpoint();
  }

  #applyCommitted(entry: Pending): void {
    this.#state.apply(entry.lsn, entry.effects, entry.names);
    this.#lastIntent = { lsn: entry.lsn, checksum: entry.checksum };
    for (const name of entry.names) {
      if (this.#overlay.get(name)?.lsn === entry.lsn) this.#overlay.delete(name);
    }
    if (entry.requestId !== null) {
      this.#ids.record(entry.requestId, {
        lsn: entry.lsn,
        outcome: 'committed',
        value: entry.value,
      });
      this.#pendingIds.delete(entry.requestId);
    }
    entry.settle({ ok: true });
  }

  #onAppendFailed(error: unknown): void {
    if (this.#failure !== null) return;
    const failure = error instanceof SyncwalError ? error : new IoError('append', String(error));
    // NOSPACE with a healthy log is definitive: the log rolled back every record after its
    // durable LSN, so those intents were never written and never will be.
    if (failure.code !== 'NOSPACE' || this.#log.failure !== null) {
      this.#fence(failure);
      return;
    }
    const durable = this.#log.durableLsn;
    const rejected = this.#pending.splice(this.#pendingHead).filter((entry) => entry.lsn > durable);
    this.#pending.length = 0;
    this.#pendingHead = 0;
    this.#overlay.clear();
    this.#commitRecorded = Math.min(this.#commitRecorded, durable);
    for (const entry of rejected) {
      if (entry.requestId !== null) this.#pendingIds.delete(entry.requestId);
      entry.settle({ ok: false, error: failure });
    }
  }

  /** Fail-stop: writes reject with IOERR from now on, and waiting writes get UNKNOWN. */
  #fence(error: SyncwalError): void {
    if (this.#failure !== null) return;
    this.#failure =
      error.code === 'IOERR'
        ? error
        : new IoError('node', `fenced: ${error.message}`, { cause: error });
    const unknown = new UnknownOutcomeError(
      `outcome unknown, the node is fenced (${error.message}); after a restart ` +
        'status(requestId) answers definitively',
      { cause: error },
    );
    const waiting = this.#pending.splice(this.#pendingHead);
    this.#pending.length = 0;
    this.#pendingHead = 0;
    this.#overlay.clear();
    this.#pendingIds.clear();
    for (const entry of waiting) entry.settle({ ok: false, error: unknown });
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(unknown);
    this.#events.emit('fenced', this.#failure);
  }

  #wakeWaiters(): void {
    if (this.#waiters.length === 0) return;
    const applied = this.#state.appliedLsn;
    const ready = this.#waiters.filter((waiter) => waiter.lsn <= applied);
    this.#waiters = this.#waiters.filter((waiter) => waiter.lsn > applied);
    for (const waiter of ready) waiter.resolve();
  }

  /** Resolves when the read mode allows reading the committed state. */
  async #readBarrier(mode: ReadMode | undefined): Promise<void> {
    if (mode === undefined || mode === 'linearizable' || mode === 'lease' || mode === 'stale') {
      return;
    }
    if (typeof mode !== 'object' || mode === null || !Number.isSafeInteger(mode.after)) {
      throw new InvalidError("read must be 'linearizable', 'lease', 'stale' or { after: lsn }");
    }
    if (mode.after <= this.#state.appliedLsn) return;
    if (mode.after > this.#log.lastLsn) {
      throw new InvalidError(`lsn ${mode.after} is beyond the log (last ${this.#log.lastLsn})`);
    }
    if (this.#failure !== null) throw new UnknownOutcomeError('node is fenced');
    await new Promise<void>((resolve, reject) => {
      this.#waiters.push({ lsn: mode.after, resolve, reject });
    });
  }

  /** The committed value of `key`, or null. Never sees pending writes. */
  get(key: KeyInput, options?: ReadOptions): Promise<Buffer | null> {
    try {
      this.#checkOpen();
      const { name, bytes } = keyStringOf(key, 'key');
      if (bytes > this.#options.keyBytesMax) throw new InvalidError('key too large');
      // The common case needs no wait: answer with an already-settled promise.
      if (options?.read === undefined) return Promise.resolve(this.#committedCopy(name));
      return this.#readBarrier(options.read).then(() => this.#committedCopy(name));
    } catch (error: unknown) {
      return Promise.reject(error);
    }
  }

  #committedCopy(name: KeyString): Buffer | null {
    const value = this.#state.get(name);
    return value === undefined ? null : Buffer.from(value);
  }

  /** One page of committed entries in key order (prefix and/or [start, end) range). */
  async scan(options: ScanOptions = {}): Promise<ScanPage> {
    this.#checkOpen();
    const limit = options.limit ?? scanLimitDefault;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > this.#options.scanLimitMax) {
      throw new InvalidError(`limit must be in [1, ${this.#options.scanLimitMax}]`);
    }
    let start = options.start === undefined ? null : keyString(this.#key(options.start, 'start'));
    let end = options.end === undefined ? null : keyString(this.#key(options.end, 'end'));
    if (options.prefix !== undefined) {
      const prefix = keyString(this.#key(options.prefix, 'prefix'));
      if (start === null || start < prefix) start = prefix;
      const after = prefixSuccessor(prefix);
      if (after !== null && (end === null || end > after)) end = after;
    }
    const page = this.#state.scan({ start, end, limit });
    const entries = page.entries.map((entry) => ({
      key: entry.key,
      value: Buffer.from(entry.value),
    }));
    const last = entries.at(-1);
    const next = page.more && last !== undefined ? keyBytes(`${keyString(last.key)}\u0000`) : null;
    return { entries, next };
  }

  /** What became of a write that carried `requestId` (retention: requestIdsRetained). */
  status(requestId: string): RequestStatus {
    this.#checkOpen();
    const known = this.#ids.get(requestId);
    if (known !== undefined) return { status: known.outcome, lsn: known.lsn };
    const inflight = this.#pendingIds.get(requestId);
    if (inflight !== undefined) return { status: 'pending', lsn: inflight.lsn };
    return { status: 'unknown' };
  }

  info(): NodeInfo {
    return {
      role: 'primary',
      nodeId: this.#options.nodeId,
      term: this.#term,
      firstLsn: this.#log.firstLsn,
      lastLsn: this.#log.lastLsn,
      commitLsn: this.#commitLsn,
      appliedLsn: this.#state.appliedLsn,
      keys: this.#state.size,
      pending: this.#pending.length - this.#pendingHead,
      fenced: this.#failure?.message ?? null,
      checkpointLsn: this.#checkpointLsn,
      requestIdsRetained: this.#ids.size,
    };
  }

  #maybeCheckpoint(): void {
    const threshold = this.#options.checkpointLogBytes;
    if (threshold === 0 || this.#checkpointing !== null || this.#closed) return;
    if (this.#log.stats().bytesWritten - this.#bytesAtCheckpoint < threshold) return;
    this.checkpoint().then(
      (result) => this.#events.emit('checkpoint', result),
      (error: unknown) => this.#events.emit('checkpoint-failed', error),
    );
  }

  /**
   * Stores the committed state up to the applied LSN in the checkpoint (only what changed
   * since the last one), then deletes log segments wholly below it. Concurrent calls share
   * one run. A failed checkpoint changes nothing and can be retried.
   */
  checkpoint(): Promise<{ lsn: number }> {
    try {
      this.#checkWritable();
    } catch (error: unknown) {
      return Promise.reject(error);
    }
    this.#checkpointing ??= this.#runCheckpoint().finally(() => {
      this.#checkpointing = null;
    });
    return this.#checkpointing;
  }

  async #runCheckpoint(): Promise<{ lsn: number }> {
    const appliedLsn = this.#state.appliedLsn;
    const bytesAt = this.#log.stats().bytesWritten;
    const dirty = this.#state.takeDirty();
    const requestIds = this.#ids.takeSinceCheckpoint();
    const puts: { key: Uint8Array; value: Uint8Array }[] = [];
    const deletes: Uint8Array[] = [];
    for (const [name, value] of dirty) {
      if (value === null) deletes.push(keyBytes(name));
      else puts.push({ key: keyBytes(name), value });
    }
    try {
      await this.#store.apply({
        appliedLsn,
        puts,
        deletes,
        requestIds,
        requestIdsBelowLsnForget: this.#ids.forgetBelowLsn(),
      });
    } catch (error: unknown) {
      this.#state.restoreDirty(dirty);
      this.#ids.restoreSinceCheckpoint(requestIds);
      throw error;
    }
    this.#checkpointLsn = appliedLsn;
    this.#bytesAtCheckpoint = bytesAt;
    if (this.#failure === null) {
      const payload = encodeCheckpoint({ lsn: appliedLsn });
      this.#log.append([{ type: RecordType.Checkpoint, term: this.#term, payload }]).then(
        (durableLsn) => this.#onDurable(durableLsn),
        (error: unknown) => this.#onAppendFailed(error),
      );
      await this.#log.truncatePrefix({ lsnFirst: appliedLsn + 1 });
    }
    return { lsn: appliedLsn };
  }

  /**
   * Lets in-flight writes finish, records the final commit point, and closes the log and the
   * checkpoint store. Later calls reject with CLOSED.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const inflight = this.#pending.slice(this.#pendingHead).map((entry) => entry.promise);
    await Promise.allSettled(inflight);
    await this.#checkpointing?.catch(() => undefined);
    if (
      this.#failure === null &&
      this.#commitLsn > this.#commitRecorded &&
      this.#lastIntent.lsn > 0
    ) {
      await this.#log.append([this.#commitRecord()]).catch(() => undefined);
    }
    await this.#log.close();
    await this.#store.close();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(new ClosedError('node is closed'));
  }
}

/**
 * A copy the caller cannot change under us. `Uint8Array.prototype.slice` copies even for a
 * Buffer (whose own `slice` is a view), and is much faster than `Uint8Array.from`.
 */
function copyBytes(bytes: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes);
}

/** The smallest string above every string that starts with `prefix`, or null if none. */
function prefixSuccessor(prefix: KeyString): KeyString | null {
  for (let index = prefix.length - 1; index >= 0; index--) {
    const code = prefix.charCodeAt(index);
    if (code < 0xff) return prefix.slice(0, index) + String.fromCharCode(code + 1);
  }
  return null;
}
