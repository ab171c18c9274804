import { assert } from '../assert.js';
import { crc32 } from '../checksum.js';
import { frameAlignmentBytes, frameHeaderBytes, lsnMax, recordPayloadBytesMax } from '../limits.js';

/**
 * One log frame. All integers are little-endian; frames start on 8-byte boundaries.
 *
 * ```
 *  byte  0       4             8        12     13     14        16              24             32
 *        +-------+-------------+--------+------+------+---------+---------------+--------------+
 *        | crc   | prevCrc     | length | type | flags| reserved| term          | lsn          |
 *        | u32   | u32         | u32    | u8   | u8=0 | u16=0   | u64           | u64          |
 *        +-------+-------------+--------+------+------+---------+---------------+--------------+
 *  byte 32: payload (`length` bytes), then 0-7 zero bytes of padding to the next multiple of 8.
 * ```
 *
 * - `crc` is CRC-32 (IEEE, see checksum.ts) of every byte of the frame after the crc field:
 *   bytes [4, 32 + length + padding). The padding is covered, so a flipped padding bit is caught.
 * - `prevCrc` chains the frame to the record before it: it equals that record frame's `crc`
 *   (the first record of a log takes the segment header's chain seed). A reordered, replayed or
 *   misdirected frame breaks the chain even though its own crc is fine.
 * - `type` 0 is invalid: zeroed, preallocated space reads as the end of the log, never as a
 *   record.
 * - The length is checked against `recordPayloadBytesMax` and the space left in the segment
 *   before anything is allocated or summed.
 *
 * A frame is self-validating (its crc covers only its own bytes), so a scanner can recognise a
 * valid frame anywhere, and verifies the chain separately. That is what lets recovery tell a
 * torn tail from corruption (see recovery/plan.ts).
 */
export const RecordType = Object.freeze({
  /** An atomic batch of put/delete effects plus an optional request id. */
  Intent: 1,
  /** Commit point: every intent with LSN <= it is committed unless aborted. */
  Commit: 2,
  /** A range of intents rolled back. */
  Abort: 3,
  /** A new primary's first record: term and primary id. */
  Term: 4,
  /** Informational: a checkpoint reached this LSN. */
  Checkpoint: 5,
  /**
   * Local, never replicated and outside the LSN sequence: written at the start of a write to
   * vouch that everything up to `lsn` was durable (fdatasync returned) before this write began.
   */
  Seal: 15,
} as const);
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

const recordTypeNames = new Map<number, string>([
  [RecordType.Intent, 'INTENT'],
  [RecordType.Commit, 'COMMIT'],
  [RecordType.Abort, 'ABORT'],
  [RecordType.Term, 'TERM'],
  [RecordType.Checkpoint, 'CHECKPOINT'],
  [RecordType.Seal, 'SEAL'],
]);

export function isRecordType(value: number): value is RecordType {
  return recordTypeNames.has(value);
}

export function recordTypeName(type: number): string {
  return recordTypeNames.get(type) ?? `TYPE_${type}`;
}

export function recordTypeFromName(name: string): RecordType | null {
  for (const [type, typeName] of recordTypeNames) {
    if (typeName === name.toUpperCase()) return type as RecordType;
  }
  return null;
}

export interface FrameFields {
  type: RecordType;
  term: number;
  lsn: number;
  prevChecksum: number;
  payload: Uint8Array;
}

/** A decoded, self-valid frame. `payload` is a view into the scanned buffer. */
export interface Frame {
  type: RecordType;
  term: number;
  lsn: number;
  checksum: number;
  prevChecksum: number;
  payload: Uint8Array;
  /** Total bytes including header and padding. */
  frameBytes: number;
}

export type FrameDecode =
  { kind: 'ok'; frame: Frame } | { kind: 'end' } | { kind: 'bad'; reason: string };

/** Bytes a frame with this payload occupies, padding included. */
export function frameBytesFor(payloadBytes: number): number {
  assert(payloadBytes >= 0, 'payload length is non-negative');
  const raw = frameHeaderBytes + payloadBytes;
  return Math.ceil(raw / frameAlignmentBytes) * frameAlignmentBytes;
}

