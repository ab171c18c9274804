/**
 * Bugs found while building wal-inspect, each pinned by a minimal test that fails until it is
 * fixed. Once fixed, a test here belongs with the tests of the module it covers.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CorruptionError, InvalidError, IoError } from '../../src/core/errors.js';
import { RecordType } from '../../src/core/format/frame.js';
import { NodeDisk } from '../../src/node/disk.js';
import { Log } from '../../src/storage/log.js';
import { scanLog } from '../../src/storage/scan-log.js';

const fixturesDir = fileURLToPath(new URL('../../fixtures', import.meta.url));

describe('found by wal-inspect', () => {
  it('errors.ts: instanceof a subclass is true only for that subclass', () => {
    // SyncwalError's static [Symbol.hasInstance] (the brand check) is inherited by every
    // subclass, so today any SyncwalError is an instance of every subclass.
    expect(new InvalidError('bad option') instanceof CorruptionError).toBe(false);
    expect(new IoError('read', 'EIO') instanceof InvalidError).toBe(false);
    expect(new InvalidError('bad option') instanceof InvalidError).toBe(true);
  });

  it('log.ts: close() never writes its SEAL past the end of a full segment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'found-by-inspect-'));
    try {
      const options = { dir, segmentSizeBytes: 4096, preallocate: false };
      const log = await Log.open(new NodeDisk(), options);
      // Header 64 + frame 64 = 128; then SEAL 32 + frame 3936 = exactly 4096: the segment is full.
      await log.append([{ type: RecordType.Checkpoint, term: 1, payload: new Uint8Array(32) }]);
      await log.append([{ type: RecordType.Checkpoint, term: 1, payload: new Uint8Array(3904) }]);
      await log.close();
      expect(statSync(join(dir, 'wal', '00000000000000000001.wal')).size).toBe(4096);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scan-log.ts: a bit flip in a rotated-away segment is @sealed-bad, not @gap', async () => {
    // fixtures/bit-flip: one payload bit flipped in LSN 55, in the middle of segment 2 of 3.
    // Nothing is missing, yet nextStatus() compares the next segment with the chain at the
    // damaged frame (LSN 55), sees 74, and reports 'gap': "records or a segment are missing".
    const scan = await scanLog(new NodeDisk(), join(fixturesDir, 'bit-flip', 'wal'));
    expect(scan.status).toBe('corrupt');
    expect(scan.problems[0]).toMatchObject({ offset: 2080, lsn: 55, label: '@sealed-bad' });
  });
});
