import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { openSqliteCheckpoint } from '../../src/node/checkpoint-sqlite.js';
import type { CheckpointStore } from '../../src/ports/checkpoint.js';
import { checkpointConformanceSuite } from './checkpoint.suite.js';

function temporaryRoot(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'syncwal-checkpoint-'));
}

// Each case gets a fresh directory under the OS temp dir, removed afterwards together with
// every store the case opened (closing an already closed store is harmless).
checkpointConformanceSuite('SQLite checkpoint', async () => {
  const root = temporaryRoot();
  const stores: CheckpointStore[] = [];
  const open = async (): Promise<CheckpointStore> => {
    const store = await openSqliteCheckpoint(root);
    stores.push(store);
    return store;
  };
  return {
    store: await open(),
    reopen: open,
    cleanup: async () => {
      for (const store of stores) await store.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
});

/** Runs `body` with a fresh directory, removed afterwards. */
async function inTemporaryRoot(body: (root: string) => Promise<void>): Promise<void> {
  const root = temporaryRoot();
  try {
    await body(root);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

describe('SQLite checkpoint: files and failures', () => {
  it('keeps its state in <dir>/checkpoint.sqlite, or in the file named by fileName', async () => {
    await inTemporaryRoot(async (root) => {
      const store = await openSqliteCheckpoint(root);
      await store.close();
      const named = await openSqliteCheckpoint(root, { fileName: 'other.sqlite' });
      await named.close();
      const names = fs.readdirSync(root).filter((name) => name.endsWith('.sqlite'));
      expect(names.sort()).toEqual(['checkpoint.sqlite', 'other.sqlite']);
    });
  });

  it('rejects with CORRUPT, without crashing, when the file is garbage', async () => {
    await inTemporaryRoot(async (root) => {
      const file = path.join(root, 'checkpoint.sqlite');
      fs.writeFileSync(file, Buffer.alloc(64 * 1024, 0x5a));
      const error = await openSqliteCheckpoint(root).then(
        async (store) => {
          // Some damage is only found on reading; either place must report it.
          const failure = await store.load().then(
            () => null,
            (reason: unknown) => reason,
          );
          await store.close();
          return failure;
        },
        (reason: unknown) => reason,
      );
      expect(error).toMatchObject({ code: 'CORRUPT', site: { segment: 'checkpoint.sqlite' } });
    });
  });

  it('rejects with CORRUPT when a valid database has pages overwritten with garbage', async () => {
    await inTemporaryRoot(async (root) => {
      const store = await openSqliteCheckpoint(root);
      const puts = Array.from({ length: 20_000 }, (_unused, index) => ({
        key: Buffer.from(index.toString().padStart(8, '0')),
        value: Buffer.alloc(64, index % 256),
      }));
      await store.apply({
        appliedLsn: 1,
        puts,
        deletes: [],
        requestIds: [],
        requestIdsBelowLsnForget: 0,
      });
      await store.close();
      const file = path.join(root, 'checkpoint.sqlite');
      const image = fs.readFileSync(file);
      // Keep the header page intact so the file still opens; wreck the pages after it.
      image.fill(0xa5, 4096, Math.min(image.length, 4096 * 64));
      fs.writeFileSync(file, image);
      const failure = await openSqliteCheckpoint(root).then(
        async (reopened) => {
          const reason = await reopened.load().then(
            () => null,
            (error: unknown) => error,
          );
          await reopened.close();
          return reason;
        },
        (reason: unknown) => reason,
      );
      expect(failure).toMatchObject({ code: 'CORRUPT' });
    });
  });

  it('rejects with IOERR when the directory does not exist', async () => {
    await inTemporaryRoot(async (root) => {
      const missing = path.join(root, 'missing');
      await expect(openSqliteCheckpoint(missing)).rejects.toMatchObject({ code: 'IOERR' });
    });
  });

  it('fails pending calls with IOERR when the worker dies, and refuses later ones', async () => {
    await inTemporaryRoot(async (root) => {
      const store = await openSqliteCheckpoint(root);
      // Reaching into the adapter is the only way to kill its worker from outside.
      const worker = (store as unknown as { worker: Worker }).worker;
      const loading = store.load();
      await worker.terminate();
      await expect(loading).rejects.toMatchObject({ code: 'IOERR' });
      await expect(store.load()).rejects.toMatchObject({ code: 'IOERR' });
      await store.close();
      await expect(store.load()).rejects.toMatchObject({ code: 'CLOSED' });
      const reopened = await openSqliteCheckpoint(root);
      expect((await reopened.load()).appliedLsn).toBe(0);
      // A worker that dies while idle fences the store too: the next call must not hang.
      await (reopened as unknown as { worker: Worker }).worker.terminate();
      await expect(reopened.load()).rejects.toMatchObject({ code: 'IOERR' });
      await reopened.close();
    });
  });

  it('loads 200,000 keys complete and in order', async () => {
    await inTemporaryRoot(async (root) => {
      const store = await openSqliteCheckpoint(root);
      const count = 200_000;
      const batchSize = 50_000;
      for (let first = 0; first < count; first += batchSize) {
        const puts = [];
        for (let index = first; index < first + batchSize; index++) {
          // Descending keys across batches: the store, not the order of writing, sorts them.
          const key = Buffer.alloc(8);
          key.writeUInt32BE(count - 1 - index, 0);
          key.writeUInt32BE(index, 4);
          puts.push({ key, value: Buffer.alloc(index % 100, index % 251) });
        }
        const lsn = first / batchSize + 1;
        await store.apply({
          appliedLsn: lsn,
          puts,
          deletes: [],
          requestIds: [],
          requestIdsBelowLsnForget: 0,
        });
      }
      const loaded = await store.load();
      await store.close();
      expect(loaded.appliedLsn).toBe(count / batchSize);
      expect(loaded.entries).toHaveLength(count);
      let outOfOrder = 0;
      let wrong = 0;
      for (let position = 0; position < count; position++) {
        const entry = loaded.entries[position]!;
        const key = Buffer.from(entry.key.buffer, entry.key.byteOffset, entry.key.byteLength);
        if (key.readUInt32BE(0) !== position) outOfOrder++;
        const index = key.readUInt32BE(4);
        const value = entry.value;
        if (value.length !== index % 100 || !value.every((byte) => byte === index % 251)) wrong++;
      }
      expect(outOfOrder).toBe(0);
      expect(wrong).toBe(0);
    });
  });
});

/**
 * A child process applies batches in a loop, each writing every key with its own LSN, and
 * prints each LSN once its apply resolved. It is killed with SIGKILL at a moment that varies by
 * round. After reopening, every key must carry the stored appliedLsn (each transaction was
 * applied whole or not at all) and that LSN must be at least the last one acknowledged.
 */
describe('SQLite checkpoint: SIGKILL during apply', () => {
  const keys = 20_000;
  const childScript = (moduleUrl: string, root: string): string => `
    import { openSqliteCheckpoint } from ${JSON.stringify(moduleUrl)};
    const store = await openSqliteCheckpoint(${JSON.stringify(root)});
    for (let lsn = 1; lsn < 1_000_000; lsn++) {
      const puts = [];
      for (let index = 0; index < ${keys}; index++) {
        const key = Buffer.alloc(8);
        key.writeUInt32BE(index, 0);
        const value = Buffer.alloc(100, lsn % 256);
        value.writeUInt32BE(lsn, 0);
        puts.push({ key, value });
      }
      await store.apply({ appliedLsn: lsn, puts, deletes: [], requestIds: [],
        requestIdsBelowLsnForget: 0 });
      process.stdout.write(lsn + '\\n');
    }
  `;

  /** Runs the child until it acknowledged `acknowledgedMin` LSNs plus `delayMs`, then kills it. */
  async function runAndKill(root: string, delayMs: number): Promise<number> {
    const { spawn } = await import('node:child_process');
    const { createRequire } = await import('node:module');
    const { pathToFileURL } = await import('node:url');
    const moduleUrl = new URL('../../src/node/checkpoint-sqlite.ts', import.meta.url).href;
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const child = spawn(
      process.execPath,
      ['--import', tsx, '--input-type=module', '-e', childScript(moduleUrl, root)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let acknowledged = 0;
    let output = '';
    child.stdout.setEncoding('utf8');
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`child exited early (code ${code})`)));
      child.stdout.on('data', (text: string) => {
        output += text;
        const lines = output.split('\n');
        output = lines.pop() ?? '';
        for (const line of lines) acknowledged = Math.max(acknowledged, Number(line));
        if (acknowledged >= 1) resolve();
      });
    });
    await new Promise<void>((resolve) => setTimeout(resolve, delayMs));
    const acknowledgedAtKill = acknowledged;
    child.kill('SIGKILL');
    await exited;
    return acknowledgedAtKill;
  }

  it('leaves one whole transaction, never a mix, and keeps every acknowledged one', async () => {
    for (const delayMs of [0, 120, 350, 800]) {
      await inTemporaryRoot(async (root) => {
        const acknowledged = await runAndKill(root, delayMs);
        const store = await openSqliteCheckpoint(root);
        const loaded = await store.load();
        await store.close();
        const lsn = loaded.appliedLsn;
        expect(lsn, `delay ${delayMs}`).toBeGreaterThanOrEqual(acknowledged);
        expect(loaded.entries).toHaveLength(keys);
        const stale = loaded.entries.filter((entry) => {
          const value = Buffer.from(entry.value);
          return value.readUInt32BE(0) !== lsn || value[99] !== lsn % 256;
        });
        expect(stale.length, `delay ${delayMs}, lsn ${lsn}`).toBe(0);
      });
    }
  });
});
