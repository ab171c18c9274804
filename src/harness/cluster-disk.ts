import type { Disk, DiskLock, FileHandle, OpenMode, OpenOptions } from '../ports/disk.js';
import type { SimDisk } from '../sim/disk.js';
import { truncationMarkerName } from '../storage/truncation-marker.js';

/** What a CountingDisk reports to the harness (set per node; defaults do nothing). */
export interface DiskEvents {
  /** A log segment was read after the node opened (the primary reading for catch-up). */
  segmentRead(): void;
  datasyncFailed(): void;
  /** A suffix truncation began (its marker file was put in place). */
  truncationStarted(): void;
}

const quiet: DiskEvents = {
  segmentRead: () => undefined,
  datasyncFailed: () => undefined,
  truncationStarted: () => undefined,
};

/**
 * A pass-through disk over one node's SimDisk that reports what the harness cannot see from
 * the node (failed fdatasyncs, truncations of a divergent tail, log reads for catch-up), and
 * knows whether written data is not yet synced (the nemesis aims power losses there).
 */
export class CountingDisk implements Disk {
  readonly #inner: SimDisk;
  readonly #unsynced = new Set<FileHandle>();
  events: DiskEvents = quiet;

  constructor(inner: SimDisk) {
    this.#inner = inner;
  }

  async open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle> {
    const handle = await this.#inner.open(path, mode, options);
    const unsynced = this.#unsynced;
    const segment = path.endsWith('.wal');
    return {
      read: (target, targetOffset, length, position) => {
        if (segment) this.events.segmentRead();
        return handle.read(target, targetOffset, length, position);
      },
      write: (buffers, position) =>
        handle.write(buffers, position).then(() => {
          unsynced.add(handle);
        }),
      datasync: () =>
        handle.datasync().then(
          () => {
            unsynced.delete(handle);
          },
          (error: unknown) => {
            this.events.datasyncFailed();
            throw error;
          },
        ),
      truncate: (length) => handle.truncate(length),
      size: () => handle.size(),
      close: () => {
        unsynced.delete(handle);
        return handle.close();
      },
    };
  }

  /** Whether some file has writes that completed and were not synced since. */
  get hasUnsyncedWrites(): boolean {
    return this.#unsynced.size > 0;
  }

  /** Power loss: the dead process's handles are gone. */
  crashed(): void {
    this.#unsynced.clear();
  }

  list(dir: string): Promise<string[]> {
    return this.#inner.list(dir);
  }
  mkdir(dir: string): Promise<void> {
    return this.#inner.mkdir(dir);
  }
  remove(path: string): Promise<void> {
    return this.#inner.remove(path);
  }
  async rename(source: string, target: string): Promise<void> {
    await this.#inner.rename(source, target);
    if (target.endsWith(`/${truncationMarkerName}`)) this.events.truncationStarted();
  }
  syncDir(dir: string): Promise<void> {
    return this.#inner.syncDir(dir);
  }
  size(path: string): Promise<number | null> {
    return this.#inner.size(path);
  }
  freeBytes(dir: string): Promise<number> {
    return this.#inner.freeBytes(dir);
  }
  lock(dir: string): Promise<DiskLock> {
    return this.#inner.lock(dir);
  }
}
