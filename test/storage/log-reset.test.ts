import { describe, expect, it } from 'vitest';
import { RecordType, encodeFrame } from '../../src/core/format/frame.js';
import { Random } from '../../src/sim/random.js';
import { SimDisk } from '../../src/sim/disk.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import type { Log } from '../../src/storage/log.js';
import { resetMarkerName, writeResetMarker } from '../../src/storage/reset-marker.js';
import { scanLog } from '../../src/storage/scan-log.js';
import { intent, openLog, payloadFor, readAll, sameBytes, walDir } from './helpers.js';

/**
 * `Log.resetTo`: a replica that installs a full sync replaces its whole log with an empty one
 * continuing after the snapshot's LSN. A crash at any point must reopen either the whole old
 * log or exactly the new empty one.
 */
const base = { lsn: 5_000, checksum: 0xdeadbeef, term: 7 };

async function fill(log: Log, count: number, term = 1): Promise<void> {
  for (let index = 1; index <= count; index++) {
    await log.append([intent(`old${index}`, 120, term)]);
  }
}

/** Frames as a primary would ship them: LSNs from base.lsn + 1, chained from base.checksum. */
function shippedFrames(count: number, term: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let prevChecksum = base.checksum;
  for (let index = 0; index < count; index++) {
    const encoded = encodeFrame({
      type: RecordType.Intent,
      term,
      lsn: base.lsn + 1 + index,
      prevChecksum,
      payload: payloadFor(`shipped${index}`, 64),
    });
    parts.push(encoded.bytes);
    prevChecksum = encoded.checksum;
  }
  return Buffer.concat(parts);
}

