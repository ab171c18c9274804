import { describe, expect, it } from 'vitest';
import { Random } from '../../src/sim/random.js';
import { SimDisk } from '../../src/sim/disk.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import { intent, openLog, payloadFor, sameBytes } from './helpers.js';

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
      const log = await scheduler.drive(openLog(disk, 4096));
      const total = random.range(20, 90);
      for (let index = 1; index <= total; index++) {
        await scheduler.drive(log.append([intent(`t${index}`, random.range(0, 300))]));
      }
      const keep = random.range(0, total - 1);
      void log.truncateSuffix({ lsnLast: keep }).catch(() => undefined);
      await scheduler.run({ stepsMax: random.range(0, 60) });
      disk.crash();
      scheduler.clear();
      const reopened = await scheduler.drive(openLog(disk, 4096)).catch((error: unknown) => {
        throw new Error(`seed ${seed}: reopen failed: ${String(error)}`);
      });
      expect([keep, total], `seed ${seed}`).toContain(reopened.lastLsn);
      if (reopened.lastLsn === keep) outcomes.truncated += 1;
      else outcomes.old += 1;
      // The log keeps working after either outcome, and new records survive the next crash.
      const next = reopened.lastLsn + 1;
      await scheduler.drive(reopened.append([intent(`new${next}`, 50)]));
      disk.crash();
      scheduler.clear();
      const third = await scheduler.drive(openLog(disk, 4096));
      expect(third.lastLsn, `seed ${seed}`).toBe(next);
      const [record] = await scheduler.drive(third.read({ lsnFirst: next, lsnLast: next }));
      expect(sameBytes(record?.payload ?? new Uint8Array(), payloadFor(`new${next}`, 50))).toBe(
        true,
      );
    }
    expect(outcomes.old).toBeGreaterThan(10);
    expect(outcomes.truncated).toBeGreaterThan(10);
  });
});
