import { CorruptionError, InvalidError } from '../core/errors.js';
import { RecordType } from '../core/format/frame.js';
import type { Effect } from '../core/format/record.js';
import { CommitRules, type CommitRulesSummary } from '../core/replay/commit-rules.js';
import { NodeDisk } from '../node/disk.js';
import { listSegments, type LogScan } from '../storage/scan-log.js';
import {
  checkpointFileName,
  readCheckpoint,
  type CheckpointContents,
} from './inspect-checkpoint.js';
import {
  locateLog,
  lsnRange,
  plural,
  programName,
  reportProblems,
  scanWithProgress,
  type InspectContext,
  type LogLocation,
} from './inspect-common.js';

/**
 * `wal-inspect state <dir> [--at LSN]`: the committed state of a node at an LSN (DESIGN §6),
 * materialized by the commit/apply rules of DESIGN §3 (src/core/replay/commit-rules.ts): start
 * from the checkpoint if there is one at or below the LSN, else from nothing at the start of
 * the log; apply every intent up to the LSN that a COMMIT up to the LSN covers and no ABORT
 * rolled back. Intents after the last commit point are in doubt and are not applied.
 *
 * stdout is the state alone, one JSON line per key in byte order of the keys, so two nodes'
 * states can be compared with diff(1). A key or value that is valid UTF-8 is a JSON string;
 * any other is `{"base64": "..."}`. What the state is built from and how many intents were
 * applied, aborted and in doubt goes to stderr (a JSON object with --json).
 */
