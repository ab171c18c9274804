/**
 * The hard-state store (src/storage/hard-state.ts): one suite runs on the simulated disk and on
 * the real one in a temporary directory; then the faults only the simulated disk can make
 * (a lost fdatasync, a full disk) and every single-bit flip. Crashes at every syscall boundary
 * are in hard-state-crash.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { NodeDisk } from '../../src/node/disk.js';
import type { Disk } from '../../src/ports/disk.js';
import { SimDisk } from '../../src/sim/disk.js';
import {
  HardStateStore,
  hardStateSavesWaitingMax,
  type HardState,
} from '../../src/storage/hard-state.js';
import { ProbeDisk, failCalls, systemError } from './hard-state-disk.js';

interface Subject {
  disk: Disk;
  /** An existing, empty node directory. */
  dir: string;
  cleanup(): Promise<void>;
}

/** A simulated disk with a durable, empty `/node`. */
async function simNodeDisk(seed: number): Promise<SimDisk> {
  const disk = new SimDisk({ seed });
  await disk.mkdir('/node');
  await disk.syncDir('/');
  return disk;
}

const simSubject = async (): Promise<Subject> => {
  const disk = await simNodeDisk(7);
  return { disk, dir: '/node', cleanup: async () => undefined };
};

const nodeSubject = async (): Promise<Subject> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'syncwal-hard-state-'));
  const cleanup = async () => fs.rmSync(dir, { recursive: true, force: true });
  return { disk: new NodeDisk(), dir, cleanup };
};

/**
 * The file as the format section of docs/format.md describes it, built here independently of
 * the code under test (node:zlib's crc32, ASCII magic, BigInt term).
 */
function referenceBytes(
  fields: HardState & {
    version?: number;
    votedForBytes?: number;
    reserved?: number;
    id?: number[];
  },
): Uint8Array {
  const bytes = new Uint8Array(280);
  const view = new DataView(bytes.buffer);
  bytes.set(Buffer.from('SHST', 'ascii'), 4);
  const id =
    fields.id === undefined ? Buffer.from(fields.votedFor ?? '', 'utf8') : Buffer.from(fields.id);
  view.setUint16(8, fields.version ?? 1, true);
  view.setUint16(10, fields.votedForBytes ?? id.length, true);
  view.setUint32(12, fields.reserved ?? 0, true);
  view.setBigUint64(16, BigInt(fields.term), true);
  bytes.set(id, 24);
  return reseal(bytes);
}

/** Recomputes the crc, so a test can present a well-checksummed file with bad fields. */
function reseal(bytes: Uint8Array): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(0, crc32(bytes.subarray(4)), true);
  return bytes;
}

async function writeFile(disk: Disk, file: string, bytes: Uint8Array): Promise<void> {
  const exists = (await disk.size(file)) !== null;
  const handle = await disk.open(file, exists ? 'write' : 'create');
  await handle.truncate(0);
  await handle.write([bytes], 0);
  await handle.datasync();
  await handle.close();
  await disk.syncDir(path.posix.dirname(file));
}

async function readFile(disk: Disk, file: string): Promise<Uint8Array> {
  const handle = await disk.open(file, 'read');
  const bytes = new Uint8Array(await handle.size());
  await handle.read(bytes, 0, bytes.length, 0);
  await handle.close();
  return bytes;
}

async function reopened(disk: Disk, dir: string): Promise<HardState> {
  return (await HardStateStore.open(disk, { dir })).state;
}

