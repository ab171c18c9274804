/**
 * SimDisk: an in-memory, seeded, fault-injecting implementation of the disk port, modelled on
 * TigerBeetle's src/testing/storage.zig and FoundationDB's AsyncFileNonDurable. It enforces the
 * durability contract of src/ports/disk.ts exactly, and breaks everything the contract does not
 * promise, so that the log is tested against the worst disk it is allowed to meet.
 *
 * Fault model (everything random comes from `seed`; a run replays exactly from it):
 *
 * - Files are inodes. Each file keeps `visible` bytes (what reads return) and `durable` bytes
 *   (what survives power loss), plus the ordered list of writes and truncations made since they
 *   were last covered by a successful `datasync`. Open handles follow the inode, so a handle
 *   keeps working after its file is renamed or removed, as on POSIX.
 * - `datasync` makes durable the changes that completed before it was called. Changes that
 *   complete while it is in flight are not covered (the contract only promises earlier writes).
 * - A failed `datasync` (`failDatasync`) rejects with EIO and marks the changes it covered lost:
 *   reads keep returning them, no later `datasync` makes them durable, and at the next crash
 *   they revert to the old durable bytes (Linux "fsyncgate").
 * - Directory entry changes (create, mkdir, rename, remove) apply to the visible tree at once
 *   and become durable only through `syncDir` of every directory they touch. A crash keeps a
 *   random prefix of each directory's pending changes (a journaled-metadata model); a rename
 *   between two directories is kept or dropped as a whole.
 * - `crash()` is power loss. Every operation in flight is either applied first (it reached the
 *   kernel) or dropped, by a coin flip. Then each unsynced write is resolved page by page and
 *   sector by sector: a sector keeps the new bytes, keeps the old bytes, or is garbled (random
 *   bytes). Whole-file "all kept", "all dropped" and "an ordered prefix kept" outcomes are common
 *   too. A write past the end may extend the size without its data (zeros show) or lose the
 *   extension. Garbage is confined to the bytes a write targeted: we assume "powersafe
 *   overwrite", i.e. a torn write never damages bytes of its sector that it did not target.
 *   `crash({ mode: 'clean' })` keeps everything (SIGKILL with the page cache intact);
 *   `crash({ mode: 'lose-unsynced' })` drops everything not yet durable.
 * - After a crash, the old process is dead: operations it had in flight never settle, and its
 *   file handles and locks are invalid. Using such a handle returns a promise that never settles
 *   (rather than rejecting), because a dead process runs no error handlers; a rejection would
 *   let the old process's code run again and touch the new process's disk.
 * - Injected faults: failed writes (EIO or ENOSPC after a random whole-sector prefix), a capacity
 *   limit (ENOSPC after writing the prefix that fits), bit flips in stored bytes, misdirected
 *   writes (the bytes land `shiftBytes` away and the intended range keeps its old bytes).
 * - With a `SimScheduler`, each operation completes after a seeded latency in virtual time, so
 *   concurrent operations complete in a seeded order (possibly not the order they were issued,
 *   as with the libuv thread pool). Without one, each completes in a microtask, in order.
 *
 * Paths must be absolute ('/a/b'), without '.', '..', empty components or a trailing slash;
 * anything else is a programmer error in the caller (an assertion), since the port never
 * normalizes paths. Space is accounted in whole pages of each file's visible size (no sparse
 * files); a file counts while it has a name or an open handle.
 */
import { AssertionError, assert } from '../core/assert.js';
import { LockedError } from '../core/errors.js';
import type { Disk, DiskLock, FileHandle, OpenMode, OpenOptions } from '../ports/disk.js';
import { Random } from './random.js';
import type { SimScheduler } from './scheduler.js';

export interface SimDiskOptions {
  seed: number;
  /** Drives operation latency in virtual time. Without it, operations complete in microtasks. */
  scheduler?: SimScheduler;
  /** Latency range of every operation, in virtual milliseconds (default 1 to 10). */
  latencyMs?: LatencyRange;
  /** Total bytes of file data the disk holds; unlimited if absent. */
  capacityBytes?: number;
  /** Unit of atomicity and of tearing (default 512). */
  sectorBytes?: number;
  /** Unit of write-back and of space accounting (default 4096). */
  pageBytes?: number;
}

export interface LatencyRange {
  min: number;
  max: number;
}

export type CrashMode = 'random' | 'clean' | 'lose-unsynced';

export interface CrashOptions {
  mode?: CrashMode;
}

/** What a crash did; counters for coverage reports. */
export interface CrashReport {
  mode: CrashMode;
  operationsInflightApplied: number;
  operationsInflightDropped: number;
  /** Writes that were not yet durable when the power failed. */
  writesUnsynced: number;
  sectorsKept: number;
  sectorsDropped: number;
  sectorsGarbled: number;
  /** Unsynced writes past the end whose size extension was lost. */
  extensionsDropped: number;
  truncatesKept: number;
  truncatesDropped: number;
  /** Changes lost to failed datasyncs since the previous crash (they reverted). */
  changesLostToDatasyncFailure: number;
  direntChangesKept: number;
  direntChangesDropped: number;
  handlesInvalidated: number;
  locksReleased: number;
}

/** Which tree an inspection helper looks at. */
export type SimView = 'visible' | 'durable';

/** Error codes the simulated disk produces, with their Linux errno numbers. */
const errnoByCode = {
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  ENOTEMPTY: 39,
} as const;

const descriptionByCode: Record<SimErrorCode, string> = {
  ENOENT: 'no such file or directory',
  EIO: 'i/o error',
  EBADF: 'bad file descriptor',
  EEXIST: 'file already exists',
  ENOTDIR: 'not a directory',
  EISDIR: 'illegal operation on a directory',
  EINVAL: 'invalid argument',
  EFBIG: 'file too large',
  ENOSPC: 'no space left on device',
  ENOTEMPTY: 'directory not empty',
};

export type SimErrorCode = keyof typeof errnoByCode;

/** Shaped like a Node.js system error, so code that handles real errors handles these. */
export interface SimSystemError extends Error {
  code: SimErrorCode;
  errno: number;
  syscall: string;
  path: string;
}

/** Largest file the simulation holds in memory; larger ones fail with EFBIG. */
const fileBytesMax = 1024 * 1024 * 1024;
/** What `freeBytes` reports when the capacity is unlimited (1 PiB: big, yet exact). */
const freeBytesUnlimited = 2 ** 50;
const latencyDefault: LatencyRange = { min: 1, max: 10 };

export class SimDisk implements Disk {
  private readonly scheduler: SimScheduler | null;
  private readonly sectorBytes: number;
  private readonly pageBytes: number;
  private latency: LatencyRange;
  private capacityBytes: number | null;
  /** Separate streams, so that extra latency draws never shift crash or fault outcomes. */
  private readonly latencyRandom: Random;
  private readonly crashRandom: Random;
  private readonly faultRandom: Random;

