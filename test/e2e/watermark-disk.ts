/**
 * WatermarkDisk: a Disk that wraps another one (the real NodeDisk in the e2e writer) and reports,
 * synchronously and in order, everything a test harness needs to emulate a power loss after it
 * SIGKILLs the process: which byte ranges were written to which file, which of those writes a
 * successful fdatasync covered, and which directory entry changes (create, rename, remove) a
 * successful directory fsync covered.
 *
 * A power loss may drop or garble any write that no successful datasync covered, and may undo
 * any entry change that no successful syncDir covered. The harness (test/e2e/harness.ts) does
 * exactly that to the files after the kill, and never touches anything reported durable.
 *
 * "Covered" is decided the way the disk port's contract reads: a datasync covers the writes to
 * the same file that completed before it began, and a syncDir covers the entry changes in that
 * directory that completed before it began. After a failed datasync the writes it would have
 * covered stay not durable forever, even if a later datasync succeeds (Linux "fsyncgate").
 *
 * Why write ranges and not a single synced watermark per file: segments are preallocated, so a
 * segment's whole length is written (zeros) and synced before its first record, and records are
 * then written over those zeros. A "highest offset synced" would be the segment's end from the
 * start and protect nothing. The unsynced ranges are exact whatever the write pattern.
 *
 * Every report is made before the wrapped call returns to the engine, and the writer sends it
 * with a synchronous write to a pipe, so a report can never lag the engine acting on what it
 * reports: once the parent holds an ack, it holds every sync report the ack depended on.
 */
import type { Disk, FileHandle, OpenMode, OpenOptions } from '../../src/ports/disk.js';
import { ForwardingDisk } from '../../src/ports/forwarding-disk.js';

/** One event, in the order it happened. `file` is a stable id that survives renames. */
export type DiskEvent =
  | { t: 'create'; file: number; entry: number; path: string }
  | { t: 'open'; file: number; path: string }
  | { t: 'write'; file: number; write: number; start: number; end: number }
  | { t: 'written'; file: number; write: number }
  | { t: 'sync'; file: number; writes: number[] }
  | { t: 'sync-failed'; file: number; writes: number[] }
  | { t: 'truncate'; file: number; length: number }
  | { t: 'rename'; file: number | null; entry: number; from: string; to: string }
  | { t: 'remove'; file: number | null; entry: number; path: string }
  | { t: 'syncdir'; dir: string; entries: number[] };

interface TrackedFile {
  id: number;
  path: string;
  /** Writes that completed and that no datasync has covered yet. */
  completed: Set<number>;
}

function parentOf(path: string): string {
  const cut = path.lastIndexOf('/');
  if (cut > 0) return path.slice(0, cut);
  return cut === 0 ? '/' : '.';
}

export class WatermarkDisk extends ForwardingDisk {
  readonly #report: (event: DiskEvent) => void;
  readonly #byPath = new Map<string, TrackedFile>();
  /** Entry changes that completed and that no syncDir has covered, by directory. */
  readonly #entriesPending = new Map<string, Set<number>>();
  #fileIdNext = 1;
  #writeIdNext = 1;
  #entryIdNext = 1;

  constructor(inner: Disk, report: (event: DiskEvent) => void) {
    super(inner);
    this.#report = report;
  }

  override async open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle> {
    const handle = await this.inner.open(path, mode, options);
    let file = this.#byPath.get(path);
    if (mode === 'create' || file === undefined) {
      file = { id: this.#fileIdNext++, path, completed: new Set() };
      this.#byPath.set(path, file);
      if (mode === 'create') {
        const entry = this.#entryDone(parentOf(path));
        this.#report({ t: 'create', file: file.id, entry, path });
      } else {
        this.#report({ t: 'open', file: file.id, path });
      }
    }
    return new WatermarkHandle(handle, file, this);
  }

  override async remove(path: string): Promise<void> {
    await this.inner.remove(path);
    const file = this.#byPath.get(path);
    this.#byPath.delete(path);
    const entry = this.#entryDone(parentOf(path));
    this.#report({ t: 'remove', file: file?.id ?? null, entry, path });
  }

  override async rename(source: string, target: string): Promise<void> {
    await this.inner.rename(source, target);
    const file = this.#byPath.get(source);
    this.#byPath.delete(source);
    if (file !== undefined) {
      file.path = target;
      this.#byPath.set(target, file);
    } else {
      this.#byPath.delete(target);
    }
    // A rename between directories changes both; the log only renames within one.
    const entry = this.#entryDone(parentOf(target));
    this.#report({ t: 'rename', file: file?.id ?? null, entry, from: source, to: target });
  }

  override async syncDir(dir: string): Promise<void> {
    const pending = this.#entriesPending.get(dir) ?? new Set<number>();
    const covered = [...pending];
    await this.inner.syncDir(dir);
    for (const entry of covered) pending.delete(entry);
    this.#report({ t: 'syncdir', dir, entries: covered });
  }

  /** Records a completed entry change in `dir`; returns its id. */
  #entryDone(dir: string): number {
    const entry = this.#entryIdNext++;
    let pending = this.#entriesPending.get(dir);
    if (pending === undefined) {
      pending = new Set();
      this.#entriesPending.set(dir, pending);
    }
    pending.add(entry);
    return entry;
  }

  /** Used by the handles: a fresh write id. */
  nextWriteId(): number {
    return this.#writeIdNext++;
  }

  /** Used by the handles: sends one event. */
  report(event: DiskEvent): void {
    this.#report(event);
  }
}

class WatermarkHandle implements FileHandle {
  readonly #inner: FileHandle;
  readonly #file: TrackedFile;
  readonly #disk: WatermarkDisk;

  constructor(inner: FileHandle, file: TrackedFile, disk: WatermarkDisk) {
    this.#inner = inner;
    this.#file = file;
    this.#disk = disk;
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number) {
    return this.#inner.read(target, targetOffset, length, position);
  }

  async write(buffers: readonly Uint8Array[], position: number): Promise<void> {
    const bytes = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    const write = this.#disk.nextWriteId();
    // Reported before the bytes go out: a kill during the write leaves them torn, which a power
    // loss could do too. A failed write stays reported and is never covered.
    const end = position + bytes;
    this.#disk.report({ t: 'write', file: this.#file.id, write, start: position, end });
    await this.#inner.write(buffers, position);
    this.#file.completed.add(write);
    // Lets the harness kill between a finished write and its fdatasync, where a power loss
    // has the most to tear.
    this.#disk.report({ t: 'written', file: this.#file.id, write });
  }

  async datasync(): Promise<void> {
    const covered = [...this.#file.completed];
    try {
      await this.#inner.datasync();
    } catch (error: unknown) {
      // fsyncgate: what this datasync was meant to cover may be lost, and a later success
      // says nothing about it, so it is never reported durable.
      for (const write of covered) this.#file.completed.delete(write);
      this.#disk.report({ t: 'sync-failed', file: this.#file.id, writes: covered });
      throw error;
    }
    for (const write of covered) this.#file.completed.delete(write);
    this.#disk.report({ t: 'sync', file: this.#file.id, writes: covered });
  }

  async truncate(length: number): Promise<void> {
    await this.#inner.truncate(length);
    this.#disk.report({ t: 'truncate', file: this.#file.id, length });
  }

  size(): Promise<number> {
    return this.#inner.size();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}
