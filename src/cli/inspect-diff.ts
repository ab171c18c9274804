import { assert } from '../core/assert.js';
import { IoError } from '../core/errors.js';
import { RecordType, decodeFrame, recordTypeName, type Frame } from '../core/format/frame.js';
import { describePayload } from '../core/format/record.js';
import { segmentHeaderBytes } from '../core/limits.js';
import { NodeDisk } from '../node/disk.js';
import { readWholeFile, type LogScan } from '../storage/scan-log.js';
import {
  describePayloadCompact,
  exitCodes,
  hex32,
  locateLog,
  lsnRange,
  plural,
  problemJson,
  reportProblems,
  scanWithProgress,
  type InspectContext,
  type LogLocation,
} from './inspect-common.js';

/**
 * `wal-inspect diff <dirA> <dirB>`: where two nodes' logs diverge and why (DESIGN §6).
 *
 * Records are compared by LSN, from the first LSN both logs hold. Two records are the same when
 * their term, type and frame checksum are: the checksum (CRC-32) covers the whole frame, header,
 * payload and the previous record's checksum, so record frames are byte-identical on every node
 * that holds them (docs/format.md §7). SEAL frames are node-local (where they fall depends on
 * how a node grouped its writes, docs/decisions/0001-*) and are ignored, and so are segment
 * boundaries. At the first difference both records are read again and compared byte for byte
 * to say what differs.
 *
 * Read-only like every wal-inspect command: no LOCK, no file opened for writing. Memory is
 * about 13 bytes per record of each log.
 */
export interface DiffFlags {
  json?: boolean;
}

type SideKey = 'a' | 'b';

/** The columns a comparison needs, one entry per record (LSNs are consecutive). */
class RecordColumns {
  firstLsn: number | null = null;
  count = 0;
  terms = new Float64Array(1024);
  types = new Uint8Array(1024);
  checksums = new Uint32Array(1024);

  push(frame: Frame): void {
    this.firstLsn ??= frame.lsn;
    assert(frame.lsn === this.firstLsn + this.count, 'diff: records are consecutive');
    if (this.count === this.terms.length) this.#grow();
    this.terms[this.count] = frame.term;
    this.types[this.count] = frame.type;
    this.checksums[this.count] = frame.checksum >>> 0;
    this.count += 1;
  }

  #grow(): void {
    const terms = new Float64Array(this.count * 2);
    terms.set(this.terms);
    const types = new Uint8Array(this.count * 2);
    types.set(this.types);
    const checksums = new Uint32Array(this.count * 2);
    checksums.set(this.checksums);
    this.terms = terms;
    this.types = types;
    this.checksums = checksums;
  }

  get lastLsn(): number | null {
    return this.firstLsn === null ? null : this.firstLsn + this.count - 1;
  }

  termAt(lsn: number): number {
    assert(this.firstLsn !== null, 'diff: a record exists');
    return this.terms[lsn - this.firstLsn] ?? 0;
  }

  /** Whether the record at `lsn` here is the same as the one at `lsn` in `other`. */
  sameAt(lsn: number, other: RecordColumns): boolean {
    assert(this.firstLsn !== null && other.firstLsn !== null, 'diff: both hold records');
    const mine = lsn - this.firstLsn;
    const theirs = lsn - other.firstLsn;
    return (
      this.checksums[mine] === other.checksums[theirs] &&
      this.terms[mine] === other.terms[theirs] &&
      this.types[mine] === other.types[theirs]
    );
  }
}

interface Side {
  key: SideKey;
  dir: string;
  location: LogLocation;
  scan: LogScan;
  records: RecordColumns;
}

async function readSide(context: InspectContext, key: SideKey, dir: string, location: LogLocation) {
  const records = new RecordColumns();
  const label = `diff ${key.toUpperCase()}`;
  const scan = await scanWithProgress(context, location.walDir, label, {
    onFrame: (_, scanned) => {
      if (scanned.frame.type !== RecordType.Seal) records.push(scanned.frame);
    },
  });
  const side: Side = { key, dir, location, scan, records };
  return side;
}

/** The record frame at `lsn`, read again from the segment that holds it. */
async function readRecordAt(side: Side, lsn: number): Promise<Frame> {
  const segment = side.scan.segments.find(
    (entry) =>
      entry.records > 0 && lsn >= entry.lastLsn - entry.records + 1 && lsn <= entry.lastLsn,
  );
  assert(segment !== undefined && segment.header !== null, 'diff: a scanned segment holds lsn');
  const bytes = await readWholeFile(new NodeDisk(), `${side.location.walDir}/${segment.name}`);
  const limit = Math.min(segment.header.segmentSizeBytes, bytes.length);
  let offset = segmentHeaderBytes;
  for (let guard = 0; offset < limit && guard < limit; guard++) {
    const decoded = decodeFrame(bytes, offset, limit);
    if (decoded.kind !== 'ok') break;
    const frame = decoded.frame;
    if (frame.type !== RecordType.Seal && frame.lsn === lsn) return frame;
    offset += frame.frameBytes;
  }
  // The file changed since it was scanned (a live node truncated it): say so, do not guess.
  const why = `lsn ${lsn} is no longer in ${segment.name} (the log changed during the diff)`;
  throw new IoError('read', why);
}