  private readonly nodes = new Map<number, SimNode>();
  private readonly root: DirectoryNode;
  private nodeIdNext = 0;
  /** Orders every file and directory change; a datasync covers changes up to a mark. */
  private changeSequence = 0;
  /** Bumped by every crash; operations and handles of an older epoch belong to the dead. */
  private epoch = 0;
  private readonly inflight = new Map<number, InflightOperation>();
  private operationIdNext = 0;
  private readonly openHandles = new Set<HandleState>();
  private readonly locks = new Map<number, LockToken>();
  private changesLost = 0;

  private readonly datasyncFaults: FaultRule[] = [];
  private readonly writeFaults: (FaultRule & { code: 'ENOSPC' | 'EIO' })[] = [];
  private readonly misdirects: (FaultRule & { shiftBytes: number })[] = [];

  constructor(options: SimDiskOptions) {
    const random = new Random(options.seed);
    this.latencyRandom = random.fork();
    this.crashRandom = random.fork();
    this.faultRandom = random.fork();
    this.scheduler = options.scheduler ?? null;
    this.sectorBytes = options.sectorBytes ?? 512;
    this.pageBytes = options.pageBytes ?? 4096;
    assert(isPowerOfTwo(this.sectorBytes), 'SimDisk: sectorBytes must be a power of two');
    assert(isPowerOfTwo(this.pageBytes), 'SimDisk: pageBytes must be a power of two');
    assert(this.pageBytes >= this.sectorBytes, 'SimDisk: a page holds whole sectors');
    this.latency = latencyDefault;
    this.setLatency(options.latencyMs ?? latencyDefault);
    this.capacityBytes = null;
    this.setCapacity(options.capacityBytes ?? null);
    this.root = this.createDirectory();
  }

  // ----------------------------------------------------------------------------------------
  // The Disk port.

  /** The simulation has no thread pool: `background` changes nothing here. */
  open(path: string, mode: OpenMode, _options?: OpenOptions): Promise<FileHandle> {
    splitPath(path);
    assert(mode === 'read' || mode === 'write' || mode === 'create', 'SimDisk.open: bad mode');
    return this.operation(() => this.openPerform(path, mode));
  }

  list(dir: string): Promise<string[]> {
    splitPath(dir);
    return this.operation(() => {
      const directory = this.lookupDirectory(dir, 'visible', 'scandir');
      // The default sort compares UTF-16 code units, which is the order the port promises.
      return [...directory.visible.keys()].sort();
    });
  }

  mkdir(dir: string): Promise<void> {
    splitPath(dir);
    return this.operation(() => this.mkdirPerform(dir));
  }

  remove(path: string): Promise<void> {
    assert(splitPath(path).length > 0, 'SimDisk.remove: cannot remove the root');
    return this.operation(() => {
      const { parent, name } = this.locateEntry(path, 'unlink');
      const id = parent.visible.get(name);
      if (id === undefined) throw systemError('ENOENT', 'unlink', path);
      if (this.node(id).kind === 'directory') throw systemError('EISDIR', 'unlink', path);
      this.recordDirectoryChange([{ directory: parent.id, name, node: null }]);
    });
  }

  rename(source: string, target: string): Promise<void> {
    assert(splitPath(source).length > 0, 'SimDisk.rename: cannot rename the root');
    assert(splitPath(target).length > 0, 'SimDisk.rename: cannot replace the root');
    return this.operation(() => this.renamePerform(source, target));
  }

  syncDir(dir: string): Promise<void> {
    splitPath(dir);
    return this.operation(() => {
      const directory = this.lookupDirectory(dir, 'visible', 'fsync');
      this.syncDirectory(directory);
      this.collectGarbage();
    });
  }

  size(path: string): Promise<number | null> {
    splitPath(path);
    return this.operation(() => {
      let node: SimNode | null;
      try {
        node = this.lookupNode(path, 'visible', 'stat');
      } catch (error: unknown) {
        // stat(2) reports a missing parent as ENOENT too: the file does not exist.
        if (isSimError(error, 'ENOENT')) return null;
        throw error;
      }
      if (node === null) return null;
      return node.kind === 'file' ? node.visible.length : 0;
    });
  }

  freeBytes(dir: string): Promise<number> {
    splitPath(dir);
    return this.operation(() => {
      this.lookupDirectory(dir, 'visible', 'statvfs');
      if (this.capacityBytes === null) return freeBytesUnlimited;
      return Math.max(0, this.capacityBytes - this.usedBytes());
    });
  }

  lock(dir: string): Promise<DiskLock> {
    splitPath(dir);
    return this.operation(() => this.lockPerform(dir));
  }

  // ----------------------------------------------------------------------------------------
  // Crash and fault injection.

  /** Simulates power loss (see the fault model at the top of this file). */
  crash(options: CrashOptions = {}): CrashReport {
    const mode = options.mode ?? 'random';
    const report = emptyCrashReport(mode);
    this.epoch++;
    this.crashInflight(mode, report);
    for (const node of this.nodes.values()) {
      if (node.kind === 'file') this.crashFile(node, mode, report);
    }
    this.crashDirectories(mode, report);
    report.changesLostToDatasyncFailure = this.changesLost;
    this.changesLost = 0;
    report.handlesInvalidated = this.openHandles.size;
    this.openHandles.clear();
    for (const node of this.nodes.values()) {
      if (node.kind === 'file') node.openCount = 0;
    }
    report.locksReleased = this.locks.size;
    this.locks.clear();
    this.collectGarbage();
    return report;
  }

  /**
   * The next `count` datasyncs (of the file at `path`, or of any file) reject with EIO and lose
   * the changes they covered. A path matches a handle opened with it, or the file it names at
   * the time of the datasync; the same holds for `failWrite` and `misdirectNextWrite`.
   */
  failDatasync(options: { path?: string; count?: number } = {}): void {
    this.datasyncFaults.push(faultRule(options.path, options.count));
  }

  /** The next `count` writes (to `path`, or to any file) write a random prefix, then fail. */
  failWrite(options: { path?: string; code: 'ENOSPC' | 'EIO'; count?: number }): void {
    assert(options.code === 'ENOSPC' || options.code === 'EIO', 'SimDisk.failWrite: bad code');
    this.writeFaults.push({ ...faultRule(options.path, options.count), code: options.code });
  }

  /** The next write (to `path`, or to any file) lands `shiftBytes` away from its position. */
  misdirectNextWrite(options: { path?: string; shiftBytes: number }): void {
    const shiftBytes = options.shiftBytes;
    assert(Number.isSafeInteger(shiftBytes), 'SimDisk.misdirectNextWrite: integer shift');
    assert(shiftBytes !== 0, 'SimDisk.misdirectNextWrite: a zero shift is no fault');
    assert(shiftBytes % this.sectorBytes === 0, 'SimDisk.misdirectNextWrite: whole sectors');
    this.misdirects.push({ ...faultRule(options.path, 1), shiftBytes });
  }

