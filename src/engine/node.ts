import { EventEmitter } from 'node:events';
import { assert } from '../core/assert.js';
import { ClosedError, InvalidError, IoError, SyncwalError } from '../core/errors.js';
import { RecordType } from '../core/format/frame.js';
import {
  encodeCheckpoint,
  encodeCommit,
  encodeIntentShared,
  intentEffectsStart,
  type Effect,
} from '../core/format/record.js';
import { recordPayloadBytesMax } from '../core/limits.js';
import type { TermIndex } from '../core/consensus/frames.js';
import { policyProblem, type DurabilityPolicy } from '../core/consensus/quorum.js';
import type { CheckpointStore } from '../ports/checkpoint.js';
import type { Clock } from '../ports/clock.js';
import type { Transport } from '../ports/transport.js';
import type { Log, LogRecordInput } from '../storage/log.js';
import { WriteAborts } from './aborts.js';
import { NoReplicasError, NotPrimaryError, TryAgainError, UnknownOutcomeError } from './errors.js';
import {
  keyBytes,
  keyNameOf,
  keyString,
  toBytes,
  valueBytes,
  type KeyString,
  type ValueString,
} from './keys.js';
import {
  computeCompareAndSet,
  computeDelete,
  computeIncrement,
  type Computed,
  type StateView,
} from './ops.js';
import type { InstalledSnapshot } from './full-sync.js';
import type { NodeOptionsResolved } from './options.js';
import { Pending, PendingQueue, type WriteResult } from './pending.js';
import { ReplicaApply } from './replica-apply.js';
import type { ReplayedIntent } from './replay.js';
import type { ReplicationOptionsResolved } from './replication-options.js';
import { Replicator, type EngineHooks, type ReplicationStatus } from './replicator.js';
import type { RequestIds } from './request-ids.js';
import type { CommittedState } from './state.js';

export type { WriteResult } from './pending.js';

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
  role: 'primary' | 'replica';
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
  /** The shard as this node sees it (null on a single node). */
  replication: ReplicationStatus | null;
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
  /** Present when the node is a member of a replicated shard. */
  replication?: ReplicationParts;
}

/** What `openNodeWith` hands a replicated node (see open.ts). */
export interface ReplicationParts {
  options: ReplicationOptionsResolved;
  transport: Transport;
  clock: Clock;
  terms: TermIndex;
  /** Primary: LSN of the TERM record it wrote (and synced) when it opened. */
  termStartLsn: number;
  /** The commit point recorded in the log (intents after it are in doubt). */
  commitLsn: number;
  /** Intents after the commit point, to be resolved with the shard. */
  inDoubt: (ReplayedIntent & { aborted: boolean })[];
  /** ABORT records after the commit point (a replica holds them with the intents). */
  inDoubtAborts: { lsn: number; lsnFirst: number; lsnLast: number }[];
}

const scanLimitDefault = 100;
/** Rounds an answer without effects waits for pending writes it read (see #computeNow). */
const noEffectRoundsMax = 64;
const noop = (): void => undefined;
/** Answers without effects remembered for retries (see #noEffectAnswers). */
const noEffectAnswersMax = 4096;

/** An answer as #earlier hands it to a retry. */
interface Answered {
  lsn: number;
  result: unknown;
  value: Uint8Array | null;
}

export type NodeEvent = 'role' | 'fenced' | 'checkpoint' | 'checkpoint-failed' | 'replication';

