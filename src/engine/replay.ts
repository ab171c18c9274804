import { assert } from '../core/assert.js';
import { CorruptionError, InvalidError } from '../core/errors.js';
import { RecordType } from '../core/format/frame.js';
import {
  decodeAbort,
  decodeCommit,
  decodeIntent,
  decodeTerm,
  intentEffectCount,
  intentEffectsStart,
  intentHasRequestId,
  visitIntentEffects,
  type IntentPayload,
} from '../core/format/record.js';
import type { CheckpointSnapshot } from '../ports/checkpoint.js';
import type { Log, LogRecord } from '../storage/log.js';
import { keyString, valueString, type KeyString, type ValueString } from './keys.js';
import type { RequestIds } from './request-ids.js';
import type { CommittedState } from './state.js';

/**
 * Restart (DESIGN §3): the committed state is the checkpoint plus the log after it. Intents are
 * applied in LSN order unless an ABORT covers them. COMMIT records are checked against the
 * intents they name (a COMMIT carries its last intent's checksum, so a bad intent under a good
 * commit is corruption, not a torn tail). On a single node every durable intent after the last
 * COMMIT is in doubt only nominally: it is durable, so it commits; the caller then appends a
 * COMMIT record for it.
 *
 * One pass, while the log is recovered: `Log.open` hands every record its recovery scan keeps
 * to `record` (LogOptions.onRecoveredRecord), so the log is read and verified once, and this
 * runs while the checkpoint store starts. That is before the checkpoint's applied LSN is
 * known, so the replay starts at the log's first record instead of just after the checkpoint,
 * and `finish` merges: a key the log wrote (or deleted) keeps the log's last word, every other
 * key takes the checkpoint's value. This is exact because intents are effects, not commands
 * (DESIGN §2): replaying effects the checkpoint already holds, in order, followed by all the
 * later ones, ends in the same state. The extra work is bounded: a checkpoint deletes every
 * segment wholly below it, so at most about one segment precedes the checkpoint's LSN.
 *
 * Intents wait only until a COMMIT covers them (on a single node the next write group's
 * COMMIT) and are applied then, so memory holds the recent intents rather than the whole log.
 * An ABORT therefore has to come before the COMMIT that passes the intents it covers, which is
 * what DESIGN §3 promises (a committed intent is never aborted); an ABORT of an intent a COMMIT
 * already passed is reported as corruption.
 *
 * A waiting intent is its payload as recovery read it (a view into the segment, not a copy),
 * checked when it is replayed. When a COMMIT passes it, its puts are adopted where they lie
 * (CommittedState `applyIntent` with `adopt`): the state keeps the segment buffers recovery
 * read as its memory instead of copying a million records out of them, and makes no string or
 * object per key. At the end, a segment that is mostly not live records is copied out and let
 * go (`releaseAdopted`).
 */
export interface Replayed {
  term: number;
  /** The last intent after the checkpoint that was applied ({0, 0} if none). */
  lastIntent: { lsn: number; checksum: number };
  /** The highest commit point a COMMIT record names (at least the checkpoint's LSN). */
  commitRecordedLsn: number;
  /** Intents applied and intents aborted, over the whole log. */
  intents: number;
  aborted: number;
  /** Payload bytes of the records replayed. */
  bytes: number;
  /** Where each term's records start in the replayed log, ascending. */
  termStarts: { term: number; firstLsn: number }[];
  /**
   * With `inDoubt: 'hold'`: the intents after the commit point, not applied, in LSN order, each
   * marked if an ABORT after it covers it (a replicated node resolves them with its shard).
   */
  inDoubt: (ReplayedIntent & { aborted: boolean })[];
  /** With `inDoubt: 'hold'`: the ABORT records after the commit point (a replica holds them). */
  inDoubtAborts: { lsn: number; lsnFirst: number; lsnLast: number }[];
}

export interface ReplayedIntent {
  lsn: number;
  checksum: number;
  names: KeyString[];
  values: (ValueString | null)[];
  requestId: string | null;
}

interface RequestIdOutcome {
  requestId: string;
  lsn: number;
  outcome: 'committed' | 'aborted';
  value: Uint8Array | null;
}

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

type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice: Latin1Slice }).latin1Slice;
const opPut = 1;
const opDelete = 2;