  /** Flips one bit of a file in both its durable and its visible bytes (bit rot). */
  flipBit(path: string, byteOffset: number, bit: number): void {
    const file = this.inspectFile(path, 'visible');
    assert(Number.isSafeInteger(byteOffset), 'SimDisk.flipBit: integer offset');
    assert(byteOffset >= 0, 'SimDisk.flipBit: offset must not be negative');
    assert(Number.isSafeInteger(bit), 'SimDisk.flipBit: integer bit');
    assert(bit >= 0 && bit < 8, 'SimDisk.flipBit: bit must be in [0, 8)');
    const inRange = byteOffset < file.visible.length || byteOffset < file.durable.length;
    assert(inRange, 'SimDisk.flipBit: offset past the end of the file');
    file.visible.flipBit(byteOffset, bit);
    file.durable.flipBit(byteOffset, bit);
  }

  setLatency(latencyMs: LatencyRange): void {
    assert(Number.isSafeInteger(latencyMs.min), 'SimDisk: latency min must be an integer');
    assert(Number.isSafeInteger(latencyMs.max), 'SimDisk: latency max must be an integer');
    assert(latencyMs.min >= 0, 'SimDisk: latency must not be negative');
    assert(latencyMs.min <= latencyMs.max, 'SimDisk: latency min must not exceed max');
    this.latency = { min: latencyMs.min, max: latencyMs.max };
  }

  /** Changes the capacity (null: unlimited). Lowering it below the used bytes is allowed. */
  setCapacity(capacityBytes: number | null): void {
    if (capacityBytes !== null) {
      assert(Number.isSafeInteger(capacityBytes), 'SimDisk: capacity must be an integer');
      assert(capacityBytes >= 0, 'SimDisk: capacity must not be negative');
    }
    this.capacityBytes = capacityBytes;
  }

  // ----------------------------------------------------------------------------------------
  // Inspection helpers for tests. They are synchronous and bypass latency and faults.

  /** Bytes allocated to files: whole pages of each file that has a name or an open handle. */
  usedBytes(): number {
    const counted = new Set<FileNode>();
    this.walk('visible', (node) => {
      if (node.kind === 'file') counted.add(node);
    });
    for (const handle of this.openHandles) counted.add(handle.file);
    let used = 0;
    for (const file of counted) used += roundUp(file.visible.length, this.pageBytes);
    return used;
  }

  /** Operations issued and not yet completed. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /** What reads of `path` return now. Throws an ENOENT system error if it does not exist. */
  readVisible(path: string): Uint8Array {
    return this.inspectFile(path, 'visible').visible.view().slice();
  }

  /** What `path` would hold after a crash that loses everything not yet durable. */
  readDurable(path: string): Uint8Array {
    return this.inspectFile(path, 'durable').durable.view().slice();
  }

  exists(path: string, view: SimView = 'visible'): boolean {
    splitPath(path);
    try {
      return this.lookupNode(path, view, 'stat') !== null;
    } catch (error: unknown) {
      if (isSimError(error, 'ENOENT') || isSimError(error, 'ENOTDIR')) return false;
      throw error;
    }
  }

  /** Every file and directory path in the tree, sorted (the root itself is not listed). */
  listAll(view: SimView = 'visible'): string[] {
    const paths: string[] = [];
    this.walk(view, (_node, path) => paths.push(path));
    return paths.sort();
  }

  /**
   * Test setup: makes `path` hold `bytes`, visibly and durably, creating the file and any
   * missing parent directories with durable entries. Use it before the workload starts.
   */
  writeRaw(path: string, bytes: Uint8Array): void {
    const components = splitPath(path);
    assert(components.length > 0, 'SimDisk.writeRaw: the root is a directory');
    let directory = this.root;
    for (const component of components.slice(0, -1)) {
      let id = directory.visible.get(component);
      if (id === undefined) id = this.createDirectory().id;
      const node = this.node(id);
      assert(node.kind === 'directory', `SimDisk.writeRaw: '${component}' is a file`);
      directory.visible.set(component, id);
      directory.durable.set(component, id);
      directory = node;
    }
    const name = components[components.length - 1];
    assert(name !== undefined);
    const existing = directory.visible.get(name);
    const file = existing === undefined ? this.createFile() : this.node(existing);
    assert(file.kind === 'file', 'SimDisk.writeRaw: the path is a directory');
    assert(bytes.length <= fileBytesMax, 'SimDisk.writeRaw: file too large');
    file.visible = Extent.copyOf(bytes);
    file.durable = Extent.copyOf(bytes);
    file.pending = [];
    directory.visible.set(name, file.id);
    directory.durable.set(name, file.id);
  }

  // ----------------------------------------------------------------------------------------
  // Operations: every port call completes through here.

  /**
   * Runs `perform` when the operation completes: after a seeded latency on the scheduler, or in
   * a microtask. Effects happen at completion, not at the call, so concurrent operations really
   * interleave. If a crash comes first, the promise never settles (see the fault model).
   */
  private operation<T>(perform: () => T, verify?: () => void): Promise<T> {
    const epoch = this.epoch;
    const id = this.operationIdNext++;
    return new Promise<T>((resolve, reject) => {
      this.inflight.set(id, { perform });
      const complete = (): void => {
        if (epoch !== this.epoch) return;
        this.inflight.delete(id);
        if (verify !== undefined) verify();
        let result: T;
        try {
          result = perform();
        } catch (error: unknown) {
          // A failed assertion is a bug in the simulation or its caller: never hand it to the
          // caller's error handling as if it were a disk error.
          if (error instanceof AssertionError) throw error;
          reject(error);
          return;
        }
        resolve(result);
      };
      if (this.scheduler === null) {
        queueMicrotask(complete);
      } else {
        const delayMs = this.latencyRandom.range(this.latency.min, this.latency.max);
        this.scheduler.schedule(delayMs, complete);
      }
    });
  }

  private openPerform(path: string, mode: OpenMode): FileHandle {
    const { parent, name } = this.locateEntry(path, 'open');
    const id = parent.visible.get(name);
    let file: FileNode;
    if (mode === 'create') {
      if (id !== undefined) throw systemError('EEXIST', 'open', path);
      file = this.createFile();
      this.recordDirectoryChange([{ directory: parent.id, name, node: file.id }]);
    } else {
      if (id === undefined) throw systemError('ENOENT', 'open', path);
      const node = this.node(id);
      // Linux lets O_RDONLY open a directory; the port only opens files, so both modes refuse.
      if (node.kind === 'directory') throw systemError('EISDIR', 'open', path);
      file = node;
    }
    file.openCount++;
    const state: HandleState = { file, path, mode, epoch: this.epoch, closed: false };
    this.openHandles.add(state);
    return this.createHandle(state);
  }

