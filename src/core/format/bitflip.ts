import { assert } from '../assert.js';
import { crc32, crc32PolynomialReflected } from '../checksum.js';
import { frameHeaderBytes } from '../limits.js';
import { decodeFrame, frameBytesFor } from './frame.js';

/**
 * Locates a single flipped bit in a frame whose checksum fails, or returns null.
 *
 * Why: a crash can only tear a write that was in flight, and a tear damages whole sectors (they
 * keep old bytes, zeros or garbage). Bit rot in data that was already durable typically changes
 * one bit. The last write of a log has no later write vouching for it (see SEAL in frame.ts),
 * so this is how recovery tells "the last, acknowledged batch rotted" (corruption: refuse to
 * open) from "the last batch was torn by the crash" (truncate).
 *
 * How: CRC-32 is linear. For a fixed length, crc(m xor e) xor crc(m) depends only on e; for a
 * single bit at distance d bits from the end it is step^d(poly), where step is one shift of the
 * reflected CRC register. So walking d upward finds the position whose syndrome matches, in
 * O(frame bits). A flip inside the stored crc field leaves a one-bit syndrome; a flip inside the
 * length field changes the covered range, so those 32 candidates are tried directly.
 */
const locateBytesMax = 1024 * 1024;

export interface BitFlip {
  /** Byte offset of the flipped bit, relative to the frame start. */
  byteOffset: number;
  /** Bit within that byte, 0 = least significant. */
  bit: number;
}

export function locateSingleBitFlip(
  bytes: Uint8Array,
  offset: number,
  limit: number,
): BitFlip | null {
  if (offset + frameHeaderBytes > limit) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, frameHeaderBytes);
  const found = locateInCoveredRange(bytes, offset, limit, view);
  if (found !== null) return found;
  return locateInLengthField(bytes, offset, limit, view);
}

function locateInCoveredRange(
  bytes: Uint8Array,
  offset: number,
  limit: number,
  view: DataView,
): BitFlip | null {
  const total = frameBytesFor(view.getUint32(8, true));
  if (offset + total > limit || total > locateBytesMax) return null;
  const syndrome =
    (crc32(bytes.subarray(offset + 4, offset + total)) ^ view.getUint32(0, true)) >>> 0;
  if (syndrome === 0) return null;
  if ((syndrome & (syndrome - 1)) === 0) {
    const bit = 31 - Math.clz32(syndrome);
    return { byteOffset: Math.floor(bit / 8), bit: bit % 8 };
  }
  const messageBits = (total - 4) * 8;
  let register = crc32PolynomialReflected;
  for (let distance = 0; distance < messageBits; distance++) {
    if (register === syndrome) {
      const position = messageBits - 1 - distance;
      return { byteOffset: 4 + Math.floor(position / 8), bit: position % 8 };
    }
    register = (register & 1 ? (register >>> 1) ^ crc32PolynomialReflected : register >>> 1) >>> 0;
  }
  return null;
}

function locateInLengthField(
  bytes: Uint8Array,
  offset: number,
  limit: number,
  view: DataView,
): BitFlip | null {
  const length = view.getUint32(8, true);
  for (let bit = 0; bit < 32; bit++) {
    const candidate = (length ^ (1 << bit)) >>> 0;
    const total = frameBytesFor(candidate);
    if (offset + total > limit || total > locateBytesMax) continue;
    const copy = bytes.slice(offset, offset + total);
    new DataView(copy.buffer).setUint32(8, candidate, true);
    if (decodeFrame(copy, 0, copy.length).kind === 'ok') {
      return { byteOffset: 8 + Math.floor(bit / 8), bit: bit % 8 };
    }
  }
  return null;
}

/** Test helper and pair-assertion: flipping the located bit must yield a valid frame. */
export function verifyBitFlip(bytes: Uint8Array, offset: number, limit: number, flip: BitFlip) {
  const copy = bytes.slice(offset, limit);
  const index = flip.byteOffset;
  assert(index < copy.length, 'flip inside the frame');
  copy[index] = (copy[index] ?? 0) ^ (1 << flip.bit);
  return decodeFrame(copy, 0, copy.length).kind === 'ok';
}
