import { describe, expect, it } from 'vitest';
import { Random } from '../../src/sim/random.js';
import { SimDisk } from '../../src/sim/disk.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import { intent, openLog, payloadFor, sameBytes } from './helpers.js';

async function drive<T>(scheduler: SimScheduler, promise: Promise<T>): Promise<T> {
  let settled = false;
  const tracked = promise.finally(() => {
    settled = true;
  });
  for (let steps = 0; !settled && steps < 100_000; steps++) {
    if (!(await scheduler.step())) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!settled) throw new Error('operation did not settle within the step bound');
  return tracked;
}

/**
 * A suffix truncation touches several files. A crash at any point must leave either the whole
 * old log or exactly the truncated one, never corruption and never resurrected records.
 */
describe('crash during suffix truncation', () => {
  it('recovers either the old log or the truncated one (300 seeds)', async () => {
    const outcomes = { old: 0, truncated: 0 };
    for (let seed = 0; seed < 300; seed++) {
      const random = new Random(seed);
      const scheduler = new SimScheduler();
      const disk = new SimDisk({ seed, scheduler, latencyMs: { min: 0, max: 4 } });
      const log = await drive(scheduler, openLog(disk, 4096));
      const total = random.range(20, 90);
      for (let index = 1; index <= total; index++) {
        await drive(scheduler, log.append([intent(`t${index}`, random.range(0, 300))]));
      }
      const keep = random.range(0, total - 1);
      void log.truncateSuffix({ lsnLast: keep }).catch(() => undefined);
      await scheduler.run({ stepsMax: random.range(0, 60) });
      disk.crash();
      scheduler.clear();
      const reopened = await drive(scheduler, openLog(disk, 4096)).catch((error: unknown) => {
        throw new Error(`seed ${seed}: reopen failed: ${String(error)}`);
      });
      expect([keep, total], `seed ${seed}`).toContain(reopened.lastLsn);
      if (reopened.lastLsn === keep) outcomes.truncated += 1;
      else outcomes.old += 1;
      // The log keeps working after either outcome, and new records survive the next crash.
      const next = reopened.lastLsn + 1;
      await drive(scheduler, reopened.append([intent(`new${next}`, 50)]));
      disk.crash();
      scheduler.clear();
      const third = await drive(scheduler, openLog(disk, 4096));
      expect(third.lastLsn, `seed ${seed}`).toBe(next);
      const [record] = await drive(scheduler, third.read({ lsnFirst: next, lsnLast: next }));
      expect(sameBytes(record?.payload ?? new Uint8Array(), payloadFor(`new${next}`, 50))).toBe(
        true,
      );
    }
    expect(outcomes.old).toBeGreaterThan(10);
    expect(outcomes.truncated).toBeGreaterThan(10);
  });
});