  private mkdirPerform(dir: string): void {
    const components = splitPath(dir);
    let directory = this.root;
    for (let index = 0; index < components.length; index++) {
      const component = components[index];
      assert(component !== undefined);
      const id = directory.visible.get(component);
      if (id === undefined) {
        const created = this.createDirectory();
        const edit = { directory: directory.id, name: component, node: created.id };
        this.recordDirectoryChange([edit]);
        directory = created;
        continue;
      }
      const node = this.node(id);
      if (node.kind === 'file') {
        // Like mkdir -p: a file in the way of the last component is EEXIST, earlier ENOTDIR.
        const last = index === components.length - 1;
        throw systemError(last ? 'EEXIST' : 'ENOTDIR', 'mkdir', dir);
      }
      directory = node;
    }
  }

  private renamePerform(source: string, target: string): void {
    const from = this.locateEntry(source, 'rename');
    const sourceId = from.parent.visible.get(from.name);
    if (sourceId === undefined) throw systemError('ENOENT', 'rename', source);
    const to = this.locateEntry(target, 'rename');
    const targetId = to.parent.visible.get(to.name);
    // POSIX: renaming a file onto itself (the same inode) does nothing and succeeds.
    if (targetId === sourceId) return;
    const sourceNode = this.node(sourceId);
    if (targetId !== undefined) {
      const targetNode = this.node(targetId);
      if (sourceNode.kind === 'file' && targetNode.kind === 'directory') {
        throw systemError('EISDIR', 'rename', target);
      }
      if (sourceNode.kind === 'directory' && targetNode.kind === 'file') {
        throw systemError('ENOTDIR', 'rename', target);
      }
      if (targetNode.kind === 'directory' && targetNode.visible.size > 0) {
        throw systemError('ENOTEMPTY', 'rename', target);
      }
    }
    if (sourceNode.kind === 'directory' && target.startsWith(`${source}/`)) {
      throw systemError('EINVAL', 'rename', source);
    }
    // One change touching both entries, so a crash keeps or drops the rename as a whole.
    this.recordDirectoryChange([
      { directory: to.parent.id, name: to.name, node: sourceId },
      { directory: from.parent.id, name: from.name, node: null },
    ]);
  }

  private lockPerform(dir: string): DiskLock {
    const directory = this.lookupDirectory(dir, 'visible', 'open');
    const lockPath = joinPath(dir, 'LOCK');
    let id = directory.visible.get('LOCK');
    if (id === undefined) {
      id = this.createFile().id;
      this.recordDirectoryChange([{ directory: directory.id, name: 'LOCK', node: id }]);
    }
    if (this.node(id).kind === 'directory') throw systemError('EISDIR', 'open', lockPath);
    // flock(2) locks the inode: a holder keeps it even if the LOCK name is replaced.
    if (this.locks.has(id)) throw new LockedError(lockPath);
    const token: LockToken = { epoch: this.epoch };
    this.locks.set(id, token);
    const lockId = id;
    return {
      release: (): Promise<void> => {
        if (token.epoch !== this.epoch) return never();
        return this.operation(() => {
          if (this.locks.get(lockId) === token) this.locks.delete(lockId);
        });
      },
    };
  }

  // ----------------------------------------------------------------------------------------
  // File handles.

  private createHandle(state: HandleState): FileHandle {
    return {
      read: (target, targetOffset, length, position) =>
        this.handleRead(state, target, { targetOffset, length, position }),
      write: (buffers, position) => this.handleWrite(state, buffers, position),
      datasync: () => this.handleDatasync(state),
      truncate: (length) => this.handleTruncate(state, length),
      size: () => this.handleOperation(state, 'fstat', () => state.file.visible.length),
      close: () => this.handleClose(state),
    };
  }

  /** Runs a handle operation: never settles for a dead process, EBADF once closed. */
  private handleOperation<T>(
    state: HandleState,
    syscall: string,
    perform: () => T,
    verify?: () => void,
  ): Promise<T> {
    if (state.epoch !== this.epoch) return never();
    // The check happens at the call: an operation issued before close() still completes.
    const closed = state.closed;
    return this.operation(() => {
      if (closed) throw systemError('EBADF', syscall, state.path);
      return perform();
    }, verify);
  }

  private handleRead(
    state: HandleState,
    target: Uint8Array,
    range: { targetOffset: number; length: number; position: number },
  ): Promise<number> {
    const { targetOffset, length, position } = range;
    assertByteCount(targetOffset, 'read: targetOffset');
    assertByteCount(length, 'read: length');
    assertByteCount(position, 'read: position');
    assert(targetOffset + length <= target.length, 'SimDisk read: target too small');
    return this.handleOperation(state, 'read', () => {
      return state.file.visible.read(target, targetOffset, position, length);
    });
  }

  private handleWrite(
    state: HandleState,
    buffers: readonly Uint8Array[],
    position: number,
  ): Promise<void> {
    assertByteCount(position, 'write: position');
    const sources = [...buffers];
    // The simulated kernel copies the bytes when the operation completes; we copy now and
    // check at completion that the caller did not modify a buffer in between (a real bug).
    const data = concatenate(sources);
    const verify = (): void => {
      const unchanged = buffersEqual(sources, data);
      assert(unchanged, 'SimDisk: a buffer changed while its write was in flight');
    };
    const perform = (): void => this.writePerform(state, data, position);
    return this.handleOperation(state, 'write', perform, verify);
  }

  private writePerform(state: HandleState, data: Uint8Array, position: number): void {
    if (state.mode === 'read') throw systemError('EBADF', 'write', state.path);
    // pwritev(2) of zero bytes does nothing, not even extend the file.
    if (data.length === 0) return;
    const file = state.file;
    const end = position + data.length;
    if (end > fileBytesMax) throw systemError('EFBIG', 'write', state.path);
    const misdirect = this.takeFault(this.misdirects, state);
    const shiftBytes = misdirect === null ? 0 : misdirect.shiftBytes;
    const fault = this.takeFault(this.writeFaults, state);
    if (fault !== null) {
      // Devices and file systems fail writes in whole blocks, so the prefix that made it ends
      // on a sector boundary of the file (or is all or nothing of the write).
      const firstBoundary = Math.floor(position / this.sectorBytes) * this.sectorBytes;
      const boundaries = Math.ceil((end - firstBoundary) / this.sectorBytes);
      const cut = clamp(
        firstBoundary + this.faultRandom.int(boundaries + 1) * this.sectorBytes,
        position,
        end,
      );
      this.applyWrite(file, position, data.subarray(0, cut - position), shiftBytes);
      throw systemError(fault.code, 'write', state.path);
    }
    const fitting = clamp(this.fileLengthAllowed(file) - position, 0, data.length);
    this.applyWrite(file, position, data.subarray(0, fitting), shiftBytes);
    // Like a short write followed by a failing one: the prefix that fit stays written.
    if (fitting < data.length) throw systemError('ENOSPC', 'write', state.path);
  }