describe('Log.resetTo', () => {
  it('continues after the base: LSNs, chain and term floor, also after a reopen', async () => {
    const disk = new SimDisk({ seed: 1 });
    const log = await openLog(disk, 4096);
    await fill(log, 60);
    expect(log.stats().segments).toBeGreaterThan(2);
    await log.resetTo(base);
    expect([log.firstLsn, log.lastLsn, log.durableLsn]).toEqual([5_001, 5_000, 5_000]);
    expect([log.lastChecksum, log.lastTerm]).toEqual([base.checksum, base.term]);
    expect(await log.base()).toEqual(base);
    expect(log.stats().segments).toBe(1);
    await expect(log.append([intent('low', 10, 6)])).rejects.toMatchObject({ code: 'INVALID' });
    expect(await log.appendFrames(shippedFrames(3, 7))).toBe(5_003);
    expect(await log.append([intent('next', 10, 8)])).toBe(5_004);
    await log.close();
    disk.crash({ mode: 'clean' });
    const reopened = await openLog(disk, 4096);
    expect([reopened.firstLsn, reopened.lastLsn, reopened.lastTerm]).toEqual([5_001, 5_004, 8]);
    expect(await reopened.base()).toEqual(base);
    const records = await readAll(reopened);
    expect(records.map((record) => record.lsn)).toEqual([5_001, 5_002, 5_003, 5_004]);
    expect(records[0]?.prevChecksum).toBe(base.checksum);
    expect(disk.listAll().filter((path) => path.endsWith('.wal'))).toHaveLength(1);
    await reopened.close();
  });

  it('reopens an empty reset log with the base as its tail (term floor included)', async () => {
    const disk = new SimDisk({ seed: 2 });
    const log = await openLog(disk, 4096);
    await fill(log, 10);
    await log.resetTo(base);
    disk.crash({ mode: 'lose-unsynced' });
    const reopened = await openLog(disk, 4096);
    expect([reopened.lastLsn, reopened.lastChecksum, reopened.lastTerm]).toEqual([
      base.lsn,
      base.checksum,
      base.term,
    ]);
    await expect(reopened.appendFrames(shippedFrames(2, 6))).rejects.toMatchObject({
      code: 'INVALID',
    });
    expect(await reopened.appendFrames(shippedFrames(2, 7))).toBe(5_002);
    // A suffix truncation back to the base keeps the base's term as the floor.
    await reopened.truncateSuffix({ lsnLast: base.lsn });
    expect([reopened.lastLsn, reopened.lastTerm]).toEqual([base.lsn, base.term]);
    await reopened.close();
  });

  it('resets below the old tail, and onto a segment name the old log used', async () => {
    const disk = new SimDisk({ seed: 3 });
    const log = await openLog(disk, 4096);
    await fill(log, 40, 2);
    // The old log's first segment is named for LSN 1; the reset log's first is too.
    await log.resetTo({ lsn: 0, checksum: 0, term: 0 });
    expect([log.firstLsn, log.lastLsn]).toEqual([1, 0]);
    expect(await log.append([intent('fresh', 10, 1)])).toBe(1);
    await log.close();
    const reopened = await openLog(disk, 4096);
    const records = await readAll(reopened);
    expect(records).toHaveLength(1);
    expect(sameBytes(records[0]!.payload, payloadFor('fresh', 10))).toBe(true);
    await reopened.close();
  });

  it('refuses a bad base and calls made while it runs', async () => {
    const disk = new SimDisk({ seed: 4 });
    const log = await openLog(disk, 4096);
    await fill(log, 5);
    for (const bad of [
      { lsn: -1, checksum: 0, term: 0 },
      { lsn: 1.5, checksum: 0, term: 0 },
      { lsn: 1, checksum: 2 ** 32, term: 0 },
      { lsn: 1, checksum: 0, term: -1 },
    ]) {
      await expect(log.resetTo(bad)).rejects.toMatchObject({ code: 'INVALID' });
    }
    const running = log.resetTo(base);
    await Promise.resolve();
    await expect(log.append([intent('during', 10)])).rejects.toMatchObject({ code: 'INVALID' });
    await running;
    expect(await log.append([intent('after', 10, 7)])).toBe(base.lsn + 1);
    await log.close();
  });

  it('leaves the old log usable when the disk is too full to prepare the new segment', async () => {
    const disk = new SimDisk({ seed: 5 });
    const log = await openLog(disk, 4096, { preallocate: false });
    await fill(log, 8);
    disk.setCapacity(disk.usedBytes());
    await expect(log.resetTo(base)).rejects.toMatchObject({ code: 'NOSPACE' });
    disk.setCapacity(null);
    expect([log.firstLsn, log.lastLsn]).toEqual([1, 8]);
    expect(await log.append([intent('still', 10)])).toBe(9);
    await log.close();
    const reopened = await openLog(disk, 4096);
    expect(reopened.lastLsn).toBe(9);
    await reopened.close();
  });

  it('fences after a failure past the decision; reopening finishes the reset', async () => {
    const disk = new SimDisk({ seed: 6 });
    const log = await openLog(disk, 4096);
    await fill(log, 60);
    const old = disk.listAll().filter((path) => path.endsWith('.wal'));
    // The first directory change after the marker is the removal of the old segments; make the
    // syscall after it fail: the rename of the prepared segment finds no such file.
    const remove = disk.remove.bind(disk);
    let removals = 0;
    disk.remove = async (path: string) => {
      if (path.endsWith('.wal') && ++removals === 2) {
        throw Object.assign(new Error('EIO (test)'), { code: 'EIO', syscall: 'unlink' });
      }
      return remove(path);
    };
    await expect(log.resetTo(base)).rejects.toMatchObject({ code: 'IOERR' });
    await expect(log.append([intent('x', 10, 7)])).rejects.toMatchObject({ code: 'IOERR' });
    await log.close();
    disk.remove = remove;
    expect(old.length).toBeGreaterThan(2);
    const reopened = await openLog(disk, 4096);
    expect(reopened.recovery.finishedReset).toEqual(base);
    expect([reopened.firstLsn, reopened.lastLsn, reopened.lastTerm]).toEqual([5_001, 5_000, 7]);
    await reopened.close();
  });

  it('scanLog reports an unfinished reset and scans no segment', async () => {
    const disk = new SimDisk({ seed: 7 });
    const log = await openLog(disk, 4096);
    await fill(log, 20);
    await log.close();
    await writeResetMarker(disk, walDir, base);
    const scan = await scanLog(disk, walDir);
    expect(scan.resetMarker).toEqual(base);
    expect(scan.segments).toEqual([]);
    expect(scan.strayFiles).toEqual([]);
    const reopened = await openLog(disk, 4096);
    expect(reopened.recovery.finishedReset).toEqual(base);
    expect(reopened.lastLsn).toBe(base.lsn);
    expect(disk.exists(`${walDir}/${resetMarkerName}`)).toBe(false);
    await reopened.close();
  });
});

