/**
 * The `syncwal-1m` section of the `engine` suite: one node, a million keys (100k with
 * `--quick`), measured once each rather than in a loop.
 *
 * 1. Load: `node.batch` of `loadBatchPuts` puts, one batch at a time, automatic checkpoints off
 *    (`checkpointLogBytes: 0`), so the whole state lives only in the log. Memory is taken after
 *    a full GC before and after the load; the difference divided by the keys is bytes per key.
 * 2. Replay: close, then time `openNode` on the same directory. The open scans and verifies
 *    every segment, then replays every intent into memory. Log bytes are the segments' used
 *    bytes (header plus frames, up to the end of the last valid frame, as scanLog reports).
 *    The open also starts the SQLite checkpoint worker; the time of reopening a node that
 *    holds one key is reported as the baseline, and the rate without it as "net".
 * 3. Checkpoint: `node.checkpoint()` right after the replay stores every key in SQLite.
 * 4. Reopen from the checkpoint: close and open again; the state now loads from SQLite.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openNode, type SyncwalNode } from '../src/index.js';
import { NodeDisk } from '../src/node/disk.js';
import { scanLog } from '../src/storage/scan-log.js';
import { withTemporaryDirectory } from './lib.js';
import {
  keyFor,
  memorySnapshot,
  scrambled,
  valueFor,
  type MemorySnapshot,
} from './engine-workload.js';

const loadBatchPuts = 1_000;
export const millionKeys = 1_000_000;
export const millionKeysQuick = 100_000;

export interface MillionFigures {
  keys: number;
  loadPutsPerSec: number;
  /** Bytes of memory per key after the load (heap + ArrayBuffer backing stores). */
  bytesPerKey: number;
  heapBytesPerKey: number;
  arrayBufferBytesPerKey: number;
  rssBytesPerKey: number;
  rssAfterLoadBytes: number;
  /** The same, for the state rebuilt by replaying the log on open. */
  bytesPerKeyAfterReplay: number;
  /** The same after the checkpoint that follows (the set of keys changed since is empty). */
  bytesPerKeyAfterCheckpoint: number;
  logBytes: number;
  logSegments: number;
  reopenMs: number;
  reopenBaselineMs: number;
  /** Log bytes (10^6 per MB) per second of the whole open. */
  replayMBps: number;
  /** The same, with the baseline open time taken off. */
  replayNetMBps: number;
  checkpointMs: number;
  checkpointKeysPerSec: number;
  reopenFromCheckpointMs: number;
  checkpointLoadKeysPerSec: number;
}

const open = (dir: string): Promise<SyncwalNode> => openNode({ dir, checkpointLogBytes: 0 });

async function timed<T>(body: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await body();
  return { value, ms: performance.now() - start };
}

function perKey(after: MemorySnapshot, before: MemorySnapshot, keys: number) {
  const heap = (after.heapUsed - before.heapUsed) / keys;
  const arrayBuffers = (after.arrayBuffers - before.arrayBuffers) / keys;
  return { heap, arrayBuffers, total: heap + arrayBuffers, rss: (after.rss - before.rss) / keys };
}

function checkKeys(node: SyncwalNode, keys: number, when: string): void {
  const found = node.info().keys;
  if (found !== keys) throw new Error(`syncwal-1m: ${found} keys after ${when}, not ${keys}`);
}

async function loadMillion(node: SyncwalNode, keys: number): Promise<number> {
  const start = performance.now();
  for (let first = 0; first < keys; first += loadBatchPuts) {
    const operations = [];
    for (let index = first; index < Math.min(keys, first + loadBatchPuts); index++) {
      operations.push({
        op: 'put' as const,
        key: keyFor(scrambled(index, keys)),
        value: valueFor(index),
      });
    }
    await node.batch(operations);
  }
  return (keys * 1000) / (performance.now() - start);
}