  /**
   * Applies a write to the visible bytes and records it as pending. A misdirected write extends
   * the file as intended, but its bytes land `shiftBytes` away (clipped to the file).
   */
  private applyWrite(file: FileNode, position: number, bytes: Uint8Array, shift: number): void {
    if (bytes.length === 0) return;
    const end = position + bytes.length;
    const landed = Math.max(0, position + shift);
    file.visible.extendTo(end);
    const landedBytes = bytes.subarray(0, clamp(file.visible.length - landed, 0, bytes.length));
    file.visible.place(landed, landedBytes);
    const sequence = ++this.changeSequence;
    file.pending.push({ kind: 'write', sequence, position: landed, bytes: landedBytes, end });
  }

  private handleTruncate(state: HandleState, length: number): Promise<void> {
    assertByteCount(length, 'truncate: length');
    return this.handleOperation(state, 'ftruncate', () => {
      // Linux says EINVAL for a read-only descriptor; the port's adapters both say EBADF.
      if (state.mode === 'read') throw systemError('EBADF', 'ftruncate', state.path);
      if (length > fileBytesMax) throw systemError('EFBIG', 'ftruncate', state.path);
      const file = state.file;
      const growing = length > file.visible.length;
      if (growing && length > this.fileLengthAllowed(file)) {
        throw systemError('ENOSPC', 'ftruncate', state.path);
      }
      file.visible.resize(length);
      file.pending.push({ kind: 'truncate', sequence: ++this.changeSequence, length });
    });
  }

  private handleDatasync(state: HandleState): Promise<void> {
    // Only changes that completed before the call are covered (see the fault model).
    const mark = this.changeSequence;
    return this.handleOperation(state, 'fdatasync', () => {
      const file = state.file;
      let covered = file.pending.findIndex((change) => change.sequence > mark);
      if (covered === -1) covered = file.pending.length;
      const changes = file.pending.slice(0, covered);
      file.pending = file.pending.slice(covered);
      if (this.takeFault(this.datasyncFaults, state) !== null) {
        // fsyncgate: the kernel drops the dirty state; these changes never become durable.
        this.changesLost += changes.length;
        throw systemError('EIO', 'fdatasync', state.path);
      }
      for (const change of changes) applyChangeDurably(file.durable, change);
    });
  }

  private handleClose(state: HandleState): Promise<void> {
    if (state.epoch !== this.epoch) return never();
    // Closing twice is harmless, as with Node's FileHandle.
    if (!state.closed) {
      state.closed = true;
      state.file.openCount--;
      this.openHandles.delete(state);
    }
    return this.operation(() => undefined);
  }

  /**
   * Consumes a fault rule aimed at this handle's file: one without a path, or whose path is the
   * one the handle was opened with or now names the handle's file (after a rename).
   */
  private takeFault<Rule extends FaultRule>(rules: Rule[], state: HandleState): Rule | null {
    if (rules.length === 0) return null;
    return takeFault(rules, (rule) => {
      if (rule.path === null || rule.path === state.path) return true;
      try {
        return this.lookupNode(rule.path, 'visible', 'open') === state.file;
      } catch (error: unknown) {
        if (error instanceof AssertionError) throw error;
        return false;
      }
    });
  }

  /** The longest the file may grow to within the capacity (page granular). */
  private fileLengthAllowed(file: FileNode): number {
    if (this.capacityBytes === null) return fileBytesMax;
    const spare = Math.max(0, this.capacityBytes - this.usedBytes());
    const spareWhole = spare - (spare % this.pageBytes);
    return roundUp(file.visible.length, this.pageBytes) + spareWhole;
  }

  // ----------------------------------------------------------------------------------------
  // Crash.

  private crashInflight(mode: CrashMode, report: CrashReport): void {
    const operations = [...this.inflight.values()];
    this.inflight.clear();
    for (const operation of operations) {
      const reached = mode === 'clean' || (mode === 'random' && this.crashRandom.bool(0.5));
      if (!reached) {
        report.operationsInflightDropped++;
        continue;
      }
      report.operationsInflightApplied++;
      try {
        operation.perform();
      } catch (error: unknown) {
        // The operation failed in the kernel; nobody is left to hear about it.
        if (error instanceof AssertionError) throw error;
      }
    }
  }

  private crashFile(file: FileNode, mode: CrashMode, report: CrashReport): void {
    for (const change of file.pending) {
      if (change.kind === 'write') report.writesUnsynced++;
    }
    if (mode === 'clean') {
      this.countChanges(file.pending, report, 'kept');
      file.durable = file.visible.clone();
    } else if (mode === 'lose-unsynced') {
      this.countChanges(file.pending, report, 'dropped');
    } else {
      const image = file.durable.clone();
      const outcomes = this.crashOutcomes(file.pending.length);
      file.pending.forEach((change, index) => {
        const outcome = outcomes[index];
        assert(outcome !== undefined);
        this.crashChange(image, change, outcome, report);
      });
      // Bytes past the final size belong to writes whose extension was lost: never readable.
      image.zeroTail();
      file.durable = image;
    }
    file.visible = file.durable.clone();
    file.pending = [];
  }

  /** Decides, per pending change of one file, whether it is kept, dropped or torn. */
  private crashOutcomes(count: number): ChangeOutcome[] {
    const draw = this.crashRandom.next();
    if (draw < 0.2) return new Array<ChangeOutcome>(count).fill('kept');
    if (draw < 0.4) return new Array<ChangeOutcome>(count).fill('dropped');
    if (draw < 0.65) {
      // Write-back in order: a prefix is kept, the change at the cut is torn, the rest is lost.
      const cut = this.crashRandom.int(count + 1);
      return Array.from({ length: count }, (_unused, index): ChangeOutcome => {
        if (index < cut) return 'kept';
        return index === cut ? 'torn' : 'dropped';
      });
    }
    return new Array<ChangeOutcome>(count).fill('torn');
  }

  private crashChange(
    image: Extent,
    change: FileChange,
    outcome: ChangeOutcome,
    report: CrashReport,
  ): void {
    if (change.kind === 'truncate') {
      const kept = outcome === 'kept' || (outcome === 'torn' && this.crashRandom.bool(0.5));
      if (kept) image.resize(change.length);
      if (kept) report.truncatesKept++;
      else report.truncatesDropped++;
      return;
    }
    if (outcome === 'dropped') {
      this.countChanges([change], report, 'dropped');
      return;
    }
    const extending = change.end > image.length;
    const extensionKept = outcome === 'kept' || this.crashRandom.bool(0.5);
    if (extensionKept) image.extendTo(change.end);
    else if (extending) report.extensionsDropped++;
    if (outcome === 'kept') {
      image.place(change.position, change.bytes);
      this.countChanges([change], report, 'kept');
    } else {
      this.tearWrite(image, change, report);
    }
  }