describe('crash during Log.resetTo', () => {
  /** A closed log of `total` records, as the durable files of a template disk. */
  async function template(seed: number, random: Random) {
    const disk = new SimDisk({ seed });
    const log = await openLog(disk, 4096);
    const total = random.range(10, 70);
    for (let index = 1; index <= total; index++) {
      await log.append([intent(`t${index}`, random.range(0, 300))]);
    }
    await log.close();
    const all = disk.listAll();
    const files = all.filter((path) => !all.some((other) => other.startsWith(`${path}/`)));
    return { total, files: files.map((path) => ({ path, bytes: disk.readVisible(path) })) };
  }

  /** One run: the template's log, a reset cut after `steps` scheduler steps, a crash. */
  async function crashRun(
    seed: number,
    steps: number,
    files: { path: string; bytes: Uint8Array }[],
    target: { lsn: number; checksum: number; term: number },
  ) {
    const scheduler = new SimScheduler();
    const disk = new SimDisk({
      seed: seed * 1000 + steps,
      scheduler,
      latencyMs: { min: 0, max: 3 },
    });
    for (const file of files) disk.writeRaw(file.path, file.bytes);
    const log = await scheduler.drive(openLog(disk, 4096));
    let finished = false;
    void log.resetTo(target).then(
      () => (finished = true),
      () => undefined,
    );
    await scheduler.run({ stepsMax: steps });
    disk.crash();
    scheduler.clear();
    const reopened = await scheduler.drive(openLog(disk, 4096)).catch((error: unknown) => {
      throw new Error(`seed ${seed} steps ${steps}: reopen failed: ${String(error)}`);
    });
    return { scheduler, disk, reopened, finished };
  }

  it('reopens the old log or the new one, at every step of the reset (20 seeds)', async () => {
    const outcomes = { old: 0, reset: 0 };
    for (let seed = 0; seed < 20; seed++) {
      const random = new Random(seed);
      const { total, files } = await template(seed, random);
      const lsn = random.pick([0, 1, total - 1, total, total + 1, 100_000]);
      const target = { lsn, checksum: random.range(0, 2 ** 31), term: random.range(1, 9) };
      for (let steps = 0; steps < 400; steps++) {
        const run = await crashRun(seed, steps, files, target);
        const { scheduler, reopened } = run;
        const label = `seed ${seed} steps ${steps}`;
        const isReset = reopened.firstLsn === target.lsn + 1 && reopened.lastLsn === target.lsn;
        if (isReset) {
          expect(await scheduler.drive(reopened.base()), label).toEqual(target);
          expect(reopened.lastTerm, label).toBe(target.term);
          outcomes.reset += 1;
        } else {
          expect(run.finished, `${label}: a finished reset was undone`).toBe(false);
          expect([reopened.firstLsn, reopened.lastLsn], label).toEqual([1, total]);
          const records = await scheduler.drive(readAll(reopened));
          const same = records.every((record, index) => record.lsn === index + 1);
          expect(same && records.length === total, label).toBe(true);
          outcomes.old += 1;
        }
        // Either way the log works on, and its next record survives the next crash.
        const next = reopened.lastLsn + 1;
        await scheduler.drive(reopened.append([intent(`n${next}`, 30, reopened.lastTerm)]));
        run.disk.crash();
        scheduler.clear();
        const third = await scheduler.drive(openLog(run.disk, 4096));
        expect(third.lastLsn, label).toBe(next);
        if (run.finished) break;
      }
    }
    expect(outcomes.old).toBeGreaterThan(60);
    expect(outcomes.reset).toBeGreaterThan(20);
  });
});
