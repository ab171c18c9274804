import { assert } from '../core/assert.js';
import { CorruptionError, diskError } from '../core/errors.js';
import { RecordType } from '../core/format/frame.js';
import {
  encodeSegmentHeader,
  parseSegmentName,
  segmentName,
  type SegmentHeader,
} from '../core/format/segment-header.js';
import type { Disk, FileHandle } from '../ports/disk.js';
import type { LogOptionsResolved } from './options.js';
import type { ScannedFrame } from '../core/recovery/scan.js';
import { scanLog, type LogProblem, type LogScan } from './scan-log.js';
import { findDirtyEnd, preallocateSegment, preallocatedName, zeroRange } from './segment-file.js';
import { readResetMarker, removeResetMarker, type LogBase } from './reset-marker.js';
import { removeTruncationMarker, truncationMarkerName } from './truncation-marker.js';

/** What recovery found and did, for logs, tests and coverage counters. */
export interface RecoveryReport {
  status: LogScan['status'];
  problems: LogProblem[];
  /** Bytes zeroed to cut a torn tail (0 if none). */
  tornBytesZeroed: number;
  /** The LSN an interrupted suffix truncation was finished at, or null. */
  finishedTruncationLsn: number | null;
  /** Temporary files removed (a crash interrupted a rotation or preallocation). */
  temporaryFilesRemoved: number;
  /** The base an interrupted log reset (`Log.resetTo`) was finished at, or null. */
  finishedReset: LogBase | null;
  records: number;
}

interface RecoveredSegment {
  name: string;
  firstLsn: number;
  recordOffsets: number[];
  endOffset: number;
  dirtyEnd: number;
}

export interface Recovered {
  segments: RecoveredSegment[];
  active: FileHandle;
  tail: { lsn: number; checksum: number; term: number };
  recovery: RecoveryReport;
}

async function removeTemporaryFiles(disk: Disk, walDir: string): Promise<number> {
  const names = await disk.list(walDir);
  const temporary = names.filter((name) => name.endsWith('.tmp'));
  for (const name of temporary) await disk.remove(`${walDir}/${name}`);
  if (temporary.length > 0) await disk.syncDir(walDir);
  return temporary.length;
}

/**
 * Creates the first segment of a log, the same way rotation does: a brand-new log (first LSN
 * from the options, chain seed 0) or a log reset to a snapshot (`header` from the marker).
 */
