import { assert } from '../assert.js';
import { locateSingleBitFlip } from '../format/bitflip.js';
import { RecordType, decodeFrame, type Frame } from '../format/frame.js';
import { frameAlignmentBytes, frameHeaderBytes, segmentHeaderBytes } from '../limits.js';

/**
 * Pure scanning of one segment's bytes: walks frames from the first frame offset, checks each
 * against the chain (LSN continuity, prevCrc, terms never decreasing) and stops at the first
 * place that is not the expected next frame. What that stop means is decided by plan.ts from
 * the evidence gathered by `gatherEvidence`.
 */
export interface ChainState {
  /** LSN the next record frame must carry. */
  expectedLsn: number;
  /** The crc of the last record frame (or the segment's chain seed). */
  prevChecksum: number;
  /** Term of the last record; terms never decrease along the log. */
  lastTerm: number;
}

export interface ScannedFrame {
  offset: number;
  frame: Frame;
}

export type ScanStop =
  { kind: 'end'; offset: number } | { kind: 'bad'; offset: number; reason: string };

export interface SegmentScan {
  /** Record and SEAL frames in order, all valid and chained. */
  frames: ScannedFrame[];
  /** Offset just past the last valid frame. */
  endOffset: number;
  stop: ScanStop;
  chain: ChainState;
}

/** Checks a self-valid frame against the chain; returns the reason it does not fit, or null. */
export function chainMismatch(frame: Frame, chain: ChainState): string | null {
  if (frame.type === RecordType.Seal) {
    if (frame.lsn !== chain.expectedLsn - 1) return `seal for lsn ${frame.lsn} out of place`;
    if (frame.prevChecksum !== chain.prevChecksum) return 'seal does not match the chain';
    return null;
  }
  if (frame.lsn !== chain.expectedLsn)
    return `lsn ${frame.lsn} where ${chain.expectedLsn} expected`;
  if (frame.prevChecksum !== chain.prevChecksum) return 'chain checksum mismatch';
  if (frame.term < chain.lastTerm) return `term ${frame.term} below previous ${chain.lastTerm}`;
  return null;
}

export function advanceChain(frame: Frame, chain: ChainState): ChainState {
  if (frame.type === RecordType.Seal) return chain;
  return { expectedLsn: frame.lsn + 1, prevChecksum: frame.checksum, lastTerm: frame.term };
}

/**
 * Scans frames in `bytes[start, limit)`. `onFrame` sees each valid frame as it is found (so a
 * caller can stream without keeping them); frames are also collected unless `collect` is false.
 */
export function scanSegment(
  bytes: Uint8Array,
  options: {
    start?: number;
    limit: number;
    chain: ChainState;
    collect?: boolean;
    lsnStop?: number;
    onFrame?: (scanned: ScannedFrame) => void;
  },
): SegmentScan {
  let offset = options.start ?? segmentHeaderBytes;
  let chain = options.chain;
  const frames: ScannedFrame[] = [];
  const iterationsMax = Math.ceil(options.limit / frameAlignmentBytes) + 1;
  for (let iteration = 0; iteration < iterationsMax; iteration++) {
    // A log truncated at lsnStop ignores what follows it (truncation marker in progress).
    if (options.lsnStop !== undefined && chain.expectedLsn > options.lsnStop) {
      return { frames, endOffset: offset, stop: { kind: 'end', offset }, chain };
    }
    if (offset >= options.limit) {
      return { frames, endOffset: offset, stop: { kind: 'end', offset }, chain };
    }
    const decoded = decodeFrame(bytes, offset, options.limit);
    if (decoded.kind === 'end') {
      return { frames, endOffset: offset, stop: { kind: 'end', offset }, chain };
    }
    if (decoded.kind === 'bad') {
      return {
        frames,
        endOffset: offset,
        stop: { kind: 'bad', offset, reason: decoded.reason },
        chain,
      };
    }
    const mismatch = chainMismatch(decoded.frame, chain);
    if (mismatch !== null) {
      return { frames, endOffset: offset, stop: { kind: 'bad', offset, reason: mismatch }, chain };
    }
    const scanned = { offset, frame: decoded.frame };
    options.onFrame?.(scanned);
    if (options.collect !== false) frames.push(scanned);
    chain = advanceChain(decoded.frame, chain);
    offset += decoded.frame.frameBytes;
  }
  assert(false, 'segment scan exceeded its iteration bound');
}