// ---------------------------------------------------------------------------------------------
// The comparison.

export interface RecordReport {
  lsn: number;
  term: number;
  type: string;
  checksum: number;
  prevChecksum: number;
  size: number;
  payload: Record<string, unknown>;
  /** The compact text rendering (as `dump` prints it); not in the JSON output. */
  text: string;
}

export type DiffReason =
  | { kind: 'term'; a: RecordReport; b: RecordReport }
  | {
      kind: 'bytes';
      a: RecordReport;
      b: RecordReport;
      sameType: boolean;
      samePayload: boolean;
    }
  | {
      kind: 'ends';
      side: SideKey;
      /** The last LSN that side holds (null: no records). */
      lastLsn: number | null;
      cause: 'behind' | 'torn' | 'corrupt' | 'truncation-marker';
      /** The LSNs the other side holds after it. */
      otherLsns: { first: number; last: number };
    };

export interface DiffReport {
  result: 'identical' | 'behind' | 'diverged' | 'disjoint';
  a: SideSummary;
  b: SideSummary;
  /** The first LSN both logs hold, where the comparison started (null: none). */
  compareFromLsn: number | null;
  commonPrefix: { firstLsn: number | null; lastLsn: number | null; records: number };
  firstDivergentLsn: number | null;
  reason: DiffReason | null;
  notes: string[];
}

interface SideSummary {
  dir: string;
  status: LogScan['status'];
  firstLsn: number | null;
  lastLsn: number | null;
  lastTerm: number | null;
  records: number;
}

function summarizeSide(side: Side): SideSummary {
  const { records, scan } = side;
  const lastLsn = records.lastLsn;
  return {
    dir: side.dir,
    status: scan.status,
    firstLsn: records.firstLsn,
    lastLsn,
    lastTerm: lastLsn === null ? null : records.termAt(lastLsn),
    records: records.count,
  };
}

/** The first LSN in [from, to] where the two logs hold different records, or null. */
function firstDifference(a: RecordColumns, b: RecordColumns, from: number, to: number) {
  for (let lsn = from; lsn <= to; lsn++) if (!a.sameAt(lsn, b)) return lsn;
  return null;
}

function recordReport(frame: Frame): RecordReport {
  return {
    lsn: frame.lsn,
    term: frame.term,
    type: recordTypeName(frame.type),
    checksum: frame.checksum >>> 0,
    prevChecksum: frame.prevChecksum >>> 0,
    size: frame.frameBytes,
    payload: describePayload(frame.type, frame.payload),
    text: describePayloadCompact(frame),
  };
}

function samePayload(left: Frame, right: Frame): boolean {
  if (left.payload.length !== right.payload.length) return false;
  for (let index = 0; index < left.payload.length; index++) {
    if (left.payload[index] !== right.payload[index]) return false;
  }
  return true;
}

async function divergenceReason(a: Side, b: Side, lsn: number): Promise<DiffReason> {
  const left = await readRecordAt(a, lsn);
  const right = await readRecordAt(b, lsn);
  const reportA = recordReport(left);
  const reportB = recordReport(right);
  if (left.term !== right.term) return { kind: 'term', a: reportA, b: reportB };
  return {
    kind: 'bytes',
    a: reportA,
    b: reportB,
    sameType: left.type === right.type,
    samePayload: samePayload(left, right),
  };
}

/** Why `short` ends before `long` does, when every LSN both hold is the same. */
function endsReason(short: Side, long: Side): DiffReason {
  const lastLsn = short.records.lastLsn;
  const longLast = long.records.lastLsn;
  assert(longLast !== null, 'diff: the longer log holds records');
  let cause: Extract<DiffReason, { kind: 'ends' }>['cause'] = 'behind';
  if (short.scan.status === 'corrupt') cause = 'corrupt';
  else if (short.scan.status === 'torn') cause = 'torn';
  else if (short.scan.truncationMarkerLsn !== null) cause = 'truncation-marker';
  const first = Math.max((lastLsn ?? 0) + 1, long.records.firstLsn ?? 1);
  return { kind: 'ends', side: short.key, lastLsn, cause, otherLsns: { first, last: longLast } };
}

function sideName(key: SideKey): string {
  return key.toUpperCase();
}