export async function createFirstSegment(
  disk: Disk,
  options: LogOptionsResolved,
  header: Omit<SegmentHeader, 'segmentSizeBytes'>,
): Promise<void> {
  const handle = await preallocateSegment(disk, options.walDir, options.segmentSizeBytes);
  try {
    const bytes = encodeSegmentHeader({ ...header, segmentSizeBytes: options.segmentSizeBytes });
    await handle.write([bytes], 0);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  const name = segmentName(header.firstLsn);
  await disk.rename(`${options.walDir}/${preallocatedName}`, `${options.walDir}/${name}`);
  await disk.syncDir(options.walDir);
}

/**
 * Finishes a log reset whose marker is durable (roll forward, see reset-marker.ts): removes
 * every segment and a truncation marker, creates the new empty first segment, then removes the
 * reset marker. Each step is idempotent, so a crash in here is finished by the next open.
 */
async function finishReset(disk: Disk, options: LogOptionsResolved): Promise<LogBase | null> {
  const base = await readResetMarker(disk, options.walDir);
  if (base === null) return null;
  const names = await disk.list(options.walDir);
  for (const name of names) {
    if (parseSegmentName(name) !== null || name === truncationMarkerName) {
      await disk.remove(`${options.walDir}/${name}`);
    }
  }
  await disk.syncDir(options.walDir);
  await createFirstSegment(disk, options, {
    firstLsn: base.lsn + 1,
    chainSeed: base.checksum,
    termSeed: base.term,
  });
  await removeResetMarker(disk, options.walDir);
  return base;
}

/**
 * Recovers the log directory: removes temporary files, finishes an interrupted log reset or
 * suffix truncation, scans and classifies every frame, cuts a torn tail, refuses corruption, and
 * makes what it keeps durable (one fdatasync) before any new write is accepted.
 */
export async function recoverLog(disk: Disk, options: LogOptionsResolved): Promise<Recovered> {
  let temporaryFilesRemoved: number;
  let finishedReset: LogBase | null;
  try {
    temporaryFilesRemoved = await removeTemporaryFiles(disk, options.walDir);
    finishedReset = await finishReset(disk, options);
    if ((await disk.list(options.walDir)).every((name) => !name.endsWith('.wal'))) {
      await createFirstSegment(disk, options, { firstLsn: options.firstLsn, chainSeed: 0 });
    }
  } catch (error: unknown) {
    throw diskError('recover', error);
  }
  const deliver = options.onRecoveredRecord;
  const scan = await scanLog(disk, options.walDir, {
    index: true,
    ...(deliver === null
      ? {}
      : {
          onFrame: (_segment: string, scanned: ScannedFrame) => {
            const { type, term, lsn, checksum, prevChecksum, payload } = scanned.frame;
            if (type === RecordType.Seal) return;
            deliver({ lsn, term, type, checksum, prevChecksum, payload });
          },
        }),
  });
  const corrupt = scan.problems.find((problem) => problem.kind === 'corrupt');
  if (corrupt !== undefined) {
    throw new CorruptionError(
      { segment: corrupt.segment, offset: corrupt.offset, lsn: corrupt.lsn },
      `${corrupt.label} ${corrupt.reason}`,
    );
  }
  assert(scan.segments.length > 0, 'a recovered log has a segment');
  try {
    const recovered = await repair(disk, options, scan, temporaryFilesRemoved);
    recovered.recovery.finishedReset = finishedReset;
    return recovered;
  } catch (error: unknown) {
    throw diskError('recover', error);
  }
}

async function repair(
  disk: Disk,
  options: LogOptionsResolved,
  scan: LogScan,
  temporaryFilesRemoved: number,
): Promise<Recovered> {
  const last = scan.segments.at(-1);
  assert(last !== undefined, 'there is a last segment');
  // An interrupted truncation: the scan stopped at the marker's LSN; drop what follows.
  if (scan.truncationMarkerLsn !== null) {
    const listed = await disk.list(options.walDir);
    const kept = new Set(scan.segments.map((segment) => segment.name));
    for (const name of listed
      .filter((entry) => entry.endsWith('.wal') && !kept.has(entry))
      .reverse()) {
      await disk.remove(`${options.walDir}/${name}`);
    }
    await disk.syncDir(options.walDir);
  }
  const active = await disk.open(`${options.walDir}/${last.name}`, 'write');
  let tornBytesZeroed = 0;
  let endOffset = last.endOffset;
  if (scan.tornTail !== null) {
    assert(
      scan.tornTail.segmentIndex === scan.segments.length - 1,
      'a torn tail is in the last segment',
    );
    endOffset = scan.tornTail.offset;
    tornBytesZeroed = scan.tornTail.dirtyEnd - scan.tornTail.offset;
    await zeroRange(active, scan.tornTail.offset, scan.tornTail.dirtyEnd);
  } else if (scan.truncationMarkerLsn !== null) {
    const limit = last.header?.segmentSizeBytes ?? last.fileBytes;
    const dirtyEnd = await findDirtyEnd(active, endOffset, limit);
    tornBytesZeroed = dirtyEnd - endOffset;
    await zeroRange(active, endOffset, dirtyEnd);
  }
  // What we read may have come from the page cache of a process that crashed: make it durable
  // before anything new is written after it or vouched for by a SEAL.
  await active.datasync();
  if (scan.truncationMarkerLsn !== null) await removeTruncationMarker(disk, options.walDir);
  const segments = scan.segments.map((segment, index) => ({
    name: segment.name,
    firstLsn: segment.firstLsn,
    recordOffsets: segment.recordOffsets,
    endOffset: index === scan.segments.length - 1 ? endOffset : segment.endOffset,
    dirtyEnd: index === scan.segments.length - 1 ? endOffset : segment.endOffset,
  }));
  const chain = last.chainEnd;
  return {
    segments,
    active,
    tail: { lsn: chain.expectedLsn - 1, checksum: chain.prevChecksum, term: chain.lastTerm },
    recovery: {
      status: scan.status,
      problems: scan.problems,
      tornBytesZeroed,
      finishedTruncationLsn: scan.truncationMarkerLsn,
      temporaryFilesRemoved,
      finishedReset: null,
      records: scan.records,
    },
  };
}
