/**
 * The disk port: everything the log needs from a file system, and nothing more. Two adapters
 * implement it and pass one conformance suite (test/conformance/disk.suite.ts):
 * `src/node/disk.ts` (node:fs + fs-ext) and `src/sim/disk.ts` (seeded, fault-injecting).
 *
 * Paths are plain strings joined with '/'; the port never resolves or normalizes them. Every
 * method may fail with a Node.js-style system error (an Error with a string `code` such as
 * 'ENOENT', 'EIO', 'ENOSPC' and a `syscall`); the storage layer maps those to typed errors.
 *
 * Durability contract (what an adapter promises; the simulated disk enforces exactly this):
 * - `write` makes bytes visible to later reads at once but durable only after `datasync` on the
 *   same file resolves. A crash may drop, keep, or tear (sector by sector) any write not yet
 *   covered by a successful `datasync`.
 * - If `datasync` rejects, the data it covered may be lost at the next crash even though reads
 *   still return it, and a later `datasync` may succeed without making it durable (Linux
 *   "fsyncgate"). Callers must never retry a failed `datasync` and trust the result.
 * - Creating, renaming and removing a directory entry becomes durable only after `syncDir` on
 *   the parent directory resolves. A crash may drop any suffix of the entry changes made since.
 * - A file's size grows with writes past its end; `datasync` makes that size durable too.
 */
export interface Disk {
  /**
   * True if `write` and `datasync` run synchronously on the calling thread (they still return
   * promises). Such an adapter must itself let the event loop turn now and then (the real one
   * yields once per millisecond of blocking work), so callers that loop on it cannot starve
   * timers and I/O. Absent means false.
   */
  readonly blocking?: boolean;
  /**
   * Opens a file. 'read': must exist, read only. 'write': must exist, read and write.
   * 'create': creates it empty (fails with EEXIST if it exists), read and write.
   * `background: true` marks bulk work off the hot path (preallocating a segment): an adapter
   * whose writes are synchronous runs this handle's writes and syncs asynchronously instead.
   */
  open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle>;
  /** Names in a directory, sorted by code unit. ENOENT if the directory does not exist. */
  list(dir: string): Promise<string[]>;
  /** Creates the directory and missing parents; no error if it exists. */
  mkdir(dir: string): Promise<void>;
  /** Removes a file. ENOENT if it does not exist. */
  remove(path: string): Promise<void>;
  /** Atomically renames a file, replacing `target` if it exists. */
  rename(source: string, target: string): Promise<void>;
  /** Makes the directory's entry changes (create, rename, remove) durable. */
  syncDir(dir: string): Promise<void>;
  /** Size in bytes of a file, or null if it does not exist. */
  size(path: string): Promise<number | null>;
  /** Bytes available to this process on the file system holding `dir` (statvfs f_bavail). */
  freeBytes(dir: string): Promise<number>;
  /**
   * Takes an exclusive advisory lock on `dir`/LOCK (created if missing) without blocking.
   * Rejects with a `LockedError` (code 'LOCKED') if another holder has it. The lock is held
   * until `release()` or process exit.
   */
  lock(dir: string): Promise<DiskLock>;
}

export type OpenMode = 'read' | 'write' | 'create';

export interface OpenOptions {
  background?: boolean;
}

export interface FileHandle {
  /**
   * Reads up to `length` bytes at `position` into `target` starting at `targetOffset`.
   * Resolves with the count read, which is less than `length` only at end of file.
   */
  read(target: Uint8Array, targetOffset: number, length: number, position: number): Promise<number>;
  /**
   * Writes all of `buffers`, back to back, starting at `position` (a positional write; short
   * writes are completed internally). Rejects on failure, in which case any prefix of the bytes
   * may have been written.
   */
  write(buffers: readonly Uint8Array[], position: number): Promise<void>;
  /** fdatasync: makes all earlier writes to this file, and its size, durable. */
  datasync(): Promise<void>;
  /** Sets the file's length (a metadata change, durable after `datasync`). */
  truncate(length: number): Promise<void>;
  /** Current length in bytes. */
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface DiskLock {
  release(): Promise<void>;
}
