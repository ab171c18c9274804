/**
 * The `syncwal-put`, `syncwal-get` and `syncwal-getSync` systems of the `engine` suite: a node
 * opened with `openNode` (src/index.ts) on the real disk with default options. The put rows pass
 * a NodeDisk subclass that counts fdatasyncs (CountingDisk), for the records/sync column.
 */
import { openNode, type SyncwalNode } from '../src/index.js';
import { runConcurrent, runSync, type SystemRun } from './lib.js';
import {
  CountingDisk,
  type EngineRun,
  keyspace,
  keyspaceKeys,
  valueBytes,
  valueFor,
} from './engine-workload.js';

/** Puts per batch when a keyspace is loaded before reads. */
const loadBatchPuts = 1_000;

/** Writes every key of `keys` with `node.batch`, `loadBatchPuts` puts per batch. */
export async function loadKeys(node: SyncwalNode, keys: readonly Buffer[]): Promise<void> {
  for (let first = 0; first < keys.length; first += loadBatchPuts) {
    const operations = keys.slice(first, first + loadBatchPuts).map((key, index) => ({
      op: 'put' as const,
      key,
      value: valueFor(first + index),
    }));
    await node.batch(operations);
  }
}

/** `node.put` of a 100-byte value to a key of a 100k keyspace, C puts in flight. */
export async function runSyncwalPut(options: SystemRun): Promise<EngineRun> {
  const disk = new CountingDisk();
  const node = await openNode({ dir: options.dir, disk });
  try {
    const keys = keyspaceKeys();
    const value = valueFor(0);
    let syncsBefore = disk.syncs;
    const measurement = await runConcurrent({
      concurrency: options.concurrency,
      budget: options.budget,
      operation: (index) => node.put(keys[index % keyspace]!, value),
      onMeasureStart: () => {
        syncsBefore = disk.syncs;
      },
    });
    const syncs = disk.syncs - syncsBefore;
    const result = {
      system: 'syncwal-put',
      concurrency: options.concurrency,
      opsPerSec: measurement.opsPerSec,
      p50Ms: measurement.p50Ms,
      p99Ms: measurement.p99Ms,
      recordsPerSync: syncs > 0 ? measurement.operations / syncs : 0,
    };
    return { result, figures: null };
  } finally {
    await node.close();
  }
}

/** Gets time one operation in this many (see ConcurrentRun.latencySampleEvery). */
export const getLatencySampleEvery = 16;

/** A node on the real disk with the 100k keyspace loaded, for the get rows. */
async function withLoadedNode<T>(dir: string, body: (node: SyncwalNode, keys: Buffer[]) => T) {
  const node = await openNode({ dir });
  try {
    const keys = keyspaceKeys();
    await loadKeys(node, keys);
    const probe = await node.get(keys[0]!);
    if (probe?.length !== valueBytes) throw new Error('syncwal-get: a loaded key reads wrong');
    return await body(node, keys);
  } finally {
    await node.close();
  }
}

/** `await node.get(key)` over a loaded 100k keyspace, C gets in flight. */
export async function runSyncwalGet(options: SystemRun): Promise<EngineRun> {
  return withLoadedNode(options.dir, async (node, keys) => {
    const measurement = await runConcurrent({
      concurrency: options.concurrency,
      budget: options.budget,
      operation: (index) => node.get(keys[index % keyspace]!),
      latencySampleEvery: getLatencySampleEvery,
    });
    const result = {
      system: 'syncwal-get',
      concurrency: options.concurrency,
      opsPerSec: measurement.opsPerSec,
      p50Ms: measurement.p50Ms,
      p99Ms: measurement.p99Ms,
      recordsPerSync: 0,
    };
    return { result, figures: null };
  });
}

/** `node.getSync(key)` in a plain loop over a loaded 100k keyspace. */
export async function runSyncwalGetSync(options: SystemRun): Promise<EngineRun> {
  return withLoadedNode(options.dir, (node, keys) => {
    const measurement = runSync({
      budget: options.budget,
      operation: (index) => node.getSync(keys[index % keyspace]!),
      latencySampleEvery: getLatencySampleEvery,
    });
    const result = {
      system: 'syncwal-getSync',
      concurrency: options.concurrency,
      opsPerSec: measurement.opsPerSec,
      p50Ms: measurement.p50Ms,
      p99Ms: measurement.p99Ms,
      recordsPerSync: 0,
    };
    return { result, figures: null };
  });
}
