import { assert } from '../core/assert.js';
import { diskError } from '../core/errors.js';
import { RecordType, decodeFrame } from '../core/format/frame.js';
import {
  decodeSegmentHeader,
  parseSegmentName,
  type SegmentHeader,
} from '../core/format/segment-header.js';
import { decide, type Evidence } from '../core/recovery/plan.js';
import {
  explainedByBitFlip,
  findLaterFrames,
  scanSegment,
  type ChainState,
  type LaterFrames,
  type ScannedFrame,
  type ScanStop,
} from '../core/recovery/scan.js';
import { frameAlignmentBytes, segmentHeaderBytes, segmentSizeBytesMax } from '../core/limits.js';
import type { Disk } from '../ports/disk.js';
import { readResetMarker, resetMarkerName, type LogBase } from './reset-marker.js';
import { readTruncationMarker, truncationMarkerName } from './truncation-marker.js';

/**
 * Reads a log directory segment by segment and classifies it with the recovery decision table
 * (core/recovery/plan.ts). Used read-only by wal-inspect and by Log.open before it repairs a
 * torn tail. Never writes.
 */
export interface SegmentSummary {
  name: string;
  firstLsn: number;
  header: SegmentHeader | null;
  fileBytes: number;
  /** Offset just past the last valid frame. */
  endOffset: number;
  records: number;
  /** Last record LSN in this segment, or firstLsn - 1 if it holds none. */
  lastLsn: number;
  /** Chain state after this segment's last valid frame. */
  chainEnd: ChainState;
  /** Offsets of record frames (index = lsn - firstLsn); filled only with `index: true`. */
  recordOffsets: number[];
}

export type ProblemKind = 'torn' | 'corrupt';

export interface LogProblem {
  segment: string;
  offset: number;
  /** The LSN expected at that place, if known. */
  lsn: number | null;
  kind: ProblemKind;
  /** Decision-table label (plan.ts), e.g. '@torn' or '@bit-rot'. */
  label: string;
  reason: string;
}

export interface LogScan {
  status: 'clean' | 'torn' | 'corrupt';
  segments: SegmentSummary[];
  records: number;
  firstLsn: number | null;
  lastLsn: number | null;
  problems: LogProblem[];
  /** For a torn tail: where to cut and how far the damaged bytes reach. */
  tornTail: { segmentIndex: number; offset: number; dirtyEnd: number } | null;
  /** An unfinished suffix truncation found on disk (records above it are ignored). */
  truncationMarkerLsn: number | null;
  /**
   * An unfinished log reset found on disk (Log.resetTo): the log is decided to be empty after
   * this base, and recovery finishes the reset, so no segment is scanned.
   */
  resetMarker: LogBase | null;
  /** Files in the directory that are neither segments nor known auxiliary files. */
  strayFiles: string[];
}

export interface ScanOptions {
  continueOnCorruption?: boolean;
  index?: boolean;
  onFrame?: (segment: string, scanned: ScannedFrame) => void;
}

export async function listSegments(disk: Disk, walDir: string) {
  const names = await disk.list(walDir).catch((error: unknown) => {
    throw diskError('list', error);
  });
  const segments: { name: string; firstLsn: number }[] = [];
  const strayFiles: string[] = [];
  for (const name of names) {
    const firstLsn = parseSegmentName(name);
    if (firstLsn !== null) segments.push({ name, firstLsn });
    else if (name === truncationMarkerName || name === resetMarkerName) continue;
    else if (!name.endsWith('.tmp')) strayFiles.push(name);
  }
  return {
    segments,
    strayFiles,
    hasMarker: names.includes(truncationMarkerName),
    hasResetMarker: names.includes(resetMarkerName),
  };
}

export async function readWholeFile(disk: Disk, path: string): Promise<Uint8Array> {
  const size = (await disk.size(path)) ?? 0;
  assert(size <= segmentSizeBytesMax + segmentHeaderBytes, `file ${path} larger than any segment`);
  const handle = await disk.open(path, 'read').catch((error: unknown) => {
    throw diskError('open', error);
  });
  try {
    const bytes = new Uint8Array(size);
    let filled = 0;
    for (let attempt = 0; filled < size && attempt < 1024; attempt++) {
      const count = await handle.read(bytes, filled, size - filled, filled);
      if (count === 0) break;
      filled += count;
    }
    return bytes.subarray(0, filled);
  } catch (error: unknown) {
    throw diskError('read', error);
  } finally {
    await handle.close();
  }
}

