/**
 * The `syncwal-put` and `syncwal-get` systems of the `engine` suite: a node opened with
 * `openNode` (src/index.ts) on the real disk with default options. The put rows pass a NodeDisk
 * subclass that counts fdatasyncs (CountingDisk), for the records/sync column.
 */
import { performance } from 'node:perf_hooks';
import { openNode, type SyncwalNode } from '../src/index.js';
import { type Budget, runConcurrent, type SystemRun } from './lib.js';
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

/** Gets per second of a plain `await node.get` loop: no per-operation timing or recording. */
async function untimedGetLoop(node: SyncwalNode, keys: readonly Buffer[], budget: Budget) {
  let operations = 0;
  const start = performance.now();
  let elapsedMs = 0;
  while (elapsedMs < budget.durationMs && operations < budget.operationsMax) {
    for (let step = 0; step < 1024; step++) await node.get(keys[operations++ % keyspace]!);
    elapsedMs = performance.now() - start;
  }
  return (operations * 1000) / elapsedMs;
}

/** What runConcurrent itself costs: an async no-op at c=1, timed and recorded the same way. */
async function harnessNoopRate(budget: Budget): Promise<number> {
  const measurement = await runConcurrent({ concurrency: 1, budget, operation: async () => null });
  return measurement.opsPerSec;
}

/**
 * `await node.get(key)` over a loaded 100k keyspace, C gets in flight. At c=1 it also reports
 * an untimed loop of gets and the harness's own ceiling (the same timing around a no-op).
 */
export async function runSyncwalGet(options: SystemRun): Promise<EngineRun> {
  const node = await openNode({ dir: options.dir });
  try {
    const keys = keyspaceKeys();
    await loadKeys(node, keys);
    const probe = await node.get(keys[0]!);
    if (probe?.length !== valueBytes) throw new Error('syncwal-get: a loaded key reads wrong');
    const measurement = await runConcurrent({
      concurrency: options.concurrency,
      budget: options.budget,
      operation: (index) => node.get(keys[index % keyspace]!),
    });
    const result = {
      system: 'syncwal-get',
      concurrency: options.concurrency,
      opsPerSec: measurement.opsPerSec,
      p50Ms: measurement.p50Ms,
      p99Ms: measurement.p99Ms,
      recordsPerSync: 0,
    };
    if (options.concurrency !== 1) return { result, figures: null };
    const untimedLoopGetsPerSec = await untimedGetLoop(node, keys, options.budget);
    const harnessNoopOpsPerSec = await harnessNoopRate(options.budget);
    return { result, figures: { untimedLoopGetsPerSec, harnessNoopOpsPerSec } };
  } finally {
    await node.close();
  }
}
