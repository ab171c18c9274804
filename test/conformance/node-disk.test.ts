import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodeDisk } from '../../src/node/disk.js';
import { diskConformanceSuite } from './disk.suite.js';

function temporaryRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'syncwal-disk-'));
}

// Each case gets a fresh directory under the OS temp dir, removed afterwards. Both I/O modes
// must keep the same contract.
for (const io of ['sync', 'async'] as const) {
  diskConformanceSuite(`NodeDisk (io: ${io})`, async () => {
    const root = temporaryRoot();
    return {
      disk: new NodeDisk({ io }),
      root,
      cleanup: async () => {
        fs.rmSync(root, { recursive: true, force: true });
      },
    };
  });
}

// A regular file practically never returns a short write or read, so the loops that complete
// them are exercised by making node:fs return at most a few bytes per call.
describe('NodeDisk short transfers', () => {
  const chunkBytes = 7;
  let root = '';

  afterEach(() => {
    vi.restoreAllMocks();
    if (root !== '') fs.rmSync(root, { recursive: true, force: true });
  });

  it('completes short writes and short reads', async () => {
    root = temporaryRoot();
    const writev = fs.writev;
    const writevSync = fs.writevSync;
    const read = fs.read;
    vi.spyOn(fs, 'writevSync').mockImplementation(((
      fd: number,
      buffers: NodeJS.ArrayBufferView[],
      position: number,
    ) => {
      const first = buffers[0] as Uint8Array;
      return writevSync(fd, [first.subarray(0, Math.min(chunkBytes, first.length))], position);
    }) as unknown as typeof fs.writevSync);
    vi.spyOn(fs, 'writev').mockImplementation(((
      fd: number,
      buffers: NodeJS.ArrayBufferView[],
      position: number,
      callback: (error: NodeJS.ErrnoException | null, written: number) => void,
    ) => {
      const first = buffers[0] as Uint8Array;
      const chunk = first.subarray(0, Math.min(chunkBytes, first.length));
      writev(fd, [chunk], position, (error, written) => callback(error, written));
    }) as unknown as typeof fs.writev);
    vi.spyOn(fs, 'read').mockImplementation(((
      fd: number,
      buffer: Uint8Array,
      offset: number,
      length: number,
      position: number,
      callback: (error: NodeJS.ErrnoException | null, count: number) => void,
    ) => {
      const short = Math.min(chunkBytes, length);
      read(fd, buffer, offset, short, position, (error, count) => callback(error, count));
    }) as unknown as typeof fs.read);

    for (const io of ['sync', 'async'] as const) {
      const disk = new NodeDisk({ io });
      const handle = await disk.open(`${root}/f-${io}`, 'create');
      const data = Uint8Array.from({ length: 100 }, (_unused, index) => index);
      await handle.write([data.subarray(0, 10), data.subarray(10, 11), data.subarray(11)], 3);
      const target = new Uint8Array(110);
      expect(await handle.read(target, 0, 110, 0)).toBe(103);
      expect([...target.subarray(3, 103)]).toEqual([...data]);
      await handle.close();
    }
    expect(vi.mocked(fs.writev).mock.calls.length).toBeGreaterThan(10);
    expect(vi.mocked(fs.writevSync).mock.calls.length).toBeGreaterThan(10);
  });
});