/**
 * An INTENT's effects as key and value strings, read straight from the payload: no effect
 * objects and no views per key and value (a million-key replay makes two million of those).
 * Only the common shape is read here (version 1, no request id, well formed); anything else,
 * malformed payloads included, goes through `decodeIntent` (core/format/record.ts, where the
 * layout is documented), which decides what is valid and how it is reported.
 */
export function decodeIntentFast(
  payload: Uint8Array,
): { names: KeyString[]; values: (ValueString | null)[] } | null {
  const length = payload.length;
  if (length < 8 || payload[0] !== 1 || payload[1] !== 0) return null;
  const count = readU32(payload, 4);
  if (count * 5 > length) return null;
  const names: KeyString[] = [];
  const values: (ValueString | null)[] = [];
  let at = 8;
  for (let index = 0; index < count; index++) {
    if (at + 5 > length) return null;
    const op = payload[at];
    const keyBytes = readU32(payload, at + 1);
    const keyStart = at + 5;
    if (keyStart + keyBytes > length) return null;
    names.push(latin1Slice.call(payload, keyStart, keyStart + keyBytes));
    at = keyStart + keyBytes;
    if (op === opDelete) {
      values.push(null);
      continue;
    }
    if (op !== opPut || at + 4 > length) return null;
    const valueBytes = readU32(payload, at);
    const valueStart = at + 4;
    if (valueStart + valueBytes > length) return null;
    values.push(latin1Slice.call(payload, valueStart, valueStart + valueBytes));
    at = valueStart + valueBytes;
  }
  return at === length ? { names, values } : null;
}

function readU32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] ?? 0) | ((bytes[at + 1] ?? 0) << 8) | ((bytes[at + 2] ?? 0) << 16)) +
    (bytes[at + 3] ?? 0) * 0x1000000
  );
}

/** Decodes an INTENT into key and value strings (copies: the record's bytes are not kept). */
export function decodeIntentRecord(
  record: Pick<LogRecord, 'lsn' | 'checksum' | 'payload'>,
): ReplayedIntent {
  const { lsn, checksum } = record;
  const fast = decodeIntentFast(record.payload);
  if (fast !== null) return { lsn, checksum, ...fast, requestId: null };
  let intent: IntentPayload;
  try {
    intent = decodeIntent(record.payload);
  } catch (error: unknown) {
    if (error instanceof InvalidError) throw corrupt(lsn, `undecodable INTENT: ${error.message}`);
    throw error;
  }
  const names: KeyString[] = [];
  const values: (ValueString | null)[] = [];
  for (const effect of intent.effects) {
    names.push(keyString(effect.key));
    values.push(effect.op === 'put' ? valueString(effect.value) : null);
  }
  return { lsn, checksum, names, values, requestId: intent.requestId };
}

/** An intent waiting for its COMMIT: its payload (checked) and where its effects start. */
interface HeldIntent {
  lsn: number;
  checksum: number;
  payload: Uint8Array;
  effectsStart: number;
  requestId: string | null;
}

/**
 * Checks an INTENT record as `decodeIntent` would, and decodes its request id, without
 * decoding its effects. A malformed payload is corruption.
 */
function holdIntent(record: LogRecord): HeldIntent {
  const { lsn, checksum, payload } = record;
  const effectsStart = intentEffectsStart(payload);
  let requestId: string | null = null;
  if (effectsStart < 0 || intentHasRequestId(payload)) {
    try {
      requestId = decodeIntent(payload).requestId;
    } catch (error: unknown) {
      if (error instanceof InvalidError) throw corrupt(lsn, `undecodable INTENT: ${error.message}`);
      throw error;
    }
  }
  // decodeIntent accepts exactly what intentEffectsStart accepts, plus a valid UTF-8 id.
  assert(effectsStart >= 0, 'INTENT checks agree');
  return { lsn, checksum, payload, effectsStart, requestId };
}

/** The value of an intent that is a single put (kept for a retried request id), or null. */
function singlePutValue(intent: HeldIntent): Uint8Array | null {
  if (intentEffectCount(intent.payload) !== 1) return null;
  let value: Uint8Array | null = null;
  visitIntentEffects(intent.payload, intent.effectsStart, (_keyStart, keyEnd, valueEnd) => {
    if (valueEnd >= 0) value = intent.payload.slice(keyEnd + 4, valueEnd);
  });
  return value;
}

