import { assert } from '../core/assert.js';
import { CorruptionError, diskError } from '../core/errors.js';
import { encodeSegmentHeader, segmentName } from '../core/format/segment-header.js';
import type { Disk, FileHandle } from '../ports/disk.js';
import type { LogOptionsResolved } from './options.js';
import { scanLog, type LogProblem, type LogScan } from './scan-log.js';
import { findDirtyEnd, preallocateSegment, preallocatedName, zeroRange } from './segment-file.js';
import { removeTruncationMarker } from './truncation-marker.js';

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

/** Creates the first segment of a brand-new log, the same way rotation does. */
async function createFirstSegment(disk: Disk, options: LogOptionsResolved): Promise<void> {
  const handle = await preallocateSegment(disk, options.walDir, options.segmentSizeBytes);
  try {
    const header = encodeSegmentHeader({
      firstLsn: options.firstLsn,
      segmentSizeBytes: options.segmentSizeBytes,
      chainSeed: 0,
    });
    await handle.write([header], 0);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  const name = segmentName(options.firstLsn);
  await disk.rename(`${options.walDir}/${preallocatedName}`, `${options.walDir}/${name}`);
  await disk.syncDir(options.walDir);
}

/**
 * Recovers the log directory: removes temporary files, finishes an interrupted suffix
 * truncation, scans and classifies every frame, cuts a torn tail, refuses corruption, and
 * makes what it keeps durable (one fdatasync) before any new write is accepted.
 */
export async function recoverLog(disk: Disk, options: LogOptionsResolved): Promise<Recovered> {
  let temporaryFilesRemoved: number;
  try {
    temporaryFilesRemoved = await removeTemporaryFiles(disk, options.walDir);
    if ((await disk.list(options.walDir)).every((name) => !name.endsWith('.wal'))) {
      await createFirstSegment(disk, options);
    }
  } catch (error: unknown) {
    throw diskError('recover', error);
  }
  const scan = await scanLog(disk, options.walDir, { index: true });
  const corrupt = scan.problems.find((problem) => problem.kind === 'corrupt');
  if (corrupt !== undefined) {
    throw new CorruptionError(
      { segment: corrupt.segment, offset: corrupt.offset, lsn: corrupt.lsn },
      `${corrupt.label} ${corrupt.reason}`,
    );
  }
  assert(scan.segments.length > 0, 'a recovered log has a segment');
  try {
    return await repair(disk, options, scan, temporaryFilesRemoved);
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
      records: scan.records,
    },
  };
}