  /**
   * Resolves one write page by page (write-back is per page) and, within a torn page, sector
   * by sector (the device is atomic per sector at best).
   */
  private tearWrite(image: Extent, change: WriteChange, report: CrashReport): void {
    const end = change.position + change.bytes.length;
    const sectorFirst = Math.floor(change.position / this.sectorBytes);
    const sectorEnd = Math.ceil(end / this.sectorBytes);
    let pageIndex = -1;
    let pageOutcome: SectorOutcome | 'torn' = 'new';
    for (let sector = sectorFirst; sector < sectorEnd; sector++) {
      const page = Math.floor((sector * this.sectorBytes) / this.pageBytes);
      if (page !== pageIndex) {
        pageIndex = page;
        pageOutcome = this.pickOutcome(['new', 'old', 'torn'] as const, [0.35, 0.35]);
      }
      const outcome =
        pageOutcome === 'torn'
          ? this.pickOutcome(['new', 'old', 'garbage'] as const, [0.4, 0.4])
          : pageOutcome;
      const from = Math.max(change.position, sector * this.sectorBytes);
      const to = Math.min(end, (sector + 1) * this.sectorBytes);
      const bytes = change.bytes.subarray(from - change.position, to - change.position);
      if (outcome === 'new') {
        image.place(from, bytes);
        report.sectorsKept++;
      } else if (outcome === 'garbage') {
        image.place(from, this.garbage(bytes.length));
        report.sectorsGarbled++;
      } else {
        report.sectorsDropped++;
      }
    }
  }

  /** Picks the first outcome with probability p0, the second with p1, else the third. */
  private pickOutcome<T>(outcomes: readonly [T, T, T], weights: readonly [number, number]): T {
    const draw = this.crashRandom.next();
    if (draw < weights[0]) return outcomes[0];
    if (draw < weights[0] + weights[1]) return outcomes[1];
    return outcomes[2];
  }

