/**
 * The disk port's conformance suite (the abstract-level pattern): every adapter of
 * src/ports/disk.ts runs these cases, so the real and the simulated disk agree on every edge
 * case the port documents, plus the ones it leaves to POSIX (which this suite pins down):
 *
 * - a handle keeps working after its file is removed or renamed (it refers to the file, not to
 *   the name);
 * - a closed handle rejects every operation with EBADF, and closing twice is harmless;
 * - a handle opened for reading rejects write and truncate with EBADF;
 * - a write of zero bytes changes nothing, not even the size;
 * - `size` of a path whose parent is missing is null, like a missing file;
 * - `lock` creates `<dir>/LOCK`, which `list` then shows.
 */
import { describe, expect, it } from 'vitest';
import { LockedError } from '../../src/core/errors.js';
import type { Disk, FileHandle } from '../../src/ports/disk.js';

export interface DiskUnderTest {
  disk: Disk;
  /** An existing, empty directory the cases may use freely. */
  root: string;
  cleanup(): Promise<void>;
}

export function diskConformanceSuite(name: string, factory: () => Promise<DiskUnderTest>): void {
  /** Runs one case on a fresh disk and always cleans up. */
  const withDisk = (body: (disk: Disk, root: string) => Promise<void>) => async () => {
    const subject = await factory();
    try {
      await body(subject.disk, subject.root);
    } finally {
      await subject.cleanup();
    }
  };

  describe(`${name}: disk conformance`, () => {
    openCases(withDisk);
    readWriteCases(withDisk);
    truncateAndSizeCases(withDisk);
    directoryCases(withDisk);
    renameRemoveCases(withDisk);
    lockCases(withDisk);
    closeCases(withDisk);
  });
}

type WithDisk = (body: (disk: Disk, root: string) => Promise<void>) => () => Promise<void>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Reads the whole file through a handle. */
async function readAll(handle: FileHandle): Promise<Uint8Array> {
  const size = await handle.size();
  const target = new Uint8Array(size);
  const count = await handle.read(target, 0, size, 0);
  expect(count).toBe(size);
  return target;
}

async function readText(disk: Disk, path: string): Promise<string> {
  const handle = await disk.open(path, 'read');
  try {
    return decoder.decode(await readAll(handle));
  } finally {
    await handle.close();
  }
}

async function writeFile(disk: Disk, path: string, text: string): Promise<void> {
  const handle = await disk.open(path, 'create');
  await handle.write([bytes(text)], 0);
  await handle.datasync();
  await handle.close();
}

