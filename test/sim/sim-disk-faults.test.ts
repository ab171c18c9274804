/**
 * Deterministic tests of the simulated disk's fault model (see the top of src/sim/disk.ts), and
 * of the PRNG and virtual-time scheduler it is built on. Every case is seeded; loops over seeds
 * check that each kind of outcome occurs and that no forbidden outcome ever does.
 */
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/core/assert.js';
import type { FileHandle } from '../../src/ports/disk.js';
import { Random } from '../../src/sim/random.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import { SimDisk, type CrashReport } from '../../src/sim/disk.js';

const sectorBytes = 512;
const pageBytes = 4096;

function filled(length: number, value: number): Uint8Array {
  return new Uint8Array(length).fill(value);
}

function same(actual: Uint8Array, expected: Uint8Array): boolean {
  return Buffer.from(actual).equals(expected);
}

function allEqual(bytes: Uint8Array, value: number): boolean {
  return bytes.every((byte) => byte === value);
}

/**
 * Creates `path` with `bytes` and makes both its data and its directory entry durable. The
 * parent's own entry must already be durable (see `makeDirectory`).
 */
async function createDurable(disk: SimDisk, path: string, bytes: Uint8Array): Promise<FileHandle> {
  const handle = await disk.open(path, 'create');
  await handle.write([bytes], 0);
  await handle.datasync();
  await disk.syncDir(path.slice(0, path.lastIndexOf('/')) || '/');
  return handle;
}

/** Makes a directory under the root with a durable entry: mkdir alone would not survive. */
async function makeDirectory(disk: SimDisk, path: string): Promise<void> {
  await disk.mkdir(path);
  await disk.syncDir('/');
}

/** Whether a promise settles within the current microtask queue and one macrotask turn. */
async function settlesSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise<void>((resolve) => setImmediate(resolve));
  return settled;
}

const seeds = Array.from({ length: 200 }, (_unused, index) => index);

describe('SimDisk crash: file data', () => {
  it('never loses synced data, and may keep, drop or tear unsynced data', async () => {
    const outcomes = { kept: 0, lost: 0, torn: 0 };
    for (const seed of seeds) {
      const disk = new SimDisk({ seed });
      await makeDirectory(disk, '/d');
      const handle = await createDurable(disk, '/d/f', filled(pageBytes, 0xaa));
      await handle.write([filled(pageBytes, 0xbb)], pageBytes);
      disk.crash();
      const after = disk.readVisible('/d/f');
      const syncedPart = after.subarray(0, pageBytes);
      expect(same(syncedPart, filled(pageBytes, 0xaa)), `SEED=${seed}`).toBe(true);
      const tail = after.subarray(pageBytes);
      if (tail.length === pageBytes && allEqual(tail, 0xbb)) outcomes.kept++;
      else if (tail.length === 0 || allEqual(tail, 0)) outcomes.lost++;
      else outcomes.torn++;
    }
    // Expected about 90 kept, 95 lost and 15 torn of 200; each must occur.
    expect(outcomes.kept).toBeGreaterThan(20);
    expect(outcomes.lost).toBeGreaterThan(20);
    expect(outcomes.torn).toBeGreaterThanOrEqual(5);
  });

  it('tears sector by sector, and never touches bytes a write did not target', async () => {
    let garbledCrashes = 0;
    let mixedSectors = 0;
    for (const seed of seeds) {
      const disk = new SimDisk({ seed, sectorBytes, pageBytes });
      disk.writeRaw('/f', filled(8 * pageBytes, 0x11));
      const handle = await disk.open('/f', 'write');
      // Unaligned on purpose: the first and last sectors are only partly targeted.
      const start = 100;
      const end = 8 * pageBytes - 100;
      await handle.write([filled(end - start, 0x22)], start);
      const report = disk.crash();
      if (report.sectorsGarbled > 0) garbledCrashes++;
      const after = disk.readVisible('/f');
      expect(allEqual(after.subarray(0, start), 0x11), `SEED=${seed}`).toBe(true);
      expect(allEqual(after.subarray(end), 0x11), `SEED=${seed}`).toBe(true);
      const kinds = new Set<string>();
      for (let sector = 0; sector < after.length / sectorBytes; sector++) {
        const from = Math.max(start, sector * sectorBytes);
        const to = Math.min(end, (sector + 1) * sectorBytes);
        const bytes = after.subarray(from, to);
        kinds.add(allEqual(bytes, 0x22) ? 'new' : allEqual(bytes, 0x11) ? 'old' : 'garbage');
      }
      if (kinds.size > 1) mixedSectors++;
    }
    expect(garbledCrashes).toBeGreaterThan(10);
    expect(mixedSectors).toBeGreaterThan(10);
  });

  it('covers only writes that completed before datasync was called', async () => {
    const disk = new SimDisk({ seed: 7 });
    disk.writeRaw('/f', new Uint8Array(0));
    const handle = await disk.open('/f', 'write');
    // Not awaited: the write completes after the datasync call, as on a thread pool.
    const write = handle.write([filled(10, 1)], 0);
    const datasync = handle.datasync();
    await Promise.all([write, datasync]);
    expect(disk.readVisible('/f').length).toBe(10);
    expect(disk.readDurable('/f').length).toBe(0);
    await handle.datasync();
    expect(same(disk.readDurable('/f'), filled(10, 1))).toBe(true);
  });

  it('loses unsynced size changes with lose-unsynced, keeps them with clean', async () => {
    for (const mode of ['lose-unsynced', 'clean'] as const) {
      const disk = new SimDisk({ seed: 8 });
      disk.writeRaw('/f', filled(100, 5));
      const handle = await disk.open('/f', 'write');
      await handle.truncate(10);
      await handle.write([filled(10, 6)], 50);
      const report = disk.crash({ mode });
      const expected = mode === 'clean' ? 60 : 100;
      expect(disk.readVisible('/f').length).toBe(expected);
      expect(report.truncatesKept + report.truncatesDropped).toBe(1);
    }
  });
});

