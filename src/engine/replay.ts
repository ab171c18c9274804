import { CorruptionError, InvalidError } from '../core/errors.js';
import { RecordType } from '../core/format/frame.js';
import {
  decodeAbort,
  decodeCommit,
  decodeIntent,
  decodeTerm,
  type Effect,
} from '../core/format/record.js';
import type { Log, LogRecord } from '../storage/log.js';
import type { RequestIds } from './request-ids.js';
import type { CommittedState } from './state.js';

/**
 * Restart: the checkpoint is loaded; this replays the log after it (DESIGN §3). Intents are
 * applied in LSN order unless an ABORT covers them. COMMIT records are checked against the
 * intents they name (a COMMIT carries its last intent's checksum, so a bad intent under a good
 * commit is corruption, not a torn tail). On a single node every durable intent after the last
 * COMMIT is in doubt only nominally: it is durable, so it commits; the caller then appends a
 * COMMIT record for it.
 */
export interface Replayed {
  term: number;
  lastIntent: { lsn: number; checksum: number };
  /** The highest commit point a COMMIT record names. */
  commitRecordedLsn: number;
  intents: number;
  aborted: number;
  bytes: number;
}

interface ReplayedIntent {
  lsn: number;
  checksum: number;
  effects: Effect[];
  requestId: string | null;
}

const readChunkBytes = 4 * 1024 * 1024;

function corrupt(lsn: number, reason: string): CorruptionError {
  return new CorruptionError({ segment: 'wal', offset: 0, lsn }, reason);
}

function checkBounds(log: Log, appliedLsn: number): void {
  if (log.lastLsn < appliedLsn) {
    throw corrupt(
      log.lastLsn + 1,
      `the checkpoint is at LSN ${appliedLsn} but the log ends at ${log.lastLsn}`,
    );
  }
  if (log.firstLsn > appliedLsn + 1) {
    throw corrupt(
      appliedLsn + 1,
      `log starts at LSN ${log.firstLsn}, after the checkpoint's ${appliedLsn}`,
    );
  }
}

function decodeIntentRecord(record: LogRecord): ReplayedIntent {
  try {
    const intent = decodeIntent(record.payload);
    return { lsn: record.lsn, checksum: record.checksum, ...intent };
  } catch (error: unknown) {
    if (error instanceof InvalidError)
      throw corrupt(record.lsn, `undecodable INTENT: ${error.message}`);
    throw error;
  }
}

export async function replayLog(
  log: Log,
  state: CommittedState,
  requestIds: RequestIds,
): Promise<Replayed> {
  const appliedLsn = state.appliedLsn;
  checkBounds(log, appliedLsn);
  const intents: ReplayedIntent[] = [];
  const checksums = new Map<number, number>();
  const aborts: { lsnFirst: number; lsnLast: number }[] = [];
  const replayed: Replayed = {
    term: 0,
    lastIntent: { lsn: 0, checksum: 0 },
    commitRecordedLsn: appliedLsn,
    intents: 0,
    aborted: 0,
    bytes: 0,
  };
  for (let lsn = appliedLsn + 1; lsn <= log.lastLsn;) {
    const records = await log.read({
      lsnFirst: lsn,
      lsnLast: log.lastLsn,
      bytesMax: readChunkBytes,
    });
    for (const record of records) {
      replayed.bytes += record.payload.length;
      replayed.term = Math.max(replayed.term, record.term);
      collect(record, { intents, checksums, aborts, replayed });
    }
    const last = records.at(-1);
    if (last === undefined) break;
    lsn = last.lsn + 1;
  }
  applyReplayed(state, requestIds, { intents, aborts, replayed });
  state.advance(log.lastLsn);
  return replayed;
}

function collect(
  record: LogRecord,
  into: {
    intents: ReplayedIntent[];
    checksums: Map<number, number>;
    aborts: { lsnFirst: number; lsnLast: number }[];
    replayed: Replayed;
  },
): void {
  try {
    if (record.type === RecordType.Intent) {
      into.intents.push(decodeIntentRecord(record));
      into.checksums.set(record.lsn, record.checksum);
    } else if (record.type === RecordType.Commit) {
      const commit = decodeCommit(record.payload);
      const checksum = into.checksums.get(commit.intentLsn);
      if (checksum !== undefined && checksum !== commit.intentChecksum) {
        throw corrupt(
          commit.intentLsn,
          `COMMIT at ${record.lsn} names a different intent checksum`,
        );
      }
      into.replayed.commitRecordedLsn = Math.max(into.replayed.commitRecordedLsn, commit.commitLsn);
    } else if (record.type === RecordType.Abort) {
      into.aborts.push(decodeAbort(record.payload));
    } else if (record.type === RecordType.Term) {
      into.replayed.term = Math.max(into.replayed.term, decodeTerm(record.payload).term);
    }
  } catch (error: unknown) {
    if (error instanceof InvalidError)
      throw corrupt(record.lsn, `undecodable record: ${error.message}`);
    throw error;
  }
}

function applyReplayed(
  state: CommittedState,
  requestIds: RequestIds,
  from: {
    intents: ReplayedIntent[];
    aborts: { lsnFirst: number; lsnLast: number }[];
    replayed: Replayed;
  },
): void {
  const isAborted = (lsn: number) =>
    from.aborts.some((range) => lsn >= range.lsnFirst && lsn <= range.lsnLast);
  for (const intent of from.intents) {
    const single = intent.effects.length === 1 ? intent.effects[0] : undefined;
    const value = single?.op === 'put' ? single.value : null;
    if (isAborted(intent.lsn)) {
      from.replayed.aborted += 1;
      if (intent.requestId !== null) {
        requestIds.record(intent.requestId, { lsn: intent.lsn, outcome: 'aborted', value: null });
      }
      continue;
    }
    state.apply(intent.lsn, intent.effects);
    from.replayed.intents += 1;
    from.replayed.lastIntent = { lsn: intent.lsn, checksum: intent.checksum };
    if (intent.requestId !== null) {
      requestIds.record(intent.requestId, { lsn: intent.lsn, outcome: 'committed', value });
    }
  }
}