function hardStateSuite(name: string, factory: () => Promise<Subject>): void {
  const withSubject = (body: (subject: Subject) => Promise<void>) => async () => {
    const subject = await factory();
    try {
      await body(subject);
    } finally {
      await subject.cleanup();
    }
  };

  describe(`hard state on ${name}`, () => {
    it(
      'a fresh directory is term 0 without a vote, and opening it writes nothing',
      withSubject(async ({ disk, dir }) => {
        const store = await HardStateStore.open(disk, { dir });
        expect(store.state).toEqual({ term: 0, votedFor: null });
        expect(await disk.list(dir)).toEqual([]);
      }),
    );

    it(
      'saves durably in the documented format, and a reopen reads it back',
      withSubject(async ({ disk, dir }) => {
        const store = await HardStateStore.open(disk, { dir });
        expect(await store.save({ term: 1, votedFor: null })).toEqual({ term: 1, votedFor: null });
        expect(await store.save({ term: 1, votedFor: 'n2' })).toEqual({ term: 1, votedFor: 'n2' });
        expect(store.state).toEqual({ term: 1, votedFor: 'n2' });
        expect(await reopened(disk, dir)).toEqual({ term: 1, votedFor: 'n2' });
        await store.save({ term: 2 ** 40 + 3, votedFor: 'nœud-7' });
        const bytes = await readFile(disk, `${dir}/state`);
        expect(bytes).toEqual(referenceBytes({ term: 2 ** 40 + 3, votedFor: 'nœud-7' }));
        expect(Buffer.from(bytes.subarray(4, 12)).toString('hex')).toBe('5348535401000700');
        expect(await disk.list(dir)).toEqual(['state']);
        expect(await reopened(disk, dir)).toEqual({ term: 2 ** 40 + 3, votedFor: 'nœud-7' });
      }),
    );

    it(
      'refuses a lower term and a changed vote, and changes nothing',
      withSubject(async ({ disk, dir }) => {
        const store = await HardStateStore.open(disk, { dir });
        await store.save({ term: 5, votedFor: 'n1' });
        const refusals: HardState[] = [
          { term: 4, votedFor: null },
          { term: 4, votedFor: 'n1' },
          { term: 5, votedFor: 'n3' },
          { term: 5, votedFor: null },
        ];
        for (const next of refusals) {
          await expect(store.save(next), JSON.stringify(next)).rejects.toMatchObject({
            code: 'INVALID',
          });
        }
        expect(store.state).toEqual({ term: 5, votedFor: 'n1' });
        expect(store.failure).toBeNull();
        expect(await reopened(disk, dir)).toEqual({ term: 5, votedFor: 'n1' });
        // A new term starts without a vote, and may get one.
        await store.save({ term: 6, votedFor: null });
        await store.save({ term: 6, votedFor: 'n3' });
        expect(await reopened(disk, dir)).toEqual({ term: 6, votedFor: 'n3' });
      }),
    );

    it(
      'terms never go backwards across a restart',
      withSubject(async ({ disk, dir }) => {
        await (await HardStateStore.open(disk, { dir })).save({ term: 9, votedFor: null });
        const second = await HardStateStore.open(disk, { dir });
        await expect(second.save({ term: 8, votedFor: 'n1' })).rejects.toMatchObject({
          code: 'INVALID',
        });
        await second.save({ term: 9, votedFor: 'n1' });
        const third = await HardStateStore.open(disk, { dir });
        await expect(third.save({ term: 9, votedFor: 'n2' })).rejects.toMatchObject({
          code: 'INVALID',
        });
      }),
    );

    it(
      'refuses malformed states with INVALID',
      withSubject(async ({ disk, dir }) => {
        const store = await HardStateStore.open(disk, { dir });
        const malformed: unknown[] = [
          null,
          { term: -1, votedFor: null },
          { term: 1.5, votedFor: null },
          { term: 2 ** 53, votedFor: null },
          { term: '1', votedFor: null },
          { term: 1, votedFor: '' },
          { term: 1, votedFor: 'x'.repeat(256) },
          { term: 1, votedFor: 7 },
          { term: 1, votedFor: 'bad\ud800' },
          { term: 0, votedFor: 'n1' },
        ];
        for (const value of malformed) {
          await expect(store.save(value as HardState), String(value)).rejects.toMatchObject({
            code: 'INVALID',
          });
        }
        await store.save({ term: 1, votedFor: 'x'.repeat(255) });
        expect((await reopened(disk, dir)).votedFor).toBe('x'.repeat(255));
      }),
    );

    it(
      'serializes concurrent saves, coalescing those that wait, in call order',
      withSubject(async ({ disk, dir }) => {
        const probe = new ProbeDisk(disk);
        const store = await HardStateStore.open(probe, { dir });
        const states: HardState[] = [];
        for (let term = 1; term <= 20; term++) {
          states.push({ term, votedFor: null }, { term, votedFor: `n${term % 3}` });
        }
        const saves = states.map((state) => store.save(state));
        // Checked against the newest accepted state, not the durable one.
        await expect(store.save({ term: 3, votedFor: null })).rejects.toMatchObject({
          code: 'INVALID',
        });
        await expect(store.save({ term: 20, votedFor: 'other' })).rejects.toMatchObject({
          code: 'INVALID',
        });
        const results = await Promise.all(saves);
        results.forEach((result, index) => {
          expect(result.term).toBeGreaterThanOrEqual(states[index]!.term);
        });
        // The first save's write, then one write for the 39 that queued behind it.
        expect(probe.count('rename')).toBe(2);
        expect(store.state).toEqual({ term: 20, votedFor: 'n2' });
        expect(await reopened(disk, dir)).toEqual({ term: 20, votedFor: 'n2' });
      }),
    );

    it(
      'saving the newest state again writes nothing and waits for it to be durable',
      withSubject(async ({ disk, dir }) => {
        const probe = new ProbeDisk(disk);
        const store = await HardStateStore.open(probe, { dir });
        await store.save({ term: 2, votedFor: 'n1' });
        const writes = probe.count('rename');
        expect(await store.save({ term: 2, votedFor: 'n1' })).toEqual({ term: 2, votedFor: 'n1' });
        expect(probe.count('rename')).toBe(writes);
        let durableWhenResolved: HardState | null = null;
        const first = store.save({ term: 3, votedFor: null });
        const again = store.save({ term: 3, votedFor: null }).then((state) => {
          durableWhenResolved = store.state;
          return state;
        });
        await Promise.all([first, again]);
        expect(durableWhenResolved).toEqual({ term: 3, votedFor: null });
        expect(probe.count('rename')).toBe(writes + 1);
      }),
    );

    it(
      'bounds the saves waiting at once',
      withSubject(async ({ disk, dir }) => {
        const store = await HardStateStore.open(disk, { dir });
        const saves: Promise<HardState>[] = [];
        for (let term = 1; term <= hardStateSavesWaitingMax; term++) {
          saves.push(store.save({ term, votedFor: null }));
        }
        await expect(
          store.save({ term: hardStateSavesWaitingMax + 1, votedFor: null }),
        ).rejects.toMatchObject({ code: 'INVALID' });
        await Promise.all(saves);
        await store.save({ term: hardStateSavesWaitingMax + 1, votedFor: null });
        expect(store.state.term).toBe(hardStateSavesWaitingMax + 1);
      }),
    );

    it(
      'ignores and removes a temporary file left by a crash',
      withSubject(async ({ disk, dir }) => {
        await (await HardStateStore.open(disk, { dir })).save({ term: 4, votedFor: 'n2' });
        await writeFile(disk, `${dir}/state.tmp`, referenceBytes({ term: 9, votedFor: 'n9' }));
        const store = await HardStateStore.open(disk, { dir });
        expect(store.state).toEqual({ term: 4, votedFor: 'n2' });
        expect(await disk.list(dir)).toEqual(['state']);
        await writeFile(disk, `${dir}/state.tmp`, Uint8Array.of(1, 2, 3));
        await writeFile(disk, `${dir}/state`, referenceBytes({ term: 4, votedFor: 'n2' }));
        expect(await reopened(disk, dir)).toEqual({ term: 4, votedFor: 'n2' });
        // Even with no state file, a leftover is ignored: the save it belonged to never resolved.
        const other = await factory();
        try {
          await writeFile(
            other.disk,
            `${other.dir}/state.tmp`,
            referenceBytes({ term: 3, votedFor: null }),
          );
          expect(await reopened(other.disk, other.dir)).toEqual({ term: 0, votedFor: null });
          expect(await other.disk.list(other.dir)).toEqual([]);
        } finally {
          await other.cleanup();
        }
      }),
    );

    it(
      'reports damage as CORRUPT, never as term 0',
      withSubject(async ({ disk, dir }) => {
        const good = referenceBytes({ term: 12, votedFor: 'n3' });
        const damaged: [string, Uint8Array, RegExp][] = [
          ['empty', new Uint8Array(0), /size 0 bytes/],
          ['short', good.slice(0, 279), /size 279 bytes/],
          ['long', Uint8Array.from([...good, 0]), /size 281 bytes/],
          ['zeros', new Uint8Array(280), /magic or checksum/],
          ['byte flipped', Uint8Array.from(good, (b, i) => (i === 20 ? b ^ 0x40 : b)), /checksum/],
          ['bad magic', reseal(Uint8Array.from(good, (b, i) => (i === 5 ? 0x49 : b))), /magic/],
          ['version 2', referenceBytes({ term: 12, votedFor: 'n3', version: 2 }), /version 2/],
          ['reserved', referenceBytes({ term: 1, votedFor: null, reserved: 1 }), /reserved/],
          ['long vote', referenceBytes({ term: 1, votedFor: 'n', votedForBytes: 256 }), /256/],
          ['term 2^53', referenceBytes({ term: 2 ** 53, votedFor: null }), /term of 2\^53/],
          ['padding', referenceBytes({ term: 1, votedFor: 'ab', votedForBytes: 1 }), /padding/],
          ['not UTF-8', referenceBytes({ term: 1, votedFor: null, id: [0x6e, 0xff] }), /UTF-8/],
          ['vote in term 0', referenceBytes({ term: 0, votedFor: 'n1' }), /term 0/],
        ];
        for (const [label, bytes, reason] of damaged) {
          await writeFile(disk, `${dir}/state`, bytes);
          const opened = HardStateStore.open(disk, { dir });
          await expect(opened, label).rejects.toMatchObject({ code: 'CORRUPT' });
          await expect(opened, label).rejects.toThrow(reason);
        }
      }),
    );

    it(
      'a failed fdatasync fences the store: IOERR now and for every later call',
      withSubject(async ({ disk, dir }) => {
        const probe = new ProbeDisk(disk);
        const store = await HardStateStore.open(probe, { dir });
        await store.save({ term: 3, votedFor: null });
        failCalls(probe, { name: 'datasync', code: 'EIO' });
        const failing = store.save({ term: 3, votedFor: 'n1' });
        const queued = store.save({ term: 4, votedFor: null });
        await expect(failing).rejects.toMatchObject({ code: 'IOERR' });
        await expect(queued).rejects.toMatchObject({ code: 'IOERR' });
        expect(store.failure?.code).toBe('IOERR');
        expect(store.state).toEqual({ term: 3, votedFor: null });
        const datasyncs = probe.count('datasync');
        await expect(store.save({ term: 5, votedFor: null })).rejects.toMatchObject({
          code: 'IOERR',
        });
        // Never retried: the fenced store issues no further I/O.
        expect(probe.count('datasync')).toBe(datasyncs);
        expect(await reopened(disk, dir)).toEqual({ term: 3, votedFor: null });
      }),
    );

    it(
      'a failed rename or directory fsync fences the store; a reopen finds old or new',
      withSubject(async ({ disk, dir }) => {
        for (const name of ['rename', 'syncDir'] as const) {
          const probe = new ProbeDisk(disk);
          const store = await HardStateStore.open(probe, { dir });
          const before = store.state;
          const next = { term: before.term + 1, votedFor: null };
          failCalls(probe, { name, code: 'ENOSPC' });
          await expect(store.save(next), name).rejects.toMatchObject({ code: 'IOERR' });
          await expect(store.save({ term: next.term + 1, votedFor: null })).rejects.toMatchObject({
            code: 'IOERR',
          });
          expect([before, next]).toContainEqual(await reopened(disk, dir));
        }
      }),
    );

    it(
      'a full disk before the rename is NOSPACE: nothing changes and the store stays usable',
      withSubject(async ({ disk, dir }) => {
        const probe = new ProbeDisk(disk);
        const store = await HardStateStore.open(probe, { dir });
        await store.save({ term: 2, votedFor: 'n1' });
        for (const name of ['open', 'write', 'datasync'] as const) {
          failCalls(probe, { name, code: 'ENOSPC' });
          const failing = store.save({ term: 3, votedFor: 'n2' });
          const queued = store.save({ term: 4, votedFor: null });
          await expect(failing, name).rejects.toMatchObject({ code: 'NOSPACE' });
          await expect(queued, name).rejects.toMatchObject({ code: 'NOSPACE' });
          expect(store.failure).toBeNull();
          expect(store.state).toEqual({ term: 2, votedFor: 'n1' });
          expect(await disk.list(dir)).toEqual(['state']);
          expect(await reopened(disk, dir)).toEqual({ term: 2, votedFor: 'n1' });
        }
        // The refused vote was never durable, so another vote in that term is allowed.
        await store.save({ term: 3, votedFor: 'n3' });
        expect(await reopened(disk, dir)).toEqual({ term: 3, votedFor: 'n3' });
      }),
    );

    it(
      'a full disk whose leftover cannot be removed fences the store',
      withSubject(async ({ disk, dir }) => {
        const probe = new ProbeDisk(disk);
        const store = await HardStateStore.open(probe, { dir });
        let writes = 0;
        probe.intercept = (call, forward) => {
          if (call.name === 'write' && writes++ === 0) {
            return Promise.reject(systemError('ENOSPC', 'write'));
          }
          if (call.name === 'remove') return Promise.reject(systemError('EIO', 'unlink'));
          return forward();
        };
        await expect(store.save({ term: 1, votedFor: null })).rejects.toMatchObject({
          code: 'IOERR',
        });
        expect(store.failure?.code).toBe('IOERR');
        expect(await reopened(disk, dir)).toEqual({ term: 0, votedFor: null });
        expect(await disk.list(dir)).toEqual([]);
      }),
    );

    it(
      'close waits for the save in flight, then refuses calls with CLOSED',
      withSubject(async ({ disk, dir }) => {
        const store = await HardStateStore.open(disk, { dir });
        const saving = store.save({ term: 1, votedFor: 'n1' });
        const closing = store.close();
        await expect(store.save({ term: 2, votedFor: null })).rejects.toMatchObject({
          code: 'CLOSED',
        });
        await closing;
        expect(await saving).toEqual({ term: 1, votedFor: 'n1' });
        await store.close();
        expect(await reopened(disk, dir)).toEqual({ term: 1, votedFor: 'n1' });
      }),
    );

    it(
      'open fails with IOERR when the node directory does not exist',
      withSubject(async ({ disk, dir }) => {
        await expect(HardStateStore.open(disk, { dir: `${dir}/missing` })).rejects.toMatchObject({
          code: 'IOERR',
        });
        await expect(HardStateStore.open(disk, { dir: '' })).rejects.toMatchObject({
          code: 'INVALID',
        });
      }),
    );
  });
}

