import { InvalidError, errnoCode, isSyncwalError } from '../core/errors.js';
import { RecordType, type Frame } from '../core/format/frame.js';
import {
  decodeAbort,
  decodeCheckpoint,
  decodeCommit,
  decodeIntent,
  decodeTerm,
  renderBytes,
} from '../core/format/record.js';
import { parseSegmentName } from '../core/format/segment-header.js';
import { NodeDisk } from '../node/disk.js';
import type { Disk } from '../ports/disk.js';
import { scanLog, type LogProblem, type LogScan, type ScanOptions } from '../storage/scan-log.js';
import type { Output } from './entry.js';
import { scanProgress, type ProgressSink } from './inspect-progress.js';

/**
 * What the wal-inspect commands share (src/cli/wal-inspect.ts and the inspect-*.ts helpers):
 * exit codes, finding and scanning a log directory, and the compact text renderings.
 */

/** Exit codes. 64 and 70 are EX_USAGE and EX_SOFTWARE from sysexits.h. */
export const exitCodes = Object.freeze({
  /** The log verified clean (diff: the logs are identical over the LSNs both hold). */
  clean: 0,
  /** The log ends in a torn tail (diff: the logs diverged). */
  torn: 1,
  /** The log is corrupt; recovery would refuse to open it. */
  corrupt: 2,
  /** Bad flags or arguments, or a directory that is missing, unreadable or not a log. */
  usage: 64,
  /** A bug in wal-inspect or the library (an assertion failed). */
  internal: 70,
});

export const programName = 'wal-inspect';

/** What every command is run with. */
export interface InspectContext {
  output: Output;
  /** Where progress bars go, or null for none (see inspect-progress.ts). */
  progress: ProgressSink | null;
}

export function exitCodeFor(status: LogScan['status']): number {
  return exitCodes[status];
}

// ---------------------------------------------------------------------------------------------
// Locating and scanning a log.

function trimSlashes(dir: string): string {
  const trimmed = dir.replace(/\/+$/, '');
  return trimmed.length === 0 ? '/' : trimmed;
}

async function listOrNull(disk: Disk, dir: string): Promise<string[] | null> {
  try {
    return await disk.list(dir);
  } catch (error: unknown) {
    if (errnoCode(error) === 'ENOTDIR') return null;
    throw error;
  }
}

/** A log directory as found: the wal directory and the node directory around it, if any. */
export interface LogLocation {
  walDir: string;
  /** The node directory (holding wal/, and checkpoint.sqlite if any), or null if unknown. */
  nodeDir: string | null;
}

/**
 * Where the log of `dir` is. `dir` may be a node directory (holding `wal/`) or a wal directory
 * itself; a wal directory named `wal` is taken to sit in its node directory. Throws
 * InvalidError (a usage problem) if `dir` is neither.
 */
export async function locateLog(disk: Disk, dir: string): Promise<LogLocation> {
  const base = trimSlashes(dir);
  let names: string[] | null;
  try {
    names = await listOrNull(disk, base);
  } catch (error: unknown) {
    throw new InvalidError(`cannot read directory ${base}: ${describeError(error)}`);
  }
  if (names === null) throw new InvalidError(`${base} is not a directory`);
  let location: LogLocation = { walDir: base, nodeDir: null };
  let entries = names;
  if (names.includes('wal')) {
    // A file named `wal` is not a wal directory; then `dir` itself may still be one.
    const walNames = await listOrNull(disk, `${base}/wal`).catch(() => null);
    if (walNames !== null) {
      location = { walDir: `${base}/wal`, nodeDir: base };
      entries = walNames;
    }
  }
  if (location.nodeDir === null && /(^|\/)wal$/.test(base)) {
    const parent = base.replace(/\/?wal$/, '');
    location = { walDir: base, nodeDir: parent.length === 0 ? '.' : parent };
  }
  if (!entries.some((name) => parseSegmentName(name) !== null)) {
    throw new InvalidError(`${location.walDir} holds no segment files (<first LSN>.wal)`);
  }
  return location;
}

/** The wal directory for `dir` (see `locateLog`). */
export async function resolveWalDir(disk: Disk, dir: string): Promise<string> {
  return (await locateLog(disk, dir)).walDir;
}

/**
 * Scans the log at `walDir`, read-only, with a progress bar labelled `label` when the context
 * has a sink. `onFrame` sees every frame, SEALs included.
 */
