import type { Disk, DiskLock, FileHandle } from '../../src/ports/disk.js';
import { SimDisk } from '../../src/sim/disk.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import { diskConformanceSuite } from './disk.suite.js';

const root = '/conformance';

// Operations complete in microtasks, in the order they were issued.
diskConformanceSuite('SimDisk', async () => {
  const disk = new SimDisk({ seed: 1 });
  await disk.mkdir(root);
  return { disk, root, cleanup: async () => undefined };
});

// Operations complete after seeded latencies in virtual time, so concurrent ones reorder.
// The suite awaits port calls directly, so each call drives the scheduler until it settles.
diskConformanceSuite('SimDisk with latency', async () => {
  const scheduler = new SimScheduler();
  const sim = new SimDisk({ seed: 2, scheduler, latencyMs: { min: 0, max: 20 } });
  const disk = drivenDisk(sim, scheduler);
  await disk.mkdir(root);
  return {
    disk,
    root,
    cleanup: async () => {
      await scheduler.run();
    },
  };
});

function drivenDisk(disk: Disk, scheduler: SimScheduler): Disk {
  const run = <T>(promise: Promise<T>): Promise<T> => scheduler.drive(promise);
  return {
    open: async (path, mode) => drivenHandle(await run(disk.open(path, mode)), scheduler),
    list: (dir) => run(disk.list(dir)),
    mkdir: (dir) => run(disk.mkdir(dir)),
    remove: (path) => run(disk.remove(path)),
    rename: (source, target) => run(disk.rename(source, target)),
    syncDir: (dir) => run(disk.syncDir(dir)),
    size: (path) => run(disk.size(path)),
    freeBytes: (dir) => run(disk.freeBytes(dir)),
    lock: async (dir) => drivenLock(await run(disk.lock(dir)), scheduler),
  };
}

function drivenHandle(handle: FileHandle, scheduler: SimScheduler): FileHandle {
  const run = <T>(promise: Promise<T>): Promise<T> => scheduler.drive(promise);
  return {
    read: (target, targetOffset, length, position) =>
      run(handle.read(target, targetOffset, length, position)),
    write: (buffers, position) => run(handle.write(buffers, position)),
    datasync: () => run(handle.datasync()),
    truncate: (length) => run(handle.truncate(length)),
    size: () => run(handle.size()),
    close: () => run(handle.close()),
  };
}

function drivenLock(lock: DiskLock, scheduler: SimScheduler): DiskLock {
  return { release: () => scheduler.drive(lock.release()) };
}
