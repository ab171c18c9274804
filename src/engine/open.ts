import { RecordType } from '../core/format/frame.js';
import { encodeCommit, encodeTerm } from '../core/format/record.js';
import type { CheckpointStore, CheckpointStoreFactory } from '../ports/checkpoint.js';
import type { Disk } from '../ports/disk.js';
import { Log } from '../storage/log.js';
import { SyncwalNode } from './node.js';
import { resolveNodeOptions, type NodeOptions } from './options.js';
import { replayLog } from './replay.js';
import { RequestIds } from './request-ids.js';
import { CommittedState } from './state.js';

export interface NodeAdapters {
  disk: Disk;
  checkpointStore: CheckpointStoreFactory;
}

/**
 * Opens a node: recovers the log, loads the checkpoint, replays the log after it, commits what
 * a single node finds in doubt, and writes the first TERM record of a brand-new node.
 */
export async function openNodeWith(options: NodeOptions, defaults: NodeAdapters) {
  const resolved = resolveNodeOptions(options);
  const disk = options.disk ?? defaults.disk;
  const factory = options.checkpointStore ?? defaults.checkpointStore;
  const log = await Log.open(disk, {
    dir: resolved.dir,
    segmentSizeBytes: resolved.segmentSizeBytes,
  });
  let store: CheckpointStore | null = null;
  try {
    store = await factory(resolved.dir);
    const snapshot = await store.load();
    const state = new CommittedState(snapshot.appliedLsn);
    for (const entry of snapshot.entries) state.load(entry.key, entry.value);
    const requestIds = new RequestIds(resolved.requestIdsRetained);
    for (const record of snapshot.requestIds) requestIds.load(record);
    const replayed = await replayLog(log, state, requestIds);
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
    await store?.close().catch(() => undefined);
    await log.close().catch(() => undefined);
    throw error;
  }
}
