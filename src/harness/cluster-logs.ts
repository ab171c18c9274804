/**
 * Reads a node's log straight from its simulated disk, synchronously and without the node: the
 * visible bytes (what the node reads now) or the durable bytes (what survives a power loss).
 * The cluster simulation uses it to learn which nodes hold a record durably at the moment a
 * write is acknowledged, and to compare the nodes' logs record by record once they converged.
 *
 * Segments are scanned with the recovery scanner (checksums and chain verified); a scan stops at
 * the first frame that does not fit, as recovery would. SEAL frames are local to a node and
 * skipped. An unfinished suffix truncation (its marker file) hides the records after its LSN.
 */
import { RecordType, readU64 } from '../core/format/frame.js';
import { decodeSegmentHeader, parseSegmentName } from '../core/format/segment-header.js';
import { scanSegment } from '../core/recovery/scan.js';
import type { SimDisk, SimView } from '../sim/disk.js';
import { truncationMarkerName } from '../storage/truncation-marker.js';

export interface LogFrame {
  lsn: number;
  term: number;
  type: number;
  checksum: number;
  /** The whole frame, as on disk (and on the wire). */
  bytes: Uint8Array;
  payload: Uint8Array;
}

export interface ReadLog {
  frames: LogFrame[];
  /** Why the scan stopped early (a bad frame, a gap between segments), or null. */
  problem: string | null;
}

interface SegmentFile {
  path: string;
  firstLsn: number;
}

function segmentFiles(disk: SimDisk, walDir: string, view: SimView): SegmentFile[] {
  const prefix = `${walDir}/`;
  const files: SegmentFile[] = [];
  for (const path of disk.listAll(view)) {
    if (!path.startsWith(prefix)) continue;
    const firstLsn = parseSegmentName(path.slice(prefix.length));
    if (firstLsn !== null) files.push({ path, firstLsn });
  }
  return files.sort((left, right) => left.firstLsn - right.firstLsn);
}

function bytesOf(disk: SimDisk, path: string, view: SimView): Uint8Array {
  return view === 'visible' ? disk.readVisible(path) : disk.readDurable(path);
}

/** The LSN an unfinished suffix truncation keeps up to, or null. */
function truncationLsn(disk: SimDisk, walDir: string, view: SimView): number | null {
  const path = `${walDir}/${truncationMarkerName}`;
  if (!disk.exists(path, view)) return null;
  const bytes = bytesOf(disk, path, view);
  if (bytes.length < 16) return null;
  return readU64(new DataView(bytes.buffer, bytes.byteOffset, 16), 8);
}

/** Scans one segment file; `lsnStop` ends the scan after that LSN. */
function scanFile(
  disk: SimDisk,
  file: SegmentFile,
  view: SimView,
  lsnStop: number | undefined,
): ReadLog {
  const bytes = bytesOf(disk, file.path, view);
  const decoded = decodeSegmentHeader(bytes);
  if (decoded.kind === 'bad') return { frames: [], problem: `${file.path}: ${decoded.reason}` };
  const header = decoded.header;
  const chain = {
    expectedLsn: header.firstLsn,
    prevChecksum: header.chainSeed,
    lastTerm: header.termSeed ?? 0,
  };
  const limit = Math.min(header.segmentSizeBytes, bytes.length);
  const scan = scanSegment(bytes, {
    limit,
    chain,
    ...(lsnStop === undefined ? {} : { lsnStop }),
  });
  const frames: LogFrame[] = [];
  for (const { offset, frame } of scan.frames) {
    if (frame.type === RecordType.Seal) continue;
    frames.push({
      lsn: frame.lsn,
      term: frame.term,
      type: frame.type,
      checksum: frame.checksum >>> 0,
      bytes: bytes.slice(offset, offset + frame.frameBytes),
      payload: frame.payload.slice(),
    });
  }
  const problem =
    scan.stop.kind === 'bad' ? `${file.path} at ${scan.stop.offset}: ${scan.stop.reason}` : null;
  return { frames, problem };
}

/** Every record of the log in `walDir` as `view` holds it. */
export function readLog(disk: SimDisk, walDir: string, view: SimView = 'visible'): ReadLog {
  const marker = truncationLsn(disk, walDir, view);
  const frames: LogFrame[] = [];
  for (const file of segmentFiles(disk, walDir, view)) {
    const last = frames.at(-1);
    if (last !== undefined && file.firstLsn !== last.lsn + 1) {
      // A segment after a bad frame, or a gap: recovery would stop here too.
      return { frames, problem: `${file.path} starts at ${file.firstLsn} after ${last.lsn}` };
    }
    const scanned = scanFile(disk, file, view, marker ?? undefined);
    frames.push(...scanned.frames);
    if (scanned.problem !== null) return { frames, problem: scanned.problem };
  }
  return { frames, problem: null };
}

/** The records of one segment file as `view` holds it (SEALs skipped). */
export function readSegment(disk: SimDisk, path: string, view: SimView = 'visible'): ReadLog {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const firstLsn = parseSegmentName(name);
  if (firstLsn === null) return { frames: [], problem: `${path} is not a segment` };
  return scanFile(disk, { path, firstLsn }, view, undefined);
}

/**
 * The record at `lsn` as `view` holds it, or null. Reads only the segment that would hold it
 * (a full scan per acknowledged write would cost too much).
 */
export function recordAt(
  disk: SimDisk,
  walDir: string,
  lsn: number,
  view: SimView,
): LogFrame | null {
  const marker = truncationLsn(disk, walDir, view);
  if (marker !== null && lsn > marker) return null;
  const files = segmentFiles(disk, walDir, view).filter((file) => file.firstLsn <= lsn);
  const file = files.at(-1);
  if (file === undefined) return null;
  const scanned = scanFile(disk, file, view, lsn);
  return scanned.frames.find((frame) => frame.lsn === lsn) ?? null;
}

/**
 * Compares two logs record by record over the LSNs both hold up to `lsnLast`: the same term,
 * type and bytes. Returns the first difference, or null.
 */
export function logDifference(
  left: readonly LogFrame[],
  right: readonly LogFrame[],
  lsnLast: number,
): string | null {
  // An empty log (a replica's right after a full sync reset it) holds nothing to compare.
  const leftFirst = left[0]?.lsn ?? lsnLast + 1;
  const rightFirst = right[0]?.lsn ?? lsnLast + 1;
  const from = Math.max(leftFirst, rightFirst);
  for (let lsn = from; lsn <= lsnLast; lsn++) {
    const a = left[lsn - leftFirst];
    const b = right[lsn - rightFirst];
    if (a === undefined || b === undefined) {
      return (
        `LSN ${lsn}: ${a === undefined ? 'missing' : 'present'} / ` +
        `${b === undefined ? 'missing' : 'present'}`
      );
    }
    if (a.checksum !== b.checksum || !sameBytes(a.bytes, b.bytes)) {
      return (
        `LSN ${lsn}: type ${a.type} term ${a.term} crc ${a.checksum} / ` +
        `type ${b.type} term ${b.term} crc ${b.checksum}`
      );
    }
  }
  return null;
}

function sameBytes(left: Uint8Array, right: Uint8Array): boolean {
  if (left.length !== right.length) return false;
  for (let index = 0; index < left.length; index++) {
    if (left[index] !== right[index]) return false;
  }
  return true;
}
