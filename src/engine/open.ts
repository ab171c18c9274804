import { diskError, InvalidError } from '../core/errors.js';
import { RecordType } from '../core/format/frame.js';
import { encodeCommit, encodeTerm } from '../core/format/record.js';
import { TermIndex } from '../core/consensus/frames.js';
import type { CheckpointStore, CheckpointStoreFactory } from '../ports/checkpoint.js';
import type { Clock } from '../ports/clock.js';
import type { Disk } from '../ports/disk.js';
import { Log } from '../storage/log.js';
import { SyncwalNode, type ReplicationParts } from './node.js';
import { resolveNodeOptions, type NodeOptions, type NodeOptionsResolved } from './options.js';
import { LogReplay, type Replayed } from './replay.js';
import type { ReplicationOptionsResolved } from './replication-options.js';
import { Replicator } from './replicator.js';
import { RequestIds } from './request-ids.js';
import { CommittedState } from './state.js';

export interface NodeAdapters {
  disk: Disk;
  checkpointStore: CheckpointStoreFactory;
  /** Time for replication (heartbeats, timeouts); a replicated node needs one. */
  clock?: Clock;
  /**
   * Seeds the hash of the in-memory key index (CommittedState): the composition root passes a
   * random one, so that nobody can choose keys that collide; without it the seed is fixed.
   */
  hashSeed?: number;
}

/**
 * Opens a node: recovers the log, loads the checkpoint, replays the log after it, commits what
 * a single node finds in doubt, and writes the first TERM record of a brand-new node.
 */
export async function openNodeWith(options: NodeOptions, defaults: NodeAdapters) {
  const resolved = resolveNodeOptions(options);
  const disk = options.disk ?? defaults.disk;
  const factory = options.checkpointStore ?? defaults.checkpointStore;
  // The log is replayed as recovery scans it, while the checkpoint store starts (replay.ts).
  const stateOptions = defaults.hashSeed === undefined ? {} : { hashSeed: defaults.hashSeed };
  let state = new CommittedState(0, stateOptions);
  let replay = new LogReplay(state);
  const { log, store } = await openLogAndStore(disk, factory, { ...resolved, replay });
  try {
    const snapshot = await store.load();
    const logBase = snapshot.logBase;
    if (logBase !== undefined && log.firstLsn !== logBase.lsn + 1) {
      // A full sync committed its checkpoint but the node stopped before the log was reset
      // (see CheckpointLogBase): finish the reset; the old log's replay is void.
      await log.resetTo(logBase);
      state = new CommittedState(0, stateOptions);
      replay = new LogReplay(state);
    }
    const requestIds = new RequestIds(resolved.requestIdsRetained);
    for (const record of snapshot.requestIds) requestIds.load(record);
    if (resolved.replication !== null) {
      const replication = resolved.replication;
      const replayed = replay.finish(log, snapshot, requestIds, 'hold');
      const parts = await replicationParts(log, replayed, replication, defaults.clock);
      return new SyncwalNode({
        options: resolved,
        log,
        store,
        state,
        requestIds,
        term: log.lastTerm,
        checkpointLsn: snapshot.appliedLsn,
        lastIntent: replayed.lastIntent,
        replication: { ...parts, commitLsn: state.appliedLsn },
      });
    }
    const replayed = replay.finish(log, snapshot, requestIds);
    let term = Math.max(replayed.term, 1);
    if (log.lastLsn === 0) {
      const payload = encodeTerm({ term: 1, primaryId: resolved.nodeId });
      await log.append([{ type: RecordType.Term, term: 1, payload }]);
      term = 1;
    }
    if (replayed.lastIntent.lsn > replayed.commitRecordedLsn) {
      // Durable intents after the last COMMIT: a single node commits them itself.
      const payload = encodeCommit({
        commitLsn: log.lastLsn,
        intentLsn: replayed.lastIntent.lsn,
        intentChecksum: replayed.lastIntent.checksum,
      });
      await log.append([{ type: RecordType.Commit, term, payload }]);
    }
    state.advance(log.durableLsn);
    return new SyncwalNode({
      options: resolved,
      log,
      store,
      state,
      requestIds,
      term,
      checkpointLsn: snapshot.appliedLsn,
      lastIntent: replayed.lastIntent,
    });
  } catch (error: unknown) {
    await store.close().catch(() => undefined);
    await log.close().catch(() => undefined);
    throw error;
  }
}

/**
 * Opens the log (recovery scans and verifies all of it) and the checkpoint store at the same
 * time: the store's start-up (the SQLite worker thread) overlaps the scan instead of following
 * it. If either fails, the other is closed and the first failure is thrown. The store is only
 * read before the log holds the directory lock (it loads; nothing writes it until a checkpoint).
 */
async function openLogAndStore(
  disk: Disk,
  factory: CheckpointStoreFactory,
  resolved: NodeOptionsResolved & { replay: LogReplay },
): Promise<{ log: Log; store: CheckpointStore }> {
  // The store's file lives in the node directory: it must exist before both start.
  await disk.mkdir(resolved.dir).catch((error: unknown) => {
    throw diskError('mkdir', error);
  });
  const [log, store] = await Promise.allSettled([
    Log.open(disk, {
      dir: resolved.dir,
      segmentSizeBytes: resolved.segmentSizeBytes,
      onRecoveredRecord: resolved.replay.onRecord,
    }),
    factory(resolved.dir),
  ]);
  if (log.status === 'fulfilled' && store.status === 'fulfilled') {
    return { log: log.value, store: store.value };
  }
  if (store.status === 'fulfilled') await store.value.close().catch(() => undefined);
  if (log.status === 'fulfilled') await log.value.close().catch(() => undefined);
  throw log.status === 'rejected' ? log.reason : (store as PromiseRejectedResult).reason;
}

/**
 * A replicated node's start: a primary begins a new term with a TERM record and syncs it
 * before anything is shipped (DESIGN §4: a TERM shipped before its own fsync can leave the
 * shard with nobody allowed to campaign); a replica appends nothing of its own. The transport
 * starts last, when the node's Hello is known.
 */
async function replicationParts(
  log: Log,
  replayed: Replayed,
  replication: ReplicationOptionsResolved,
  fallbackClock: Clock | undefined,
): Promise<Omit<ReplicationParts, 'commitLsn'>> {
  const clock = replication.clock ?? fallbackClock;
  if (clock === undefined) throw new InvalidError('option replication.clock: required here');
  const base = await log.base();
  const terms = new TermIndex({ lsn: base.lsn, term: base.term });
  for (const start of replayed.termStarts) terms.note(start.firstLsn, start.term);
  let termStartLsn = 0;
  if (replication.role === 'primary') {
    const term = log.lastTerm + 1;
    const payload = encodeTerm({ term, primaryId: replication.nodeId });
    await log.append([{ type: RecordType.Term, term, payload }]);
    termStartLsn = log.lastLsn;
    terms.note(termStartLsn, term);
  }
  const transport = await replication.transport(() => Replicator.hello(log));
  return {
    options: replication,
    transport,
    clock,
    terms,
    termStartLsn,
    inDoubt: replayed.inDoubt,
    inDoubtAborts: replayed.inDoubtAborts,
  };
}
