import { describe, expect, it } from 'vitest';
import { SimDisk } from '../../src/sim/disk.js';
import { MemoryCheckpoint, simNode, text } from './helpers.js';

describe('node engine: writes and reads', () => {
  it('puts, gets, deletes, and survives a reopen', async () => {
    const disk = new SimDisk({ seed: 1 });
    const checkpoint = new MemoryCheckpoint();
    const node = await simNode(disk, checkpoint);
    const first = await node.put('k1', 'v1');
    expect(first.lsn).toBeGreaterThan(0);
    expect(text(await node.get('k1'))).toBe('v1');
    expect(await node.get('missing')).toBeNull();
    expect((await node.delete('k1')).deleted).toBe(true);
    expect((await node.delete('k1')).deleted).toBe(false);
    await node.put('k2', new Uint8Array([0, 255, 7]));
    await node.close();
    const reopened = await simNode(disk, checkpoint);
    expect(await reopened.get('k1')).toBeNull();
    expect([...((await reopened.get('k2')) ?? [])]).toEqual([0, 255, 7]);
    await reopened.close();
  });

  it('never shows a pending write to a read', async () => {
    const disk = new SimDisk({ seed: 2 });
    const node = await simNode(disk, new MemoryCheckpoint());
    const write = node.put('k', 'pending');
    expect(await node.get('k')).toBeNull();
    await write;
    expect(text(await node.get('k'))).toBe('pending');
    await node.close();
  });

  it('applies a batch atomically', async () => {
    const disk = new SimDisk({ seed: 3 });
    const checkpoint = new MemoryCheckpoint();
    const node = await simNode(disk, checkpoint);
    await node.put('gone', 'x');
    await node.batch([
      { op: 'put', key: 'a', value: '1' },
      { op: 'put', key: 'b', value: '2' },
      { op: 'delete', key: 'gone' },
    ]);
    expect(text(await node.get('a'))).toBe('1');
    expect(await node.get('gone')).toBeNull();
    await expect(node.batch([])).rejects.toMatchObject({ code: 'INVALID' });
    await expect(node.batch([{ op: 'bad' } as never])).rejects.toMatchObject({ code: 'INVALID' });
    await node.close();
  });

  it('computes INCR and CAS against committed plus pending state', async () => {
    const disk = new SimDisk({ seed: 4 });
    const checkpoint = new MemoryCheckpoint();
    const node = await simNode(disk, checkpoint);
    const increments = await Promise.all([
      node.incr('n'),
      node.incrBy('n', 10),
      node.incrBy('n', -3),
    ]);
    expect(increments.map((result) => result.value)).toEqual([1n, 11n, 8n]);
    expect(text(await node.get('n'))).toBe('8');
    await node.put('s', 'not a number');
    await expect(node.incr('s')).rejects.toMatchObject({ code: 'INVALID' });
    await node.put('big', '9223372036854775807');
    await expect(node.incr('big')).rejects.toThrow(/overflow/);
    const missed = await node.compareAndSet('c', 'x', 'y');
    expect(missed.ok).toBe(false);
    const created = await node.compareAndSet('c', null, 'y');
    expect(created.ok).toBe(true);
    const pendingSwap = node.compareAndSet('c', 'y', 'z');
    const chained = node.compareAndSet('c', 'z', 'w');
    expect((await pendingSwap).ok).toBe(true);
    expect((await chained).ok).toBe(true);
    expect(text(await node.get('c'))).toBe('w');
    await node.close();
    const reopened = await simNode(disk, checkpoint);
    expect(text(await reopened.get('n'))).toBe('8');
    expect(text(await reopened.get('c'))).toBe('w');
    await reopened.close();
  });

  it('scans committed keys in byte order, by prefix and range, in bounded pages', async () => {
    const disk = new SimDisk({ seed: 5 });
    const node = await simNode(disk, new MemoryCheckpoint());
    const keys = ['user:3', 'user:1', 'admin', 'user:2', 'users', 'zeta'];
    for (const key of keys) await node.put(key, `v-${key}`);
    const all = await node.scan({ limit: 100 });
    expect(all.entries.map((entry) => entry.key.toString())).toEqual([...keys].sort());
    const prefixed = await node.scan({ prefix: 'user:', limit: 2 });
    expect(prefixed.entries.map((entry) => entry.key.toString())).toEqual(['user:1', 'user:2']);
    expect(prefixed.next).not.toBeNull();
    const rest = await node.scan({ prefix: 'user:', start: prefixed.next ?? '', limit: 2 });
    expect(rest.entries.map((entry) => entry.key.toString())).toEqual(['user:3']);
    expect(rest.next).toBeNull();
    const ranged = await node.scan({ start: 'b', end: 'user:3' });
    expect(ranged.entries.map((entry) => entry.key.toString())).toEqual(['user:1', 'user:2']);
    await expect(node.scan({ limit: 0 })).rejects.toMatchObject({ code: 'INVALID' });
    await expect(node.scan({ limit: 1_000_000 })).rejects.toMatchObject({ code: 'INVALID' });
    await node.close();
  });

  it('rejects bad input with typed errors before logging anything', async () => {
    const disk = new SimDisk({ seed: 6 });
    const node = await simNode(disk, new MemoryCheckpoint(), { keyBytesMax: 8, valueBytesMax: 16 });
    const before = node.info().lastLsn;
    await expect(node.put('123456789', 'v')).rejects.toMatchObject({ code: 'INVALID' });
    await expect(node.put('k', 'x'.repeat(17))).rejects.toMatchObject({ code: 'INVALID' });
    await expect(node.put(42 as never, 'v')).rejects.toMatchObject({ code: 'INVALID' });
    await expect(node.put('k', 'v', { requestId: '' })).rejects.toMatchObject({ code: 'INVALID' });
    await expect(node.get('k', { read: { after: 10_000 } })).rejects.toMatchObject({
      code: 'INVALID',
    });
    expect(node.info().lastLsn).toBe(before);
    await node.close();
    await expect(node.put('k', 'v')).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(node.get('k')).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(simNode(disk, new MemoryCheckpoint(), { bogus: 1 } as never)).rejects.toThrow(
      /option bogus/,
    );
    await expect(simNode(disk, new MemoryCheckpoint(), { keyBytesMax: -1 })).rejects.toThrow(
      /option keyBytesMax/,
    );
  });
});