describe('SimDisk crash: datasync failure (fsyncgate)', () => {
  it('keeps failed data readable, then reverts it, even after a later good datasync', async () => {
    for (const seed of seeds.slice(0, 50)) {
      const disk = new SimDisk({ seed });
      disk.writeRaw('/d/f', filled(pageBytes, 1));
      const handle = await disk.open('/d/f', 'write');
      await handle.write([filled(pageBytes, 2)], 0);
      disk.failDatasync({ path: '/d/f' });
      const failure = { code: 'EIO', syscall: 'fdatasync', path: '/d/f' };
      await expect(handle.datasync()).rejects.toMatchObject(failure);
      expect(same(disk.readVisible('/d/f'), filled(pageBytes, 2))).toBe(true);
      // A later write synced successfully is durable; the failed one still is not.
      await handle.write([filled(pageBytes, 3)], pageBytes);
      await handle.datasync();
      const report = disk.crash();
      expect(report.changesLostToDatasyncFailure).toBe(1);
      const after = disk.readVisible('/d/f');
      expect(same(after.subarray(0, pageBytes), filled(pageBytes, 1)), `SEED=${seed}`).toBe(true);
      expect(same(after.subarray(pageBytes), filled(pageBytes, 3)), `SEED=${seed}`).toBe(true);
    }
  });

  it('fails only the requested count and path', async () => {
    const disk = new SimDisk({ seed: 9 });
    disk.writeRaw('/a', filled(10, 1));
    disk.writeRaw('/b', filled(10, 1));
    const a = await disk.open('/a', 'write');
    const b = await disk.open('/b', 'write');
    disk.failDatasync({ path: '/b', count: 2 });
    await a.datasync();
    await expect(b.datasync()).rejects.toMatchObject({ code: 'EIO' });
    await expect(b.datasync()).rejects.toMatchObject({ code: 'EIO' });
    await b.datasync();
  });

  it('matches a path to the file it names now, after a rename', async () => {
    const disk = new SimDisk({ seed: 9 });
    disk.writeRaw('/tmp', filled(10, 1));
    const handle = await disk.open('/tmp', 'write');
    await disk.rename('/tmp', '/final');
    disk.failDatasync({ path: '/final' });
    await expect(handle.datasync()).rejects.toMatchObject({ code: 'EIO' });
  });
});