interface Loaded {
  name: string;
  firstLsn: number;
  bytes: Uint8Array;
  header: SegmentHeader | null;
  headerProblem: string | null;
}

async function loadSegment(disk: Disk, walDir: string, entry: { name: string; firstLsn: number }) {
  const bytes = await readWholeFile(disk, `${walDir}/${entry.name}`);
  const decoded = decodeSegmentHeader(bytes);
  let header: SegmentHeader | null = null;
  let headerProblem: string | null = null;
  if (decoded.kind === 'bad') headerProblem = decoded.reason;
  else if (decoded.header.firstLsn !== entry.firstLsn) {
    headerProblem = `header names LSN ${decoded.header.firstLsn}, file name ${entry.firstLsn}`;
  } else header = decoded.header;
  const loaded: Loaded = { ...entry, bytes, header, headerProblem };
  return loaded;
}

function segmentLimit(loaded: Loaded): number {
  const size = loaded.header?.segmentSizeBytes ?? loaded.bytes.length;
  return Math.min(size, loaded.bytes.length);
}

/** Zeros to compare against, a chunk at a time. */
const zeroChunk = new Uint8Array(64 * 1024);

/**
 * The end of the damaged bytes after `from`: the last non-zero byte, rounded up to 8, or `from`
 * if there is none. A 64 MiB segment is mostly zeros past the end of the log, so it compares
 * whole chunks against zeros backwards (a native memcmp: milliseconds for a segment, where a
 * loop in JavaScript took tens of them) and looks at single bytes only in the chunk that is not
 * all zero.
 */
export function dirtyEndAfter(bytes: Uint8Array, from: number, limit: number): number {
  let end = limit;
  for (let chunks = 0; end > from && chunks <= limit / zeroChunk.length; chunks++) {
    const start = Math.max(from, end - zeroChunk.length);
    const chunk = bytes.subarray(start, end);
    if (Buffer.compare(chunk, zeroChunk.subarray(0, end - start)) !== 0) break;
    end = start;
  }
  for (let index = end - 1; index >= from; index--) {
    if (bytes[index] !== 0)
      return Math.min(limit, Math.ceil((index + 1) / frameAlignmentBytes) * 8);
  }
  return from;
}

/** What `findLaterFrames` reports about bytes that are all zero: nothing. */
const nothingLater: LaterFrames = {
  sealCovers: false,
  strayCopy: false,
  records: false,
  firstValidOffset: null,
};

export async function scanLog(
  disk: Disk,
  walDir: string,
  options: ScanOptions = {},
): Promise<LogScan> {
  const listing = await listSegments(disk, walDir);
  const markerLsn = listing.hasMarker ? await readTruncationMarker(disk, walDir) : null;
  const resetMarker = listing.hasResetMarker ? await readResetMarker(disk, walDir) : null;
  const result: LogScan = {
    status: 'clean',
    segments: [],
    records: 0,
    firstLsn: null,
    lastLsn: null,
    problems: [],
    tornTail: null,
    truncationMarkerLsn: markerLsn,
    resetMarker,
    strayFiles: listing.strayFiles,
  };
  if (resetMarker !== null) return result;
  const state = new ScanState(disk, walDir, listing.segments, options, result);
  await state.run();
  return result;
}

class ScanState {
  chain: ChainState | null = null;
  next: Loaded | null = null;

  constructor(
    readonly disk: Disk,
    readonly walDir: string,
    readonly entries: { name: string; firstLsn: number }[],
    readonly options: ScanOptions,
    readonly result: LogScan,
  ) {}

  /**
   * Scans the segments in order. The next segment is read while this one's frames are scanned
   * (and replayed by `onFrame`), and is needed only to classify where this one stops.
   */
  async run(): Promise<void> {
    for (let index = 0; index < this.entries.length; index++) {
      const entry = this.entries[index];
      assert(entry !== undefined, 'segment entry exists');
      const loaded = this.next ?? (await loadSegment(this.disk, this.walDir, entry));
      const following = this.entries[index + 1];
      const reading =
        following === undefined ? null : loadSegment(this.disk, this.walDir, following);
      // If the scan throws, the read still finishes (and closes its file) unobserved.
      reading?.catch(() => undefined);
      const scanned = this.scanFrames(loaded);
      this.next = reading === null ? null : await reading;
      const keepGoing =
        scanned === null
          ? this.options.continueOnCorruption === true
          : this.classifyScanned(index, loaded, scanned);
      if (!keepGoing) return;
    }
  }

