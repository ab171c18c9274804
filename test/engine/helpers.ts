import { InvalidError } from '../../src/core/errors.js';
import { openNodeWith } from '../../src/engine/open.js';
import type { NodeOptions } from '../../src/engine/options.js';
import type {
  CheckpointBatch,
  CheckpointLogBase,
  CheckpointReplaceCommit,
  CheckpointSnapshot,
  CheckpointStore,
  RequestIdRecord,
} from '../../src/ports/checkpoint.js';
import { SimDisk } from '../../src/sim/disk.js';

/** A minimal in-memory checkpoint store for engine unit tests (durable across "reopen"). */
export class MemoryCheckpoint {
  appliedLsn = 0;
  readonly entries = new Map<string, Uint8Array>();
  readonly ids = new Map<string, RequestIdRecord>();
  applies = 0;
  failNext: Error | null = null;
  logBase: CheckpointLogBase | null = null;
  staging: Map<string, Uint8Array> | null = null;

  store(): CheckpointStore {
    return {
      load: async () => this.snapshot(),
      apply: async (batch) => this.apply(batch),
      close: async () => undefined,
      beginReplace: async () => {
        this.staging = new Map();
      },
      addReplace: async (entries) => {
        if (this.staging === null) throw new InvalidError('addReplace without beginReplace');
        for (const entry of entries) {
          this.staging.set(Buffer.from(entry.key).toString('latin1'), Uint8Array.from(entry.value));
        }
      },
      commitReplace: async (commit) => this.commitReplace(commit),
    };
  }

  commitReplace(commit: CheckpointReplaceCommit): void {
    if (this.staging === null) throw new InvalidError('commitReplace without a replace');
    if (commit.appliedLsn < this.appliedLsn) throw new InvalidError('appliedLsn went backwards');
    this.entries.clear();
    for (const [key, value] of this.staging) this.entries.set(key, value);
    this.staging = null;
    this.ids.clear();
    for (const record of commit.requestIds) this.ids.set(record.requestId, record);
    this.appliedLsn = commit.appliedLsn;
    this.logBase = { ...commit.logBase };
  }

  snapshot(): CheckpointSnapshot {
    const keys = [...this.entries.keys()].sort();
    return {
      ...(this.logBase === null ? {} : { logBase: { ...this.logBase } }),
      appliedLsn: this.appliedLsn,
      entries: keys.map((key) => ({
        key: Buffer.from(key, 'latin1'),
        value: this.entries.get(key) ?? new Uint8Array(),
      })),
      requestIds: [...this.ids.values()].sort((left, right) => left.lsn - right.lsn),
    };
  }

  apply(batch: CheckpointBatch): void {
    if (this.failNext !== null) {
      const error = this.failNext;
      this.failNext = null;
      throw error;
    }
    if (batch.appliedLsn < this.appliedLsn) throw new InvalidError('appliedLsn went backwards');
    for (const entry of batch.puts) {
      this.entries.set(Buffer.from(entry.key).toString('latin1'), Uint8Array.from(entry.value));
    }
    for (const key of batch.deletes) this.entries.delete(Buffer.from(key).toString('latin1'));
    for (const record of batch.requestIds) this.ids.set(record.requestId, record);
    for (const [id, record] of this.ids) {
      if (record.lsn < batch.requestIdsBelowLsnForget) this.ids.delete(id);
    }
    this.appliedLsn = batch.appliedLsn;
    if (this.logBase !== null && batch.appliedLsn > this.logBase.lsn) this.logBase = null;
    this.applies += 1;
  }
}

export function simNode(
  disk: SimDisk,
  checkpoint: MemoryCheckpoint,
  options: Partial<NodeOptions> = {},
) {
  return openNodeWith(
    { dir: '/node', segmentSizeBytes: 16384, ...options },
    { disk, checkpointStore: async () => checkpoint.store() },
  );
}

export const text = (value: Buffer | Uint8Array | null) =>
  value === null ? null : Buffer.from(value).toString('utf8');