export class SyncwalNode {
  readonly #options: NodeOptionsResolved;
  readonly #log: Log;
  readonly #store: CheckpointStore;
  readonly #state: CommittedState;
  readonly #ids: RequestIds;
  readonly #events = new EventEmitter();
  readonly #pending = new PendingQueue();
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
  /** Attempts with a request id waiting to compute again (see #computeNow), by id. */
  readonly #recomputing = new Map<string, Promise<Answered>>();
  /**
   * Answers without effects to writes with a request id, newest last (at most
   * `noEffectAnswersMax`): nothing was logged for them, so only this memory lets a retry get
   * the same answer instead of running again (in memory: not across a restart or failover).
   */
  readonly #noEffectAnswers = new Map<string, Answered>();
  /** The latest pending write the current computation read (see #computeNow). */
  #readPending: Pending | null = null;
  /** The handlers of every append's promise, made once rather than per write. */
  readonly #whenDurable: (durableLsn: number) => void;
  readonly #whenAppendFailed: (error: unknown) => void;
  readonly #replicator: Replicator | null = null;
  readonly #clock: Clock | null = null;
  /** Replica: received records waiting for the commit point. */
  readonly #replicaApply: ReplicaApply | null = null;
  readonly #aborts: WriteAborts | null = null;
  /** Primary after a restart: in-doubt intents an ABORT covers, resolved when committed past. */
  #inDoubtAborted: ReplayedIntent[] = [];
  /** Primary: its TERM record; intents before it commit with it and are never aborted. */
  #termStartLsn = 0;
  /** Primary: its TERM record has not committed yet, so reads wait (#takeOverBarrier). */
  #takingOver = false;
  /** Writes held back while the primary lets a replica catch the very end. */
  #paused: (() => void)[] = [];

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
    this.#whenDurable = (durableLsn) => this.#onDurable(durableLsn);
    this.#whenAppendFailed = (error) => this.#onAppendFailed(error);
    const replication = parts.replication;
    if (replication !== undefined) {
      this.#commitLsn = replication.commitLsn;
      this.#commitRecorded = replication.commitLsn;
      this.#clock = replication.clock;
      this.#termStartLsn = replication.termStartLsn;
      if (replication.options.role === 'replica') {
        this.#replicaApply = new ReplicaApply(this.#state, this.#ids, this.#log.lastLsn);
        this.#replicaApply.holdRecovered(replication.inDoubt, replication.inDoubtAborts);
      } else {
        this.#aborts = this.#newAborts();
        this.#holdInDoubt(replication.inDoubt);
        this.#takingOver = this.#state.appliedLsn < replication.termStartLsn;
      }
      this.#replicator = new Replicator({
        options: replication.options,
        log: this.#log,
        store: this.#store,
        transport: replication.transport,
        clock: replication.clock,
        hooks: this.#hooks(),
        terms: replication.terms,
        commitLsn: replication.commitLsn,
        termStartLsn: replication.termStartLsn,
      });
    }
  }

  #newAborts(): WriteAborts {
    return new WriteAborts({
      log: this.#log,
      ids: this.#ids,
      pendingIds: this.#pendingIds,
      term: () => this.#term,
      hold: (firstLsn, abortLsn) => this.#replicator?.hold(firstLsn, abortLsn),
      majorityLsn: () => this.#replicator?.majorityLsn ?? 0,
      onAppend: (durable) => durable.then(this.#whenDurable, this.#whenAppendFailed),
    });
  }

  /** A restarted primary's in-doubt intents wait as pending writes nobody awaits. */
  #holdInDoubt(inDoubt: (ReplayedIntent & { aborted: boolean })[]): void {
    for (const intent of inDoubt) {
      if (intent.aborted) {
        this.#inDoubtAborted.push(intent);
        continue;
      }
      const { lsn, checksum, names, values, requestId } = intent;
      const single = values.length === 1 ? (values[0] ?? null) : null;
      const value = requestId !== null && single !== null ? valueBytes(single) : null;
      const pending = new Pending(lsn, checksum, names, values, requestId, value);
      pending.promise.catch(() => undefined);
      this.#pending.push(pending);
      if (requestId !== null) this.#pendingIds.set(requestId, pending);
    }
  }

  /** The engine as the replicator drives it. */
  #hooks(): EngineHooks {
    return {
      commitTo: (lsn) => this.#commitTo(lsn),
      received: (frames) => this.#replicaApply?.receive(frames),
      truncated: (lsn) => this.#replicaApply?.truncateAfter(lsn),
      resume: () => this.#resumeWrites(),
      expire: (before, now) => this.#expire(before, now),
      fail: (error) => this.#fence(error),
      event: (name, fields) => this.#events.emit('replication', { event: name, ...fields }),
      capture: () => ({
        lsn: this.#state.appliedLsn,
        ...this.#state.sortedEntries(),
        requestIds: this.#ids.records(),
      }),
      installed: (installed) => this.#installSnapshot(installed),
      checkpointIdle: async () => {
        await this.#checkpointing?.catch(() => undefined);
      },
    };
  }

  /**
   * Replica: a full sync committed a new checkpoint and reset the log to `installed.lsn`; the
   * state, the request ids and the records waiting for apply are replaced by the checkpoint's.
   */
  async #installSnapshot(installed: InstalledSnapshot): Promise<void> {
    const snapshot = await this.#store.load();
    assert(snapshot.appliedLsn === installed.lsn, 'the checkpoint holds the installed snapshot');
    this.#state.replaceAll(snapshot.entries, snapshot.appliedLsn);
    this.#ids.replaceAll(snapshot.requestIds);
    this.#replicaApply?.reset(installed.lsn);
    this.#commitLsn = installed.lsn;
    this.#commitRecorded = installed.lsn;
    this.#checkpointLsn = installed.lsn;
    this.#bytesAtCheckpoint = this.#log.stats().bytesWritten;
    this.#wakeWaiters();
  }

  #read(key: KeyString): ValueString | null {
    const pending = this.#pending.latest(key);
    if (pending === null) return this.#state.get(key) ?? null;
    if (this.#readPending === null || pending.lsn > this.#readPending.lsn) {
      this.#readPending = pending;
    }
    return pending.valueOf(key);
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

  /** 'primary' takes writes; a 'replica' refuses them with NOTPRIMARY and serves reads. */
  get role(): 'primary' | 'replica' {
    return this.#replicator?.role ?? 'primary';
  }

  #checkOpen(): void {
    if (this.#closed) throw new ClosedError('node is closed');
  }

  /** Throws unless this node can take a write now (`policy`: also check the policy). */
  #checkWritable(policy = true): void {
    this.#checkOpen();
    if (this.#failure === null && this.#log.failure !== null) this.#fence(this.#log.failure);
    if (this.#failure !== null) throw this.#failure;
    const replicator = this.#replicator;
    if (replicator === null) return;
    if (replicator.role !== 'primary') throw new NotPrimaryError(replicator.status().primary);
    if (!policy) return;
    const reason = replicator.unmeetable();
    if (reason !== null) {
      throw new NoReplicasError(`the durability policy cannot be met: ${reason}`);
    }
  }

  /** Null if writes may go now; else resolves when a paused primary lets them go. */
  #gate(): Promise<void> | null {
    if (this.#replicator === null || !this.#replicator.writesPaused) return null;
    return new Promise<void>((resolve) => this.#paused.push(resolve));
  }

  #resumeWrites(): void {
    const paused = this.#paused;
    this.#paused = [];
    for (const resume of paused) resume();
  }

  /**
   * A key's bytes, checked. Not a copy: the write path reads them only while the write is
   * submitted (it encodes the intent and copies them into a KeyString at once).
   */
  #key(input: unknown, field = 'key'): Uint8Array {
    const bytes = toBytes(input, field);
    if (bytes.length > this.#options.keyBytesMax) {
      throw new InvalidError(
        `${field} of ${bytes.length} bytes exceeds ${this.#options.keyBytesMax}`,
      );
    }
    return this.#owned(input, bytes);
  }

  /**
   * A replicated primary may hold a write back (`#gate`) before it reads the bytes, so there
   * the caller's bytes are copied; a string's bytes are fresh either way.
   */
  #owned(input: unknown, bytes: Uint8Array): Uint8Array {
    if (this.#replicator === null || typeof input === 'string') return bytes;
    return Uint8Array.prototype.slice.call(bytes);
  }

  /** A value's bytes, checked; not a copy (see `#key`). */
  #value(input: unknown, field = 'value'): Uint8Array {
    const bytes = toBytes(input, field);
    if (bytes.length > this.#options.valueBytesMax) {
      throw new InvalidError(
        `${field} of ${bytes.length} bytes exceeds ${this.#options.valueBytesMax}`,
      );
    }
    return this.#owned(input, bytes);
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
  put(key: KeyInput, value: ValueInput, options?: WriteOptions): Promise<WriteResult> {
    try {
      const effects: Effect[] = [{ op: 'put', key: this.#key(key), value: this.#value(value) }];
      // Without a request id there is nothing to look up and nothing to compute: the caller
      // gets the intent's own promise, which resolves with the result once it is applied.
      if (options?.requestId === undefined && this.#replicator === null) {
        this.#checkWritable();
        return this.#logIntent(effects, null).promise;
      }
      return this.#write(this.#requestId(options), effects);
    } catch (error: unknown) {
      return Promise.reject(error);
    }
  }

  async #write(requestId: string | null, effects: Effect[]): Promise<WriteResult> {
    const outcome = await this.#submit(requestId, () => ({ effects, result: {} }));
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
    // The operations' bytes are read now and never again (see `#key`).
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
    // A retry is answered from what the first attempt did, even when a new write could not
    // be taken now (the policy cannot be met).
    // No await between the lookup and logging the intent: a concurrent retry must find it.
    this.#checkWritable(false);
    const first = requestId === null ? null : this.#earlier(requestId);
    if (first !== null) return first;
    this.#checkWritable();
    const gate = this.#gate();
    if (gate !== null) {
      await gate;
      this.#checkWritable();
      const meanwhile = requestId === null ? null : this.#earlier(requestId);
      if (meanwhile !== null) return meanwhile;
    }
    // Synchronous unless an answer without effects must wait (no await before logging).
    const step = this.#computeNow(compute);
    if ('wait' in step) {
      const attempt = this.#recompute(requestId, compute, step.wait);
      if (requestId === null) return attempt;
      // A retry while this attempt waits gets this attempt's answer (#earlier).
      this.#recomputing.set(requestId, attempt);
      const forget = () => {
        if (this.#recomputing.get(requestId) === attempt) this.#recomputing.delete(requestId);
      };
      attempt.then(forget, forget);
      return attempt;
    }
    return this.#commitComputed(requestId, step.computed);
  }

  /** Logs what `computed` changes (if anything) and answers once it committed. */
  async #commitComputed<T>(requestId: string | null, computed: Computed<T>) {
    if (computed.effects.length === 0) {
      const answer = {
        lsn: this.#commitLsn,
        duplicate: false,
        result: computed.result,
        value: null,
      };
      if (requestId !== null) this.#rememberNoEffect(requestId, answer);
      return answer;
    }
    const pending = this.#logIntent(computed.effects, requestId);
    await pending.promise;
    return { lsn: pending.lsn, duplicate: false, result: computed.result, value: pending.value };
  }

  #rememberNoEffect(requestId: string, answer: Answered): void {
    this.#noEffectAnswers.delete(requestId);
    this.#noEffectAnswers.set(requestId, answer);
    if (this.#noEffectAnswers.size > noEffectAnswersMax) {
      const oldest = this.#noEffectAnswers.keys().next();
      if (oldest.done !== true) this.#noEffectAnswers.delete(oldest.value);
    }
  }

  /** Waits for the pending write an answer without effects read, and computes again. */
  async #recompute<T>(
    requestId: string | null,
    compute: (view: StateView) => Computed<T>,
    first: Pending,
  ) {
    let wait: Pending = first;
    for (let round = 0; round < noEffectRoundsMax; round++) {
      await wait.promise.then(noop, noop);
      this.#checkWritable();
      const step = this.#computeNow(compute);
      if (!('wait' in step)) return this.#commitComputed(requestId, step.computed);
      wait = step.wait;
    }
    throw new UnknownOutcomeError('the keys kept changing; nothing was written, try again');
  }

  /**
   * One computation against committed state plus the pending writes: its answer, or the
   * pending write an answer without effects rests on. An answer with effects may rest on
   * pending writes (if one aborts, the ABORT covers every later intent, this one too); one
   * without effects (a CAS miss, a delete of nothing, an INCR refused INVALID) is logged
   * nowhere, so it must wait for the pending writes it read to resolve and be computed again
   * (the linearizability checker found answers read from writes that then aborted).
   */
  #computeNow<T>(
    compute: (view: StateView) => Computed<T>,
  ): { computed: Computed<T> } | { wait: Pending } {
    this.#readPending = null;
    try {
      const computed = compute(this.#view);
      // Set by #read during compute (TypeScript cannot see that).
      const read = this.#readPending as Pending | null;
      if (computed.effects.length > 0 || read === null) return { computed };
      return { wait: read };
    } catch (error: unknown) {
      const read = this.#readPending as Pending | null;
      if (read === null) throw error;
      return { wait: read };
    } finally {
      this.#readPending = null;
    }
  }

  /**
   * The outcome of an earlier write with `requestId` (a promise of it while that write is
   * pending), or null, decided synchronously.
   */
  #earlier(requestId: string) {
    type Earlier = { lsn: number; duplicate: true; result: null; value: Uint8Array | null };
    // The answer's own result (a CAS miss, `deleted: false`) goes back to the retry.
    const again = (answer: Answered): Earlier => ({
      lsn: answer.lsn,
      duplicate: true,
      result: answer.result as null,
      value: answer.value,
    });
    const recomputing = this.#recomputing.get(requestId);
    if (recomputing !== undefined) return recomputing.then(again);
    const noEffect = this.#noEffectAnswers.get(requestId);
    if (noEffect !== undefined) return Promise.resolve(again(noEffect));
    const known = this.#ids.get(requestId);
    const inflight = this.#pendingIds.get(requestId);
    // A retry logged after an earlier attempt was aborted is the one that counts (cluster
    // seed 531: a restarted primary learned of the old ABORT while the new attempt was pending).
    if (inflight !== undefined && (known === undefined || inflight.lsn > known.lsn)) {
      return inflight.promise.then((): Earlier => ({
        lsn: inflight.lsn,
        duplicate: true,
        result: null,
        value: inflight.value,
      }));
    }
    if (known !== undefined) {
      if (known.outcome === 'aborted') {
        throw new NoReplicasError(`request ${requestId} was aborted (lsn ${known.lsn})`);
      }
      const earlier: Earlier = {
        lsn: known.lsn,
        duplicate: true,
        result: null,
        value: known.value,
      };
      return Promise.resolve(earlier);
    }
    if (this.#aborts?.unresolved(requestId) === true) {
      throw new UnknownOutcomeError(
        `request ${requestId} was aborted but its ABORT is not safe yet; retry later`,
      );
    }
    return null;
  }

  #commitRecord(): LogRecordInput {
    const payload = encodeCommit({
      commitLsn: this.#commitLsn,
      intentLsn: this.#lastIntent.lsn,
      intentChecksum: this.#lastIntent.checksum,
    });
    return { type: RecordType.Commit, term: this.#term, payload };
  }

  /**
   * Logs one intent (LSN assigned now) and queues it as pending. Everything it needs from the
   * effects' bytes is taken before it returns: the log encodes the payload at once, and the keys
   * and values are copied into strings.
   */
  #logIntent(effects: Effect[], requestId: string | null): Pending {
    // The pending intent's own copy of the effects (the log copies it into its frame): the
    // apply reads them from it in place, and the overlay of computed writes makes strings of it
    // only if it needs them.
    const payload = encodeIntentShared({ requestId, effects });
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
    const effectsStart = intentEffectsStart(payload);
    assert(effectsStart >= 0, 'the engine encodes well-formed intents');
    const single = effects.length === 1 ? effects[0] : undefined;
    // A single put's value ends the payload; it is kept with the request id, so it gets bytes
    // of its own (a view would keep the payload's whole shared chunk alive).
    const value =
      requestId !== null && single?.op === 'put'
        ? Buffer.from(payload.subarray(payload.length - single.value.length))
        : null;
    const lsn = this.#log.lastLsn;
    const checksum = this.#log.lastChecksum;
    const pending = Pending.fromPayload({ lsn, checksum, requestId, value }, payload, effectsStart);
    this.#pending.push(pending);
    if (requestId !== null) this.#pendingIds.set(requestId, pending);
    if (this.#aborts !== null && this.#clock !== null) {
      this.#aborts.logged(pending.lsn, this.#clock.now());
    }
    durable.then(this.#whenDurable, this.#whenAppendFailed);
    return pending;
  }

  /** The log made everything up to `durableLsn` durable: on a single node that commits it. */
  #onDurable(durableLsn: number): void {
    if (this.#failure !== null) return;
    // Replicated: durability is one input of the commit point; the replicator decides.
    if (this.#replicator !== null) this.#replicator.durable(durableLsn);
    else this.#commitTo(durableLsn);
  }

  /** The commit point passed `lsn`: apply what it covers, answer the writers waiting on it. */
  #commitTo(lsn: number): void {
    if (this.#failure !== null) return;
    if (this.#replicaApply !== null) {
      if (lsn <= this.#commitLsn) return;
      this.#commitLsn = lsn;
      this.#replicaApply.commitTo(lsn);
      this.#wakeWaiters();
      this.#maybeCheckpoint();
      return;
    }
    this.#commitPending(lsn);
    this.#resolveInDoubtAborted(lsn);
    this.#aborts?.committed(lsn);
    this.#aborts?.resolve(this.#clock?.now() ?? 0);
  }

  #resolveInDoubtAborted(lsn: number): void {
    while ((this.#inDoubtAborted[0]?.lsn ?? Infinity) <= lsn) {
      const intent = this.#inDoubtAborted.shift();
      if (intent?.requestId === null || intent === undefined) continue;
      this.#ids.record(intent.requestId, { lsn: intent.lsn, outcome: 'aborted', value: null });
    }
  }

  /** Primary: the commit point passed `durableLsn` (named so on a single node). */
  #commitPending(durableLsn: number): void {
    if (durableLsn <= this.#commitLsn) return;
    this.#commitLsn = durableLsn;
    let applied: Pending | null = null;
    const limit = this.#pending.size;
    for (let count = 0; count < limit; count++) {
      const entry = this.#pending.peek();
      if (entry === null || entry.lsn > durableLsn) break;
      this.#applyCommitted(this.#pending.shift());
      applied = entry;
    }
    if (applied !== null) this.#lastIntent = { lsn: applied.lsn, checksum: applied.checksum };
    this.#state.advance(durableLsn);
    this.#wakeWaiters();
    this.#maybeCheckpoint();
  }

  #applyCommitted(entry: Pending): void {
    const payload = entry.payload;
    if (payload !== null) this.#state.applyIntent(entry.lsn, payload, entry.effectsStart);
    else this.#state.apply(entry.lsn, entry.names, entry.values);
    if (entry.requestId !== null) {
      this.#ids.record(entry.requestId, {
        lsn: entry.lsn,
        outcome: 'committed',
        value: entry.value,
      });
      this.#pendingIds.delete(entry.requestId);
    }
    entry.resolve({ lsn: entry.lsn, duplicate: false });
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
    const rejected = this.#pending.takeAll().filter((entry) => entry.lsn > durable);
    this.#commitRecorded = Math.min(this.#commitRecorded, durable);
    for (const entry of rejected) {
      if (entry.requestId !== null) this.#pendingIds.delete(entry.requestId);
      entry.reject(failure);
    }
  }

  /** Commit timeout (replicated primary): abort every pending write if the oldest is late. */
  #expire(before: number, now: number): void {
    const aborts = this.#aborts;
    const replicator = this.#replicator;
    if (aborts === null || replicator === null || this.#failure !== null) return;
    if (aborts.expired(before)) {
      // The in-doubt tail of an earlier term stays: it commits when this term's TERM does.
      const entries = this.#pending.takeAll();
      const earlier = entries.filter((entry) => entry.lsn < this.#termStartLsn);
      for (const entry of earlier) this.#pending.push(entry);
      const aborted = entries.filter((entry) => entry.lsn > this.#termStartLsn);
      aborts.abort(aborted, now, replicator.status().policy.commitTimeoutMs);
    }
    aborts.resolve(now);
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
    const waiting = this.#pending.takeAll();
    this.#pendingIds.clear();
    for (const entry of waiting) entry.reject(unknown);
    this.#aborts?.failAll(unknown);
    this.#resumeWrites();
    void this.#replicator?.close();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(unknown);
    this.#events.emit('fenced', this.#failure);
  }

  #wakeWaiters(): void {
    if (this.#takingOver && this.#state.appliedLsn >= this.#termStartLsn) this.#takingOver = false;
    if (this.#waiters.length === 0) return;
    const applied = this.#state.appliedLsn;
    const ready = this.#waiters.filter((waiter) => waiter.lsn <= applied);
    this.#waiters = this.#waiters.filter((waiter) => waiter.lsn > applied);
    for (const waiter of ready) waiter.resolve();
  }

  /** Resolves when the read mode allows reading the committed state. */
  async #readBarrier(mode: ReadMode | undefined): Promise<void> {
    if (mode === 'linearizable' || mode === 'lease') {
      // Primary-only modes; a fixed primary's committed state is linearizable.
      if (this.role !== 'primary') {
        throw new NotPrimaryError(this.#replicator?.status().primary ?? null);
      }
      return;
    }
    if (mode === undefined || mode === 'stale') return;
    if (typeof mode !== 'object' || mode === null || !Number.isSafeInteger(mode.after)) {
      throw new InvalidError("read must be 'linearizable', 'lease', 'stale' or { after: lsn }");
    }
    if (mode.after <= this.#state.appliedLsn) return;
    // A replica waits for records it has not received yet; a primary assigned every LSN there
    // is, so one beyond its log was never written.
    if (mode.after > this.#log.lastLsn && this.role === 'primary') {
      throw new InvalidError(`lsn ${mode.after} is beyond the log (last ${this.#log.lastLsn})`);
    }
    if (this.#failure !== null) throw new UnknownOutcomeError('node is fenced');
    await new Promise<void>((resolve, reject) => {
      this.#waiters.push({ lsn: mode.after, resolve, reject });
    });
  }

  /** The committed value of `key` (a fresh copy), or null. Never sees pending writes. */
  get(key: KeyInput, options?: ReadOptions): Promise<Buffer | null> {
    try {
      // The common case needs no wait: answer with an already-settled promise.
      if (options?.read === undefined && !this.#takingOver) {
        return Promise.resolve(this.getSync(key));
      }
      const name = this.#readName(key);
      return this.#takeOverBarrier()
        .then(() => this.#readBarrier(options?.read))
        .then(() => this.#committedCopy(name));
    } catch (error: unknown) {
      return Promise.reject(error);
    }
  }

  /**
   * `get` without the promise: the committed value of `key` (a fresh copy) or null, right now.
   * The same answer as `get(key)` with the default read mode, which on a single node never has
   * to wait; it saves the promise and the `await` (about a third of an in-process get). Errors
   * (CLOSED, INVALID) are thrown instead of rejected, and a replicated primary that just took
   * over throws TRYAGAIN until its first record commits (its state may lack acknowledged
   * writes of the term before until then; `get` waits instead).
   */
  getSync(key: KeyInput): Buffer | null {
    if (this.#takingOver) {
      throw new TryAgainError('this primary has not committed its first record yet; use get()');
    }
    // Bytes are looked up as they are (no KeyString made of them).
    if (key instanceof Uint8Array) {
      this.#checkOpen();
      if (key.length > this.#options.keyBytesMax) throw new InvalidError('key too large');
      return this.#state.copyOfBytes(key);
    }
    return this.#committedCopy(this.#readName(key));
  }

  #readName(key: unknown): KeyString {
    this.#checkOpen();
    const name = keyNameOf(key, 'key');
    // A KeyString has one char per byte: its length is the key's size.
    if (name.length > this.#options.keyBytesMax) throw new InvalidError('key too large');
    return name;
  }

  #committedCopy(name: KeyString): Buffer | null {
    return this.#state.copyOf(name);
  }

  /**
   * A replicated primary that just took over has not applied the previous term's tail yet: its
   * reads wait until its TERM record commits (Raft's rule: a new leader serves reads once it
   * committed an entry of its term). Found by the linearizability checker.
   */
  #takeOverBarrier(): Promise<void> {
    if (!this.#takingOver) return Promise.resolve();
    if (this.#failure !== null) return Promise.reject(new UnknownOutcomeError('node is fenced'));
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ lsn: this.#termStartLsn, resolve, reject });
    });
  }

  /** One page of committed entries in key order (prefix and/or [start, end) range). */
  async scan(options: ScanOptions = {}): Promise<ScanPage> {
    this.#checkOpen();
    await this.#takeOverBarrier();
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
      value: valueBytes(entry.value),
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

  /** The shard as this node sees it: role, term, commit point, policy, replicas (primary). */
  replication(): ReplicationStatus | null {
    return this.#replicator?.status() ?? null;
  }

  /** The durability policy in force (primary of a replicated shard; null otherwise). */
  durabilityPolicy(): DurabilityPolicy | null {
    return this.#replicator?.role === 'primary' ? this.#replicator.status().policy : null;
  }

  /**
   * Changes the durability policy at run time (DESIGN §4): `acks` 'quorum' or 'all',
   * `minReplicas`, `commitTimeoutMs`, `replicaTimeoutMs`. Only on a replicated primary.
   */
  setDurabilityPolicy(change: Partial<DurabilityPolicy>): DurabilityPolicy {
    this.#checkOpen();
    const replicator = this.#replicator;
    if (replicator === null) throw new InvalidError('a single node has no durability policy');
    if (replicator.role !== 'primary') throw new NotPrimaryError(replicator.status().primary);
    const known = ['acks', 'minReplicas', 'commitTimeoutMs', 'replicaTimeoutMs'];
    for (const field of Object.keys(change ?? {})) {
      if (!known.includes(field)) throw new InvalidError(`policy field ${field} is unknown`);
    }
    const policy = { ...replicator.status().policy, ...change };
    const problem = policyProblem(policy);
    if (problem !== null) throw new InvalidError(`policy: ${problem}`);
    replicator.setPolicy(policy);
    return policy;
  }

  info(): NodeInfo {
    const replication = this.replication();
    return {
      role: this.role,
      nodeId: this.#options.nodeId,
      term: replication?.term ?? this.#term,
      firstLsn: this.#log.firstLsn,
      lastLsn: this.#log.lastLsn,
      commitLsn: this.#commitLsn,
      appliedLsn: this.#state.appliedLsn,
      keys: this.#state.size,
      pending: this.#pending.size,
      fenced: this.#failure?.message ?? null,
      checkpointLsn: this.#checkpointLsn,
      requestIdsRetained: this.#ids.size,
      replication,
    };
  }

  #maybeCheckpoint(): void {
    const threshold = this.#options.checkpointLogBytes;
    if (threshold === 0 || this.#checkpointing !== null || this.#closed) return;
    // A full sync is replacing the checkpoint: the next commit after it checks again.
    if (this.#replicator?.installing === true) return;
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
      this.#checkOpen();
      if (this.#failure === null && this.#log.failure !== null) this.#fence(this.#log.failure);
      if (this.#failure !== null) throw this.#failure;
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
    const { taken, puts, deletes } = this.#state.takeChanges();
    const requestIds = this.#ids.takeSinceCheckpoint();
    try {
      await this.#store.apply({
        appliedLsn,
        puts,
        deletes,
        requestIds,
        requestIdsBelowLsnForget: this.#ids.forgetBelowLsn(),
      });
    } catch (error: unknown) {
      this.#state.restoreDirty(taken);
      this.#ids.restoreSinceCheckpoint(requestIds);
      throw error;
    }
    this.#checkpointLsn = appliedLsn;
    this.#bytesAtCheckpoint = bytesAt;
    if (this.#failure === null) {
      // A replica's log holds only its primary's records (byte-identical over the prefix).
      if (this.role === 'primary') {
        const payload = encodeCheckpoint({ lsn: appliedLsn });
        this.#log.append([{ type: RecordType.Checkpoint, term: this.#term, payload }]).then(
          (durableLsn) => this.#onDurable(durableLsn),
          (error: unknown) => this.#onAppendFailed(error),
        );
      }
      await this.#log.truncatePrefix({ lsnFirst: this.#prefixKeptFrom(appliedLsn) });
      this.#replicator?.truncatedPrefix(this.#log.firstLsn);
    }
    return { lsn: appliedLsn };
  }

  /** Waits for `promise`, on a replicated node at most about two commit timeouts. */
  async #settleOrTimeout(promise: Promise<unknown>): Promise<void> {
    const clock = this.#clock;
    const replicator = this.#replicator;
    if (clock === null || replicator === null) {
      await promise;
      return;
    }
    const limitMs = 2 * replicator.status().policy.commitTimeoutMs + 1_000;
    let cancel = () => undefined as void;
    const timeout = new Promise<void>((resolve) => {
      cancel = clock.setTimer(limitMs, resolve);
    });
    await Promise.race([promise, timeout]);
    cancel();
  }

  /**
   * The first LSN the log must keep after a checkpoint at `appliedLsn`. A primary keeps what
   * its replicas have not acknowledged yet, up to `logRetainRecords` behind the checkpoint, so
   * they catch up from the log; a replica further behind gets a full sync (which holds the
   * log after its snapshot while it runs), and one already getting one holds nothing more.
   */
  #prefixKeptFrom(appliedLsn: number): number {
    let first = appliedLsn + 1;
    const replicator = this.#replicator;
    if (replicator?.role !== 'primary') return first;
    const retained = Math.max(
      1,
      appliedLsn + 1 - (this.#options.replication?.logRetainRecords ?? 0),
    );
    for (const replica of replicator.status().replicas) {
      if (replica.state === 'snapshot') continue;
      first = Math.min(first, Math.max(replica.ackedLsn + 1, retained));
    }
    return Math.min(first, replicator.snapshotHeldFrom);
  }

  /**
   * Lets in-flight writes finish, records the final commit point, and closes the log and the
   * checkpoint store. Later calls reject with CLOSED.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const inflight = this.#pending.promises();
    // A replicated write may never commit (no quorum): wait at most for the abort timeout.
    await this.#settleOrTimeout(Promise.allSettled(inflight));
    await this.#checkpointing?.catch(() => undefined);
    // The final commit point goes to the replicas too (it ships as it is appended).
    if (
      this.role === 'primary' &&
      this.#failure === null &&
      this.#commitLsn > this.#commitRecorded &&
      this.#lastIntent.lsn > 0
    ) {
      await this.#log.append([this.#commitRecord()]).catch(() => undefined);
    }
    await this.#replicator?.close();
    const unresolved = new UnknownOutcomeError('the node closed before the write resolved');
    this.#aborts?.failAll(unresolved);
    for (const entry of this.#pending.takeAll()) entry.reject(unresolved);
    this.#resumeWrites();
    await this.#log.close();
    await this.#store.close();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter.reject(new ClosedError('node is closed'));
  }
}

/** The smallest string above every string that starts with `prefix`, or null if none. */
function prefixSuccessor(prefix: KeyString): KeyString | null {
  for (let index = prefix.length - 1; index >= 0; index--) {
    const code = prefix.charCodeAt(index);
    if (code < 0xff) return prefix.slice(0, index) + String.fromCharCode(code + 1);
  }
  return null;
}
