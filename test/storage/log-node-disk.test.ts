import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeDisk } from '../../src/node/disk.js';
import { Log } from '../../src/storage/log.js';
import { intent, readAll } from './helpers.js';

let root = '';
afterEach(() => {
  if (root !== '') fs.rmSync(root, { recursive: true, force: true });
  root = '';
});

describe('log on the real disk', () => {
  for (const io of ['sync', 'async'] as const) {
    it(`keeps the event loop turning while appenders loop (io: ${io})`, async () => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'syncwal-log-'));
      const log = await Log.open(new NodeDisk({ io }), { dir: root, segmentSizeBytes: 65536 });
      let appendsWhenImmediateRan = -1;
      let appends = 0;
      setImmediate(() => {
        appendsWhenImmediateRan = appends;
      });
      for (let index = 0; index < 50; index++) {
        await log.append([intent(`r${index}`, 100)]);
        appends += 1;
      }
      expect(appendsWhenImmediateRan).toBeGreaterThanOrEqual(0);
      expect(appendsWhenImmediateRan).toBeLessThan(50);
      await log.close();
    });
  }

  it('rotates through real segments and recovers them', async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'syncwal-log-'));
    const log = await Log.open(new NodeDisk(), { dir: root, segmentSizeBytes: 8192 });
    for (let index = 0; index < 300; index++) await log.append([intent(`r${index}`, 100)]);
    expect(log.stats().rotations).toBeGreaterThan(3);
    await log.close();
    const reopened = await Log.open(new NodeDisk(), { dir: root, segmentSizeBytes: 8192 });
    expect((await readAll(reopened)).length).toBe(300);
    expect(reopened.recovery.status).toBe('clean');
    await reopened.close();
  });
});