describe('node engine: request ids', () => {
  it('applies a retried request once and answers status across restarts', async () => {
    const disk = new SimDisk({ seed: 7 });
    const checkpoint = new MemoryCheckpoint();
    const node = await simNode(disk, checkpoint);
    const first = await node.incr('counter', { requestId: 'r1' });
    const retry = await node.incr('counter', { requestId: 'r1' });
    expect(retry).toMatchObject({ lsn: first.lsn, duplicate: true, value: 1n });
    const concurrent = await Promise.all([
      node.put('x', '1', { requestId: 'r2' }),
      node.put('x', '2', { requestId: 'r2' }),
    ]);
    expect(concurrent[1]).toMatchObject({ lsn: concurrent[0].lsn, duplicate: true });
    expect(text(await node.get('x'))).toBe('1');
    expect(node.status('r1')).toEqual({ status: 'committed', lsn: first.lsn });
    expect(node.status('nope')).toEqual({ status: 'unknown' });
    await node.checkpoint();
    await node.incr('counter', { requestId: 'r3' });
    await node.close();
    const reopened = await simNode(disk, checkpoint);
    expect(reopened.status('r1')).toEqual({ status: 'committed', lsn: first.lsn });
    expect(reopened.status('r3').status).toBe('committed');
    const again = await reopened.incr('counter', { requestId: 'r3' });
    expect(again).toMatchObject({ duplicate: true, value: 2n });
    expect(text(await reopened.get('counter'))).toBe('2');
    await reopened.close();
  });

  it('retains a bounded number of request ids', async () => {
    const disk = new SimDisk({ seed: 8 });
    const node = await simNode(disk, new MemoryCheckpoint(), { requestIdsRetained: 3 });
    for (let index = 0; index < 5; index++)
      await node.put('k', `${index}`, { requestId: `id${index}` });
    expect(node.status('id0')).toEqual({ status: 'unknown' });
    expect(node.status('id4').status).toBe('committed');
    expect(node.info().requestIdsRetained).toBe(3);
    await node.close();
  });
});

