#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { InvalidError, errnoCode, isSyncwalError } from '../core/errors.js';
import {
  RecordType,
  recordTypeFromName,
  recordTypeName,
  type Frame,
} from '../core/format/frame.js';
import {
  decodeAbort,
  decodeCheckpoint,
  decodeCommit,
  decodeIntent,
  decodeTerm,
  describePayload,
  renderBytes,
} from '../core/format/record.js';
import { parseSegmentName } from '../core/format/segment-header.js';
import type { ScannedFrame } from '../core/recovery/scan.js';
import { NodeDisk } from '../node/disk.js';
import { runIfEntryPoint, type Output } from './entry.js';
import type { Disk } from '../ports/disk.js';
import { scanLog, type LogProblem, type LogScan, type ScanOptions } from '../storage/scan-log.js';

/**
 * wal-inspect: dumps, verifies and summarizes a syncwal log (DESIGN §6, docs/wal-inspect.md).
 *
 * The program is thin on purpose. It parses flags, calls `scanLog` (storage/scan-log.ts), which
 * decodes and classifies every frame with the recovery decision table, and formats what it
 * reports. It is read-only: it never takes the node's LOCK and never opens a file for writing,
 * so it is safe to run on the directory of a live node.
 *
 * Output is deterministic: no timestamps and no absolute paths (segments are named by their
 * file name only), so it can be compared with golden files.
 */

/** Exit codes. 64 and 70 are EX_USAGE and EX_SOFTWARE from sysexits.h. */
export const exitCodes = Object.freeze({
  /** The log verified clean. */
  clean: 0,
  /** The log ends in a torn tail (a crash cut its last write); recovery would truncate it. */
  torn: 1,
  /** The log is corrupt; recovery would refuse to open it. */
  corrupt: 2,
  /** Bad flags or arguments, or a directory that is missing, unreadable or not a log. */
  usage: 64,
  /** A bug in wal-inspect or the library (an assertion failed). */
  internal: 70,
});

/** Where output goes; tests of the formatters can collect it instead of printing it. */
export type { Output } from './entry.js';

interface ScanFlags {
  json?: boolean;
  continue?: boolean;
}

interface DumpFlags extends ScanFlags {
  from?: number;
  to?: number;
  type?: RecordType[];
  seals?: boolean;
}

const programName = 'wal-inspect';

function exitCodeFor(status: LogScan['status']): number {
  return exitCodes[status];
}

// ---------------------------------------------------------------------------------------------
// Locating and scanning the log.

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

/**
 * The wal directory for `dir`, which may be a node directory (holding `wal/`) or a wal
 * directory itself. Throws InvalidError (a usage problem) if it is neither.
 */
export async function resolveWalDir(disk: Disk, dir: string): Promise<string> {
  const base = trimSlashes(dir);
  let names: string[] | null;
  try {
    names = await listOrNull(disk, base);
  } catch (error: unknown) {
    throw new InvalidError(`cannot read directory ${base}: ${describeError(error)}`);
  }
  if (names === null) throw new InvalidError(`${base} is not a directory`);
  let walDir = base;
  let entries = names;
  if (names.includes('wal')) {
    // A file named `wal` is not a wal directory; then `dir` itself may still be one.
    const walNames = await listOrNull(disk, `${base}/wal`).catch(() => null);
    if (walNames !== null) {
      walDir = `${base}/wal`;
      entries = walNames;
    }
  }
  if (!entries.some((name) => parseSegmentName(name) !== null)) {
    throw new InvalidError(`${walDir} holds no segment files (<first LSN>.wal)`);
  }
  return walDir;
}

async function scanDirectory(dir: string, options: ScanOptions): Promise<LogScan> {
  const disk = new NodeDisk();
  const walDir = await resolveWalDir(disk, dir);
  return scanLog(disk, walDir, options);
}

function scanOptions(flags: ScanFlags, onFrame?: ScanOptions['onFrame']): ScanOptions {
  const options: ScanOptions = { continueOnCorruption: flags.continue === true };
  if (onFrame !== undefined) options.onFrame = onFrame;
  return options;
}

// ---------------------------------------------------------------------------------------------
// Shared formatting.

