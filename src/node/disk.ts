/**
 * NodeDisk: the disk port over the real file system (node:fs, plus fs-ext for flock(2) and
 * statvfs(3)). It passes the same conformance suite as the simulated disk
 * (test/conformance/disk.suite.ts).
 *
 * Why the callback API and not node:fs/promises: the promise API wraps every call in a
 * FileHandle-bound promise with extra bookkeeping, which is measurably slower for the small,
 * frequent writes and fdatasyncs of a log. The few promises we need are made here by hand.
 *
 * Every flag that matters for durability is written out at its call site: open flags and
 * creation modes, fdatasync (for file data) versus fsync (for a directory's entries).
 *
 * Beyond what the OS does on its own, this adapter makes two behaviours deterministic across
 * platforms, as the simulated disk does: a closed handle rejects every operation with EBADF
 * (the fd number is never reused by mistake, since close waits for operations in flight), and
 * a handle opened for reading rejects writes and truncation with EBADF.
 */
import fs from 'node:fs';
import os from 'node:os';
import fsExt from 'fs-ext';
import { assert } from '../core/assert.js';
import { LockedError } from '../core/errors.js';
import type { Disk, DiskLock, FileHandle, OpenMode, OpenOptions } from '../ports/disk.js';

/** Permissions of created files and directories (before the umask). */
const fileModeCreate = 0o644;
const directoryModeCreate = 0o755;

const openFlagsByMode: Readonly<Record<OpenMode, number>> = {
  read: fs.constants.O_RDONLY,
  write: fs.constants.O_RDWR,
  create: fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL,
};

type ErrnoCallback<T> = (error: NodeJS.ErrnoException | null, value: T) => void;

/**
 * How file handles run the two calls on a log's hot path, `write` and `datasync`:
 * - 'sync' (default): writevSync and fdatasyncSync on the calling thread, as Redis does its
 *   AOF fsync on its main thread. Each call blocks the event loop for as long as the disk
 *   takes, but skips two thread-pool round trips per write (about 60-80 us here, most of the
 *   cost of a small durable write). Group commit still works: whatever arrives while the disk
 *   is busy is queued when the loop runs again and goes out in the next write.
 * - 'async': callback fs calls on the libuv thread pool; the event loop never blocks on the
 *   disk. Slower per write (see `npm run bench -- log`), but right for a process whose loop
 *   must stay responsive while a slow disk (milliseconds per fsync) syncs.
 * Every other call is asynchronous in both modes.
 */
export type NodeDiskIo = 'async' | 'sync';

export interface NodeDiskOptions {
  io?: NodeDiskIo;
}

/**
 * Synchronous writes and fsyncs block the event loop. A caller that re-appends as soon as its
 * append resolves would never let it turn, starving timers and I/O (measured: no timer fired
 * for a whole second). So blocking calls first yield one turn whenever a millisecond has passed
 * since the last yield: at most one setImmediate per millisecond, nothing on a quiet path.
 */
class EventLoopTurns {
  #lastTurnMs = performance.now();

  async maybeYield(): Promise<void> {
    if (performance.now() - this.#lastTurnMs < 1) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#lastTurnMs = performance.now();
  }
}

export class NodeDisk implements Disk {
  readonly io: NodeDiskIo;
  readonly #turns = new EventLoopTurns();

  constructor(options: NodeDiskOptions = {}) {
    const io = options.io ?? 'sync';
    assert(io === 'async' || io === 'sync', 'NodeDisk: io must be async or sync');
    this.io = io;
  }

  get blocking(): boolean {
    return this.io === 'sync';
  }

