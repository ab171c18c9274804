import type { Disk, FileHandle, OpenMode, OpenOptions } from '../ports/disk.js';
import { ForwardingDisk } from '../ports/forwarding-disk.js';
import { truncationMarkerName } from '../storage/truncation-marker.js';

/** What a CountingDisk reports to the harness (set per node; defaults do nothing). */
export interface DiskEvents {
  /** A log segment was read after the node opened (the primary reading for catch-up). */
  segmentRead(): void;
  datasyncFailed(): void;
  writeFailed(): void;
  /** A log segment is about to be deleted (prefix truncation, or a full sync's log reset). */
  segmentRemoving(path: string): void;
  /** A log segment was deleted (prefix truncation after a checkpoint). */
  segmentRemoved(): void;
  /** A suffix truncation began (its marker file was put in place). */
  truncationStarted(): void;
}

/** Events that do nothing; spread it under the ones a harness counts. */
export const quietDiskEvents: DiskEvents = {
  segmentRead: () => undefined,
  datasyncFailed: () => undefined,
  writeFailed: () => undefined,
  segmentRemoving: () => undefined,
  segmentRemoved: () => undefined,
  truncationStarted: () => undefined,
};

/**
 * A pass-through disk over one node's disk (both simulation harnesses use it) that reports
 * what the harness cannot see from the node (failed writes and fdatasyncs, deleted segments,
 * truncations of a divergent tail, log reads for catch-up), and knows whether written data is
 * not yet synced (the nemesis aims power losses there).
 */
export class CountingDisk extends ForwardingDisk {
  readonly #unsynced = new Set<FileHandle>();
  events: DiskEvents = quietDiskEvents;

  constructor(inner: Disk) {
    super(inner);
  }

  override async open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle> {
    const handle = await this.inner.open(path, mode, options);
    const unsynced = this.#unsynced;
    const segment = path.endsWith('.wal');
    return {
      read: (target, targetOffset, length, position) => {
        if (segment) this.events.segmentRead();
        return handle.read(target, targetOffset, length, position);
      },
      write: (buffers, position) =>
        handle.write(buffers, position).then(
          () => {
            unsynced.add(handle);
          },
          (error: unknown) => {
            this.events.writeFailed();
            throw error;
          },
        ),
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

  override async remove(path: string): Promise<void> {
    if (path.endsWith('.wal')) this.events.segmentRemoving(path);
    await this.inner.remove(path);
    if (path.endsWith('.wal')) this.events.segmentRemoved();
  }
  override async rename(source: string, target: string): Promise<void> {
    await this.inner.rename(source, target);
    if (target.endsWith(`/${truncationMarkerName}`)) this.events.truncationStarted();
  }
}
