import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openNode } from '../../src/index.js';

/** The README's "Embedding" example, run for real against the real disk and SQLite. */
let root = '';
afterEach(() => {
  if (root !== '') fs.rmSync(root, { recursive: true, force: true });
});

describe('README embedding example', () => {
  it('runs as written', async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'syncwal-readme-'));
    const node = await openNode({ dir: path.join(root, 'n1') });
    const { lsn } = await node.put('user:1', 'alice');
    await node.batch([
      { op: 'put', key: 'user:2', value: 'bob' },
      { op: 'delete', key: 'user:1' },
    ]);
    const { value } = await node.incrBy('visits', 5);
    expect(value).toBe(5n);
    const swap = await node.compareAndSet('lock', null, 'me');
    expect(swap.ok).toBe(true);
    expect((await node.get('user:2'))?.toString()).toBe('bob');
    expect((await node.get('user:2', { read: { after: lsn } }))?.toString()).toBe('bob');
    const page = await node.scan({ prefix: 'user:', limit: 100 });
    expect(page.entries.map((entry) => entry.key.toString())).toEqual(['user:2']);
    await node.put('order:9', 'paid', { requestId: 'req-9f2c' });
    expect(node.status('req-9f2c').status).toBe('committed');
    await node.checkpoint();
    await node.close();
    const again = await openNode({ dir: path.join(root, 'n1') });
    expect((await again.get('visits'))?.toString()).toBe('5');
    expect(again.status('req-9f2c').status).toBe('committed');
    await expect(openNode({ dir: path.join(root, 'n1') })).rejects.toMatchObject({
      code: 'LOCKED',
    });
    await again.close();
  });
});
