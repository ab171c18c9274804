import { crc32 } from '../core/checksum.js';
import { CorruptionError, diskError } from '../core/errors.js';
import { readU64, writeU64 } from '../core/format/frame.js';
import type { Disk } from '../ports/disk.js';

/**
 * A log reset (`Log.resetTo`, a replica installing a full sync) replaces every segment with one
 * empty segment that continues after a snapshot's LSN. Deleting the old segments and creating
 * the new one touches several files, so the decision is made durable first in this small file:
 * once it exists, recovery finishes the reset (roll forward) whatever else it finds; before it
 * exists, nothing of the old log was touched.
 *
 * Layout (32 bytes, little-endian):
 * u32 crc of bytes [4,32) | u32 magic "SRST" | u64 lsn | u32 checksum | u32 0 | u64 term.
 */
export const resetMarkerName = 'reset.marker';
const markerMagic = 0x54535253;
const markerBytes = 32;

/** Where a log starts: the record before its first (which the log need not hold). */
export interface LogBase {
  /** LSN of the record before the first; the next record appended gets lsn + 1. */
  lsn: number;
  /** Chain checksum of that record: the first record's prevChecksum. */
  checksum: number;
  /** Term of that record: no record of the log may have a lower term. */
  term: number;
}

export async function writeResetMarker(disk: Disk, walDir: string, base: LogBase) {
  const bytes = new Uint8Array(markerBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(4, markerMagic, true);
  writeU64(view, 8, base.lsn);
  view.setUint32(16, base.checksum >>> 0, true);
  writeU64(view, 24, base.term);
  view.setUint32(0, crc32(bytes.subarray(4)), true);
  const temporary = `${walDir}/${resetMarkerName}.tmp`;
  try {
    const handle = await disk.open(temporary, 'create');
    try {
      await handle.write([bytes], 0);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await disk.rename(temporary, `${walDir}/${resetMarkerName}`);
    await disk.syncDir(walDir);
  } catch (error: unknown) {
    throw diskError('reset marker', error);
  }
}

/** The reset a marker records, or null if there is no marker. */
export async function readResetMarker(disk: Disk, walDir: string): Promise<LogBase | null> {
  const path = `${walDir}/${resetMarkerName}`;
  const bytes = new Uint8Array(markerBytes);
  let count: number;
  try {
    if ((await disk.size(path)) === null) return null;
    const handle = await disk.open(path, 'read');
    try {
      count = await handle.read(bytes, 0, markerBytes, 0);
    } finally {
      await handle.close();
    }
  } catch (error: unknown) {
    throw diskError('read reset marker', error);
  }
  const view = new DataView(bytes.buffer);
  const base = {
    lsn: readU64(view, 8),
    checksum: view.getUint32(16, true),
    term: readU64(view, 24),
  };
  const valid =
    count === markerBytes &&
    view.getUint32(4, true) === markerMagic &&
    crc32(bytes.subarray(4)) === view.getUint32(0, true) &&
    view.getUint32(20, true) === 0 &&
    base.lsn >= 0 &&
    base.term >= 0;
  // Written to a temporary name, synced, then renamed: a durable name always has durable,
  // valid contents, so a bad marker is corruption, not a torn write.
  if (!valid) {
    throw new CorruptionError({ segment: resetMarkerName, offset: 0, lsn: null }, 'bad marker');
  }
  return base;
}

export async function removeResetMarker(disk: Disk, walDir: string): Promise<void> {
  try {
    await disk.remove(`${walDir}/${resetMarkerName}`);
    await disk.syncDir(walDir);
  } catch (error: unknown) {
    throw diskError('remove reset marker', error);
  }
}
