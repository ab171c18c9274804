import { describe, expect, it } from 'vitest';
import { RecordType } from '../../src/core/format/frame.js';
import { SimDisk } from '../../src/sim/disk.js';
import { Log } from '../../src/storage/log.js';
import { intent, nodeDir, openLog, payloadFor, readAll, sameBytes, walDir } from './helpers.js';

describe('log basics', () => {
  it('appends, reads back, and survives reopen', async () => {
    const disk = new SimDisk({ seed: 1 });
    const log = await openLog(disk);
    expect(log.lastLsn).toBe(0);
    const durable = await log.append([intent('a'), intent('b')]);
    expect(durable).toBe(2);
    expect(
      await log.append([{ type: RecordType.Commit, term: 1, payload: new Uint8Array(24) }]),
    ).toBe(3);
    const before = await readAll(log);
    expect(before.map((record) => record.lsn)).toEqual([1, 2, 3]);
    await log.close();
    const reopened = await openLog(disk);
    const after = await readAll(reopened);
    expect(after.map((record) => record.lsn)).toEqual([1, 2, 3]);
    for (const [index, record] of after.entries()) {
      expect(sameBytes(record.payload, before[index]?.payload ?? new Uint8Array())).toBe(true);
    }
    expect(reopened.recovery.status).toBe('clean');
    await reopened.close();
  });

  it('assigns LSNs at call time and shares one write among concurrent appenders', async () => {
    const disk = new SimDisk({ seed: 2 });
    const log = await openLog(disk, 64 * 1024);
    const promises = [];
    for (let index = 0; index < 100; index++) {
      promises.push(log.append([intent(`r${index}`)]));
      expect(log.lastLsn).toBe(index + 1);
    }
    const results = await Promise.all(promises);
    for (const [index, durable] of results.entries())
      expect(durable).toBeGreaterThanOrEqual(index + 1);
    const stats = log.stats();
    expect(stats.records).toBe(100);
    expect(stats.syncs).toBeLessThan(10);
    await log.close();
  });

  it('rotates through many small segments and reads across them', async () => {
    const disk = new SimDisk({ seed: 3 });
    const log = await openLog(disk, 4096);
    for (let index = 0; index < 200; index++) await log.append([intent(`s${index}`, 100)]);
    expect(log.stats().segments).toBeGreaterThan(5);
    const records = await log.read({ lsnFirst: 37, lsnLast: 180 });
    expect(records.map((record) => record.lsn)).toEqual(
      Array.from({ length: 144 }, (_, i) => i + 37),
    );
    expect(sameBytes(records[0]?.payload ?? new Uint8Array(), payloadFor('s36', 100))).toBe(true);
    await log.close();
    const reopened = await openLog(disk, 4096);
    expect(reopened.lastLsn).toBe(200);
    expect((await readAll(reopened)).length).toBe(200);
    await reopened.close();
  });

  it('takes the directory lock: a second opener gets LOCKED', async () => {
    const disk = new SimDisk({ seed: 4 });
    const log = await openLog(disk);
    await expect(openLog(disk)).rejects.toMatchObject({ code: 'LOCKED' });
    await log.close();
    const again = await openLog(disk);
    await again.close();
  });

  it('rejects bad input with INVALID before anything is written', async () => {
    const disk = new SimDisk({ seed: 5 });
    const log = await openLog(disk);
    await expect(log.append([])).rejects.toMatchObject({ code: 'INVALID' });
    await expect(
      log.append([{ type: RecordType.Seal, term: 1, payload: new Uint8Array() }]),
    ).rejects.toMatchObject({ code: 'INVALID' });
    await expect(log.append([intent('big', 5000)])).rejects.toMatchObject({ code: 'INVALID' });
    await log.append([intent('t5', 10, 5)]);
    await expect(log.append([intent('t4', 10, 4)])).rejects.toMatchObject({ code: 'INVALID' });
    expect(log.lastLsn).toBe(1);
    await expect(Log.open(disk, { dir: nodeDir, segmentSizeBytes: 1000 })).rejects.toThrow(
      /segmentSizeBytes/,
    );
    await log.close();
    await expect(log.append([intent('x')])).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('truncates a suffix and a prefix', async () => {
    const disk = new SimDisk({ seed: 6 });
    const log = await openLog(disk, 4096);
    for (let index = 0; index < 120; index++) await log.append([intent(`p${index}`, 100)]);
    await log.truncateSuffix({ lsnLast: 50 });
    expect(log.lastLsn).toBe(50);
    expect(await log.append([intent('new51', 100)])).toBe(51);
    const removed = await log.truncatePrefix({ lsnFirst: 30 });
    expect(removed).toBeGreaterThan(0);
    expect(log.firstLsn).toBeLessThanOrEqual(30);
    await log.close();
    const reopened = await openLog(disk, 4096);
    const records = await readAll(reopened);
    expect(records.at(-1)?.lsn).toBe(51);
    expect(sameBytes(records.at(-1)?.payload ?? new Uint8Array(), payloadFor('new51', 100))).toBe(
      true,
    );
    expect(records[0]?.lsn).toBe(reopened.firstLsn);
    await reopened.truncateSuffix({ lsnLast: reopened.firstLsn - 1 });
    expect(reopened.lastLsn).toBe(reopened.firstLsn - 1);
    await reopened.close();
    expect(disk.listAll().some((path) => path.startsWith(walDir))).toBe(true);
  });
});