  private garbage(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let index = 0; index < length; index++) bytes[index] = this.crashRandom.int(256);
    return bytes;
  }

  private countChanges(changes: FileChange[], report: CrashReport, how: 'kept' | 'dropped'): void {
    for (const change of changes) {
      if (change.kind === 'truncate') {
        if (how === 'kept') report.truncatesKept++;
        else report.truncatesDropped++;
        continue;
      }
      const end = change.position + change.bytes.length;
      const sectors =
        Math.ceil(end / this.sectorBytes) - Math.floor(change.position / this.sectorBytes);
      if (how === 'kept') report.sectorsKept += sectors;
      else report.sectorsDropped += sectors;
    }
  }

  /**
   * Keeps a prefix of each directory's pending changes. A change touching two directories (a
   * rename between them) must be inside both prefixes, so prefixes shrink until they agree.
   */
  private crashDirectories(mode: CrashMode, report: CrashReport): void {
    const directories: DirectoryNode[] = [];
    for (const node of this.nodes.values()) {
      if (node.kind === 'directory') directories.push(node);
    }
    const cuts = new Map<DirectoryNode, number>();
    for (const directory of directories) {
      const count = directory.pending.length;
      if (mode === 'clean') cuts.set(directory, count);
      else if (mode === 'lose-unsynced') cuts.set(directory, 0);
      else cuts.set(directory, this.crashDirectoryCut(count));
    }
    this.crashDirectoriesAgree(directories, cuts);
    const all = new Set<DirectoryChange>();
    const kept = new Set<DirectoryChange>();
    for (const directory of directories) {
      const cut = cuts.get(directory);
      assert(cut !== undefined);
      directory.pending.forEach((change, index) => {
        all.add(change);
        if (index < cut) kept.add(change);
      });
    }
    for (const change of sortedChanges(kept)) this.applyDirectoryChangeDurably(change);
    report.direntChangesKept += kept.size;
    report.direntChangesDropped += all.size - kept.size;
    for (const directory of directories) {
      directory.pending = [];
      directory.visible = new Map(directory.durable);
    }
  }

  private crashDirectoryCut(count: number): number {
    const draw = this.crashRandom.next();
    if (draw < 0.3) return count;
    if (draw < 0.6) return 0;
    return this.crashRandom.int(count + 1);
  }

  private crashDirectoriesAgree(
    directories: DirectoryNode[],
    cuts: Map<DirectoryNode, number>,
  ): void {
    let changesTotal = 0;
    for (const directory of directories) changesTotal += directory.pending.length;
    // Every round that does not finish lowers at least one cut, so the sum of cuts bounds it.
    for (let round = 0; round <= changesTotal; round++) {
      let lowered = false;
      for (const directory of directories) {
        const cut = cuts.get(directory) ?? 0;
        const conflict = directory.pending.findIndex((change, index) => {
          if (index >= cut) return false;
          return change.edits.some((edit) => {
            const other = this.nodes.get(edit.directory);
            if (other === undefined || other === directory || other.kind !== 'directory') {
              return false;
            }
            return other.pending.indexOf(change) >= (cuts.get(other) ?? 0);
          });
        });
        if (conflict !== -1) {
          cuts.set(directory, conflict);
          lowered = true;
        }
      }
      if (!lowered) return;
    }
    assert(false, 'SimDisk: directory crash cuts did not converge');
  }

  // ----------------------------------------------------------------------------------------
  // Directories.

  /** Applies a change to the visible tree and queues it on every directory it touches. */
  private recordDirectoryChange(edits: DirectoryEdit[]): void {
    const change: DirectoryChange = { sequence: ++this.changeSequence, edits };
    const touched = new Set<DirectoryNode>();
    for (const edit of edits) {
      const directory = this.node(edit.directory);
      assert(directory.kind === 'directory');
      if (edit.node === null) directory.visible.delete(edit.name);
      else directory.visible.set(edit.name, edit.node);
      touched.add(directory);
    }
    for (const directory of touched) directory.pending.push(change);
  }

  /**
   * Makes a directory's pending changes durable. A change touching another directory too
   * carries along that directory's earlier changes, so every directory keeps a durable prefix.
   */
  private syncDirectory(directory: DirectoryNode): void {
    const chosen = new Set<DirectoryChange>(directory.pending);
    const work = [...directory.pending];
    // `work` only grows by changes not yet chosen, so this visits each change at most once.
    for (let index = 0; index < work.length; index++) {
      const change = work[index];
      assert(change !== undefined);
      for (const edit of change.edits) {
        const other = this.nodes.get(edit.directory);
        if (other === undefined || other.kind !== 'directory') continue;
        for (const earlier of other.pending) {
          if (earlier.sequence > change.sequence) break;
          if (chosen.has(earlier)) continue;
          chosen.add(earlier);
          work.push(earlier);
        }
      }
    }
    for (const change of sortedChanges(chosen)) {
      this.applyDirectoryChangeDurably(change);
      for (const edit of change.edits) {
        const other = this.nodes.get(edit.directory);
        if (other === undefined || other.kind !== 'directory') continue;
        other.pending = other.pending.filter((pending) => !chosen.has(pending));
      }
    }
  }

  private applyDirectoryChangeDurably(change: DirectoryChange): void {
    for (const edit of change.edits) {
      const directory = this.nodes.get(edit.directory);
      // The directory itself may be gone (it was never durably linked): nothing to apply to.
      if (directory === undefined || directory.kind !== 'directory') continue;
      if (edit.node === null) directory.durable.delete(edit.name);
      else directory.durable.set(edit.name, edit.node);
    }
  }

  /** Forgets inodes nothing can reach any more: no name in either tree, no pending change. */
  private collectGarbage(): void {
    const reachable = new Set<number>([this.root.id]);
    const stack: DirectoryNode[] = [this.root];
    const visit = (id: number): void => {
      const node = this.nodes.get(id);
      if (node === undefined || reachable.has(id)) return;
      reachable.add(id);
      if (node.kind === 'directory') stack.push(node);
    };
    // Each directory is pushed once (guarded by `reachable`), so this ends.
    for (let steps = 0; stack.length > 0; steps++) {
      assert(steps <= this.nodes.size, 'SimDisk: garbage collection did not end');
      const directory = stack.pop();
      assert(directory !== undefined);
      for (const id of directory.visible.values()) visit(id);
      for (const id of directory.durable.values()) visit(id);
      for (const change of directory.pending) {
        for (const edit of change.edits) {
          visit(edit.directory);
          if (edit.node !== null) visit(edit.node);
        }
      }
    }
    for (const handle of this.openHandles) reachable.add(handle.file.id);
    for (const id of [...this.nodes.keys()]) {
      if (!reachable.has(id)) this.nodes.delete(id);
    }
  }

  // ----------------------------------------------------------------------------------------
  // Lookup.

  private node(id: number): SimNode {
    const node = this.nodes.get(id);
    assert(node !== undefined, `SimDisk: dangling inode ${id}`);
    return node;
  }

  private createFile(): FileNode {
    const file: FileNode = {
      kind: 'file',
      id: this.nodeIdNext++,
      visible: new Extent(),
      durable: new Extent(),
      pending: [],
      openCount: 0,
    };
    this.nodes.set(file.id, file);
    return file;
  }

  private createDirectory(): DirectoryNode {
    const directory: DirectoryNode = {
      kind: 'directory',
      id: this.nodeIdNext++,
      visible: new Map(),
      durable: new Map(),
      pending: [],
    };
    this.nodes.set(directory.id, directory);
    return directory;
  }

  /** The node at `path`, or null if the last component is missing. Parents must exist. */
  private lookupNode(path: string, view: SimView, syscall: string): SimNode | null {
    const components = splitPath(path);
    let node: SimNode = this.root;
    for (let index = 0; index < components.length; index++) {
      const component = components[index];
      assert(component !== undefined);
      if (node.kind !== 'directory') throw systemError('ENOTDIR', syscall, path);
      const id = (view === 'visible' ? node.visible : node.durable).get(component);
      if (id === undefined) {
        if (index === components.length - 1) return null;
        throw systemError('ENOENT', syscall, path);
      }
      node = this.node(id);
    }
    return node;
  }

  private lookupDirectory(path: string, view: SimView, syscall: string): DirectoryNode {
    const node = this.lookupNode(path, view, syscall);
    if (node === null) throw systemError('ENOENT', syscall, path);
    if (node.kind !== 'directory') throw systemError('ENOTDIR', syscall, path);
    return node;
  }

  /** The visible parent directory of `path` and the entry's name in it. */
  private locateEntry(path: string, syscall: string): { parent: DirectoryNode; name: string } {
    const components = splitPath(path);
    const name = components[components.length - 1];
    assert(name !== undefined, 'SimDisk: the root has no parent');
    const parentPath = components.length === 1 ? '/' : `/${components.slice(0, -1).join('/')}`;
    const parent = this.lookupNode(parentPath, 'visible', syscall);
    if (parent === null) throw systemError('ENOENT', syscall, path);
    if (parent.kind !== 'directory') throw systemError('ENOTDIR', syscall, path);
    return { parent, name };
  }

  private inspectFile(path: string, view: SimView): FileNode {
    const node = this.lookupNode(path, view, 'open');
    if (node === null) throw systemError('ENOENT', 'open', path);
    if (node.kind !== 'file') throw systemError('EISDIR', 'open', path);
    return node;
  }

  /** Visits every node of a tree with its path, depth first. */
  private walk(view: SimView, visit: (node: SimNode, path: string) => void): void {
    const stack: { directory: DirectoryNode; path: string }[] = [];
    stack.push({ directory: this.root, path: '' });
    // A tree visits each directory once; the bound catches a cycle, which would be a bug.
    for (let steps = 0; stack.length > 0; steps++) {
      assert(steps <= this.nodes.size, 'SimDisk: the directory tree has a cycle');
      const entry = stack.pop();
      assert(entry !== undefined);
      const entries = view === 'visible' ? entry.directory.visible : entry.directory.durable;
      for (const [name, id] of entries) {
        const node = this.node(id);
        const path = `${entry.path}/${name}`;
        visit(node, path);
        if (node.kind === 'directory') stack.push({ directory: node, path });
      }
    }
  }
}

// ------------------------------------------------------------------------------------------
// Internal types.

type SimNode = FileNode | DirectoryNode;

interface FileNode {
  kind: 'file';
  id: number;
  visible: Extent;
  durable: Extent;
  /** Changes not yet durable, in completion order (ascending sequence). */
  pending: FileChange[];
  openCount: number;
}

interface DirectoryNode {
  kind: 'directory';
  id: number;
  visible: Map<string, number>;
  durable: Map<string, number>;
  /** Changes touching this directory that are not yet durable, ascending sequence. */
  pending: DirectoryChange[];
}

interface WriteChange {
  kind: 'write';
  sequence: number;
  /** Where the bytes landed (differs from the intended position for a misdirected write). */
  position: number;
  bytes: Uint8Array;
  /** The end the caller intended: the size the write extends the file to. */
  end: number;
}

interface TruncateChange {
  kind: 'truncate';
  sequence: number;
  length: number;
}

type FileChange = WriteChange | TruncateChange;

interface DirectoryEdit {
  directory: number;
  name: string;
  /** The inode the name now refers to, or null if the name was removed. */
  node: number | null;
}