export interface StateFlags {
  at?: number;
  json?: boolean;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A key or value as JSON: the string if it is valid UTF-8, else base64 with a marker. */
export function bytesJson(bytes: Uint8Array): string | { base64: string } {
  try {
    return utf8.decode(bytes);
  } catch {
    return { base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64') };
  }
}

/** Keys are held as latin1 strings (one char per byte), which sort in byte order. */
function keyName(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

interface Base {
  from: 'checkpoint' | 'log';
  lsn: number;
}

/**
 * Where to start: the checkpoint if it is at or below --at, else the empty state before LSN 1,
 * which needs a log that still starts at LSN 1.
 */
function chooseBase(
  location: LogLocation,
  checkpoint: CheckpointContents | null,
  logStart: number,
  at: number | undefined,
): Base {
  if (checkpoint !== null && (at === undefined || at >= checkpoint.appliedLsn)) {
    const lsn = checkpoint.appliedLsn;
    if (logStart > lsn + 1 && at !== lsn) {
      throw new CorruptionError(
        { segment: 'wal', offset: 0, lsn: lsn + 1 },
        `the log starts at lsn ${logStart}, after the checkpoint at lsn ${lsn}: ` +
          `records ${lsn + 1}..${logStart - 1} are missing`,
      );
    }
    return { from: 'checkpoint', lsn };
  }
  if (logStart <= 1) return { from: 'log', lsn: 0 };
  if (checkpoint !== null) {
    throw new InvalidError(
      `--at ${at} is below the checkpoint's lsn ${checkpoint.appliedLsn}, and the log now ` +
        `starts at lsn ${logStart} (a checkpoint removed the records before it): the state ` +
        `at lsn ${at} cannot be rebuilt (the earliest it can be shown at is lsn ` +
        `${checkpoint.appliedLsn})`,
    );
  }
  const where =
    location.nodeDir === null
      ? ` (give the node directory, which holds ${checkpointFileName})`
      : ` and ${location.nodeDir} holds no ${checkpointFileName}`;
  throw new CorruptionError(
    { segment: 'wal', offset: 0, lsn: 1 },
    `the log starts at lsn ${logStart}${where}: the state before lsn ${logStart} is unknown`,
  );
}

async function logStartLsn(walDir: string): Promise<number> {
  const { segments } = await listSegments(new NodeDisk(), walDir);
  return Math.min(...segments.map((segment) => segment.firstLsn));
}

export interface StateSummary {
  at: number;
  keys: number;
  base: Base;
  checkpointLsn: number | null;
  log: { firstLsn: number | null; lastLsn: number | null; status: LogScan['status'] };
  commitLsn: number;
  lastTerm: number | null;
  intents: Omit<CommitRulesSummary, 'baseLsn' | 'lastLsn' | 'commitLsn'>;
}

interface Materialized {
  scan: LogScan;
  state: Map<string, Uint8Array>;
  rules: CommitRules;
  lastTerm: number | null;
}

/** Loads the base and replays the log up to `at` (all of it if undefined). */
async function materialize(
  context: InspectContext,
  walDir: string,
  base: Base,
  checkpoint: CheckpointContents | null,
  at: number | undefined,
): Promise<Materialized> {
  const state = new Map<string, Uint8Array>();
  if (base.from === 'checkpoint' && checkpoint !== null) {
    for (const entry of checkpoint.entries) state.set(keyName(entry.key), entry.value);
  }
  const apply = (_lsn: number, effects: readonly Effect[]) => {
    for (const effect of effects) {
      // A copy: the effect is a view into a whole segment's bytes.
      if (effect.op === 'put') state.set(keyName(effect.key), effect.value.slice());
      else state.delete(keyName(effect.key));
    }
  };
  const rules = new CommitRules(base.lsn, apply);
  let lastTerm: number | null = null;
  const scan = await scanWithProgress(context, walDir, 'state', {
    onFrame: (segment, scanned) => {
      const frame = scanned.frame;
      if (frame.type === RecordType.Seal || (at !== undefined && frame.lsn > at)) return;
      rules.add(frame, { segment, offset: scanned.offset });
      lastTerm = frame.term;
    },
  });
  return { scan, state, rules, lastTerm };
}

function summarize(
  materialized: Materialized,
  base: Base,
  checkpoint: CheckpointContents | null,
  at: number,
): StateSummary {
  const { scan, rules, state } = materialized;
  const { baseLsn: _base, lastLsn: _last, commitLsn, ...intents } = rules.summary();
  return {
    at,
    keys: state.size,
    base,
    checkpointLsn: checkpoint?.appliedLsn ?? null,
    log: { firstLsn: scan.firstLsn, lastLsn: scan.lastLsn, status: scan.status },
    commitLsn,
    lastTerm: materialized.lastTerm,
    intents,
  };
}

export function stateSummaryText(summary: StateSummary): string[] {
  const { base, intents } = summary;
  const from =
    base.from === 'checkpoint'
      ? `${checkpointFileName} at lsn ${base.lsn}, then the log after it`
      : 'the log from lsn 1' +
        (summary.checkpointLsn === null
          ? ' (no checkpoint)'
          : ` (the checkpoint at lsn ${summary.checkpointLsn} is past lsn ${summary.at})`);
  const term = summary.lastTerm === null ? '' : `, last term ${summary.lastTerm}`;
  const lines = [
    `state at lsn ${summary.at}: ${plural(summary.keys, 'key')}`,
    `from: ${from}`,
    `commit point: lsn ${summary.commitLsn}${term}`,
    `intents after lsn ${base.lsn}: ${intents.applied} committed and applied, ` +
      `${intents.aborted} aborted, ${intents.inDoubt} in doubt`,
  ];
  if (intents.inDoubt > 0) {
    lines.push(
      `in doubt: ${plural(intents.inDoubt, 'intent')} after the commit point ` +
        `(${lsnList(intents.inDoubtFirstLsn, intents.inDoubtLastLsn)}), not applied: ` +
        'a single-node engine commits them when it next opens; a replica waits for its primary',
    );
  }
  return lines;
}

function lsnList(first: number | null, last: number | null): string {
  return first === last ? `lsn ${first}` : `lsn ${lsnRange(first, last)}`;
}

function printState(context: InspectContext, state: Map<string, Uint8Array>): void {
  const keys = [...state.keys()].sort();
  for (const key of keys) {
    const value = state.get(key);
    if (value === undefined) continue;
    const entry = { key: bytesJson(Buffer.from(key, 'latin1')), value: bytesJson(value) };
    context.output.out(JSON.stringify(entry));
  }
}

/** --at past what the log holds: a usage error on a clean log, else the scan's verdict. */
function atPastEnd(context: InspectContext, scan: LogScan, at: number, end: number): number {
  if (scan.status === 'clean') {
    throw new InvalidError(`--at ${at} is past the end of the log (lsn ${end})`);
  }
  const code = reportProblems(scan, context.output);
  context.output.err(`${programName}: --at ${at} is past the last readable record (lsn ${end})`);
  return code;
}

export async function runState(
  dir: string,
  flags: StateFlags,
  context: InspectContext,
): Promise<number> {
  const location = await locateLog(new NodeDisk(), dir);
  const checkpoint = location.nodeDir === null ? null : await readCheckpoint(location.nodeDir);
  const logStart = await logStartLsn(location.walDir);
  const base = chooseBase(location, checkpoint, logStart, flags.at);
  const materialized = await materialize(context, location.walDir, base, checkpoint, flags.at);
  const scan = materialized.scan;
  const logEnd = scan.lastLsn ?? logStart - 1;
  if (base.from === 'checkpoint' && base.lsn > logEnd) {
    throw new CorruptionError(
      { segment: 'wal', offset: 0, lsn: logEnd + 1 },
      `the checkpoint is at lsn ${base.lsn} but the log ends at lsn ${logEnd}`,
    );
  }
  const end = Math.max(logEnd, base.lsn);
  if (flags.at !== undefined && flags.at > end) return atPastEnd(context, scan, flags.at, end);
  const summary = summarize(materialized, base, checkpoint, flags.at ?? end);
  printState(context, materialized.state);
  if (flags.json === true) context.output.err(JSON.stringify(summary));
  else for (const line of stateSummaryText(summary)) context.output.err(line);
  return reportProblems(scan, context.output);
}