/** Notes on how the logs line up: a later start (a removed prefix) and torn tails. */
function alignmentNotes(a: Side, b: Side, compareFrom: number | null): string[] {
  const notes: string[] = [];
  const firstA = a.records.firstLsn;
  const firstB = b.records.firstLsn;
  if (compareFrom !== null && firstA !== null && firstB !== null && firstA !== firstB) {
    const [later, earlier] = firstA > firstB ? [a, b] : [b, a];
    notes.push(
      `${sideName(later.key)}'s log starts at lsn ${later.records.firstLsn}, ` +
        `${sideName(earlier.key)}'s at lsn ${earlier.records.firstLsn}: ` +
        `${sideName(later.key)} no longer holds the records before it (a checkpoint removed ` +
        `them, or it was synced from a snapshot); compared from lsn ${compareFrom}`,
    );
  }
  for (const side of [a, b]) {
    const problem = side.scan.problems[0];
    if (side.scan.status !== 'torn' || problem === undefined) continue;
    notes.push(
      `${sideName(side.key)} ends in a torn tail after lsn ${side.records.lastLsn ?? 0} ` +
        `(segment ${problem.segment} offset ${problem.offset}): a crash cut its last write, ` +
        'and recovery truncates it',
    );
  }
  return notes;
}

async function compareSides(a: Side, b: Side): Promise<DiffReport> {
  const lastA = a.records.lastLsn;
  const lastB = b.records.lastLsn;
  const firstA = a.records.firstLsn;
  const firstB = b.records.firstLsn;
  let compareFrom: number | null = null;
  let compareTo: number | null = null;
  if (firstA !== null && firstB !== null && lastA !== null && lastB !== null) {
    const from = Math.max(firstA, firstB);
    const to = Math.min(lastA, lastB);
    if (from <= to) [compareFrom, compareTo] = [from, to];
  }
  const differs =
    compareFrom === null || compareTo === null
      ? null
      : firstDifference(a.records, b.records, compareFrom, compareTo);
  const report: DiffReport = {
    result: 'identical',
    a: summarizeSide(a),
    b: summarizeSide(b),
    compareFromLsn: compareFrom,
    commonPrefix: { firstLsn: null, lastLsn: null, records: 0 },
    firstDivergentLsn: null,
    reason: null,
    notes: alignmentNotes(a, b, compareFrom),
  };
  if (compareFrom !== null && compareTo !== null) {
    const prefixLast = differs === null ? compareTo : differs - 1;
    const records = prefixLast - compareFrom + 1;
    report.commonPrefix = {
      firstLsn: records > 0 ? compareFrom : null,
      lastLsn: records > 0 ? prefixLast : null,
      records,
    };
  }
  if (differs !== null) {
    report.result = 'diverged';
    report.firstDivergentLsn = differs;
    report.reason = await divergenceReason(a, b, differs);
    return report;
  }
  return finishUndiverged(report, a, b);
}

function finishUndiverged(report: DiffReport, a: Side, b: Side): DiffReport {
  const lastA = a.records.lastLsn;
  const lastB = b.records.lastLsn;
  if (lastA === lastB) return report;
  if (report.compareFromLsn === null && lastA !== null && lastB !== null) {
    report.result = 'disjoint';
    report.notes.push('no LSN is in both logs: there is nothing to compare');
    return report;
  }
  const [short, long] = (lastA ?? 0) < (lastB ?? 0) ? [a, b] : [b, a];
  report.result = 'behind';
  const reason = endsReason(short, long);
  assert(reason.kind === 'ends', 'diff: an ends reason');
  report.reason = reason;
  report.firstDivergentLsn = reason.otherLsns.first;
  return report;
}

// ---------------------------------------------------------------------------------------------
// Output.

function sideLine(key: SideKey, side: SideSummary): string {
  const term = side.lastTerm === null ? 'none' : String(side.lastTerm);
  return (
    `${sideName(key)}: ${side.dir}: ${side.status}, lsn ${lsnRange(side.firstLsn, side.lastLsn)} ` +
    `(${plural(side.records, 'record')}), last term ${term}`
  );
}

function recordLine(key: SideKey, record: RecordReport): string {
  return (
    `  ${sideName(key)}  lsn ${record.lsn}  term ${record.term}  ${record.type}  ` +
    `crc ${hex32(record.checksum)}  ${record.text}`
  ).trimEnd();
}

function endsCause(reason: Extract<DiffReason, { kind: 'ends' }>): string {
  const side = sideName(reason.side);
  switch (reason.cause) {
    case 'behind':
      return `${side} is behind (it does not hold them yet)`;
    case 'torn':
      return (
        `${side}'s log ends in a torn tail there (a crash cut its last write; recovery ` +
        'truncates it)'
      );
    case 'corrupt':
      return `${side}'s log is corrupt there and cannot be read further`;
    case 'truncation-marker':
      return `${side} has a suffix truncation to lsn ${reason.lastLsn ?? 0} pending`;
  }
}

