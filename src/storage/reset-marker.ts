import { readU64, writeU64 } from '../core/format/frame.js';
import type { Disk } from '../ports/disk.js';
import { readMarker, removeMarker, writeMarker } from './marker-file.js';

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

const kind = { name: resetMarkerName, magic: markerMagic, bytes: markerBytes };

export async function writeResetMarker(disk: Disk, walDir: string, base: LogBase) {
  await writeMarker(disk, walDir, kind, (view) => {
    writeU64(view, 8, base.lsn);
    view.setUint32(16, base.checksum >>> 0, true);
    writeU64(view, 24, base.term);
  });
}

/** The reset a marker records, or null if there is no marker. */
export async function readResetMarker(disk: Disk, walDir: string): Promise<LogBase | null> {
  const view = await readMarker(disk, walDir, kind, {
    optional: true,
    valid: (fields) =>
      fields.getUint32(20, true) === 0 && readU64(fields, 8) >= 0 && readU64(fields, 24) >= 0,
  });
  if (view === null) return null;
  return { lsn: readU64(view, 8), checksum: view.getUint32(16, true), term: readU64(view, 24) };
}

export async function removeResetMarker(disk: Disk, walDir: string): Promise<void> {
  await removeMarker(disk, walDir, kind);
}
