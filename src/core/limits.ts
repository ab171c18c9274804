import { assert } from './assert.js';

/**
 * Every bound in one place, units last. Module-load assertions relate them, so a change that
 * breaks a relationship fails at import, not in production.
 */

/** Bytes of the frame header (see format/frame.ts). */
export const frameHeaderBytes = 32;
/** Frames start on this alignment; the padding is zero and covered by the checksum. */
export const frameAlignmentBytes = 8;
/** Bytes of the segment header (see format/segment-header.ts). */
export const segmentHeaderBytes = 64;

/**
 * The largest record payload. A length field above it is never trusted (no allocation happens
 * for it): it marks the frame bad. 16 MiB leaves room for a batch of values at the engine's
 * value limit.
 */
export const recordPayloadBytesMax = 16 * 1024 * 1024;

/** Default segment size (DESIGN §2). */
export const segmentSizeBytesDefault = 64 * 1024 * 1024;
/** Tests use tiny segments; below this the header and one frame would not fit usefully. */
export const segmentSizeBytesMin = 4096;
/** Segment offsets are stored in u32 index arrays. */
export const segmentSizeBytesMax = 1024 * 1024 * 1024;

/** The most frames one group-commit write carries (bounds the write buffer and the wait). */
export const writeBatchRecordsMax = 65_536;
/** The most bytes one group-commit write carries. */
export const writeBatchBytesMax = 8 * 1024 * 1024;

/** Chunk used to zero-fill (preallocate) a segment. */
export const preallocateChunkBytes = 1024 * 1024;

/** Free space kept in reserve beyond one segment before preallocating another. */
export const freeSpaceReserveBytes = 16 * 1024 * 1024;

/** Segment names carry the first LSN in this many decimal digits, so names sort. */
export const segmentNameDigits = 20;

/** LSNs and terms are u64 on disk but must stay exact JS numbers in memory. */
export const lsnMax = Number.MAX_SAFE_INTEGER;

assert(frameHeaderBytes % frameAlignmentBytes === 0, 'frame header keeps alignment');
assert(segmentHeaderBytes % frameAlignmentBytes === 0, 'segment header keeps alignment');
assert(segmentSizeBytesMin > segmentHeaderBytes + 2 * frameHeaderBytes, 'a segment holds frames');
assert(segmentSizeBytesDefault >= segmentSizeBytesMin, 'default segment within bounds');
assert(segmentSizeBytesDefault <= segmentSizeBytesMax, 'default segment within bounds');
assert(recordPayloadBytesMax < 2 ** 32, 'payload length fits the u32 length field');
assert(writeBatchRecordsMax <= 2 ** 16, 'batches stay bounded');
assert(preallocateChunkBytes % 4096 === 0, 'preallocation writes whole pages');