function openCases(withDisk: WithDisk): void {
  describe('open', () => {
    it(
      "'create' makes an empty, writable file",
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        expect(await handle.size()).toBe(0);
        await handle.write([bytes('hello')], 0);
        expect(decoder.decode(await readAll(handle))).toBe('hello');
        await handle.close();
        expect(await disk.size(`${root}/a`)).toBe(5);
      }),
    );

    it(
      "'create' fails with EEXIST if the file exists",
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/a`, 'x');
        await expect(disk.open(`${root}/a`, 'create')).rejects.toMatchObject({ code: 'EEXIST' });
        expect(await readText(disk, `${root}/a`)).toBe('x');
      }),
    );

    it(
      "'create' fails with ENOENT in a missing directory",
      withDisk(async (disk, root) => {
        const path = `${root}/missing/a`;
        await expect(disk.open(path, 'create')).rejects.toMatchObject({ code: 'ENOENT' });
      }),
    );

    it(
      "'read' and 'write' fail with ENOENT for a missing file",
      withDisk(async (disk, root) => {
        await expect(disk.open(`${root}/a`, 'read')).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(disk.open(`${root}/a`, 'write')).rejects.toMatchObject({ code: 'ENOENT' });
      }),
    );

    it(
      "'write' opens an existing file without truncating it",
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/a`, 'abcdef');
        const handle = await disk.open(`${root}/a`, 'write');
        await handle.write([bytes('XY')], 2);
        expect(decoder.decode(await readAll(handle))).toBe('abXYef');
        await handle.close();
      }),
    );

    it(
      "'read' reads, and rejects write and truncate with EBADF",
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/a`, 'abc');
        const handle = await disk.open(`${root}/a`, 'read');
        expect(decoder.decode(await readAll(handle))).toBe('abc');
        await expect(handle.write([bytes('z')], 0)).rejects.toMatchObject({ code: 'EBADF' });
        await expect(handle.truncate(0)).rejects.toMatchObject({ code: 'EBADF' });
        await handle.datasync();
        await handle.close();
        expect(await readText(disk, `${root}/a`)).toBe('abc');
      }),
    );
  });
}

function readWriteCases(withDisk: WithDisk): void {
  describe('write and read', () => {
    it(
      'round-trips positional writes',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        await handle.write([bytes('0123456789')], 0);
        await handle.write([bytes('abc')], 4);
        const target = new Uint8Array(5);
        expect(await handle.read(target, 0, 5, 3)).toBe(5);
        expect(decoder.decode(target)).toBe('3abc7');
        await handle.datasync();
        await handle.close();
        expect(await readText(disk, `${root}/a`)).toBe('0123abc789');
      }),
    );

    it(
      'grows on a write past the end; holes read as zeros',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        await handle.write([bytes('ab')], 0);
        await handle.write([bytes('cd')], 10);
        expect(await handle.size()).toBe(12);
        const expected = new Uint8Array(12);
        expected.set(bytes('ab'), 0);
        expected.set(bytes('cd'), 10);
        expect(await readAll(handle)).toEqual(expected);
        await handle.close();
      }),
    );

    it(
      'writes several buffers back to back',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        const buffers = [bytes('one'), new Uint8Array(0), bytes('-two-'), bytes('three')];
        await handle.write(buffers, 1);
        const target = new Uint8Array(14);
        expect(await handle.read(target, 0, 14, 0)).toBe(14);
        expect(target[0]).toBe(0);
        expect(decoder.decode(target.subarray(1))).toBe('one-two-three');
        await handle.close();
      }),
    );

    it(
      'writes a large buffer completely',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        const large = new Uint8Array(3 * 1024 * 1024 + 7);
        for (let index = 0; index < large.length; index++) large[index] = (index * 31) & 0xff;
        await handle.write([large.subarray(0, 1000), large.subarray(1000)], 0);
        expect(await handle.size()).toBe(large.length);
        // Compared with Buffer.equals: a deep toEqual over megabytes takes tens of seconds.
        expect(Buffer.from(await readAll(handle)).equals(large)).toBe(true);
        await handle.close();
      }),
    );

    it(
      'treats a zero-byte write as a no-op, even past the end',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        await handle.write([bytes('ab')], 0);
        await handle.write([], 100);
        await handle.write([new Uint8Array(0)], 100);
        expect(await handle.size()).toBe(2);
        await handle.close();
      }),
    );

    it(
      'reads short only at the end of the file',
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/a`, 'abcdef');
        const handle = await disk.open(`${root}/a`, 'read');
        const target = new Uint8Array(8).fill(0xee);
        expect(await handle.read(target, 2, 6, 3)).toBe(3);
        expect([...target]).toEqual([0xee, 0xee, 100, 101, 102, 0xee, 0xee, 0xee]);
        expect(await handle.read(target, 0, 4, 6)).toBe(0);
        expect(await handle.read(target, 0, 4, 1000)).toBe(0);
        expect(await handle.read(target, 0, 0, 0)).toBe(0);
        await handle.close();
      }),
    );

    it(
      'completes concurrent writes to disjoint ranges',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        const writes = [];
        for (let index = 0; index < 16; index++) {
          writes.push(handle.write([new Uint8Array(100).fill(index + 1)], index * 100));
        }
        await Promise.all(writes);
        await handle.datasync();
        const content = await readAll(handle);
        expect(content.length).toBe(1600);
        for (let index = 0; index < 16; index++) expect(content[index * 100 + 99]).toBe(index + 1);
        await handle.close();
      }),
    );
  });
}

