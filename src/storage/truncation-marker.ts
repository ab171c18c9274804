import { crc32 } from '../core/checksum.js';
import { CorruptionError, diskError } from '../core/errors.js';
import { readU64, writeU64 } from '../core/format/frame.js';
import type { Disk } from '../ports/disk.js';

/**
 * A suffix truncation (dropping a divergent tail) touches several files: later segments are
 * removed and the cut segment is zeroed from the cut on. A crash in the middle must not leave
 * a state that reads as corruption or brings dropped records back, so the intent is made
 * durable first in this small file and honoured by recovery until the truncation is complete.
 *
 * Layout (16 bytes, little-endian): u32 crc of bytes [4,16) | u32 magic "STRC" | u64 lsnLast.
 */
export const truncationMarkerName = 'truncate.marker';
const markerMagic = 0x43525453;

export async function writeTruncationMarker(disk: Disk, walDir: string, lsnLast: number) {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setUint32(4, markerMagic, true);
  writeU64(view, 8, lsnLast);
  view.setUint32(0, crc32(bytes.subarray(4)), true);
  const temporary = `${walDir}/${truncationMarkerName}.tmp`;
  try {
    const handle = await disk.open(temporary, 'create');
    try {
      await handle.write([bytes], 0);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await disk.rename(temporary, `${walDir}/${truncationMarkerName}`);
    await disk.syncDir(walDir);
  } catch (error: unknown) {
    throw diskError('truncation marker', error);
  }
}

export async function readTruncationMarker(disk: Disk, walDir: string): Promise<number> {
  const path = `${walDir}/${truncationMarkerName}`;
  const bytes = new Uint8Array(16);
  let count: number;
  try {
    const handle = await disk.open(path, 'read');
    try {
      count = await handle.read(bytes, 0, 16, 0);
    } finally {
      await handle.close();
    }
  } catch (error: unknown) {
    throw diskError('read truncation marker', error);
  }
  const view = new DataView(bytes.buffer);
  const valid =
    count === 16 &&
    view.getUint32(4, true) === markerMagic &&
    crc32(bytes.subarray(4)) === view.getUint32(0, true) &&
    readU64(view, 8) >= 0;
  // The marker is written to a temporary name, synced, then renamed: a durable name always has
  // durable, valid contents, so a bad marker is corruption, not a torn write.
  if (!valid) {
    throw new CorruptionError(
      { segment: truncationMarkerName, offset: 0, lsn: null },
      'bad marker',
    );
  }
  return readU64(view, 8);
}

export async function removeTruncationMarker(disk: Disk, walDir: string): Promise<void> {
  try {
    await disk.remove(`${walDir}/${truncationMarkerName}`);
    await disk.syncDir(walDir);
  } catch (error: unknown) {
    throw diskError('remove truncation marker', error);
  }
}