  problem(loaded: Loaded, offset: number, kind: ProblemKind, label: string, reason: string) {
    const lsn = this.chain?.expectedLsn ?? null;
    this.result.problems.push({ segment: loaded.name, offset, lsn, kind, label, reason });
    if (kind === 'corrupt') this.result.status = 'corrupt';
    else if (this.result.status === 'clean') this.result.status = 'torn';
  }

  /** Scans one segment's frames; null if its header is bad (then only --continue goes on). */
  scanFrames(loaded: Loaded): { summary: SegmentSummary; stop: ScanStop } | null {
    if (loaded.header === null) {
      this.problem(loaded, 0, 'corrupt', '@header', loaded.headerProblem ?? 'bad header');
      this.chain = null;
      return null;
    }
    if (this.chain === null) {
      this.chain = {
        expectedLsn: loaded.firstLsn,
        prevChecksum: loaded.header.chainSeed,
        lastTerm: loaded.header.termSeed ?? 0,
      };
    }
    const summary = this.summarize(loaded);
    const limit = segmentLimit(loaded);
    const scan = scanSegment(loaded.bytes, {
      limit,
      chain: this.chain,
      collect: false,
      ...(this.result.truncationMarkerLsn === null
        ? {}
        : { lsnStop: this.result.truncationMarkerLsn }),
      onFrame: (scanned) => this.onFrame(summary, loaded, scanned),
    });
    this.chain = scan.chain;
    summary.endOffset = scan.endOffset;
    summary.chainEnd = scan.chain;
    this.result.segments.push(summary);
    return { summary, stop: scan.stop };
  }

  /** Decides how the log goes on after a scanned segment; false when the scan must stop. */
  classifyScanned(
    index: number,
    loaded: Loaded,
    scanned: { summary: SegmentSummary; stop: ScanStop },
  ): boolean {
    const chain = this.chain;
    assert(chain !== null, 'a scanned segment has a chain');
    if (
      this.result.truncationMarkerLsn !== null &&
      chain.expectedLsn > this.result.truncationMarkerLsn
    ) {
      return false;
    }
    return this.classifyStop(index, loaded, scanned.summary, scanned.stop);
  }

  summarize(loaded: Loaded): SegmentSummary {
    assert(loaded.header !== null, 'summarized segments have headers');
    return {
      name: loaded.name,
      firstLsn: loaded.firstLsn,
      header: loaded.header,
      fileBytes: loaded.bytes.length,
      endOffset: segmentHeaderBytes,
      records: 0,
      lastLsn: loaded.firstLsn - 1,
      chainEnd: this.chain ?? { expectedLsn: loaded.firstLsn, prevChecksum: 0, lastTerm: 0 },
      recordOffsets: [],
    };
  }

  onFrame(summary: SegmentSummary, loaded: Loaded, scanned: ScannedFrame): void {
    if (scanned.frame.type !== RecordType.Seal) {
      summary.records += 1;
      summary.lastLsn = scanned.frame.lsn;
      this.result.records += 1;
      this.result.firstLsn ??= scanned.frame.lsn;
      this.result.lastLsn = scanned.frame.lsn;
      if (this.options.index === true) summary.recordOffsets.push(scanned.offset);
    }
    this.options.onFrame?.(loaded.name, scanned);
  }

  /**
   * How the next segment relates to where this one stopped. After a clean end it must continue
   * the chain exactly. After damage the chain at the damaged frame cannot match, so a next
   * segment with a valid header that starts beyond the damaged LSN proves this segment had been
   * rotated away from, i.e. sealed.
   */
  nextStatus(stop: ScanStop['kind'] = 'end'): Evidence['next'] {
    const next = this.next;
    const chain = this.chain;
    if (next === null) return 'none';
    if (chain === null || next.header === null) return 'gap';
    if (stop === 'bad') return next.header.firstLsn >= chain.expectedLsn ? 'continues' : 'gap';
    const continues =
      next.header.firstLsn === chain.expectedLsn && next.header.chainSeed === chain.prevChecksum;
    return continues ? 'continues' : 'gap';
  }

