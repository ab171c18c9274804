import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/core/checksum.js';
import {
  RecordType,
  decodeFrame,
  encodeFrame,
  encodeFrameInto,
  frameBytesFor,
} from '../../src/core/format/frame.js';
import { locateSingleBitFlip, verifyBitFlip } from '../../src/core/format/bitflip.js';
import { frameHeaderBytes } from '../../src/core/limits.js';

function payloadOf(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed;
  for (let index = 0; index < length; index++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}

describe('checksum', () => {
  it('is CRC-32/IEEE (check value of "123456789")', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
  it('gives the same value from both implementations around the size threshold', () => {
    for (const length of [0, 1, 100, 1023, 1024, 5000]) {
      const bytes = payloadOf(length);
      const split = Math.floor(length / 2);
      // Continuing a checksum (seed) across a split equals the whole-buffer checksum.
      expect(crc32(bytes.subarray(split), crc32(bytes.subarray(0, split)))).toBe(crc32(bytes));
    }
  });
});

describe('frame codec', () => {
  const shapes = [0, 1, 7, 8, 100, 511, 4095, 4096];

  it('round-trips every payload shape', () => {
    for (const length of shapes) {
      const payload = payloadOf(length, length + 3);
      const { bytes, checksum } = encodeFrame({
        type: RecordType.Intent,
        term: 7,
        lsn: 2 ** 40 + 5,
        prevChecksum: 0xdeadbeef,
        payload,
      });
      expect(bytes.length).toBe(frameBytesFor(length));
      expect(bytes.length % 8).toBe(0);
      const decoded = decodeFrame(bytes, 0, bytes.length);
      expect(decoded.kind).toBe('ok');
      if (decoded.kind !== 'ok') continue;
      expect(decoded.frame.lsn).toBe(2 ** 40 + 5);
      expect(decoded.frame.term).toBe(7);
      expect(decoded.frame.checksum).toBe(checksum);
      expect(decoded.frame.prevChecksum).toBe(0xdeadbeef);
      expect(Array.from(decoded.frame.payload)).toEqual(Array.from(payload));
    }
  });

  it('reads zeroed space as the end, never as a record', () => {
    const zeros = new Uint8Array(64);
    expect(decodeFrame(zeros, 0, 64)).toEqual({ kind: 'end' });
    expect(decodeFrame(zeros, 56, 64)).toEqual({ kind: 'end' });
  });

  it('zeroes padding even when the target held garbage', () => {
    const target = new Uint8Array(64).fill(0xff);
    encodeFrameInto(target, 0, {
      type: RecordType.Commit,
      term: 1,
      lsn: 1,
      prevChecksum: 0,
      payload: payloadOf(3),
    });
    expect(Array.from(target.subarray(frameHeaderBytes + 3, 40))).toEqual([0, 0, 0, 0, 0]);
  });

  it('rejects a length beyond the segment before summing anything', () => {
    const { bytes } = encodeFrame({
      type: 1,
      term: 1,
      lsn: 1,
      prevChecksum: 0,
      payload: payloadOf(8),
    });
    new DataView(bytes.buffer).setUint32(8, 0xfffffff0, true);
    const decoded = decodeFrame(bytes, 0, bytes.length);
    expect(decoded.kind).toBe('bad');
  });

  it('detects every single-bit flip in every frame shape, and locates it', async () => {
    let flips = 0;
    for (const length of shapes) {
      // Seconds of work: let the test runner's messages through between shapes.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const { bytes } = encodeFrame({
        type: RecordType.Intent,
        term: 3,
        lsn: 99,
        prevChecksum: 0x1234,
        payload: payloadOf(length, length),
      });
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        const copy = bytes.slice();
        copy[bit >> 3] = (copy[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        const decoded = decodeFrame(copy, 0, copy.length);
        expect(decoded.kind, `bit ${bit} of a ${length}-byte frame`).not.toBe('ok');
        flips += 1;
        // Locating is O(frame bits) per flip; on the large shapes, sample every 13th bit.
        if (length >= 511 && bit % 13 !== 0) continue;
        const found = locateSingleBitFlip(copy, 0, copy.length);
        expect(found, `locate bit ${bit} of a ${length}-byte frame`).toEqual({
          byteOffset: bit >> 3,
          bit: bit & 7,
        });
        if (found !== null) expect(verifyBitFlip(copy, 0, copy.length, found)).toBe(true);
      }
    }
    expect(flips).toBeGreaterThan(70_000);
  });

  it('does not mistake a torn (zeroed) sector for a single flipped bit', () => {
    const { bytes } = encodeFrame({
      type: RecordType.Intent,
      term: 1,
      lsn: 1,
      prevChecksum: 0,
      payload: payloadOf(2000, 9),
    });
    const torn = bytes.slice();
    torn.fill(0, 512, 1024);
    expect(decodeFrame(torn, 0, torn.length).kind).toBe('bad');
    expect(locateSingleBitFlip(torn, 0, torn.length)).toBeNull();
  });
});
