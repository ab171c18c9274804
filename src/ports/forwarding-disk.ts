import type { Disk, DiskLock, FileHandle, OpenMode, OpenOptions } from './disk.js';

/**
 * A Disk that hands every call to another one. Decorators that watch or measure a disk (the
 * metrics endpoint's measured disk, the simulation harnesses' counting disk, the power-loss
 * test's watermark disk) extend it and override only the calls they care about.
 */
export class ForwardingDisk implements Disk {
  protected readonly inner: Disk;

  constructor(inner: Disk) {
    this.inner = inner;
  }

  /** Blocking exactly when the wrapped disk is: forwarding adds no waiting of its own. */
  get blocking(): boolean {
    return this.inner.blocking === true;
  }

  open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle> {
    return this.inner.open(path, mode, options);
  }
  list(dir: string): Promise<string[]> {
    return this.inner.list(dir);
  }
  mkdir(dir: string): Promise<void> {
    return this.inner.mkdir(dir);
  }
  remove(path: string): Promise<void> {
    return this.inner.remove(path);
  }
  rename(source: string, target: string): Promise<void> {
    return this.inner.rename(source, target);
  }
  syncDir(dir: string): Promise<void> {
    return this.inner.syncDir(dir);
  }
  size(path: string): Promise<number | null> {
    return this.inner.size(path);
  }
  freeBytes(dir: string): Promise<number> {
    return this.inner.freeBytes(dir);
  }
  lock(dir: string): Promise<DiskLock> {
    return this.inner.lock(dir);
  }
}