/** How long reopening a node that holds one key takes (lock, scan, checkpoint worker start). */
async function reopenBaselineMs(): Promise<number> {
  return withTemporaryDirectory('engine-baseline', async (dir) => {
    const node = await open(dir);
    await node.put(keyFor(0), valueFor(0));
    await node.close();
    const reopened = await timed(() => open(dir));
    await reopened.value.close();
    return reopened.ms;
  });
}

async function logSize(dir: string): Promise<{ bytes: number; segments: number }> {
  const scan = await scanLog(new NodeDisk(), join(dir, 'wal'));
  const bytes = scan.segments.reduce((sum, segment) => sum + segment.endOffset, 0);
  return { bytes, segments: scan.segments.length };
}

type LoadFigures = Pick<
  MillionFigures,
  | 'loadPutsPerSec'
  | 'bytesPerKey'
  | 'heapBytesPerKey'
  | 'arrayBufferBytesPerKey'
  | 'rssBytesPerKey'
  | 'rssAfterLoadBytes'
>;

async function loadPhase(dir: string, keys: number): Promise<LoadFigures> {
  const node = await open(dir);
  try {
    const before = await memorySnapshot();
    const loadPutsPerSec = await loadMillion(node, keys);
    const after = await memorySnapshot();
    checkKeys(node, keys, 'the load');
    const memory = perKey(after, before, keys);
    return {
      loadPutsPerSec,
      bytesPerKey: memory.total,
      heapBytesPerKey: memory.heap,
      arrayBufferBytesPerKey: memory.arrayBuffers,
      rssBytesPerKey: memory.rss,
      rssAfterLoadBytes: after.rss,
    };
  } finally {
    await node.close();
  }
}

type ReplayFigures = Pick<
  MillionFigures,
  | 'bytesPerKeyAfterReplay'
  | 'bytesPerKeyAfterCheckpoint'
  | 'reopenMs'
  | 'checkpointMs'
  | 'checkpointKeysPerSec'
>;

async function replayPhase(dir: string, keys: number): Promise<ReplayFigures> {
  const before = await memorySnapshot();
  const reopened = await timed(() => open(dir));
  const node = reopened.value;
  try {
    checkKeys(node, keys, 'the replay');
    const memory = perKey(await memorySnapshot(), before, keys);
    const checkpoint = await timed(() => node.checkpoint());
    const checkpointed = perKey(await memorySnapshot(), before, keys);
    return {
      bytesPerKeyAfterReplay: memory.total,
      bytesPerKeyAfterCheckpoint: checkpointed.total,
      reopenMs: reopened.ms,
      checkpointMs: checkpoint.ms,
      checkpointKeysPerSec: (keys * 1000) / checkpoint.ms,
    };
  } finally {
    await node.close();
  }
}

/** Runs the whole section in a temporary directory of its own. */
export async function runMillion(keys: number): Promise<MillionFigures> {
  const reopenBaseline = await reopenBaselineMs();
  return withTemporaryDirectory('engine-1m', async (dir) => {
    const load = await loadPhase(dir, keys);
    const log = await logSize(dir);
    const replay = await replayPhase(dir, keys);
    const fromCheckpoint = await timed(() => open(dir));
    checkKeys(fromCheckpoint.value, keys, 'the reopen from the checkpoint');
    await fromCheckpoint.value.close();
    const netMs = Math.max(replay.reopenMs - reopenBaseline, 1e-3);
    return {
      keys,
      ...load,
      ...replay,
      logBytes: log.bytes,
      logSegments: log.segments,
      reopenBaselineMs: reopenBaseline,
      replayMBps: log.bytes / 1e6 / (replay.reopenMs / 1000),
      replayNetMBps: log.bytes / 1e6 / (netMs / 1000),
      reopenFromCheckpointMs: fromCheckpoint.ms,
      checkpointLoadKeysPerSec: (keys * 1000) / fromCheckpoint.ms,
    };
  });
}
