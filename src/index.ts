/**
 * syncwal: a write-ahead-log storage engine with commit/apply separation.
 *
 * `openNode(options)` opens (and recovers) a node in a directory and returns its API. This
 * file is the composition root: it supplies the real disk and the SQLite checkpoint store,
 * which tests replace with the simulated ones from `syncwal/testing`.
 */
import { randomInt } from 'node:crypto';
import { NodeDisk } from './node/disk.js';
import { openSqliteCheckpoint } from './node/checkpoint-sqlite.js';
import { systemClock } from './node/clock.js';
import type { SyncwalNode } from './engine/node.js';
import { openNodeWith } from './engine/open.js';
import type { NodeOptions } from './engine/options.js';

/**
 * Opens the node stored in `options.dir` (created if missing), recovering it from its
 * checkpoint and log. Rejects with a typed error: INVALID naming a wrong option, LOCKED if
 * another process has the directory, CORRUPT naming segment, offset and LSN if stored data
 * fails verification, IOERR/NOSPACE for disk failures.
 */
export function openNode(options: NodeOptions): Promise<SyncwalNode> {
  return openNodeWith(options, {
    disk: new NodeDisk(),
    checkpointStore: (dir) => openSqliteCheckpoint(dir),
    clock: systemClock,
    hashSeed: randomInt(2 ** 31),
  });
}

export type { NodeOptions } from './engine/options.js';
export type {
  BatchOperation,
  KeyInput,
  NodeInfo,
  ReadMode,
  ReadOptions,
  RequestStatus,
  ScanOptions,
  ScanPage,
  SyncwalNode,
  ValueInput,
  WriteOptions,
  WriteResult,
} from './engine/node.js';
export {
  NoReplicasError,
  NotPrimaryError,
  TryAgainError,
  UnknownOutcomeError,
} from './engine/errors.js';
export type { ReplicationOptions } from './engine/replication-options.js';
export type { ReplicationStatus } from './engine/replicator.js';
export type { DurabilityPolicy, AcksMode } from './core/consensus/quorum.js';
export type { ReplicaStatus } from './core/consensus/primary.js';
export { TcpTransport, type TcpTransportOptions } from './node/transport.js';
export type { Transport, PeerEvent, HelloSource } from './ports/transport.js';
export type { Logger, LogFields } from './ports/logger.js';
export type { Clock } from './ports/clock.js';
export {
  ClosedError,
  CorruptionError,
  InvalidError,
  IoError,
  LockedError,
  NoSpaceError,
  SyncwalError,
  isSyncwalError,
  type ErrorCode,
} from './core/errors.js';
export { Log, type LogRecord, type LogRecordInput } from './storage/log.js';
export { RecordType, recordTypeName } from './core/format/frame.js';
export {
  decodeAbort,
  decodeCheckpoint,
  decodeCommit,
  decodeIntent,
  decodeTerm,
  encodeIntent,
  type Effect,
  type IntentPayload,
} from './core/format/record.js';
export { NodeDisk, type NodeDiskOptions } from './node/disk.js';
export type { Disk, FileHandle } from './ports/disk.js';
export type { CheckpointStore, CheckpointStoreFactory } from './ports/checkpoint.js';