hardStateSuite('the simulated disk', simSubject);
hardStateSuite('the real disk', nodeSubject);

describe('hard state: faults of the simulated disk', () => {
  it('every single-bit flip of a saved file is CORRUPT', async () => {
    const source = await simNodeDisk(3);
    const store = await HardStateStore.open(source, { dir: '/node' });
    await store.save({ term: 0x1234_5678_9a, votedFor: 'replica-2' });
    const bytes = source.readDurable('/node/state');
    expect(bytes.length).toBe(280);
    let flips = 0;
    for (let offset = 0; offset < bytes.length; offset++) {
      for (let bit = 0; bit < 8; bit++) {
        const disk = new SimDisk({ seed: offset * 8 + bit });
        disk.writeRaw('/node/state', bytes);
        disk.flipBit('/node/state', offset, bit);
        const opened = HardStateStore.open(disk, { dir: '/node' });
        await expect(opened, `offset ${offset} bit ${bit}`).rejects.toMatchObject({
          code: 'CORRUPT',
        });
        flips++;
      }
    }
    expect(flips).toBe(280 * 8);
  });

  it('a failed fdatasync loses nothing acknowledged and never shows the new state', async () => {
    for (let seed = 0; seed < 40; seed++) {
      const disk = await simNodeDisk(seed);
      const store = await HardStateStore.open(disk, { dir: '/node' });
      await store.save({ term: 6, votedFor: null });
      disk.failDatasync({ path: '/node/state.tmp' });
      await expect(store.save({ term: 6, votedFor: 'n2' })).rejects.toMatchObject({
        code: 'IOERR',
      });
      await expect(store.save({ term: 7, votedFor: null })).rejects.toMatchObject({
        code: 'IOERR',
      });
      const report = disk.crash();
      expect(report.changesLostToDatasyncFailure, `seed ${seed}`).toBeGreaterThan(0);
      expect(await reopened(disk, '/node'), `seed ${seed}`).toEqual({ term: 6, votedFor: null });
      expect(disk.exists('/node/state.tmp'), `seed ${seed}`).toBe(false);
    }
  });

  it('a disk at capacity gives NOSPACE, and saves work again once space is freed', async () => {
    const disk = await simNodeDisk(11);
    const store = await HardStateStore.open(disk, { dir: '/node' });
    await store.save({ term: 1, votedFor: 'n1' });
    disk.setCapacity(disk.usedBytes());
    await expect(store.save({ term: 2, votedFor: 'n2' })).rejects.toMatchObject({
      code: 'NOSPACE',
    });
    expect(disk.listAll()).toEqual(['/node', '/node/state']);
    expect(store.failure).toBeNull();
    disk.setCapacity(null);
    expect(await store.save({ term: 2, votedFor: 'n3' })).toEqual({ term: 2, votedFor: 'n3' });
    disk.crash({ mode: 'lose-unsynced' });
    expect(await reopened(disk, '/node')).toEqual({ term: 2, votedFor: 'n3' });
  });
});
