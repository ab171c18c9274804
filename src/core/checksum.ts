import CRC32 from 'crc-32';
import { crc32 as zlibCrc32 } from 'node:zlib';

/**
 * CRC-32 as in zlib, gzip and PNG: the IEEE 802.3 polynomial 0x04C11DB7 (reflected form
 * 0xEDB88320), initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF, bits processed LSB first.
 * `crc32(bytes("123456789")) === 0xCBF43926`.
 *
 * Two implementations give identical values: the npm `crc-32` package is faster on small
 * inputs (~100 bytes), node:zlib's native crc32 on large ones (DESIGN §8), so this picks by
 * length. This file is the one place in src/core allowed a node: import, because zlib.crc32 is
 * a pure function.
 */
const nativeThresholdBytes = 1024;

export function crc32(bytes: Uint8Array, seed = 0): number {
  if (bytes.length >= nativeThresholdBytes) return zlibCrc32(bytes, seed) >>> 0;
  return CRC32.buf(bytes, seed) >>> 0;
}

/** The reflected polynomial, for the bit-flip locator (format/bitflip.ts). */
export const crc32PolynomialReflected = 0xedb88320;