/**
 * The replay of one open. Feed it every record of the log in LSN order from the first
 * (`record`, which `Log.open` calls through its onRecoveredRecord option), then `finish` it
 * with the opened log and the loaded checkpoint.
 */
export class LogReplay {
  readonly #state: CommittedState;
  /** Intents no COMMIT has passed yet, in LSN order. */
  #held: HeldIntent[] = [];
  /** Every intent applied or aborted so far is at or below this. */
  #resolvedLsn = 0;
  /** LSN of the first record replayed, and of the last (0: none yet). */
  #lsnFirst = 0;
  #lsnLast = 0;
  /** The checksum of each replayed record that is an intent (-1 for other records). */
  readonly #checksums: number[] = [];
  /** ABORT records: the range they cover and their own LSN. */
  readonly #aborts: { lsnFirst: number; lsnLast: number; lsn: number }[] = [];
  /** Outcomes of intents that carried a request id, in LSN order. */
  readonly #requestIds: RequestIdOutcome[] = [];
  #lastIntent = { lsn: 0, checksum: 0 };
  #term = 0;
  #commitRecordedLsn = 0;
  #intents = 0;
  #aborted = 0;
  #bytes = 0;
  readonly #termStarts: { term: number; firstLsn: number }[] = [];
  /** `record`, bound, for LogOptions.onRecoveredRecord. */
  readonly onRecord: (record: LogRecord) => void;

  constructor(state: CommittedState) {
    assert(state.size === 0 && state.appliedLsn === 0, 'the replay starts from an empty state');
    this.#state = state;
    this.onRecord = (record) => this.record(record);
  }

  record(record: LogRecord): void {
    if (this.#lsnFirst === 0) {
      this.#lsnFirst = record.lsn;
      this.#resolvedLsn = record.lsn - 1;
    }
    assert(record.lsn === this.#lsnFirst + this.#checksums.length, 'records replay in order');
    this.#lsnLast = record.lsn;
    this.#bytes += record.payload.length;
    this.#term = Math.max(this.#term, record.term);
    if (record.term > (this.#termStarts.at(-1)?.term ?? -1)) {
      this.#termStarts.push({ term: record.term, firstLsn: record.lsn });
    }
    const intent = record.type === RecordType.Intent;
    this.#checksums.push(intent ? record.checksum : -1);
    if (intent) {
      this.#held.push(holdIntent(record));
      return;
    }
    try {
      if (record.type === RecordType.Commit) this.#commit(record);
      else if (record.type === RecordType.Abort) this.#abort(record);
      else if (record.type === RecordType.Term) {
        this.#term = Math.max(this.#term, decodeTerm(record.payload).term);
      }
    } catch (error: unknown) {
      if (error instanceof InvalidError)
        throw corrupt(record.lsn, `undecodable record: ${error.message}`);
      throw error;
    }
  }

  #commit(record: LogRecord): void {
    const commit = decodeCommit(record.payload);
    const checksum = this.#checksums[commit.intentLsn - this.#lsnFirst];
    if (checksum !== undefined && checksum !== -1 && checksum !== commit.intentChecksum) {
      throw corrupt(commit.intentLsn, `COMMIT at ${record.lsn} names a different intent checksum`);
    }
    this.#commitRecordedLsn = Math.max(this.#commitRecordedLsn, commit.commitLsn);
    this.#resolve(commit.commitLsn);
  }

  /** Records an ABORT; it may not cover an intent a COMMIT already had applied. */
  #abort(record: LogRecord): void {
    const range = decodeAbort(record.payload);
    const replayedLast = this.#lsnFirst + this.#checksums.length - 1;
    const last = Math.min(range.lsnLast, this.#resolvedLsn, replayedLast);
    // Bounded by the records replayed so far: the range is clipped to them.
    for (let lsn = Math.max(range.lsnFirst, this.#lsnFirst); lsn <= last; lsn++) {
      const intent = this.#checksums[lsn - this.#lsnFirst] !== -1;
      if (intent && !this.#isAborted(lsn)) {
        throw corrupt(
          record.lsn,
          `ABORT of [${range.lsnFirst}, ${range.lsnLast}] covers intent ${lsn}, ` +
            'which a COMMIT already passed',
        );
      }
    }
    this.#aborts.push({ ...range, lsn: record.lsn });
  }

  #isAborted(lsn: number): boolean {
    return this.#aborts.some((range) => lsn >= range.lsnFirst && lsn <= range.lsnLast);
  }

