#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { InvalidError, errnoCode, isSyncwalError } from '../core/errors.js';
import {
  RecordType,
  recordTypeFromName,
  recordTypeName,
  type Frame,
} from '../core/format/frame.js';
import { describePayload } from '../core/format/record.js';
import type { ScannedFrame } from '../core/recovery/scan.js';
import { NodeDisk } from '../node/disk.js';
import type { LogScan, ScanOptions } from '../storage/scan-log.js';
import { runIfEntryPoint, type Output } from './entry.js';
import {
  describeError,
  describePayloadCompact,
  exitCodeFor,
  exitCodes,
  formatProblem,
  locateLog,
  lsnRange,
  plural,
  problemJson,
  programName,
  reportProblems,
  scanNotes,
  scanWithProgress,
  type InspectContext,
} from './inspect-common.js';
import { runDiff, type DiffFlags } from './inspect-diff.js';
import { stderrProgressSink, type ProgressSink } from './inspect-progress.js';
import { runState, type StateFlags } from './inspect-state.js';

/**
 * wal-inspect: dumps, verifies, summarizes and compares syncwal logs, and materializes a
 * node's committed state (DESIGN §6, docs/wal-inspect.md).
 *
 * The program is thin on purpose. It parses flags, calls `scanLog` (storage/scan-log.ts), which
 * decodes and classifies every frame with the recovery decision table, and formats what it
 * reports; `state` applies the commit rules of core/replay/commit-rules.ts and `diff` compares
 * two scans (inspect-state.ts, inspect-diff.ts). It is read-only: it never takes the node's
 * LOCK and never opens a file for writing, so it is safe to run on the directory of a live
 * node.
 *
 * Output is deterministic: no timestamps and no absolute paths (segments are named by their
 * file name only; directories as given on the command line), so it can be compared with
 * golden files. Progress bars go to stderr, and only when it is a terminal.
 */

export {
  exitCodes,
  formatProblem,
  resolveWalDir,
  describePayloadCompact,
} from './inspect-common.js';
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

async function scanDirectory(
  context: InspectContext,
  dir: string,
  label: string,
  options: ScanOptions,
): Promise<LogScan> {
  const location = await locateLog(new NodeDisk(), dir);
  return scanWithProgress(context, location.walDir, label, options);
}

function scanOptions(flags: ScanFlags, onFrame?: ScanOptions['onFrame']): ScanOptions {
  const options: ScanOptions = { continueOnCorruption: flags.continue === true };
  if (onFrame !== undefined) options.onFrame = onFrame;
  return options;
}

// ---------------------------------------------------------------------------------------------
// dump

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

async function runDump(dir: string, flags: DumpFlags, context: InspectContext): Promise<number> {
  if (flags.from !== undefined && flags.to !== undefined && flags.from > flags.to) {
    throw new InvalidError(`--from ${flags.from} is after --to ${flags.to}`);
  }
  const include = dumpFilter(flags);
  const format = flags.json === true ? formatDumpJson : formatDumpLine;
  const { output } = context;
  if (flags.json !== true) output.out(dumpHeader);
  const scan = await scanDirectory(
    context,
    dir,
    'dump',
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

async function runVerify(dir: string, flags: ScanFlags, context: InspectContext) {
  const { output } = context;
  const scan = await scanDirectory(context, dir, 'verify', scanOptions(flags));
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

async function runStats(dir: string, flags: ScanFlags, context: InspectContext) {
  const { output } = context;
  const tally = newTally();
  const scan = await scanDirectory(
    context,
    dir,
    'stats',
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

/** What `main` may be given besides the arguments. */
export interface InspectOptions {
  /**
   * Where progress bars go, or null for none. By default: stderr when it is a terminal (and,
   * for `dump`, which prints as it scans, only when stdout is not the terminal too).
   */
  progress?: ProgressSink | null;
}

type Done = (code: number) => void;

const directory = '<dir> is a node directory (holding wal/) or a wal directory';

function addLogCommands(program: Command, context: CommandContext, done: Done): void {
  const dumpContext: InspectContext = { ...context, progress: context.dumpProgress };
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
    .action(async (dir: string, flags: DumpFlags) => done(await runDump(dir, flags, dumpContext)));
  program
    .command('verify')
    .description(`check checksums, chain and continuity; ${directory}`)
    .argument('<dir>')
    .option('--json', 'print one JSON object')
    .option('--continue', 'report every problem instead of stopping at the first')
    .action(async (dir: string, flags: ScanFlags) => done(await runVerify(dir, flags, context)));
  program
    .command('stats')
    .description(`summarize segments, records and terms; ${directory}`)
    .argument('<dir>')
    .option('--json', 'print one JSON object')
    .option('--continue', 'read past corruption instead of stopping at the first problem')
    .action(async (dir: string, flags: ScanFlags) => done(await runStats(dir, flags, context)));
}

function addNodeCommands(program: Command, context: InspectContext, done: Done): void {
  program
    .command('diff')
    .description(
      "compare two nodes' logs: the first divergent LSN and why (exit 0 identical over the " +
        'LSNs both hold, 1 diverged, 2 corrupt); each <dir> as for dump',
    )
    .argument('<dirA>')
    .argument('<dirB>')
    .option('--json', 'print one JSON object')
    .action(async (dirA: string, dirB: string, flags: DiffFlags) =>
      done(await runDiff(dirA, dirB, flags, context)),
    );
  program
    .command('state')
    .description(
      'print the committed state at an LSN as JSON lines (checkpoint.sqlite, then the log); ' +
        'a summary goes to stderr; <dir> is a node directory',
    )
    .argument('<dir>')
    .option('--at <lsn>', 'the LSN to materialize (default: the last record)', parseLsn)
    .option('--json', 'print the summary on stderr as one JSON object')
    .action(async (dir: string, flags: StateFlags) => done(await runState(dir, flags, context)));
}

/** Builds the commander program. Each action stores its exit code through `done`. */
export function buildProgram(
  output: Output,
  done: Done,
  options: InspectOptions = { progress: null },
): Command {
  const program = new Command(programName)
    .description('Dump, verify, summarize and compare syncwal write-ahead logs (read-only).')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      writeErr: (text) => process.stderr.write(text),
    })
    .showHelpAfterError(`(run '${programName} --help' for usage)`);
  const context = commandContext(output, options);
  addLogCommands(program, context, done);
  addNodeCommands(program, context, done);
  return program;
}

interface CommandContext extends InspectContext {
  /** `dump` prints while it scans: no bar when stdout is the same terminal. */
  dumpProgress: ProgressSink | null;
}

function commandContext(output: Output, options: InspectOptions): CommandContext {
  if (options.progress !== undefined) {
    return { output, progress: options.progress, dumpProgress: options.progress };
  }
  const progress = stderrProgressSink();
  const dumpProgress = process.stdout.isTTY === true ? null : progress;
  return { output, progress, dumpProgress };
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
export async function main(
  argv: readonly string[],
  output: Output,
  options: InspectOptions = {},
): Promise<number> {
  let code: number = exitCodes.internal;
  const program = buildProgram(
    output,
    (result) => {
      code = result;
    },
    options,
  );
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error: unknown) {
    return exitCodeForError(error, output);
  }
}

await runIfEntryPoint(import.meta.url, main);
