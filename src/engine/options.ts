import { InvalidError } from '../core/errors.js';
import { recordPayloadBytesMax, segmentSizeBytesDefault } from '../core/limits.js';
import type { CheckpointStoreFactory } from '../ports/checkpoint.js';
import type { Disk } from '../ports/disk.js';
import {
  resolveReplicationOptions,
  type ReplicationOptions,
  type ReplicationOptionsResolved,
} from './replication-options.js';

/** Options of `openNode`. Every field is validated here, and a wrong one is named. */
export interface NodeOptions {
  /** The node directory: `LOCK`, `wal/` and `checkpoint.sqlite` live in it. */
  dir: string;
  /** This node's id, named in the TERM record it writes as primary (default 'n1'). */
  nodeId?: string;
  /** Largest key in bytes (default 64 KiB). */
  keyBytesMax?: number;
  /** Largest value in bytes (default 8 MiB). */
  valueBytesMax?: number;
  /** Most operations in one `batch` (default 10,000). */
  batchOpsMax?: number;
  /** Log segment size in bytes (default 64 MiB). */
  segmentSizeBytes?: number;
  /** Checkpoint automatically once this many log bytes were written since the last one
   * (default 256 MiB; 0 disables automatic checkpoints). */
  checkpointLogBytes?: number;
  /** How many request ids are remembered for retries and `status` (default 100,000). */
  requestIdsRetained?: number;
  /** Scan page size bound (default 1,000 entries per call). */
  scanLimitMax?: number;
  /** Disk adapter (default: the real disk, `new NodeDisk()`). Tests inject a simulated one. */
  disk?: Disk;
  /** Checkpoint store (default: SQLite in a worker thread). Tests inject a simulated one. */
  checkpointStore?: CheckpointStoreFactory;
  /** Membership of a replicated shard (absent: a single node). See ReplicationOptions. */
  replication?: ReplicationOptions;
}

export interface NodeOptionsResolved {
  dir: string;
  nodeId: string;
  keyBytesMax: number;
  valueBytesMax: number;
  batchOpsMax: number;
  segmentSizeBytes: number;
  checkpointLogBytes: number;
  requestIdsRetained: number;
  scanLimitMax: number;
  replication: ReplicationOptionsResolved | null;
}

function invalid(field: string, problem: string): never {
  throw new InvalidError(`option ${field}: ${problem}`);
}

function integerOption(
  options: Record<string, unknown>,
  field: string,
  fallback: number,
  range: { min: number; max: number },
): number {
  const value = options[field] ?? fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    invalid(field, 'must be an integer');
  if (value < range.min || value > range.max) {
    invalid(field, `must be in [${range.min}, ${range.max}]`);
  }
  return value;
}

const known = new Set([
  'dir',
  'nodeId',
  'keyBytesMax',
  'valueBytesMax',
  'batchOpsMax',
  'segmentSizeBytes',
  'checkpointLogBytes',
  'requestIdsRetained',
  'scanLimitMax',
  'disk',
  'checkpointStore',
  'replication',
]);

export function resolveNodeOptions(options: NodeOptions): NodeOptionsResolved {
  if (typeof options !== 'object' || options === null) invalid('options', 'must be an object');
  const raw = options as unknown as Record<string, unknown>;
  for (const field of Object.keys(raw)) if (!known.has(field)) invalid(field, 'unknown option');
  if (typeof options.dir !== 'string' || options.dir.length === 0) invalid('dir', 'must be a path');
  const nodeId = options.nodeId ?? 'n1';
  if (typeof nodeId !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(nodeId)) {
    invalid('nodeId', 'must be 1-64 characters of [A-Za-z0-9_.-]');
  }
  const megabyte = 1024 * 1024;
  return {
    dir: options.dir,
    nodeId,
    keyBytesMax: integerOption(raw, 'keyBytesMax', 64 * 1024, { min: 1, max: megabyte }),
    valueBytesMax: integerOption(raw, 'valueBytesMax', 8 * megabyte, {
      min: 0,
      max: recordPayloadBytesMax / 2,
    }),
    batchOpsMax: integerOption(raw, 'batchOpsMax', 10_000, { min: 1, max: 100_000 }),
    segmentSizeBytes: integerOption(raw, 'segmentSizeBytes', segmentSizeBytesDefault, {
      min: 4096,
      max: 1024 * megabyte,
    }),
    checkpointLogBytes: integerOption(raw, 'checkpointLogBytes', 256 * megabyte, {
      min: 0,
      max: Number.MAX_SAFE_INTEGER,
    }),
    requestIdsRetained: integerOption(raw, 'requestIdsRetained', 100_000, {
      min: 0,
      max: 10_000_000,
    }),
    scanLimitMax: integerOption(raw, 'scanLimitMax', 1_000, { min: 1, max: 100_000 }),
    replication:
      options.replication === undefined
        ? null
        : resolveReplicationOptions(options.replication, nodeId),
  };
}