  /** Applies (or drops, if aborted) every held intent at or below `lsn`, in LSN order. */
  #resolve(lsn: number): void {
    let count = 0;
    for (const intent of this.#held) {
      if (intent.lsn > lsn) break;
      this.#resolveOne(intent);
      count += 1;
    }
    if (count === this.#held.length) this.#held = [];
    else if (count > 0) this.#held.splice(0, count);
    this.#resolvedLsn = Math.max(this.#resolvedLsn, lsn);
  }

  #resolveOne(intent: HeldIntent): void {
    if (this.#aborts.length > 0 && this.#isAborted(intent.lsn)) {
      this.#aborted += 1;
      if (intent.requestId !== null) {
        const { requestId, lsn } = intent;
        this.#requestIds.push({ requestId, lsn, outcome: 'aborted', value: null });
      }
      return;
    }
    // The payload is a view into a segment recovery read, which nothing changes: adopted.
    this.#state.applyIntent(intent.lsn, intent.payload, intent.effectsStart, true);
    this.#intents += 1;
    this.#lastIntent = { lsn: intent.lsn, checksum: intent.checksum };
    if (intent.requestId !== null) {
      this.#requestIds.push({
        requestId: intent.requestId,
        lsn: intent.lsn,
        outcome: 'committed',
        value: singlePutValue(intent),
      });
    }
  }

  /**
   * Completes the open: commits the intents after the last COMMIT (a single node's in-doubt
   * intents are durable), checks that the replay saw the whole log, merges the checkpoint in,
   * and records the request ids after it. `requestIds` holds the checkpoint's ids already.
   */
  finish(
    log: Log,
    snapshot: CheckpointSnapshot,
    requestIds: RequestIds,
    inDoubt: 'commit' | 'hold' = 'commit',
  ): Replayed {
    const appliedLsn = snapshot.appliedLsn;
    checkBounds(log, appliedLsn);
    // Recovery hands over exactly the records it keeps, so this is a bug if it fails.
    const records = log.lastLsn - log.firstLsn + 1;
    assert(this.#checksums.length === Math.max(records, 0), 'the replay saw every record');
    assert(records <= 0 || this.#lsnFirst === log.firstLsn, 'the replay started at the log');
    assert(records <= 0 || this.#lsnLast === log.lastLsn, 'the replay reached the end');
    if (inDoubt === 'commit') this.#resolve(log.lastLsn);
    // A checkpoint ahead of the last COMMIT record: the intents it covers are committed (an
    // aborted one among them has its ABORT below the checkpoint too, DESIGN §3), so the replay
    // applies them before the merge, where the log's word wins over the checkpoint's.
    else if (this.#resolvedLsn < appliedLsn) this.#resolve(appliedLsn);
    // A checkpoint may be ahead of the last COMMIT record: what it holds was committed.
    const held = inDoubt === 'commit' ? [] : this.#held.filter((i) => i.lsn > appliedLsn);
    this.#held = [];
    this.#state.releaseAdopted();
    this.#state.mergeCheckpoint(snapshot.entries, appliedLsn);
    for (const outcome of this.#requestIds) {
      if (outcome.lsn <= appliedLsn) continue;
      const { lsn, value } = outcome;
      requestIds.record(outcome.requestId, { lsn, outcome: outcome.outcome, value });
    }
    this.#state.advance(
      inDoubt === 'commit' ? log.lastLsn : Math.max(this.#resolvedLsn, appliedLsn),
    );
    const after = this.#lastIntent.lsn > appliedLsn;
    return {
      term: this.#term,
      lastIntent: after ? this.#lastIntent : { lsn: 0, checksum: 0 },
      commitRecordedLsn: Math.max(this.#commitRecordedLsn, appliedLsn),
      intents: this.#intents,
      aborted: this.#aborted,
      bytes: this.#bytes,
      termStarts: this.#termStarts,
      inDoubt: held.map((intent) => ({
        ...decodeIntentRecord(intent),
        aborted: this.#isAborted(intent.lsn),
      })),
      inDoubtAborts:
        inDoubt === 'commit'
          ? []
          : this.#aborts.filter((abort) => abort.lsn > Math.max(this.#resolvedLsn, appliedLsn)),
    };
  }
}