export interface LaterFrames {
  /** A valid SEAL whose LSN is at least `expectedLsn`. */
  sealCovers: boolean;
  /**
   * A valid record with exactly the expected LSN and chain where the write that should have
   * put it at the stop offset could not have: the signature of a misdirected write.
   */
  strayCopy: boolean;
  /** Any valid record with LSN >= expectedLsn. */
  records: boolean;
  /** Offset of the first self-valid frame found, or null (used by --continue to resync). */
  firstValidOffset: number | null;
}

/**
 * Looks at every 8-aligned offset in `bytes[from, limit)` for self-valid frames, whatever the
 * chain says, and reports what they prove about the place that stopped the scan
 * (`stopOffset`).
 *
 * The expected record found at `stopOffset + 32` is not a stray copy: the write that should
 * have continued the log at `stopOffset` starts with a 32-byte SEAL, so that is where its
 * first record belongs. If the SEAL's sector was lost in a crash and the record's was not,
 * that is an ordinary torn write (found by the simulation, seed 403). A misdirected write
 * lands whole sectors away.
 */
export function findLaterFrames(
  bytes: Uint8Array,
  from: number,
  limit: number,
  chain: ChainState,
  stopOffset: number = from,
): LaterFrames {
  const found: LaterFrames = {
    sealCovers: false,
    strayCopy: false,
    records: false,
    firstValidOffset: null,
  };
  let offset = from;
  while (offset + frameHeaderBytes <= limit) {
    // Fast path through zeroed space: a frame with type 0 is never valid.
    if (bytes[offset + 12] === 0) {
      offset += frameAlignmentBytes;
      continue;
    }
    const decoded = decodeFrame(bytes, offset, limit);
    if (decoded.kind !== 'ok') {
      offset += frameAlignmentBytes;
      continue;
    }
    const frame = decoded.frame;
    found.firstValidOffset ??= offset;
    if (frame.type === RecordType.Seal && frame.lsn >= chain.expectedLsn) found.sealCovers = true;
    if (frame.type !== RecordType.Seal && frame.lsn >= chain.expectedLsn) found.records = true;
    const inPlace = offset === stopOffset || offset === stopOffset + frameHeaderBytes;
    const expected = frame.lsn === chain.expectedLsn && frame.prevChecksum === chain.prevChecksum;
    if (expected && frame.type !== RecordType.Seal && !inPlace) found.strayCopy = true;
    offset += frame.frameBytes;
  }
  return found;
}

/** Smallest unit a crash tears (DESIGN and the simulated disk use 512-byte sectors). */
const sectorBytes = 512;

/**
 * Whether one flipped bit explains the bad frame at `offset` (see format/bitflip.ts) in a way
 * a crash cannot. A torn write leaves whole sectors with their old bytes, which at the tail of
 * a log are zeros (preallocated or zeroed by truncation). So if the bytes of the sector holding
 * the flipped bit (from the frame start on) are all zero now, the sector may simply never have
 * been written, and its intended bytes may have had a single set bit (an LSN of 1, a small
 * length): that is a tear, not bit rot (found by the simulation, seed 159). Only a flip in a
 * sector that visibly holds written data counts as rot.
 */
export function explainedByBitFlip(bytes: Uint8Array, offset: number, limit: number): boolean {
  const flip = locateSingleBitFlip(bytes, offset, limit);
  if (flip === null) return false;
  const at = offset + flip.byteOffset;
  const sectorStart = Math.max(offset, Math.floor(at / sectorBytes) * sectorBytes);
  const sectorEnd = Math.min(limit, Math.floor(at / sectorBytes) * sectorBytes + sectorBytes);
  for (let index = sectorStart; index < sectorEnd; index++) if (bytes[index] !== 0) return true;
  return false;
}