function truncateAndSizeCases(withDisk: WithDisk): void {
  describe('truncate and size', () => {
    it(
      'shrinks, and grows with zeros',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        await handle.write([bytes('abcdefgh')], 0);
        await handle.truncate(3);
        expect(await handle.size()).toBe(3);
        expect(decoder.decode(await readAll(handle))).toBe('abc');
        await handle.truncate(6);
        expect(await readAll(handle)).toEqual(new Uint8Array([97, 98, 99, 0, 0, 0]));
        await handle.datasync();
        expect(await disk.size(`${root}/a`)).toBe(6);
        await handle.close();
      }),
    );

    it(
      'reports null for a missing file or a missing parent',
      withDisk(async (disk, root) => {
        expect(await disk.size(`${root}/missing`)).toBeNull();
        expect(await disk.size(`${root}/missing/a`)).toBeNull();
      }),
    );

    it(
      'reports the size of an existing file',
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/a`, '12345');
        expect(await disk.size(`${root}/a`)).toBe(5);
      }),
    );
  });
}

function directoryCases(withDisk: WithDisk): void {
  describe('directories', () => {
    it(
      'lists names sorted by code unit, directories included',
      withDisk(async (disk, root) => {
        for (const name of ['b', 'a', 'Z', '_', '10', '9', 'a.b']) {
          await writeFile(disk, `${root}/${name}`, name);
        }
        await disk.mkdir(`${root}/dir`);
        const expected = ['10', '9', 'Z', '_', 'a', 'a.b', 'b', 'dir'];
        expect(await disk.list(root)).toEqual(expected);
        expect(await disk.list(`${root}/dir`)).toEqual([]);
      }),
    );

    it(
      'fails to list a missing directory or a file',
      withDisk(async (disk, root) => {
        await expect(disk.list(`${root}/missing`)).rejects.toMatchObject({ code: 'ENOENT' });
        await writeFile(disk, `${root}/a`, 'x');
        await expect(disk.list(`${root}/a`)).rejects.toMatchObject({ code: 'ENOTDIR' });
      }),
    );

    it(
      'makes missing parents; an existing directory is fine',
      withDisk(async (disk, root) => {
        await disk.mkdir(`${root}/x/y/z`);
        await disk.mkdir(`${root}/x/y/z`);
        await disk.mkdir(`${root}/x`);
        expect(await disk.list(`${root}/x`)).toEqual(['y']);
        expect(await disk.list(`${root}/x/y/z`)).toEqual([]);
        await writeFile(disk, `${root}/x/y/z/f`, 'deep');
        expect(await readText(disk, `${root}/x/y/z/f`)).toBe('deep');
      }),
    );

    it(
      'fails with EEXIST to make a directory where a file is',
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/a`, 'x');
        await expect(disk.mkdir(`${root}/a`)).rejects.toMatchObject({ code: 'EEXIST' });
      }),
    );

    it(
      'syncs a directory; ENOENT for a missing one',
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/a`, 'x');
        await disk.syncDir(root);
        await expect(disk.syncDir(`${root}/missing`)).rejects.toMatchObject({ code: 'ENOENT' });
      }),
    );

    it(
      'reports free bytes as a positive integer',
      withDisk(async (disk, root) => {
        const free = await disk.freeBytes(root);
        expect(Number.isSafeInteger(free)).toBe(true);
        expect(free).toBeGreaterThan(0);
        await expect(disk.freeBytes(`${root}/missing`)).rejects.toMatchObject({ code: 'ENOENT' });
      }),
    );
  });
}

function renameRemoveCases(withDisk: WithDisk): void {
  describe('rename and remove', () => {
    it(
      'renames a file',
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/a`, 'content');
        await disk.rename(`${root}/a`, `${root}/b`);
        await disk.syncDir(root);
        expect(await disk.list(root)).toEqual(['b']);
        expect(await readText(disk, `${root}/b`)).toBe('content');
      }),
    );

    it(
      'replaces an existing target',
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/new`, 'new content');
        await writeFile(disk, `${root}/old`, 'old');
        await disk.rename(`${root}/new`, `${root}/old`);
        expect(await disk.list(root)).toEqual(['old']);
        expect(await readText(disk, `${root}/old`)).toBe('new content');
      }),
    );

    it(
      'moves a file between directories',
      withDisk(async (disk, root) => {
        await disk.mkdir(`${root}/d`);
        await writeFile(disk, `${root}/a`, 'moved');
        await disk.rename(`${root}/a`, `${root}/d/a`);
        expect(await disk.list(root)).toEqual(['d']);
        expect(await readText(disk, `${root}/d/a`)).toBe('moved');
      }),
    );

    it(
      'fails with ENOENT to rename a missing file',
      withDisk(async (disk, root) => {
        const rename = disk.rename(`${root}/a`, `${root}/b`);
        await expect(rename).rejects.toMatchObject({ code: 'ENOENT' });
      }),
    );

    it(
      'keeps a handle working after its file is renamed',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        await disk.rename(`${root}/a`, `${root}/b`);
        await handle.write([bytes('via handle')], 0);
        await handle.datasync();
        await handle.close();
        expect(await readText(disk, `${root}/b`)).toBe('via handle');
      }),
    );

    it(
      'removes a file, and fails with ENOENT for a missing one',
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/a`, 'x');
        await disk.remove(`${root}/a`);
        expect(await disk.list(root)).toEqual([]);
        expect(await disk.size(`${root}/a`)).toBeNull();
        await expect(disk.open(`${root}/a`, 'read')).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(disk.remove(`${root}/a`)).rejects.toMatchObject({ code: 'ENOENT' });
      }),
    );

    it(
      'keeps a handle working after its file is removed',
      withDisk(async (disk, root) => {
        await writeFile(disk, `${root}/a`, 'still here');
        const handle = await disk.open(`${root}/a`, 'write');
        await disk.remove(`${root}/a`);
        await handle.write([bytes('S')], 0);
        expect(decoder.decode(await readAll(handle))).toBe('Still here');
        await handle.close();
        expect(await disk.list(root)).toEqual([]);
      }),
    );
  });
}

