import { readU64, writeU64 } from '../core/format/frame.js';
import type { Disk } from '../ports/disk.js';
import { readMarker, removeMarker, writeMarker } from './marker-file.js';

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

const kind = { name: truncationMarkerName, magic: markerMagic, bytes: 16 };

export async function writeTruncationMarker(disk: Disk, walDir: string, lsnLast: number) {
  await writeMarker(disk, walDir, kind, (view) => writeU64(view, 8, lsnLast));
}

export async function readTruncationMarker(disk: Disk, walDir: string): Promise<number> {
  const view = await readMarker(disk, walDir, kind, {
    optional: false,
    valid: (fields) => readU64(fields, 8) >= 0,
  });
  return view === null ? 0 : readU64(view, 8);
}

export async function removeTruncationMarker(disk: Disk, walDir: string): Promise<void> {
  await removeMarker(disk, walDir, kind);
}
