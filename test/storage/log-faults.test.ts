import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../../src/core/errors.js';
import { SimDisk } from '../../src/sim/disk.js';
import type { Log } from '../../src/storage/log.js';
import { cloneDisk, intent, openLog, payloadFor, readAll, sameBytes, walDir } from './helpers.js';

const segmentBytes = 8192;

/** Builds a log whose earlier batches resolved; returns the disk and the final write's range. */
async function logWithFinalBatch(seed: number) {
  const disk = new SimDisk({ seed });
  const log = await openLog(disk, segmentBytes, { preallocate: false });
  await log.append([intent('a0', 30), intent('a1', 61)]);
  await log.append([intent('b0', 0)]);
  await log.append([intent('c0', 100), intent('c1', 7), intent('c2', 8)]);
  const resolved = log.lastLsn;
  const segment = disk.listAll().find((path) => path.endsWith('.wal'));
  if (segment === undefined) throw new Error('no segment');
  const before = disk.readVisible(segment).slice();
  await log.append([intent('final0', 50), intent('final1', 1), intent('final2', 200)]);
  const after = disk.readVisible(segment).slice();
  let start = 0;
  while (start < after.length && before[start] === after[start]) start++;
  let end = after.length;
  while (end > start && before[end - 1] === after[end - 1]) end--;
  return { disk, log, segment, resolved, finalStart: start, finalEnd: end, image: after };
}

async function expectPrefixWith(log: Log, resolved: number) {
  const records = await readAll(log);
  expect(log.lastLsn).toBeGreaterThanOrEqual(resolved);
  expect(records.map((record) => record.lsn)).toEqual(
    Array.from({ length: log.lastLsn }, (_, i) => i + 1),
  );
  const tags = ['a0', 'a1', 'b0', 'c0', 'c1', 'c2', 'final0', 'final1', 'final2'];
  const sizes = [30, 61, 0, 100, 7, 8, 50, 1, 200];
  for (const record of records) {
    const index = record.lsn - 1;
    expect(sameBytes(record.payload, payloadFor(tags[index] ?? '', sizes[index]))).toBe(true);
  }
}

describe('torn final batch', () => {
  it('recovers a prefix holding every resolved record, cut at every byte offset', async () => {
    const setup = await logWithFinalBatch(10);
    expect(setup.finalEnd - setup.finalStart).toBeGreaterThan(300);
    let truncated = 0;
    for (let cut = setup.finalStart; cut <= setup.finalEnd; cut++) {
      for (const fill of ['zeros', 'garbage'] as const) {
        const disk = cloneDisk(setup.disk, cut, (path, bytes) => {
          if (path !== setup.segment) return bytes;
          for (let index = cut; index < setup.finalEnd; index++) {
            bytes[index] = fill === 'zeros' ? 0 : (index * 131 + cut) & 0xff;
          }
          return bytes;
        });
        const log = await openLog(disk, segmentBytes);
        await expectPrefixWith(log, setup.resolved);
        if (log.recovery.status === 'torn') truncated += 1;
        // A second open finds a clean log: recovery repaired it durably.
        await log.close();
        const again = await openLog(disk, segmentBytes);
        expect(again.recovery.status).toBe('clean');
        expect(again.lastLsn).toBe(log.lastLsn);
        await again.close();
      }
    }
    expect(truncated).toBeGreaterThan(setup.finalEnd - setup.finalStart);
  });
});

describe('bit flips', () => {
  for (const closed of [true, false]) {
    const state = closed ? 'closed' : 'crashed';
    it(`detects every single-bit flip in every frame (${state} log)`, async () => {
      const setup = await logWithFinalBatch(20);
      if (closed) await setup.log.close();
      const image = setup.disk.readVisible(setup.segment);
      let end = image.length;
      while (end > 64 && image[end - 1] === 0) end--;
      end = Math.ceil(end / 8) * 8;
      let corrupt = 0;
      for (let bit = 64 * 8; bit < end * 8; bit++) {
        const disk = cloneDisk(setup.disk, bit, (path, bytes) => {
          if (path === setup.segment) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) ^ (1 << (bit & 7));
          return bytes;
        });
        const opened = await openLog(disk, segmentBytes).catch((error: unknown) => error);
        if (!(opened instanceof CorruptionError)) {
          throw new Error(
            `bit ${bit} (byte ${bit >> 3}) not reported as corruption: ${String(opened)}`,
          );
        }
        expect(opened.site.segment).toMatch(/\.wal$/);
        corrupt += 1;
      }
      expect(corrupt).toBe((end - 64) * 8);
    });
  }

  it('reports corruption in a sealed older segment and on read', async () => {
    const disk = new SimDisk({ seed: 30 });
    const log = await openLog(disk, 4096);
    for (let index = 0; index < 100; index++) await log.append([intent(`m${index}`, 100)]);
    const first =
      disk
        .listAll()
        .filter((path) => path.endsWith('.wal'))
        .sort()[0] ?? '';
    disk.flipBit(first, 300, 2);
    await expect(log.read({ lsnFirst: 1, lsnLast: 10 })).rejects.toMatchObject({ code: 'CORRUPT' });
    await log.close();
    await expect(openLog(disk, 4096)).rejects.toMatchObject({ code: 'CORRUPT' });
  });
});