export function reasonText(reason: DiffReason): string[] {
  switch (reason.kind) {
    case 'term':
      return [
        `why: different terms at lsn ${reason.a.lsn}: A has term ${reason.a.term} ` +
          `(${reason.a.type}), B has term ${reason.b.term} (${reason.b.type})`,
        recordLine('a', reason.a),
        recordLine('b', reason.b),
      ];
    case 'bytes':
      return [`why: ${bytesWhy(reason)}`, recordLine('a', reason.a), recordLine('b', reason.b)];
    case 'ends': {
      const { first, last } = reason.otherLsns;
      const other = sideName(reason.side === 'a' ? 'b' : 'a');
      const end = reason.lastLsn === null ? 'holds no records' : `ends at lsn ${reason.lastLsn}`;
      return [
        `why: ${sideName(reason.side)} ${end}, ${other} goes on to lsn ${last} ` +
          `(${plural(last - first + 1, 'more record')}): ${endsCause(reason)}`,
      ];
    }
  }
}

function bytesWhy(reason: Extract<DiffReason, { kind: 'bytes' }>): string {
  const where = `same term ${reason.a.term} at lsn ${reason.a.lsn}`;
  if (!reason.sameType) {
    return `${where}, different records: A has ${reason.a.type}, B has ${reason.b.type}`;
  }
  if (reason.samePayload && reason.a.prevChecksum !== reason.b.prevChecksum) {
    return (
      `${where}, two ${reason.a.type} records that differ only in their chain checksum ` +
      `(prevCrc ${hex32(reason.a.prevChecksum)} vs ${hex32(reason.b.prevChecksum)}): the ` +
      `logs already differ before lsn ${reason.a.lsn}, the first lsn both hold`
    );
  }
  return `${where}, two ${reason.a.type} records with different bytes`;
}

export function diffText(report: DiffReport): string[] {
  const lines = [sideLine('a', report.a), sideLine('b', report.b)];
  const prefix = report.commonPrefix;
  if (report.compareFromLsn === null) lines.push('compared: no lsn is in both logs');
  else {
    lines.push(
      `compared from lsn ${report.compareFromLsn}`,
      `common prefix: ${plural(prefix.records, 'record')}, ` +
        `lsn ${lsnRange(prefix.firstLsn, prefix.lastLsn)}`,
    );
  }
  const divergent = report.firstDivergentLsn;
  lines.push(`first divergent lsn: ${divergent === null ? 'none' : divergent}`);
  if (report.reason !== null) lines.push(...reasonText(report.reason));
  for (const note of report.notes) lines.push(`note: ${note}`);
  lines.push(`result: ${report.result}`);
  return lines;
}

function recordJson(record: RecordReport) {
  const { lsn, term, type, checksum, prevChecksum, size, payload } = record;
  return { lsn, term, type, checksum, prevChecksum, size, payload };
}

function diffJson(report: DiffReport, a: Side, b: Side) {
  const reason = report.reason;
  let reasonOut: Record<string, unknown> | null = null;
  if (reason?.kind === 'term' || reason?.kind === 'bytes') {
    reasonOut = { ...reason, a: recordJson(reason.a), b: recordJson(reason.b) };
  } else if (reason !== null) reasonOut = { ...reason };
  return {
    ...report,
    reason: reasonOut,
    problems: { a: a.scan.problems.map(problemJson), b: b.scan.problems.map(problemJson) },
  };
}

/** Exit code: 2 if either log is corrupt, 1 if they diverged, else 0. */
export function diffExitCode(report: DiffReport): number {
  if (report.a.status === 'corrupt' || report.b.status === 'corrupt') return exitCodes.corrupt;
  return report.result === 'diverged' ? exitCodes.torn : exitCodes.clean;
}

export async function runDiff(
  dirA: string,
  dirB: string,
  flags: DiffFlags,
  context: InspectContext,
): Promise<number> {
  const disk = new NodeDisk();
  // Both directories are checked before either is scanned, so a usage error comes first.
  const locationA = await locateLog(disk, dirA);
  const locationB = await locateLog(disk, dirB);
  const a = await readSide(context, 'a', dirA, locationA);
  const b = await readSide(context, 'b', dirB, locationB);
  const report = await compareSides(a, b);
  const { output } = context;
  if (flags.json === true) output.out(JSON.stringify(diffJson(report, a, b)));
  else for (const line of diffText(report)) output.out(line);
  for (const side of [a, b]) {
    if (side.scan.problems.length > 0) reportProblems(side.scan, output, `${sideName(side.key)}: `);
  }
  return diffExitCode(report);
}