describe('SimDisk space and injected write faults', () => {
  it('rejects growth past capacity with ENOSPC and recovers after setCapacity', async () => {
    const disk = new SimDisk({ seed: 4, capacityBytes: 2 * pageBytes, pageBytes });
    await disk.mkdir('/d');
    const handle = await disk.open('/d/f', 'create');
    await handle.write([filled(2 * pageBytes, 1)], 0);
    expect(await disk.freeBytes('/d')).toBe(0);
    const full = { code: 'ENOSPC', syscall: 'write', path: '/d/f' };
    await expect(handle.write([filled(10, 2)], 2 * pageBytes)).rejects.toMatchObject(full);
    await expect(handle.truncate(3 * pageBytes)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(await handle.size()).toBe(2 * pageBytes);
    // Overwriting allocated space needs no new space.
    await handle.write([filled(100, 3)], 0);
    disk.setCapacity(4 * pageBytes);
    expect(await disk.freeBytes('/d')).toBe(2 * pageBytes);
    await handle.write([filled(10, 2)], 2 * pageBytes);
    // A write that only partly fits leaves the prefix that fit, like a short write.
    const partial = handle.write([filled(2 * pageBytes, 4)], 2 * pageBytes + 10);
    await expect(partial).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(await handle.size()).toBe(4 * pageBytes);
    expect(disk.usedBytes()).toBe(4 * pageBytes);
    await handle.close();
    await disk.remove('/d/f');
    expect(await disk.freeBytes('/d')).toBe(4 * pageBytes);
  });

  it('fails injected writes after a random prefix, then works again', async () => {
    const disk = new SimDisk({ seed: 5 });
    disk.writeRaw('/f', filled(100, 0));
    const handle = await disk.open('/f', 'write');
    disk.failWrite({ path: '/f', code: 'EIO' });
    const failure = { code: 'EIO', syscall: 'write', path: '/f' };
    await expect(handle.write([filled(100, 9)], 0)).rejects.toMatchObject(failure);
    const after = disk.readVisible('/f');
    const prefix = after.findIndex((byte) => byte !== 9);
    expect(allEqual(after.subarray(prefix === -1 ? 100 : prefix), 0)).toBe(true);
    await handle.write([filled(100, 8)], 0);
    expect(same(disk.readVisible('/f'), filled(100, 8))).toBe(true);
  });
});

describe('SimDisk bit rot and misdirected writes', () => {
  it('flips a bit in durable and visible bytes, surviving a crash', async () => {
    const disk = new SimDisk({ seed: 6 });
    disk.writeRaw('/f', filled(64, 0));
    disk.flipBit('/f', 10, 3);
    expect(disk.readVisible('/f')[10]).toBe(8);
    expect(disk.readDurable('/f')[10]).toBe(8);
    disk.crash();
    expect(disk.readVisible('/f')[10]).toBe(8);
    expect(disk.readVisible('/f').filter((byte) => byte !== 0).length).toBe(1);
  });

  it('lands a misdirected write elsewhere and leaves the intended range old', async () => {
    const disk = new SimDisk({ seed: 6 });
    disk.writeRaw('/f', filled(pageBytes, 0));
    const handle = await disk.open('/f', 'write');
    disk.misdirectNextWrite({ path: '/f', shiftBytes: 2 * sectorBytes });
    await handle.write([filled(sectorBytes, 7)], 0);
    const after = disk.readVisible('/f');
    expect(allEqual(after.subarray(0, 2 * sectorBytes), 0)).toBe(true);
    expect(allEqual(after.subarray(2 * sectorBytes, 3 * sectorBytes), 7)).toBe(true);
    expect(after.length).toBe(pageBytes);
    // Only the next write is misdirected.
    await handle.write([filled(sectorBytes, 6)], 0);
    expect(allEqual(disk.readVisible('/f').subarray(0, sectorBytes), 6)).toBe(true);
    await handle.datasync();
    const landed = disk.readDurable('/f').subarray(2 * sectorBytes, 3 * sectorBytes);
    expect(allEqual(landed, 7)).toBe(true);
  });
});

describe('SimDisk crash: directory entries', () => {
  it('loses an unsynced create with lose-unsynced and keeps it with clean', async () => {
    for (const mode of ['lose-unsynced', 'clean'] as const) {
      const disk = new SimDisk({ seed: 10 });
      disk.writeRaw('/d/old', filled(1, 1));
      const handle = await disk.open('/d/new', 'create');
      await handle.write([filled(10, 1)], 0);
      await handle.datasync();
      expect(disk.exists('/d/new')).toBe(true);
      expect(disk.exists('/d/new', 'durable')).toBe(false);
      disk.crash({ mode });
      expect(disk.exists('/d/new')).toBe(mode === 'clean');
      expect(disk.exists('/d/old')).toBe(true);
    }
  });

  it('keeps synced entries always, unsynced ones as a prefix per directory', async () => {
    const survivors = new Set<string>();
    for (const seed of seeds) {
      const disk = new SimDisk({ seed });
      await makeDirectory(disk, '/d');
      await createDurable(disk, '/d/synced', filled(10, 1));
      for (const name of ['a', 'b', 'c']) await disk.open(`/d/${name}`, 'create');
      const report: CrashReport = disk.crash();
      expect(disk.exists('/d/synced'), `SEED=${seed}`).toBe(true);
      const names = (await disk.list('/d')).filter((name) => name !== 'synced');
      expect(['', 'a', 'a,b', 'a,b,c']).toContain(names.join(','));
      expect(report.direntChangesKept + report.direntChangesDropped).toBe(3);
      survivors.add(names.join(','));
    }
    expect(survivors.size).toBe(4);
  });

  it('makes a rename durable only with syncDir', async () => {
    const renamedSurvived = { synced: 0, unsynced: 0 };
    for (const seed of seeds.slice(0, 100)) {
      for (const sync of [true, false]) {
        const disk = new SimDisk({ seed });
        await makeDirectory(disk, '/d');
        await createDurable(disk, '/d/tmp', filled(10, 4));
        await disk.rename('/d/tmp', '/d/final');
        if (sync) await disk.syncDir('/d');
        disk.crash();
        const final = disk.exists('/d/final');
        // Atomic: exactly one of the two names exists, and it holds the synced bytes.
        expect(final !== disk.exists('/d/tmp'), `SEED=${seed}`).toBe(true);
        expect(same(disk.readVisible(final ? '/d/final' : '/d/tmp'), filled(10, 4))).toBe(true);
        if (final) renamedSurvived[sync ? 'synced' : 'unsynced']++;
      }
    }
    expect(renamedSurvived.synced).toBe(100);
    expect(renamedSurvived.unsynced).toBeGreaterThan(10);
    expect(renamedSurvived.unsynced).toBeLessThan(90);
  });

  it('keeps or drops a rename between directories as a whole', async () => {
    const places = new Set<string>();
    for (const seed of seeds.slice(0, 100)) {
      const disk = new SimDisk({ seed });
      disk.writeRaw('/x/f', filled(10, 1));
      disk.writeRaw('/y/g', filled(10, 1));
      await disk.rename('/x/f', '/y/f');
      await disk.open('/y/h', 'create');
      disk.crash();
      const inX = disk.exists('/x/f');
      const inY = disk.exists('/y/f');
      expect(inX !== inY, `SEED=${seed}`).toBe(true);
      // /y/h was created after the rename, so it never survives without it.
      if (disk.exists('/y/h')) expect(inY).toBe(true);
      places.add(inX ? 'x' : 'y');
    }
    expect(places.size).toBe(2);
  });

  it('makes a cross-directory rename durable through either directory', async () => {
    const disk = new SimDisk({ seed: 11 });
    disk.writeRaw('/x/f', filled(10, 1));
    disk.writeRaw('/y/g', filled(10, 1));
    await disk.rename('/x/f', '/y/f');
    await disk.syncDir('/y');
    disk.crash({ mode: 'lose-unsynced' });
    expect(disk.listAll()).toEqual(['/x', '/y', '/y/f', '/y/g']);
  });
});

describe('SimDisk crash: processes', () => {
  it('never settles what the dead process had in flight or opened', async () => {
    const scheduler = new SimScheduler();
    const disk = new SimDisk({ seed: 12, scheduler });
    disk.writeRaw('/d/f', filled(10, 1));
    const opening = disk.open('/d/f', 'write');
    const locking = disk.lock('/d');
    await scheduler.run();
    const handle = await opening;
    await locking;
    const write = handle.write([filled(10, 2)], 0);
    const report = disk.crash();
    expect(report.operationsInflightApplied + report.operationsInflightDropped).toBe(1);
    expect(report.handlesInvalidated).toBe(1);
    expect(report.locksReleased).toBe(1);
    const later = handle.read(new Uint8Array(10), 0, 10, 0);
    await scheduler.run();
    expect(await settlesSoon(write)).toBe(false);
    expect(await settlesSoon(later)).toBe(false);
    expect(await settlesSoon(handle.close())).toBe(false);
    // The new process can take the lock at once.
    const relock = disk.lock('/d');
    await scheduler.run();
    const release = (await relock).release();
    await scheduler.run();
    await release;
  });

  it('applies in-flight writes with clean and drops them with lose-unsynced', async () => {
    for (const mode of ['clean', 'lose-unsynced'] as const) {
      const scheduler = new SimScheduler();
      const disk = new SimDisk({ seed: 13, scheduler });
      disk.writeRaw('/f', filled(10, 1));
      const opening = disk.open('/f', 'write');
      await scheduler.run();
      void (await opening).write([filled(10, 2)], 0);
      disk.crash({ mode });
      expect(disk.readVisible('/f')[0]).toBe(mode === 'clean' ? 2 : 1);
    }
  });

  it('fails an assertion if a buffer changes while its write is in flight', async () => {
    const scheduler = new SimScheduler();
    const disk = new SimDisk({ seed: 14, scheduler });
    disk.writeRaw('/f', new Uint8Array(0));
    const opening = disk.open('/f', 'write');
    await scheduler.run();
    const buffer = filled(10, 1);
    void (await opening).write([buffer], 0);
    buffer[3] = 9;
    await expect(scheduler.step()).rejects.toBeInstanceOf(AssertionError);
  });
});

describe('SimDisk determinism and latency', () => {
  /** A small workload with concurrency, faults and a crash; returns everything observable. */
  async function digest(seed: number): Promise<string> {
    const scheduler = new SimScheduler();
    const disk = new SimDisk({ seed, scheduler, latencyMs: { min: 0, max: 30 } });
    const log: string[] = [];
    const making = disk.mkdir('/d').then(() => log.push(`mkdir @${scheduler.now}`));
    await scheduler.run();
    await making;
    const opening = disk.open('/d/f', 'create');
    await scheduler.run();
    const handle = await opening;
    const operations: Promise<unknown>[] = [];
    for (let index = 0; index < 12; index++) {
      const write = handle.write([filled(700, index + 1)], index * 300);
      operations.push(write.then(() => log.push(`write ${index} @${scheduler.now}`)));
      if (index % 4 === 3) operations.push(handle.datasync().then(() => log.push('sync')));
    }
    while (scheduler.pending > 4) await scheduler.step();
    const report = disk.crash();
    await scheduler.run();
    const exists = disk.exists('/d/f');
    const bytes = exists ? Buffer.from(disk.readVisible('/d/f')).toString('hex') : 'missing';
    return JSON.stringify({ log, report, bytes, files: disk.listAll() });
  }

  it('is identical for the same seed and differs across seeds', async () => {
    for (const seed of [1, 2, 3]) expect(await digest(seed)).toBe(await digest(seed));
    const distinct = new Set(await Promise.all([1, 2, 3, 4, 5].map((seed) => digest(seed))));
    expect(distinct.size).toBe(5);
  });

  it('completes concurrent operations in a seeded order in virtual time', async () => {
    async function completionOrder(seed: number): Promise<{ order: number[]; now: number }> {
      const scheduler = new SimScheduler();
      const disk = new SimDisk({ seed, scheduler, latencyMs: { min: 1, max: 50 } });
      disk.writeRaw('/f', new Uint8Array(0));
      const opening = disk.open('/f', 'write');
      await scheduler.run();
      const handle = await opening;
      const order: number[] = [];
      const writes = Array.from({ length: 8 }, (_unused, index) =>
        handle.write([filled(1, index)], index).then(() => order.push(index)),
      );
      expect(await settlesSoon(writes[0]!)).toBe(false);
      await scheduler.run();
      await Promise.all(writes);
      return { order, now: scheduler.now };
    }
    const first = await completionOrder(5);
    expect(await completionOrder(5)).toEqual(first);
    expect(first.now).toBeGreaterThan(0);
    const inOrder = [0, 1, 2, 3, 4, 5, 6, 7];
    let reordered = 0;
    for (const seed of seeds.slice(0, 10)) {
      const { order } = await completionOrder(seed);
      expect([...order].sort()).toEqual(inOrder);
      if (order.join() !== inOrder.join()) reordered++;
    }
    expect(reordered).toBeGreaterThan(5);
  });
});

describe('Random', () => {
  it('repeats its sequence for a seed and differs across seeds', () => {
    const draw = (seed: number): number[] => {
      const random = new Random(seed);
      return Array.from({ length: 8 }, () => random.uint32());
    };
    expect(draw(42)).toEqual(draw(42));
    expect(draw(42)).not.toEqual(draw(43));
    expect(draw(2 ** 40)).not.toEqual(draw(0));
    expect(new Random(42).seed).toBe(42);
  });

  it('stays in range', () => {
    const random = new Random(1);
    for (let index = 0; index < 10_000; index++) {
      const next = random.next();
      expect(next >= 0 && next < 1).toBe(true);
      const value = random.range(-3, 3);
      expect(value >= -3 && value <= 3 && Number.isInteger(value)).toBe(true);
      expect(random.int(5)).toBeLessThan(5);
    }
    expect(random.bool(0)).toBe(false);
    expect(random.bool(1)).toBe(true);
    expect(['only']).toContain(random.pick(['only']));
    expect(() => random.int(0)).toThrow(AssertionError);
  });

  it('covers a range evenly enough', () => {
    const random = new Random(3);
    const counts = new Array<number>(6).fill(0);
    for (let index = 0; index < 60_000; index++) counts[random.int(6)]!++;
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });

  it('forks independent, reproducible child streams', () => {
    const parent = new Random(7);
    const child = parent.fork();
    const again = new Random(7).fork();
    expect(child.seed).toBe(again.seed);
    const childDraws = Array.from({ length: 4 }, () => child.uint32());
    const parentDraws = Array.from({ length: 4 }, () => parent.uint32());
    expect(childDraws).toEqual(Array.from({ length: 4 }, () => again.uint32()));
    expect(childDraws).not.toEqual(parentDraws);
    expect(new Random(child.seed).uint32()).toBe(childDraws[0]);
  });
});

describe('SimScheduler', () => {
  it('runs events by time, ties in insertion order, advancing now', async () => {
    const scheduler = new SimScheduler();
    const order: string[] = [];
    scheduler.schedule(10, () => order.push(`a@${scheduler.now}`));
    scheduler.schedule(5, () => order.push(`b@${scheduler.now}`));
    scheduler.schedule(10, () => order.push(`c@${scheduler.now}`));
    scheduler.schedule(5, () => {
      order.push(`d@${scheduler.now}`);
      scheduler.schedule(0, () => order.push(`e@${scheduler.now}`));
    });
    expect(scheduler.pending).toBe(4);
    expect(await scheduler.run()).toBe(5);
    expect(order).toEqual(['b@5', 'd@5', 'e@5', 'a@10', 'c@10']);
    expect(scheduler.now).toBe(10);
    expect(await scheduler.step()).toBe(false);
  });

  it('settles promise reactions before the next event', async () => {
    const scheduler = new SimScheduler();
    const order: string[] = [];
    scheduler.schedule(1, () => {
      void Promise.resolve()
        .then(() => undefined)
        .then(() => order.push('reaction'));
    });
    scheduler.schedule(1, () => order.push('next event'));
    await scheduler.run();
    expect(order).toEqual(['reaction', 'next event']);
  });

  it('stops at stepsMax and drops everything on clear', async () => {
    const scheduler = new SimScheduler();
    for (let index = 0; index < 10; index++) scheduler.schedule(index, () => undefined);
    expect(await scheduler.run({ stepsMax: 3 })).toBe(3);
    expect(scheduler.pending).toBe(7);
    expect(scheduler.now).toBe(2);
    scheduler.clear();
    expect(scheduler.pending).toBe(0);
    expect(await scheduler.run()).toBe(0);
    expect(scheduler.now).toBe(2);
  });
});