function lockCases(withDisk: WithDisk): void {
  describe('lock', () => {
    it(
      'is exclusive until released',
      withDisk(async (disk, root) => {
        const first = await disk.lock(root);
        const second = disk.lock(root);
        await expect(second).rejects.toBeInstanceOf(LockedError);
        await expect(disk.lock(root)).rejects.toMatchObject({ code: 'LOCKED' });
        await first.release();
        const third = await disk.lock(root);
        await third.release();
      }),
    );

    it(
      'creates the LOCK file and tolerates a second release',
      withDisk(async (disk, root) => {
        const lock = await disk.lock(root);
        expect(await disk.list(root)).toEqual(['LOCK']);
        await lock.release();
        await lock.release();
        const again = await disk.lock(root);
        await again.release();
      }),
    );

    it(
      'locks directories independently',
      withDisk(async (disk, root) => {
        await disk.mkdir(`${root}/one`);
        await disk.mkdir(`${root}/two`);
        const one = await disk.lock(`${root}/one`);
        const two = await disk.lock(`${root}/two`);
        await one.release();
        await two.release();
      }),
    );

    it(
      'fails with ENOENT for a missing directory',
      withDisk(async (disk, root) => {
        await expect(disk.lock(`${root}/missing`)).rejects.toMatchObject({ code: 'ENOENT' });
      }),
    );
  });
}

function closeCases(withDisk: WithDisk): void {
  describe('close', () => {
    it(
      'rejects every later operation with EBADF',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        await handle.write([bytes('abc')], 0);
        await handle.close();
        const target = new Uint8Array(3);
        await expect(handle.read(target, 0, 3, 0)).rejects.toMatchObject({ code: 'EBADF' });
        await expect(handle.write([bytes('x')], 0)).rejects.toMatchObject({ code: 'EBADF' });
        await expect(handle.datasync()).rejects.toMatchObject({ code: 'EBADF' });
        await expect(handle.truncate(0)).rejects.toMatchObject({ code: 'EBADF' });
        await expect(handle.size()).rejects.toMatchObject({ code: 'EBADF' });
        expect(await disk.size(`${root}/a`)).toBe(3);
      }),
    );

    it(
      'is harmless twice',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        await handle.close();
        await handle.close();
      }),
    );

    it(
      'lets operations issued before it complete',
      withDisk(async (disk, root) => {
        const handle = await disk.open(`${root}/a`, 'create');
        const write = handle.write([bytes('late')], 0);
        const close = handle.close();
        await write;
        await close;
        expect(await readText(disk, `${root}/a`)).toBe('late');
      }),
    );
  });
}