describe('node engine: checkpoints and recovery', () => {
  it('checkpoints incrementally, drops old segments, restarts from checkpoint + log', async () => {
    const disk = new SimDisk({ seed: 9 });
    const checkpoint = new MemoryCheckpoint();
    const node = await simNode(disk, checkpoint, { segmentSizeBytes: 4096 });
    for (let index = 0; index < 200; index++) await node.put(`k${index % 50}`, `v${index}`);
    const segmentsBefore = disk.listAll().filter((path) => path.endsWith('.wal')).length;
    const result = await node.checkpoint();
    expect(result.lsn).toBeGreaterThan(200);
    expect(checkpoint.entries.size).toBe(50);
    const segmentsAfter = disk.listAll().filter((path) => path.endsWith('.wal')).length;
    expect(segmentsAfter).toBeLessThan(segmentsBefore);
    await node.put('k0', 'after');
    await node.delete('k1');
    await node.close();
    const reopened = await simNode(disk, checkpoint, { segmentSizeBytes: 4096 });
    expect(text(await reopened.get('k0'))).toBe('after');
    expect(await reopened.get('k1')).toBeNull();
    expect(text(await reopened.get('k2'))).toBe('v152');
    expect(reopened.info().keys).toBe(49);
    await reopened.close();
  });

  it('checkpoints automatically by log size', async () => {
    const disk = new SimDisk({ seed: 10 });
    const checkpoint = new MemoryCheckpoint();
    const node = await simNode(disk, checkpoint, {
      segmentSizeBytes: 4096,
      checkpointLogBytes: 2000,
    });
    for (let index = 0; index < 100; index++) await node.put(`k${index}`, 'x'.repeat(50));
    await node.close();
    expect(checkpoint.applies).toBeGreaterThan(1);
  });

  it('a failed checkpoint changes nothing and can be retried', async () => {
    const disk = new SimDisk({ seed: 11 });
    const checkpoint = new MemoryCheckpoint();
    const node = await simNode(disk, checkpoint);
    await node.put('a', '1');
    checkpoint.failNext = new Error('disk full');
    await expect(node.checkpoint()).rejects.toThrow(/disk full/);
    await node.put('b', '2');
    await node.checkpoint();
    expect([...checkpoint.entries.keys()].sort()).toEqual(['a', 'b']);
    await node.close();
  });

  it('refuses to open when the log misses records after the checkpoint', async () => {
    const disk = new SimDisk({ seed: 12 });
    const checkpoint = new MemoryCheckpoint();
    const node = await simNode(disk, checkpoint);
    await node.put('a', '1');
    await node.close();
    checkpoint.appliedLsn = 500;
    await expect(simNode(disk, checkpoint)).rejects.toMatchObject({ code: 'CORRUPT' });
  });
});

describe('node engine: failure policy', () => {
  it('fences on fdatasync failure: pending UNKNOWN, new writes IOERR, reads work', async () => {
    const disk = new SimDisk({ seed: 13 });
    const checkpoint = new MemoryCheckpoint();
    const node = await simNode(disk, checkpoint);
    await node.put('safe', '1');
    let fenced: unknown = null;
    node.on('fenced', (error) => {
      fenced = error;
    });
    disk.failDatasync({ count: 1 });
    await expect(node.put('lost', '2', { requestId: 'q' })).rejects.toMatchObject({
      code: 'UNKNOWN',
    });
    await expect(node.put('after', '3')).rejects.toMatchObject({ code: 'IOERR' });
    expect(fenced).toMatchObject({ code: 'IOERR' });
    expect(text(await node.get('safe'))).toBe('1');
    expect(await node.get('lost')).toBeNull();
    disk.crash();
    const reopened = await simNode(disk, checkpoint);
    expect(text(await reopened.get('safe'))).toBe('1');
    const status = reopened.status('q').status;
    const lost = await reopened.get('lost');
    expect(status === 'committed' ? text(lost) : lost).toBe(status === 'committed' ? '2' : null);
    await reopened.close();
  });

  it('rejects writes with NOSPACE on a full disk, keeps reads, resumes when freed', async () => {
    const disk = new SimDisk({ seed: 14 });
    const checkpoint = new MemoryCheckpoint();
    const node = await simNode(disk, checkpoint, { segmentSizeBytes: 4096 });
    for (let index = 0; index < 5; index++) await node.put(`k${index}`, 'x'.repeat(100));
    disk.setCapacity(disk.usedBytes());
    let rejected = 0;
    for (let index = 0; index < 80; index++) {
      const result = await node.put(`n${index}`, 'y'.repeat(100)).catch((error: unknown) => error);
      if (result instanceof Error) {
        expect(result).toMatchObject({ code: 'NOSPACE' });
        rejected += 1;
      }
    }
    expect(rejected).toBeGreaterThan(0);
    expect(text(await node.get('k0'))).toBe('x'.repeat(100));
    disk.setCapacity(null);
    await node.put('resumed', 'yes');
    expect(text(await node.get('resumed'))).toBe('yes');
    await node.close();
  });
});