  async open(path: string, mode: OpenMode, options: OpenOptions = {}): Promise<FileHandle> {
    assert(mode in openFlagsByMode, 'NodeDisk.open: bad mode');
    const fd = await call<number>((done) => {
      fs.open(path, openFlagsByMode[mode], fileModeCreate, done);
    });
    // Bulk background work (zero-filling a 64 MiB segment) must not stall the event loop.
    const io = options.background === true ? 'async' : this.io;
    return new NodeFileHandle(fd, path, mode, io, this.#turns);
  }

  async list(dir: string): Promise<string[]> {
    const names = await call<string[]>((done) => {
      fs.readdir(dir, { encoding: 'utf8', withFileTypes: false }, done);
    });
    // The default sort compares UTF-16 code units, which is the order the port promises.
    return names.sort();
  }

  async mkdir(dir: string): Promise<void> {
    await call<string | undefined>((done) => {
      fs.mkdir(dir, { recursive: true, mode: directoryModeCreate }, done);
    });
  }

  remove(path: string): Promise<void> {
    return callVoid((done) => fs.unlink(path, done));
  }

  rename(source: string, target: string): Promise<void> {
    return callVoid((done) => fs.rename(source, target, done));
  }

  /** fsync(2) on the directory itself: that is what makes its entry changes durable. */
  async syncDir(dir: string): Promise<void> {
    const flags = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY;
    const fd = await call<number>((done) => fs.open(dir, flags, done));
    try {
      await callVoid((done) => fs.fsync(fd, done));
    } finally {
      await callVoid((done) => fs.close(fd, done));
    }
  }

  async size(path: string): Promise<number | null> {
    try {
      const stats = await call<fs.Stats>((done) => fs.stat(path, { bigint: false }, done));
      return stats.size;
    } catch (error: unknown) {
      if (errorCode(error) === 'ENOENT') return null;
      throw error;
    }
  }

  async freeBytes(dir: string): Promise<number> {
    try {
      const stats = await call<fsExt.StatVfs>((done) => fsExt.statVFS(dir, done));
      return stats.f_bavail * stats.f_frsize;
    } catch (error: unknown) {
      // fs-ext's asynchronous statVFS loses errno (it reports code ''), so ask stat(2) why the
      // directory is unusable; if stat succeeds, the failure was in statvfs itself.
      await call<fs.Stats>((done) => fs.stat(dir, { bigint: false }, done));
      throw normalizeAddonError(error, 'statvfs', dir);
    }
  }

  async lock(dir: string): Promise<DiskLock> {
    const path = dir === '/' ? '/LOCK' : `${dir}/LOCK`;
    const flags = fs.constants.O_RDWR | fs.constants.O_CREAT;
    const fd = await call<number>((done) => fs.open(path, flags, fileModeCreate, done));
    try {
      // Exclusive and non-blocking: a second holder fails at once instead of waiting.
      await callVoid((done) => fsExt.flock(fd, 'exnb', done));
    } catch (error: unknown) {
      await callVoid((done) => fs.close(fd, done));
      const code = errorCode(error);
      const held = code === 'EAGAIN' || code === 'EWOULDBLOCK';
      if (held) throw new LockedError(path, { cause: error });
      throw normalizeAddonError(error, 'flock', path);
    }
    return new NodeLock(fd, path);
  }
}

class NodeLock implements DiskLock {
  private released = false;

  constructor(
    private readonly fd: number,
    private readonly path: string,
  ) {}

  async release(): Promise<void> {
    // Releasing twice is harmless; the second call must not touch a reused fd number.
    if (this.released) return;
    this.released = true;
    try {
      await callVoid((done) => fsExt.flock(this.fd, 'un', done));
    } catch (error: unknown) {
      await callVoid((done) => fs.close(this.fd, done));
      throw normalizeAddonError(error, 'flock', this.path);
    }
    // Closing alone would release the lock too; unlocking first says what we mean.
    await callVoid((done) => fs.close(this.fd, done));
  }
}

class NodeFileHandle implements FileHandle {
  private closed = false;
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly fd: number,
    private readonly path: string,
    private readonly mode: OpenMode,
    private readonly io: NodeDiskIo = 'sync',
    private readonly turns: EventLoopTurns = new EventLoopTurns(),
  ) {}

  read(
    target: Uint8Array,
    targetOffset: number,
    length: number,
    position: number,
  ): Promise<number> {
    assertByteCount(targetOffset, 'targetOffset');
    assertByteCount(length, 'length');
    assertByteCount(position, 'position');
    assert(targetOffset + length <= target.length, 'NodeDisk read: target too small');
    return this.run('read', async (fd) => {
      let total = 0;
      // pread(2) of a regular file is short only at the end, but the port promises "short
      // only at end of file", so keep reading. Every pass reads a byte or stops.
      for (let pass = 0; total < length && pass <= length; pass++) {
        const count = await call<number>((done) => {
          fs.read(fd, target, targetOffset + total, length - total, position + total, done);
        });
        if (count === 0) break;
        total += count;
      }
      return total;
    });
  }