function writeU64(view: DataView, at: number, value: number): void {
  assert(Number.isSafeInteger(value) && value >= 0, `u64 field out of range: ${value}`);
  view.setUint32(at, value % 2 ** 32, true);
  view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

/** Reads a u64 as an exact number, or -1 if it does not fit a safe integer. */
function readU64(view: DataView, at: number): number {
  const low = view.getUint32(at, true);
  const high = view.getUint32(at + 4, true);
  if (high >= 2 ** 21) return -1;
  return high * 2 ** 32 + low;
}

export { readU64, writeU64 };

/**
 * Encodes a frame into `target` at `offset` (which must be 8-aligned and have room) and returns
 * its checksum. Every byte of the frame is written, padding included, so no stale memory leaks
 * to disk even if `target` came from Buffer.allocUnsafe.
 */
export function encodeFrameInto(target: Uint8Array, offset: number, fields: FrameFields): number {
  const total = frameBytesFor(fields.payload.length);
  assert(offset % frameAlignmentBytes === 0, 'frames are 8-aligned');
  assert(offset + total <= target.length, 'target has room for the frame');
  assert(fields.payload.length <= recordPayloadBytesMax, 'payload within limit');
  // Constant messages: a template literal here would be built on every call of the hot path.
  assert(isRecordType(fields.type), 'known record type');
  assert(Number.isSafeInteger(fields.lsn) && fields.lsn >= 0 && fields.lsn <= lsnMax, 'lsn');
  assert(Number.isSafeInteger(fields.term) && fields.term >= 0, 'term in range');
  // Byte stores instead of a DataView: this runs once per record on the append path, and a
  // DataView per frame costs more than the checksum of a 100-byte record.
  storeU32(target, offset + 4, fields.prevChecksum);
  storeU32(target, offset + 8, fields.payload.length);
  target[offset + 12] = fields.type;
  target[offset + 13] = 0;
  target[offset + 14] = 0;
  target[offset + 15] = 0;
  storeU64(target, offset + 16, fields.term);
  storeU64(target, offset + 24, fields.lsn);
  target.set(fields.payload, offset + frameHeaderBytes);
  target.fill(0, offset + frameHeaderBytes + fields.payload.length, offset + total);
  const checksum = crc32(target.subarray(offset + 4, offset + total));
  storeU32(target, offset, checksum);
  return checksum;
}

function storeU32(target: Uint8Array, at: number, value: number): void {
  target[at] = value & 0xff;
  target[at + 1] = (value >>> 8) & 0xff;
  target[at + 2] = (value >>> 16) & 0xff;
  target[at + 3] = (value >>> 24) & 0xff;
}

function storeU64(target: Uint8Array, at: number, value: number): void {
  storeU32(target, at, value % 2 ** 32);
  storeU32(target, at + 4, Math.floor(value / 2 ** 32));
}

export function encodeFrame(fields: FrameFields): { bytes: Uint8Array; checksum: number } {
  const bytes = new Uint8Array(frameBytesFor(fields.payload.length));
  const checksum = encodeFrameInto(bytes, 0, fields);
  return { bytes, checksum };
}

function isZero(bytes: Uint8Array, from: number, to: number): boolean {
  for (let index = from; index < to; index++) if (bytes[index] !== 0) return false;
  return true;
}

/**
 * Decodes the frame at `offset`, looking no further than `limit` (the end of the segment's
 * readable bytes). Checks only what the frame itself can prove: header sanity, length bounds,
 * zero padding and the checksum. Chain and LSN continuity are the scanner's job.
 */
export function decodeFrame(bytes: Uint8Array, offset: number, limit: number): FrameDecode {
  assert(offset % frameAlignmentBytes === 0, 'frames are 8-aligned');
  assert(limit <= bytes.length, 'limit within buffer');
  const headerEnd = Math.min(offset + frameHeaderBytes, limit);
  if (isZero(bytes, offset, headerEnd)) return { kind: 'end' };
  if (offset + frameHeaderBytes > limit) return { kind: 'bad', reason: 'header past segment end' };
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, frameHeaderBytes);
  const length = view.getUint32(8, true);
  const type = view.getUint8(12);
  if (length > recordPayloadBytesMax) return { kind: 'bad', reason: `length ${length} too large` };
  const total = frameBytesFor(length);
  if (offset + total > limit) return { kind: 'bad', reason: `length ${length} past segment end` };
  const checksum = view.getUint32(0, true);
  if (crc32(bytes.subarray(offset + 4, offset + total)) !== checksum) {
    return { kind: 'bad', reason: 'checksum mismatch' };
  }
  // The checksum matched, so the remaining checks can only fail for a frame written by a buggy
  // or foreign writer; they still must not be trusted.
  if (!isRecordType(type)) return { kind: 'bad', reason: `unknown record type ${type}` };
  if (view.getUint8(13) !== 0 || view.getUint16(14, true) !== 0) {
    return { kind: 'bad', reason: 'reserved header bits set' };
  }
  if (!isZero(bytes, offset + frameHeaderBytes + length, offset + total)) {
    return { kind: 'bad', reason: 'non-zero padding' };
  }
  const term = readU64(view, 16);
  const lsn = readU64(view, 24);
  if (term < 0 || lsn < 0) return { kind: 'bad', reason: 'term or lsn beyond 2^53' };
  const payloadStart = offset + frameHeaderBytes;
  const frame: Frame = {
    type,
    term,
    lsn,
    checksum,
    prevChecksum: view.getUint32(4, true),
    payload: bytes.subarray(payloadStart, payloadStart + length),
    frameBytes: total,
  };
  return { kind: 'ok', frame };
}
