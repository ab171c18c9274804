/**
 * The `syncwal` system of the `log` suite: src/storage/log.ts over the real disk. Every
 * operation appends one 100-byte INTENT record and waits until it is durable; concurrent
 * appenders share one write + fdatasync, so records per sync grows with concurrency.
 */
import { RecordType } from '../src/core/format/frame.js';
import { NodeDisk, type NodeDiskIo } from '../src/node/disk.js';
import { Log } from '../src/storage/log.js';
import { type BenchResult, runConcurrent, type SystemRun } from './lib.js';

const segmentSizeBytes = 64 * 1024 * 1024;

/** `io` picks NodeDisk's hot-path mode: 'sync' is the default, 'async' uses the thread pool. */
export async function runSyncwalLog(
  options: SystemRun,
  io: NodeDiskIo = 'sync',
): Promise<BenchResult> {
  const log = await Log.open(new NodeDisk({ io }), { dir: options.dir, segmentSizeBytes });
  try {
    const payload = new Uint8Array(options.payloadBytes).fill(0x5a);
    const record = { type: RecordType.Intent, term: 1, payload };
    let before = log.stats();
    const measurement = await runConcurrent({
      concurrency: options.concurrency,
      budget: options.budget,
      operation: () => log.append([record]),
      onMeasureStart: () => {
        before = log.stats();
      },
    });
    const after = log.stats();
    const syncs = after.syncs - before.syncs;
    return {
      system: io === 'sync' ? 'syncwal' : 'syncwal-async-io',
      concurrency: options.concurrency,
      opsPerSec: measurement.opsPerSec,
      p50Ms: measurement.p50Ms,
      p99Ms: measurement.p99Ms,
      recordsPerSync: syncs > 0 ? (after.records - before.records) / syncs : 0,
    };
  } finally {
    await log.close();
  }
}