  write(buffers: readonly Uint8Array[], position: number): Promise<void> {
    assertByteCount(position, 'position');
    return this.run('write', async (fd) => {
      if (this.mode === 'read') throw badDescriptor('write', this.path);
      if (this.io === 'sync') await this.turns.maybeYield();
      let remaining = buffers.filter((buffer) => buffer.length > 0);
      let bytesLeft = remaining.reduce((sum, buffer) => sum + buffer.length, 0);
      let offset = position;
      // Every pass writes at least one byte (a zero-byte pass is an error), so it ends.
      for (let pass = 0; bytesLeft > 0; pass++) {
        assert(pass <= offset - position + bytesLeft, 'NodeDisk write: no progress');
        const pending = remaining;
        const written =
          this.io === 'sync'
            ? fs.writevSync(fd, pending, offset)
            : await call<number>((done) => {
                fs.writev(fd, pending, offset, (error, bytesWritten) => done(error, bytesWritten));
              });
        if (written === 0) throw systemError('EIO', 'write', this.path, 'wrote zero bytes');
        offset += written;
        bytesLeft -= written;
        remaining = skipBytes(remaining, written);
      }
    });
  }

  /** fdatasync(2), not fsync(2): data and size, without the timestamps nobody reads. */
  datasync(): Promise<void> {
    if (this.io === 'sync') {
      return this.run('fdatasync', async (fd) => fs.fdatasyncSync(fd));
    }
    return this.run('fdatasync', (fd) => callVoid((done) => fs.fdatasync(fd, done)));
  }

  truncate(length: number): Promise<void> {
    assertByteCount(length, 'length');
    return this.run('ftruncate', async (fd) => {
      // Linux says EINVAL for a read-only descriptor; both adapters say EBADF.
      if (this.mode === 'read') throw badDescriptor('ftruncate', this.path);
      await callVoid((done) => fs.ftruncate(fd, length, done));
    });
  }

  size(): Promise<number> {
    return this.run('fstat', async (fd) => {
      const stats = await call<fs.Stats>((done) => fs.fstat(fd, { bigint: false }, done));
      return stats.size;
    });
  }

  async close(): Promise<void> {
    // Closing twice is harmless, as with Node's FileHandle.
    if (this.closed) return;
    this.closed = true;
    // Wait for operations in flight: closing under them could let the OS reuse the fd number,
    // and a late read or write would then hit some other file.
    if (this.inflight > 0) {
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
    await callVoid((done) => fs.close(this.fd, done));
  }

  private async run<T>(syscall: string, operation: (fd: number) => Promise<T>): Promise<T> {
    if (this.closed) throw badDescriptor(syscall, this.path);
    this.inflight++;
    try {
      return await operation(this.fd);
    } catch (error: unknown) {
      throw withPath(error, this.path);
    } finally {
      this.inflight--;
      if (this.inflight === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const wake of waiters) wake();
      }
    }
  }
}

/** Turns a Node.js callback call into a promise. */
function call<T>(start: (done: ErrnoCallback<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((error, value) => {
      if (error !== null && error !== undefined) reject(error);
      else resolve(value);
    });
  });
}

function callVoid(
  start: (done: (error: NodeJS.ErrnoException | null) => void) => void,
): Promise<void> {
  return call<void>((done) => start((error) => done(error, undefined)));
}

/** The buffers left after the first `count` bytes were written. */
function skipBytes(buffers: Uint8Array[], count: number): Uint8Array[] {
  let skip = count;
  const rest: Uint8Array[] = [];
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return rest;
}

function errorCode(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : null;
}

/** fd-based calls report no path; add it, so an error says which file failed. */
function withPath(error: unknown, path: string): unknown {
  if (error instanceof Error && (error as NodeJS.ErrnoException).path === undefined) {
    (error as NodeJS.ErrnoException).path = path;
  }
  return error;
}

function systemError(code: string, syscall: string, path: string, detail: string): Error {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${detail}, ${syscall} '${path}'`);
  error.code = code;
  const errno = (os.constants.errno as Record<string, number | undefined>)[code];
  if (errno !== undefined) error.errno = -errno;
  error.syscall = syscall;
  error.path = path;
  return error;
}

function badDescriptor(syscall: string, path: string): Error {
  return systemError('EBADF', syscall, path, 'bad file descriptor');
}

/** fs-ext errors name no syscall ('EIO_After') and no path, and may lack a code: fix them. */
function normalizeAddonError(error: unknown, syscall: string, path: string): Error {
  const code = errorCode(error);
  const known = code !== null && code !== '';
  const detail = error instanceof Error ? error.message : String(error);
  const normalized = systemError(known ? code : 'EIO', syscall, path, detail);
  return Object.assign(normalized, { cause: error });
}

function assertByteCount(value: number, what: string): void {
  assert(Number.isSafeInteger(value), `NodeDisk: ${what} must be an integer`);
  assert(value >= 0, `NodeDisk: ${what} must not be negative`);
}