describe('misdirected and lost writes', () => {
  it('detects a write that landed elsewhere', async () => {
    let detected = 0;
    for (let seed = 0; seed < 20; seed++) {
      const disk = new SimDisk({ seed });
      const log = await openLog(disk, segmentBytes, { preallocate: false });
      await log.append([intent('x0', 100)]);
      const segment = disk.listAll().find((path) => path.endsWith('.wal')) ?? '';
      disk.misdirectNextWrite({ path: segment, shiftBytes: 512 * (1 + (seed % 4)) });
      await log.append([intent('x1', 100)]);
      if (seed % 2 === 0) await log.append([intent('x2', 100)]);
      disk.crash({ mode: 'clean' });
      const result = await openLog(disk, segmentBytes).catch((error: unknown) => error);
      expect(result, `seed ${seed}`).toBeInstanceOf(CorruptionError);
      detected += 1;
    }
    expect(detected).toBe(20);
  });
});

describe('fdatasync failure', () => {
  it('rejects the failing and later appends; nothing undurable is durable after', async () => {
    for (let seed = 0; seed < 50; seed++) {
      const disk = new SimDisk({ seed });
      const log = await openLog(disk, 4096);
      for (let index = 0; index < 5; index++) await log.append([intent(`ok${index}`)]);
      disk.failDatasync({ count: 1 });
      const failing = log.append([intent('lost0')]);
      const queued = log.append([intent('lost1')]);
      await expect(failing).rejects.toMatchObject({ code: 'IOERR' });
      await expect(queued).rejects.toMatchObject({ code: 'IOERR' });
      await expect(log.append([intent('later')])).rejects.toMatchObject({ code: 'IOERR' });
      expect(log.failure?.code).toBe('IOERR');
      disk.crash();
      const reopened = await openLog(disk, 4096);
      const records = await readAll(reopened);
      expect(records.slice(0, 5).map((record) => record.lsn)).toEqual([1, 2, 3, 4, 5]);
      // Whatever survived is durable now: a second power loss keeps exactly it.
      const survived = reopened.lastLsn;
      disk.crash({ mode: 'lose-unsynced' });
      const third = await openLog(disk, 4096);
      expect(third.lastLsn).toBe(survived);
      await third.close();
    }
  });
});

describe('disk full', () => {
  it('refuses appends with NOSPACE, keeps reads and data, resumes when freed', async () => {
    const disk = new SimDisk({ seed: 40 });
    const log = await openLog(disk, 4096);
    for (let index = 0; index < 10; index++) await log.append([intent(`f${index}`, 100)]);
    disk.setCapacity(disk.usedBytes());
    let rejected = 0;
    for (let index = 0; index < 60; index++) {
      const result = await log.append([intent(`g${index}`, 100)]).catch((error: unknown) => error);
      if (typeof result !== 'number') {
        expect(result).toMatchObject({ code: 'NOSPACE' });
        rejected += 1;
      }
    }
    expect(rejected).toBeGreaterThan(0);
    expect(log.failure).toBeNull();
    const acknowledged = log.durableLsn;
    expect((await readAll(log)).length).toBe(acknowledged);
    disk.setCapacity(null);
    expect(await log.append([intent('after', 100)])).toBe(acknowledged + 1);
    disk.crash();
    const reopened = await openLog(disk, 4096);
    expect(reopened.lastLsn).toBeGreaterThanOrEqual(acknowledged + 1);
    await reopened.close();
  });
});

export { walDir };

describe('failed write', () => {
  it('fences the log on a failed write, even ENOSPC, and recovers what is on disk', async () => {
    for (const code of ['ENOSPC', 'EIO'] as const) {
      const disk = new SimDisk({ seed: 50 });
      const log = await openLog(disk, 8192);
      await log.append([intent('w0', 100)]);
      disk.failWrite({ code, count: 1 });
      await expect(log.append([intent('w1', 100)])).rejects.toMatchObject({ code: 'IOERR' });
      await expect(log.append([intent('w2', 100)])).rejects.toMatchObject({ code: 'IOERR' });
      disk.crash();
      const reopened = await openLog(disk, 8192);
      expect(reopened.lastLsn).toBeGreaterThanOrEqual(1);
      expect(reopened.lastLsn).toBeLessThanOrEqual(2);
      await reopened.close();
    }
  });
});
