import { assert } from '../assert.js';
import { crc32 } from '../checksum.js';
import { segmentHeaderBytes, segmentNameDigits } from '../limits.js';
import { readU64, writeU64 } from './frame.js';

/**
 * The first 64 bytes of every segment file. Little-endian.
 *
 * ```
 *  byte 0     4       8       10      12       16        24          32     36  40   48  64
 *       +-----+-------+-------+-------+--------+---------+-----------+------+---+----+---+
 *       | crc | magic |version|hdrLen |reserved|firstLsn |segmentSize| seed | 0 |term| 0 |
 *       | u32 |"SWAL" | u16=1 |u16=64 | u32=0  |  u64    |   u64     | u32  |   |u64 |   |
 *       +-----+-------+-------+-------+--------+---------+-----------+------+---+----+---+
 * ```
 *
 * - `crc` is CRC-32 of bytes [4, 64).
 * - `firstLsn` is the LSN of the first record in the segment (also its file name).
 * - `seed` is the chain seed: the checksum of the last record before this segment (0 for the
 *   first segment of a new log). The first record frame's `prevCrc` must equal it, so the chain
 *   can be verified from any segment on, even after older segments were deleted.
 * - `term` is the term seed: the term of the record before this segment when the writer knows
 *   it must hold (a log reset to a snapshot, `Log.resetTo`), else 0. The first record's term
 *   must not be below it, and an empty log reports it as its last term. It sits in bytes that
 *   were padding, written as zeros, so every older segment reads as term seed 0.
 * - Frames start at byte 64. The rest of the file is preallocated zeros.
 */
export const segmentMagic = 0x4c415753; // "SWAL" read as a little-endian u32
export const segmentFormatVersion = 1;

export interface SegmentHeader {
  firstLsn: number;
  segmentSizeBytes: number;
  chainSeed: number;
  /** The term of the record before this segment, when known (0: not known). */
  termSeed?: number;
}

export function encodeSegmentHeader(header: SegmentHeader): Uint8Array {
  assert(header.firstLsn >= 1, 'segments start at LSN 1 or later');
  assert(header.segmentSizeBytes > segmentHeaderBytes, 'segment larger than its header');
  const bytes = new Uint8Array(segmentHeaderBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(4, segmentMagic, true);
  view.setUint16(8, segmentFormatVersion, true);
  view.setUint16(10, segmentHeaderBytes, true);
  writeU64(view, 16, header.firstLsn);
  writeU64(view, 24, header.segmentSizeBytes);
  view.setUint32(32, header.chainSeed >>> 0, true);
  const termSeed = header.termSeed ?? 0;
  assert(Number.isSafeInteger(termSeed) && termSeed >= 0, 'term seed is a term');
  writeU64(view, 40, termSeed);
  view.setUint32(0, crc32(bytes.subarray(4)), true);
  return bytes;
}

export type SegmentHeaderDecode =
  { kind: 'ok'; header: SegmentHeader } | { kind: 'bad'; reason: string };

export function decodeSegmentHeader(bytes: Uint8Array): SegmentHeaderDecode {
  if (bytes.length < segmentHeaderBytes) return { kind: 'bad', reason: 'file shorter than header' };
  const view = new DataView(bytes.buffer, bytes.byteOffset, segmentHeaderBytes);
  if (crc32(bytes.subarray(4, segmentHeaderBytes)) !== view.getUint32(0, true)) {
    return { kind: 'bad', reason: 'segment header checksum mismatch' };
  }
  if (view.getUint32(4, true) !== segmentMagic) return { kind: 'bad', reason: 'bad magic' };
  const version = view.getUint16(8, true);
  if (version !== segmentFormatVersion) {
    return { kind: 'bad', reason: `unsupported format version ${version}` };
  }
  if (view.getUint16(10, true) !== segmentHeaderBytes) {
    return { kind: 'bad', reason: 'unexpected header length' };
  }
  const firstLsn = readU64(view, 16);
  const segmentSizeBytes = readU64(view, 24);
  if (firstLsn < 1) return { kind: 'bad', reason: 'first LSN out of range' };
  if (segmentSizeBytes <= segmentHeaderBytes) return { kind: 'bad', reason: 'bad segment size' };
  const termSeed = readU64(view, 40);
  if (termSeed < 0) return { kind: 'bad', reason: 'term seed out of range' };
  return {
    kind: 'ok',
    header: { firstLsn, segmentSizeBytes, chainSeed: view.getUint32(32, true), termSeed },
  };
}

const segmentNamePattern = new RegExp(`^(\\d{${segmentNameDigits}})\\.wal$`);

/** `00000000000000000001.wal`: the first LSN, fixed width, so names sort by LSN. */
export function segmentName(firstLsn: number): string {
  assert(Number.isSafeInteger(firstLsn) && firstLsn >= 1, 'segment first LSN in range');
  return `${String(firstLsn).padStart(segmentNameDigits, '0')}.wal`;
}

/** The first LSN a segment file name encodes, or null for any other file name. */
export function parseSegmentName(name: string): number | null {
  const match = segmentNamePattern.exec(name);
  if (match === null || match[1] === undefined) return null;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) && value >= 1 ? value : null;
}
