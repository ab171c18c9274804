/**
 * A pass-through disk for the hard-state tests: it numbers every port call (handle calls
 * included) and lets a test replace any of them, to fail it with an errno or to cut the power
 * at that exact syscall boundary. It works over the simulated and the real disk alike.
 */
import type { Disk, DiskLock, FileHandle, OpenMode, OpenOptions } from '../../src/ports/disk.js';

export type DiskCallName =
  | 'open'
  | 'list'
  | 'mkdir'
  | 'remove'
  | 'rename'
  | 'syncDir'
  | 'size'
  | 'freeBytes'
  | 'lock'
  | 'read'
  | 'write'
  | 'datasync'
  | 'truncate'
  | 'handleSize'
  | 'close';

export interface DiskCall {
  /** 0 for the first call through this disk, then 1, 2, ... */
  index: number;
  name: DiskCallName;
  /** The path the call names (for a handle call, the path the handle was opened with). */
  path: string;
}

/**
 * Decides what a call does. `forward()` issues it on the inner disk; the interceptor returns
 * what the caller gets (by default, exactly that).
 */
export type Interceptor = (call: DiskCall, forward: () => Promise<unknown>) => Promise<unknown>;

export class ProbeDisk implements Disk {
  readonly #inner: Disk;
  readonly calls: DiskCall[] = [];
  intercept: Interceptor = (_call, forward) => forward();

  constructor(inner: Disk) {
    this.#inner = inner;
  }

  #call<T>(name: DiskCallName, path: string, forward: () => Promise<T>): Promise<T> {
    const call = { index: this.calls.length, name, path };
    this.calls.push(call);
    return this.intercept(call, forward) as Promise<T>;
  }

  /** How many calls of `name` (to `path`, if given) went through so far. */
  count(name: DiskCallName, path?: string): number {
    return this.calls.filter((call) => call.name === name && (path ?? call.path) === call.path)
      .length;
  }

  async open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle> {
    const handle = await this.#call('open', path, () => this.#inner.open(path, mode, options));
    return {
      read: (target, targetOffset, length, position) =>
        this.#call('read', path, () => handle.read(target, targetOffset, length, position)),
      write: (buffers, position) =>
        this.#call('write', path, () => handle.write(buffers, position)),
      datasync: () => this.#call('datasync', path, () => handle.datasync()),
      truncate: (length) => this.#call('truncate', path, () => handle.truncate(length)),
      size: () => this.#call('handleSize', path, () => handle.size()),
      close: () => this.#call('close', path, () => handle.close()),
    };
  }

  list(dir: string): Promise<string[]> {
    return this.#call('list', dir, () => this.#inner.list(dir));
  }
  mkdir(dir: string): Promise<void> {
    return this.#call('mkdir', dir, () => this.#inner.mkdir(dir));
  }
  remove(path: string): Promise<void> {
    return this.#call('remove', path, () => this.#inner.remove(path));
  }
  rename(source: string, target: string): Promise<void> {
    return this.#call('rename', target, () => this.#inner.rename(source, target));
  }
  syncDir(dir: string): Promise<void> {
    return this.#call('syncDir', dir, () => this.#inner.syncDir(dir));
  }
  size(path: string): Promise<number | null> {
    return this.#call('size', path, () => this.#inner.size(path));
  }
  freeBytes(dir: string): Promise<number> {
    return this.#call('freeBytes', dir, () => this.#inner.freeBytes(dir));
  }
  lock(dir: string): Promise<DiskLock> {
    return this.#call('lock', dir, () => this.#inner.lock(dir));
  }
}

/** An error shaped like a Node.js system error. */
export function systemError(code: 'EIO' | 'ENOSPC', syscall: string): Error {
  return Object.assign(new Error(`${code}: injected, ${syscall}`), { code, syscall });
}

/** Fails the first `count` calls named `name` with `code`; everything else goes through. */
export function failCalls(
  disk: ProbeDisk,
  options: { name: DiskCallName; code: 'EIO' | 'ENOSPC'; count?: number },
): void {
  let remaining = options.count ?? 1;
  disk.intercept = (call, forward) => {
    if (call.name !== options.name || remaining === 0) return forward();
    remaining--;
    return Promise.reject(systemError(options.code, call.name));
  };
}