/** A string as one token of a text line: quoted (JSON style) if it could be misread. */
function token(text: string): string {
  return text.length === 0 || /[\s"=\\]/.test(text) ? JSON.stringify(text) : text;
}

function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

function lsnRange(first: number | null, last: number | null): string {
  return first === null || last === null ? 'none' : `${first}..${last}`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

export function formatProblem(problem: LogProblem): string {
  const lsn = problem.lsn === null ? 'unknown' : String(problem.lsn);
  return (
    `${problem.kind} segment ${problem.segment} offset ${problem.offset} lsn ${lsn} ` +
    `${problem.label}: ${problem.reason}`
  );
}

function problemJson(problem: LogProblem) {
  const { segment, offset, lsn, kind, label, reason } = problem;
  return { segment, offset, lsn, kind, label, reason };
}

/** Notes about the log that are not problems but change how it reads. */
function scanNotes(scan: LogScan): string[] {
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

/** dump and stats print what they could read on stdout and the problems on stderr. */
function reportProblems(scan: LogScan, output: Output): number {
  for (const problem of scan.problems) output.err(`${programName}: ${formatProblem(problem)}`);
  if (scan.status !== 'clean') {
    const hint = `run '${programName} verify' for details`;
    output.err(`${programName}: the log is ${scan.status}; ${hint}`);
  }
  return exitCodeFor(scan.status);
}

// ---------------------------------------------------------------------------------------------
// dump

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

export const dumpHeader =
  `${'LSN'.padStart(8)}  ${'TERM'.padStart(5)}  ${'TYPE'.padEnd(10)}  ${'SEGMENT'.padEnd(24)}  ` +
  `${'OFFSET'.padStart(10)}  ${'SIZE'.padStart(6)}  PAYLOAD`;

export function formatDumpLine(segment: string, scanned: ScannedFrame): string {
  const { frame, offset } = scanned;
  return (
    `${String(frame.lsn).padStart(8)}  ${String(frame.term).padStart(5)}  ` +
    `${recordTypeName(frame.type).padEnd(10)}  ${segment.padEnd(24)}  ` +
    `${String(offset).padStart(10)}  ${String(frame.frameBytes).padStart(6)}  ` +
    describePayloadCompact(frame)
  ).trimEnd();
}

export function formatDumpJson(segment: string, scanned: ScannedFrame): string {
  const { frame, offset } = scanned;
  return JSON.stringify({
    lsn: frame.lsn,
    term: frame.term,
    type: recordTypeName(frame.type),
    segment,
    offset,
    size: frame.frameBytes,
    payload: describePayload(frame.type, frame.payload),
  });
}

/** Which frames `dump` prints. SEAL frames only with --seals or when --type names SEAL. */
function dumpFilter(flags: DumpFlags): (frame: Frame) => boolean {
  const types = flags.type === undefined || flags.type.length === 0 ? null : new Set(flags.type);
  const showSeals = flags.seals === true || types?.has(RecordType.Seal) === true;
  return (frame) => {
    if (frame.type === RecordType.Seal && !showSeals) return false;
    if (types !== null && !types.has(frame.type)) return false;
    if (flags.from !== undefined && frame.lsn < flags.from) return false;
    if (flags.to !== undefined && frame.lsn > flags.to) return false;
    return true;
  };
}

async function runDump(dir: string, flags: DumpFlags, output: Output): Promise<number> {
  if (flags.from !== undefined && flags.to !== undefined && flags.from > flags.to) {
    throw new InvalidError(`--from ${flags.from} is after --to ${flags.to}`);
  }
  const include = dumpFilter(flags);
  const format = flags.json === true ? formatDumpJson : formatDumpLine;
  if (flags.json !== true) output.out(dumpHeader);
  const scan = await scanDirectory(
    dir,
    scanOptions(flags, (segment, scanned) => {
      if (include(scanned.frame)) output.out(format(segment, scanned));
    }),
  );
  return reportProblems(scan, output);
}

// ---------------------------------------------------------------------------------------------
// verify

export function verifyJson(scan: LogScan) {
  return {
    status: scan.status,
    segments: scan.segments.length,
    records: scan.records,
    firstLsn: scan.firstLsn,
    lastLsn: scan.lastLsn,
    problems: scan.problems.map(problemJson),
  };
}

export function verifyText(scan: LogScan): string[] {
  let summary =
    `${scan.status}: ${plural(scan.segments.length, 'segment')}, ` +
    `${plural(scan.records, 'record')}, lsn ${lsnRange(scan.firstLsn, scan.lastLsn)}`;
  if (scan.problems.length > 0) summary += `, ${plural(scan.problems.length, 'problem')}`;
  return [summary, ...scan.problems.map(formatProblem), ...scanNotes(scan)];
}

async function runVerify(dir: string, flags: ScanFlags, output: Output): Promise<number> {
  const scan = await scanDirectory(dir, scanOptions(flags));
  if (flags.json === true) output.out(JSON.stringify(verifyJson(scan)));
  else for (const line of verifyText(scan)) output.out(line);
  return exitCodeFor(scan.status);
}

// ---------------------------------------------------------------------------------------------
// stats

/** Record types in the order stats lists them (SEAL frames are counted apart). */
const statsTypes = [
  RecordType.Intent,
  RecordType.Commit,
  RecordType.Abort,
  RecordType.Term,
  RecordType.Checkpoint,
] as const;

interface FrameTally {
  recordsByType: Map<number, number>;
  termFirst: number | null;
  termLast: number | null;
  payloadBytes: number;
  seals: number;
}

function newTally(): FrameTally {
  const recordsByType = new Map<number, number>(statsTypes.map((type) => [type, 0]));
  return { recordsByType, termFirst: null, termLast: null, payloadBytes: 0, seals: 0 };
}

function tallyFrame(tally: FrameTally, frame: Frame): void {
  if (frame.type === RecordType.Seal) {
    tally.seals += 1;
    return;
  }
  tally.recordsByType.set(frame.type, (tally.recordsByType.get(frame.type) ?? 0) + 1);
  tally.termFirst ??= frame.term;
  tally.termLast = frame.term;
  tally.payloadBytes += frame.payload.length;
}

export function statsJson(scan: LogScan, tally: FrameTally) {
  const segments = scan.segments.map((segment) => ({
    name: segment.name,
    bytes: segment.fileBytes,
    usedBytes: segment.endOffset,
    records: segment.records,
    firstLsn: segment.records === 0 ? null : segment.firstLsn,
    lastLsn: segment.records === 0 ? null : segment.lastLsn,
  }));
  const sum = (pick: (entry: (typeof segments)[number]) => number) =>
    segments.reduce((total, entry) => total + pick(entry), 0);
  const recordsByType: Record<string, number> = {};
  for (const [type, count] of tally.recordsByType) recordsByType[recordTypeName(type)] = count;
  return {
    status: scan.status,
    segments,
    totals: {
      segments: segments.length,
      bytes: sum((entry) => entry.bytes),
      usedBytes: sum((entry) => entry.usedBytes),
      records: scan.records,
      firstLsn: scan.firstLsn,
      lastLsn: scan.lastLsn,
    },
    recordsByType,
    termFirst: tally.termFirst,
    termLast: tally.termLast,
    payloadBytes: tally.payloadBytes,
    seals: tally.seals,
    strayFiles: scan.strayFiles,
    truncationMarkerLsn: scan.truncationMarkerLsn,
    problems: scan.problems.map(problemJson),
  };
}

export function statsText(stats: ReturnType<typeof statsJson>): string[] {
  const lines = [`segments: ${stats.segments.length}`];
  for (const segment of stats.segments) {
    lines.push(
      `  ${segment.name}  ${String(segment.bytes).padStart(10)} bytes  ` +
        `${String(segment.usedBytes).padStart(10)} used  ` +
        `${String(segment.records).padStart(6)} records  ` +
        `lsn ${lsnRange(segment.firstLsn, segment.lastLsn)}`,
    );
  }
  const totals = stats.totals;
  const marker = stats.truncationMarkerLsn;
  const byType = Object.entries(stats.recordsByType).map(([type, count]) => `${type} ${count}`);
  lines.push(
    `total: ${totals.bytes} bytes, ${totals.usedBytes} used, ` +
      `${plural(totals.records, 'record')}, lsn ${lsnRange(totals.firstLsn, totals.lastLsn)}`,
    `records by type: ${byType.join(', ')}`,
    `terms: ${lsnRange(stats.termFirst, stats.termLast)}`,
    `payload bytes: ${stats.payloadBytes}`,
    `seals: ${stats.seals}`,
    `stray files: ${stats.strayFiles.length === 0 ? 'none' : stats.strayFiles.join(' ')}`,
    `truncation marker: ${marker === null ? 'none' : `lsn ${marker} (later records ignored)`}`,
    `status: ${stats.status}`,
  );
  return lines;
}

async function runStats(dir: string, flags: ScanFlags, output: Output): Promise<number> {
  const tally = newTally();
  const scan = await scanDirectory(
    dir,
    scanOptions(flags, (_, scanned) => {
      tallyFrame(tally, scanned.frame);
    }),
  );
  const stats = statsJson(scan, tally);
  if (flags.json === true) output.out(JSON.stringify(stats));
  else for (const line of statsText(stats)) output.out(line);
  return reportProblems(scan, output);
}

// ---------------------------------------------------------------------------------------------
// The command line.

function parseLsn(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('an LSN is a non-negative integer.');
  const lsn = Number(value);
  if (!Number.isSafeInteger(lsn)) throw new InvalidArgumentError('the LSN is too large.');
  return lsn;
}

function collectTypes(value: string, previous: RecordType[] | undefined): RecordType[] {
  const types = [...(previous ?? [])];
  for (const name of value.split(',')) {
    const type = recordTypeFromName(name.trim());
    if (type === null) {
      const known = 'INTENT, COMMIT, ABORT, TERM, CHECKPOINT, SEAL';
      throw new InvalidArgumentError(`unknown record type '${name.trim()}' (known: ${known}).`);
    }
    types.push(type);
  }
  return types;
}

/** Builds the commander program. Each action stores its exit code through `done`. */
export function buildProgram(output: Output, done: (code: number) => void): Command {
  const program = new Command(programName)
    .description('Dump, verify and summarize a syncwal write-ahead log (read-only).')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => process.stderr.write(text),
    })
    .showHelpAfterError(`(run '${programName} --help' for usage)`);
  const directory = '<dir> is a node directory (holding wal/) or a wal directory';
  program
    .command('dump')
    .description(`print one line per record; ${directory}`)
    .argument('<dir>')
    .option('--json', 'print JSON lines')
    .option('--from <lsn>', 'first LSN to print', parseLsn)
    .option('--to <lsn>', 'last LSN to print', parseLsn)
    .option('--type <types>', 'only these record types (repeatable, or a comma list)', collectTypes)
    .option('--seals', 'also print SEAL frames (local durability markers)')
    .option('--continue', 'read past corruption instead of stopping at the first problem')
    .action(async (dir: string, flags: DumpFlags) => done(await runDump(dir, flags, output)));
  program
    .command('verify')
    .description(`check checksums, chain and continuity; ${directory}`)
    .argument('<dir>')
    .option('--json', 'print one JSON object')
    .option('--continue', 'report every problem instead of stopping at the first')
    .action(async (dir: string, flags: ScanFlags) => done(await runVerify(dir, flags, output)));
  program
    .command('stats')
    .description(`summarize segments, records and terms; ${directory}`)
    .argument('<dir>')
    .option('--json', 'print one JSON object')
    .option('--continue', 'read past corruption instead of stopping at the first problem')
    .action(async (dir: string, flags: ScanFlags) => done(await runStats(dir, flags, output)));
  return program;
}

function describeError(error: unknown): string {
  const code = errnoCode(error);
  const message = error instanceof Error ? error.message : String(error);
  return code === null || message.includes(code) ? message : `${code}: ${message}`;
}

/** The exit code for an error that reached the top; prints it without a stack trace. */
function exitCodeForError(error: unknown, output: Output): number {
  if (error instanceof CommanderError) {
    // Commander printed its message already (help, version, or a usage error).
    return error.exitCode === 0 ? 0 : exitCodes.usage;
  }
  // Branch on the stable code, never on the class (errors.ts): a bad truncation marker is CORRUPT.
  if (isSyncwalError(error) && error.code === 'CORRUPT') {
    output.err(`${programName}: ${error.message}`);
    return exitCodes.corrupt;
  }
  const errno = errnoCode(error) ?? errnoCode(error instanceof Error ? error.cause : null);
  if (isSyncwalError(error) && error.code === 'IOERR' && errno === 'EIO') {
    // The disk could not return the bytes: the log cannot be verified, treat it as corrupt.
    output.err(`${programName}: ${describeError(error)}`);
    return exitCodes.corrupt;
  }
  if (isSyncwalError(error) || errno !== null) {
    output.err(`${programName}: ${describeError(error)}`);
    return exitCodes.usage;
  }
  output.err(`${programName}: internal error: ${error instanceof Error ? error.stack : error}`);
  return exitCodes.internal;
}

/** Runs wal-inspect on `argv` (without the node and script paths) and returns the exit code. */
export async function main(argv: readonly string[], output: Output): Promise<number> {
  let code: number = exitCodes.internal;
  const program = buildProgram(output, (result) => {
    code = result;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error: unknown) {
    return exitCodeForError(error, output);
  }
}

await runIfEntryPoint(import.meta.url, main);
