import { InvalidError } from '../core/errors.js';
import {
  durabilityPolicyDefault,
  policyProblem,
  type DurabilityPolicy,
} from '../core/consensus/quorum.js';
import type { Clock } from '../ports/clock.js';
import { silentLogger, type Logger } from '../ports/logger.js';
import type { HelloSource, Transport } from '../ports/transport.js';
import { resolveFullSyncOptions, type FullSyncOptions, type ReceiverOptions } from './full-sync.js';

/**
 * `openNode({ replication })`: this node as a member of a shard. In this phase the primary is
 * fixed by configuration (`primary`); elections come later.
 */
export interface ReplicationOptions {
  /** Names the shard; peers of another shard are refused at the handshake. */
  shardId: string;
  /** Every member's node id, this node's included (all are voters). */
  members: string[];
  /** The member that is primary. */
  primary: string;
  /**
   * The peer network. A function receives the source of this node's handshake Hello (the
   * composition root builds the TCP transport; simulations pass a SimNetwork transport).
   */
  transport: (hello: HelloSource) => Transport | Promise<Transport>;
  /** Durability policy (DESIGN §4); changeable at run time with `setPolicy`. */
  policy?: Partial<DurabilityPolicy>;
  /** Heartbeat interval (default 50 ms). */
  heartbeatIntervalMs?: number;
  /** Time source (default: real time). */
  clock?: Clock;
  /** Structured log of replication events (default: silent). */
  logger?: Logger;
  /**
   * Records of log the primary keeps, after its checkpoint, for replicas to catch up from
   * (default 1,000,000; like etcd's catch-up entries). A replica further behind, or one whose
   * data directory is gone, gets a full sync instead.
   */
  logRetainRecords?: number;
  /** Full sync tuning: key-range streams (default 4), chunk size, window, timeouts. */
  fullSync?: Partial<FullSyncOptions>;
}

export interface ReplicationOptionsResolved {
  shardId: string;
  nodeId: string;
  members: string[];
  primary: string;
  role: 'primary' | 'replica';
  transport: (hello: HelloSource) => Transport | Promise<Transport>;
  policy: DurabilityPolicy;
  heartbeatIntervalMs: number;
  tickMs: number;
  appendBytesMax: number;
  inflightBytesMax: number;
  retransmitMs: number;
  windowBytesMax: number;
  eligibilityLagRecords: number;
  eligibilityPauseMs: number;
  clock: Clock | null;
  logger: Logger;
  logRetainRecords: number;
  fullSync: FullSyncOptions;
  fullSyncReceiver: Partial<ReceiverOptions>;
  fullSyncProgressLogMs: number;
}

const idPattern = /^[A-Za-z0-9_.-]{1,64}$/;

function invalid(field: string, problem: string): never {
  throw new InvalidError(`option replication.${field}: ${problem}`);
}

const known = new Set([
  'shardId',
  'members',
  'primary',
  'transport',
  'policy',
  'heartbeatIntervalMs',
  'clock',
  'logger',
  'logRetainRecords',
  'fullSync',
]);

export function resolveReplicationOptions(
  options: ReplicationOptions,
  nodeId: string,
): ReplicationOptionsResolved {
  if (typeof options !== 'object' || options === null) invalid('', 'must be an object');
  for (const field of Object.keys(options)) if (!known.has(field)) invalid(field, 'unknown');
  if (typeof options.shardId !== 'string' || !idPattern.test(options.shardId)) {
    invalid('shardId', 'must be 1-64 characters of [A-Za-z0-9_.-]');
  }
  const members = options.members;
  if (!Array.isArray(members) || members.length === 0 || members.length > 7) {
    invalid('members', 'must list 1 to 7 node ids');
  }
  if (members.some((id) => typeof id !== 'string' || !idPattern.test(id))) {
    invalid('members', 'node ids are 1-64 characters of [A-Za-z0-9_.-]');
  }
  if (new Set(members).size !== members.length) invalid('members', 'has a duplicate id');
  if (!members.includes(nodeId)) invalid('members', `must include this node (${nodeId})`);
  if (!members.includes(options.primary)) invalid('primary', 'must be one of the members');
  if (typeof options.transport !== 'function') invalid('transport', 'must be a function');
  const policy = { ...durabilityPolicyDefault, ...(options.policy ?? {}) };
  const problem = policyProblem(policy);
  if (problem !== null) invalid('policy', problem);
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 50;
  if (!Number.isSafeInteger(heartbeatIntervalMs) || heartbeatIntervalMs < 1) {
    invalid('heartbeatIntervalMs', 'must be a positive integer');
  }
  const logRetainRecords = options.logRetainRecords ?? 1_000_000;
  if (!Number.isSafeInteger(logRetainRecords) || logRetainRecords < 0) {
    invalid('logRetainRecords', 'must be a non-negative integer');
  }
  let fullSync: FullSyncOptions;
  try {
    fullSync = resolveFullSyncOptions(options.fullSync ?? {});
  } catch (error: unknown) {
    const message = error instanceof Error ? error.message : String(error);
    throw new InvalidError(message.replace('option fullSync.', 'option replication.fullSync.'));
  }
  return {
    shardId: options.shardId,
    nodeId,
    members: [...members],
    primary: options.primary,
    role: options.primary === nodeId ? 'primary' : 'replica',
    transport: options.transport,
    policy,
    heartbeatIntervalMs,
    tickMs: Math.max(1, Math.floor(heartbeatIntervalMs / 5)),
    appendBytesMax: 1024 * 1024,
    inflightBytesMax: 8 * 1024 * 1024,
    retransmitMs: Math.max(4 * heartbeatIntervalMs, 200),
    windowBytesMax: 64 * 1024 * 1024,
    eligibilityLagRecords: 64,
    eligibilityPauseMs: Math.max(heartbeatIntervalMs, 20),
    clock: options.clock ?? null,
    logger: options.logger ?? silentLogger,
    logRetainRecords,
    fullSync,
    fullSyncReceiver: {},
    fullSyncProgressLogMs: 5_000,
  };
}