  classifyStop(index: number, loaded: Loaded, summary: SegmentSummary, stop: ScanStop): boolean {
    const chain = this.chain;
    assert(chain !== null, 'a scanned segment has a chain');
    const limit = segmentLimit(loaded);
    const from = Math.min(stop.offset + frameAlignmentBytes, limit);
    // Nothing but zeros after the stop (the usual end of a log): no frame can be found there.
    const dirtyEnd = dirtyEndAfter(loaded.bytes, stop.offset, limit);
    const later =
      dirtyEnd <= from
        ? nothingLater
        : findLaterFrames(loaded.bytes, from, limit, chain, stop.offset);
    const evidence: Evidence = {
      stop: stop.kind,
      next: this.nextStatus(stop.kind),
      sealAfter: later.sealCovers,
      strayCopy: later.strayCopy,
      recordsAfter: later.records,
      bitFlip: stop.kind === 'bad' && explainedByBitFlip(loaded.bytes, stop.offset, limit),
    };
    const verdict = decide(evidence);
    const detail = stop.kind === 'bad' ? ` (${stop.reason})` : '';
    const reason = `${verdict.why}${detail}`;
    switch (verdict.decision) {
      case 'end':
        this.noteStaleTail(index, loaded, stop.offset, dirtyEnd);
        return false;
      case 'next-segment':
        return true;
      case 'truncate':
        this.problem(loaded, stop.offset, 'torn', verdict.label, reason);
        this.result.tornTail = { segmentIndex: index, offset: stop.offset, dirtyEnd };
        return false;
      case 'corrupt':
        this.problem(loaded, stop.offset, 'corrupt', verdict.label, reason);
        return this.resync(loaded, summary, later.firstValidOffset, limit);
    }
  }

  /**
   * Bytes past a clean end are the remains of a torn write that never formed a valid frame
   * (old zeros where it started, garbage further on). They are harmless until later writes fill
   * the segment up to them and rotate away: then they would sit after the last frame of a
   * sealed segment and read as corruption (found by the simulation, seed 652). So they are
   * reported as a torn tail and recovery zeroes them.
   */
  noteStaleTail(index: number, loaded: Loaded, offset: number, dirtyEnd: number): void {
    if (dirtyEnd <= offset) return;
    const reason = `${dirtyEnd - offset} bytes of a torn write's remains past the end of the log`;
    this.problem(loaded, offset, 'torn', '@stale-tail', reason);
    this.result.tornTail = { segmentIndex: index, offset, dirtyEnd };
  }

  /** --continue: pick the scan up at the next self-valid frame, trusting its own chain fields. */
  resync(loaded: Loaded, summary: SegmentSummary, first: number | null, limit: number): boolean {
    if (this.options.continueOnCorruption !== true) return false;
    let offset = first;
    for (let guard = 0; offset !== null && guard < limit; guard++) {
      const decoded = decodeFrame(loaded.bytes, offset, limit);
      assert(decoded.kind === 'ok', 'resync starts at a self-valid frame');
      const frame = decoded.frame;
      const isSeal = frame.type === RecordType.Seal;
      this.chain = {
        expectedLsn: isSeal ? frame.lsn + 1 : frame.lsn,
        prevChecksum: frame.prevChecksum,
        lastTerm: 0,
      };
      const scan = scanSegment(loaded.bytes, {
        start: offset,
        limit,
        chain: this.chain,
        collect: false,
        onFrame: (scanned) => this.onFrame(summary, loaded, scanned),
      });
      this.chain = scan.chain;
      summary.endOffset = scan.endOffset;
      summary.chainEnd = scan.chain;
      if (scan.stop.kind === 'end') break;
      this.problem(loaded, scan.stop.offset, 'corrupt', '@resync', scan.stop.reason);
      const from = scan.stop.offset + frameAlignmentBytes;
      offset = findLaterFrames(loaded.bytes, from, limit, scan.chain).firstValidOffset;
    }
    // The next segment starts a fresh chain from its own header unless this one continues it.
    if (offset === null || this.nextStatus() !== 'continues') this.chain = null;
    return true;
  }
}