export async function scanWithProgress(
  context: InspectContext,
  walDir: string,
  label: string,
  options: ScanOptions,
): Promise<LogScan> {
  const disk = new NodeDisk();
  const progress = await scanProgress(context.progress, disk, walDir, label);
  const onFrame = options.onFrame;
  const scanOptions: ScanOptions = { ...options };
  if (progress !== null) {
    scanOptions.onFrame = (segment, scanned) => {
      onFrame?.(segment, scanned);
      progress.frame(segment, scanned.offset + scanned.frame.frameBytes);
    };
  }
  try {
    return await scanLog(disk, walDir, scanOptions);
  } finally {
    progress?.finish();
  }
}

// ---------------------------------------------------------------------------------------------
// Shared formatting.

/** A string as one token of a text line: quoted (JSON style) if it could be misread. */
export function token(text: string): string {
  return text.length === 0 || /[\s"=\\]/.test(text) ? JSON.stringify(text) : text;
}

export function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

export function lsnRange(first: number | null, last: number | null): string {
  return first === null || last === null ? 'none' : `${first}..${last}`;
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

export function formatProblem(problem: LogProblem): string {
  const lsn = problem.lsn === null ? 'unknown' : String(problem.lsn);
  return (
    `${problem.kind} segment ${problem.segment} offset ${problem.offset} lsn ${lsn} ` +
    `${problem.label}: ${problem.reason}`
  );
}

export function problemJson(problem: LogProblem) {
  const { segment, offset, lsn, kind, label, reason } = problem;
  return { segment, offset, lsn, kind, label, reason };
}

/** Notes about the log that are not problems but change how it reads. */
export function scanNotes(scan: LogScan): string[] {
  const notes: string[] = [];
  if (scan.truncationMarkerLsn !== null) {
    notes.push(
      `note: an unfinished suffix truncation to lsn ${scan.truncationMarkerLsn} is pending; ` +
        'records after it are ignored',
    );
  }
  for (const name of scan.strayFiles) notes.push(`note: stray file ${name}`);
  return notes;
}

/**
 * Commands that print what they could read report the problems on stderr (each prefixed with
 * `prefix`, e.g. the side of a diff) and exit with the verify code.
 */
export function reportProblems(scan: LogScan, output: Output, prefix = ''): number {
  for (const problem of scan.problems) {
    output.err(`${programName}: ${prefix}${formatProblem(problem)}`);
  }
  if (scan.status !== 'clean') {
    const hint = `run '${programName} verify' for details`;
    output.err(`${programName}: ${prefix}the log is ${scan.status}; ${hint}`);
  }
  return exitCodeFor(scan.status);
}

/** The compact text rendering of a payload; a payload that does not decode says why. */
export function describePayloadCompact(frame: Frame): string {
  try {
    return describeKnownPayloadCompact(frame);
  } catch (error: unknown) {
    if (!isSyncwalError(error)) throw error;
    return `error=${token(error.message)} raw=${token(renderBytes(frame.payload))}`;
  }
}

function describeKnownPayloadCompact(frame: Frame): string {
  switch (frame.type) {
    case RecordType.Intent: {
      const intent = decodeIntent(frame.payload);
      const parts = intent.effects.map((effect) =>
        effect.op === 'put'
          ? `put ${token(renderBytes(effect.key))}=${token(renderBytes(effect.value))}`
          : `del ${token(renderBytes(effect.key))}`,
      );
      if (intent.requestId !== null) parts.push(`req=${token(intent.requestId)}`);
      return parts.join(' ');
    }
    case RecordType.Commit: {
      const commit = decodeCommit(frame.payload);
      const intent =
        commit.intentLsn === 0 ? 'none' : `${commit.intentLsn}/${hex32(commit.intentChecksum)}`;
      return `commit=${commit.commitLsn} intent=${intent}`;
    }
    case RecordType.Abort: {
      const abort = decodeAbort(frame.payload);
      return `abort=${abort.lsnFirst}..${abort.lsnLast}`;
    }
    case RecordType.Term: {
      const term = decodeTerm(frame.payload);
      return `term=${term.term} primary=${token(term.primaryId)}`;
    }
    case RecordType.Checkpoint:
      return `checkpoint=${decodeCheckpoint(frame.payload).lsn}`;
    case RecordType.Seal:
      return `sealed=${frame.lsn}`;
  }
}

export function describeError(error: unknown): string {
  const code = errnoCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return code === null || message.includes(code) ? message : `${code}: ${message}`;
}
