/**
 * What the RESP server needs from a node: the `ServerBackend` port.
 *
 * `SyncwalNode` (src/engine/node.ts) satisfies it structurally, so `syncwal serve` passes the
 * node it opened. A replicated node satisfies it too and adds the optional replication hooks;
 * when a hook is absent the server answers as a single node does: role master, no replicas,
 * WAIT answers 0, CONFIG SET of the durability policy and FAILOVER are refused.
 *
 * Errors: every method rejects (or throws) with an error carrying a stable `code` (INVALID,
 * CLOSED, IOERR, NOSPACE, UNKNOWN, NOREPLICAS, NOTPRIMARY, ...); src/server/errors.ts maps
 * each code to a RESP error prefix. An error without a code is a bug and answers `ERR`.
 */

export type BackendKey = string | Uint8Array;
export type BackendValue = string | Uint8Array;

export interface BackendWriteOptions {
  /** A client-chosen id stored in the intent: a retry with the same id is not applied twice. */
  requestId?: string;
}

export interface BackendWriteResult {
  lsn: number;
  duplicate: boolean;
}

export type BackendOperation =
  { op: 'put'; key: BackendKey; value: BackendValue } | { op: 'delete'; key: BackendKey };

export interface BackendScanPage {
  entries: { key: Buffer; value: Buffer }[];
  next: Buffer | null;
}

export type BackendRequestStatus =
  | { status: 'committed'; lsn: number }
  | { status: 'aborted'; lsn: number }
  | { status: 'pending'; lsn: number }
  | { status: 'unknown' };

/** The fields of `SyncwalNode.info()` the server reports. */
export interface BackendInfo {
  nodeId: string;
  term: number;
  firstLsn: number;
  lastLsn: number;
  commitLsn: number;
  appliedLsn: number;
  keys: number;
  pending: number;
  /** Why the node fenced itself (it refuses writes until restarted), or null. */
  fenced: string | null;
  checkpointLsn: number;
}

export type Acks = 'quorum' | 'all';

/** The shard's durability policy (DESIGN §4). */
export interface DurabilityPolicy {
  acks: Acks;
  minReplicas: number;
  commitTimeoutMs: number;
  replicaTimeoutMs: number;
}

export interface ReplicaState {
  id: string;
  /** The replica's client address `host:port`, if known. */
  address: string | null;
  connected: boolean;
  eligible: boolean;
  /** Highest LSN the replica reported durable. */
  ackedLsn: number;
  /** Milliseconds since its last ack, or null if it never acked. */
  lastAckAgoMs: number | null;
  /** The full sync the primary is sending it, if one runs. */
  fullSync?: FullSyncView | null;
}

/** A full sync's progress as INFO shows it (DESIGN §5: bytes and keys, rate, ETA). */
export interface FullSyncView {
  state: string;
  keysDone: number;
  keysTotal: number;
  bytesDone: number;
  bytesTotal: number;
  bytesPerSec: number;
  etaMs: number | null;
}

/** What a replicated node reports about replication (INFO replication, ROLE, WAIT, status). */
export interface ReplicationState {
  role: 'primary' | 'replica' | 'candidate';
  term: number;
  /** The primary's node id, when known. */
  primaryId: string | null;
  /** The primary's client address `host:port`, when known (for READONLY hints). */
  primaryAddress: string | null;
  /** Replica: is its link to the primary up? Primary: true. */
  linkUp: boolean;
  /** Replica: does the primary count it as eligible? Primary: true. */
  eligible: boolean;
  commitLsn: number;
  lastLsn: number;
  appliedLsn: number;
  /** On the primary, one entry per replica; empty elsewhere. */
  replicas: ReplicaState[];
  /** Replica: the full sync it receives (or received last), if any. */
  fullSync?: FullSyncView | null;
}

export interface FailoverRequest {
  /** The node to hand over to; null lets the primary choose the most up-to-date eligible one. */
  target: string | null;
  /** Skip waiting for the target to catch up (may lose acknowledged writes: logged loudly). */
  force: boolean;
  timeoutMs: number;
}

export interface ServerBackend {
  put(
    key: BackendKey,
    value: BackendValue,
    options?: BackendWriteOptions,
  ): Promise<BackendWriteResult>;
  delete(
    key: BackendKey,
    options?: BackendWriteOptions,
  ): Promise<BackendWriteResult & { deleted: boolean }>;
  batch(
    operations: readonly BackendOperation[],
    options?: BackendWriteOptions,
  ): Promise<BackendWriteResult>;
  incrBy(
    key: BackendKey,
    delta: bigint,
    options?: BackendWriteOptions,
  ): Promise<BackendWriteResult & { value: bigint }>;
  compareAndSet(
    key: BackendKey,
    expected: BackendValue | null,
    next: BackendValue | null,
    options?: BackendWriteOptions,
  ): Promise<BackendWriteResult & { ok: boolean }>;
  get(key: BackendKey): Promise<Buffer | null>;
  /**
   * `get` without the promise, for a backend whose reads never wait (a node's default read:
   * its committed state, now): the same answer, errors thrown instead of rejected. Optional;
   * the server uses it when present, which saves a promise and a turn per read.
   */
  getSync?(key: BackendKey): Buffer | null;
  scan(options: {
    prefix?: BackendKey;
    start?: BackendKey;
    limit?: number;
  }): Promise<BackendScanPage>;
  status(requestId: string): BackendRequestStatus;
  checkpoint(): Promise<{ lsn: number }>;
  info(): BackendInfo;
  close(): Promise<void>;
  /** Node events: 'fenced', 'checkpoint', 'checkpoint-failed', 'role'. */
  on?(
    event: 'role' | 'fenced' | 'checkpoint' | 'checkpoint-failed',
    listener: (value: unknown) => void,
  ): unknown;

  /** Replication state; absent on a single node. */
  replicationState?(): ReplicationState;
  /** The durability policy in force; absent on a single node. */
  durability?(): DurabilityPolicy;
  /** Changes the policy at run time (validated; INVALID names a bad field). */
  setDurability?(change: Partial<DurabilityPolicy>): Promise<DurabilityPolicy>;
  /** Manual failover (FAILOVER [TO id] [FORCE]); resolves once the primary stepped down. */
  failover?(request: FailoverRequest): Promise<void>;
  /**
   * Extra INFO persistence fields (log segments, bytes, fsync latency, full-sync progress):
   * snake_case names, printed as given. Absent: only the fields of `info()` are shown.
   */
  persistenceStats?(): Record<string, string | number>;
}

/** The replication state of a backend without replication hooks: a lone primary. */
export function singleNodeReplication(info: BackendInfo): ReplicationState {
  return {
    role: 'primary',
    term: info.term,
    primaryId: info.nodeId,
    primaryAddress: null,
    linkUp: true,
    eligible: true,
    commitLsn: info.commitLsn,
    lastLsn: info.lastLsn,
    appliedLsn: info.appliedLsn,
    replicas: [],
  };
}

export function replicationOf(backend: ServerBackend): ReplicationState {
  return backend.replicationState?.() ?? singleNodeReplication(backend.info());
}