interface DirectoryChange {
  sequence: number;
  edits: DirectoryEdit[];
}

interface HandleState {
  file: FileNode;
  /** The path the handle was opened with; fault rules match on it. */
  path: string;
  mode: OpenMode;
  epoch: number;
  closed: boolean;
}

interface InflightOperation {
  perform: () => unknown;
}

interface LockToken {
  epoch: number;
}

interface FaultRule {
  path: string | null;
  remaining: number;
}

type ChangeOutcome = 'kept' | 'dropped' | 'torn';
type SectorOutcome = 'new' | 'old' | 'garbage';

/**
 * A growable byte array. Invariant outside crash replay: bytes past `length` are zero, so
 * growing a file exposes zeros (holes and extensions read as zeros).
 */
class Extent {
  private bytes: Uint8Array;
  length: number;

  constructor(bytes: Uint8Array = new Uint8Array(0), length: number = bytes.length) {
    this.bytes = bytes;
    this.length = length;
  }

  static copyOf(source: Uint8Array): Extent {
    return new Extent(source.slice());
  }

  clone(): Extent {
    return new Extent(this.bytes.slice(0, this.length));
  }

  view(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  /** Writes bytes without changing the length (bytes past the length stay unreadable). */
  place(position: number, source: Uint8Array): void {
    if (source.length === 0) return;
    this.reserve(position + source.length);
    this.bytes.set(source, position);
  }

  /** Grows the length to at least `length`, exposing whatever bytes lie there. */
  extendTo(length: number): void {
    this.reserve(length);
    this.length = Math.max(this.length, length);
  }

  /** Sets the length; shrinking zeroes the cut-off bytes so a later growth reads zeros. */
  resize(length: number): void {
    if (length < this.length) this.bytes.fill(0, length, this.length);
    this.reserve(length);
    this.length = length;
  }

  zeroTail(): void {
    this.bytes.fill(0, this.length);
  }

  read(target: Uint8Array, targetOffset: number, position: number, length: number): number {
    const count = clamp(this.length - position, 0, length);
    target.set(this.bytes.subarray(position, position + count), targetOffset);
    return count;
  }

  flipBit(byteOffset: number, bit: number): void {
    if (byteOffset >= this.length) return;
    const byte = this.bytes[byteOffset];
    assert(byte !== undefined);
    this.bytes[byteOffset] = byte ^ (1 << bit);
  }

  private reserve(capacity: number): void {
    if (capacity <= this.bytes.length) return;
    assert(capacity <= fileBytesMax, 'SimDisk: file grew past fileBytesMax');
    const grown = new Uint8Array(Math.min(fileBytesMax, Math.max(capacity, this.bytes.length * 2)));
    grown.set(this.bytes);
    this.bytes = grown;
  }
}

// ------------------------------------------------------------------------------------------
// Helpers.

function systemError(code: SimErrorCode, syscall: string, path: string): SimSystemError {
  const message = `${code}: ${descriptionByCode[code]}, ${syscall} '${path}'`;
  const error = new Error(message) as SimSystemError;
  error.code = code;
  error.errno = -errnoByCode[code];
  error.syscall = syscall;
  error.path = path;
  return error;
}

function isSimError(error: unknown, code: SimErrorCode): boolean {
  return error instanceof Error && (error as Partial<SimSystemError>).code === code;
}

/** A datasync applies a change in full: data, and the size it intended. */
function applyChangeDurably(image: Extent, change: FileChange): void {
  if (change.kind === 'truncate') {
    image.resize(change.length);
    return;
  }
  image.extendTo(change.end);
  // Clip, so bytes never sit past the length (they would reappear on a later growth).
  const count = clamp(image.length - change.position, 0, change.bytes.length);
  image.place(change.position, change.bytes.subarray(0, count));
}

function sortedChanges(changes: Set<DirectoryChange>): DirectoryChange[] {
  return [...changes].sort((a, b) => a.sequence - b.sequence);
}

function faultRule(path: string | undefined, count: number | undefined): FaultRule {
  const remaining = count ?? 1;
  assert(Number.isSafeInteger(remaining), 'SimDisk: fault count must be an integer');
  assert(remaining > 0, 'SimDisk: fault count must be positive');
  if (path !== undefined) splitPath(path);
  return { path: path ?? null, remaining };
}

/** Consumes one use of the first rule that `matches`, or returns null. */
function takeFault<Rule extends FaultRule>(
  rules: Rule[],
  matches: (rule: Rule) => boolean,
): Rule | null {
  const index = rules.findIndex(matches);
  if (index === -1) return null;
  const rule = rules[index];
  assert(rule !== undefined);
  rule.remaining--;
  if (rule.remaining === 0) rules.splice(index, 1);
  return rule;
}

function splitPath(path: string): string[] {
  assert(typeof path === 'string', 'SimDisk: a path must be a string');
  assert(path.startsWith('/'), `SimDisk: paths must be absolute: '${path}'`);
  if (path === '/') return [];
  const components = path.slice(1).split('/');
  for (const component of components) {
    assert(component !== '', `SimDisk: empty path component in '${path}'`);
    assert(component !== '.', `SimDisk: '.' in '${path}'`);
    assert(component !== '..', `SimDisk: '..' in '${path}'`);
  }
  return components;
}

function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

function concatenate(buffers: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const buffer of buffers) total += buffer.length;
  const data = new Uint8Array(total);
  let offset = 0;
  for (const buffer of buffers) {
    data.set(buffer, offset);
    offset += buffer.length;
  }
  return data;
}

function buffersEqual(buffers: readonly Uint8Array[], data: Uint8Array): boolean {
  let offset = 0;
  for (const buffer of buffers) {
    if (offset + buffer.length > data.length) return false;
    for (let index = 0; index < buffer.length; index++) {
      if (buffer[index] !== data[offset + index]) return false;
    }
    offset += buffer.length;
  }
  return offset === data.length;
}

function emptyCrashReport(mode: CrashMode): CrashReport {
  return {
    mode,
    operationsInflightApplied: 0,
    operationsInflightDropped: 0,
    writesUnsynced: 0,
    sectorsKept: 0,
    sectorsDropped: 0,
    sectorsGarbled: 0,
    extensionsDropped: 0,
    truncatesKept: 0,
    truncatesDropped: 0,
    changesLostToDatasyncFailure: 0,
    direntChangesKept: 0,
    direntChangesDropped: 0,
    handlesInvalidated: 0,
    locksReleased: 0,
  };
}

function assertByteCount(value: number, what: string): void {
  assert(Number.isSafeInteger(value), `SimDisk ${what} must be an integer`);
  assert(value >= 0, `SimDisk ${what} must not be negative`);
}

function roundUp(value: number, multiple: number): number {
  return Math.ceil(value / multiple) * multiple;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && (value & (value - 1)) === 0;
}

/** The promise a dead process waits on. */
function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}
