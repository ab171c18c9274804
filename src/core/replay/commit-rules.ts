import { assert } from '../assert.js';
import { CorruptionError, InvalidError, type CorruptionSite } from '../errors.js';
import { RecordType, recordTypeName } from '../format/frame.js';
import {
  decodeAbort,
  decodeCommit,
  decodeIntent,
  decodeTerm,
  type Effect,
} from '../format/record.js';

/**
 * The commit/apply rules of DESIGN §3 over a stream of records, pure and synchronous: which
 * intents are committed (applied), which are aborted, and which are still in doubt.
 *
 * - An intent is committed once a COMMIT record names a commit point at or above its LSN, unless
 *   an ABORT record's range covers it. Committed intents apply in LSN order.
 * - An intent after the highest commit point is in doubt: durable, not committed, not applied.
 *   (A single-node engine commits those itself when it next opens; a replica waits for its
 *   primary. This module only reports them.)
 * - A COMMIT carries the checksum of the last intent it covers. A different checksum means a bad
 *   intent under a good commit: corruption, not a torn tail.
 * - An ABORT that covers an intent an earlier COMMIT already committed contradicts the contract
 *   (an explicit outcome is never overturned): corruption.
 * - A payload that does not decode is corruption (the engine's replay says the same).
 *
 * Records at or below `baseLsn` are skipped: their effects are already in the base state (a
 * checkpoint at that LSN, or nothing for base 0). Records must arrive in LSN order without gaps;
 * SEAL frames are not records and must not be passed in.
 *
 * Intents are applied as soon as a COMMIT covers them, so only the pending ones are held. Memory
 * otherwise is one byte of status and one checksum per LSN after the base.
 */
export interface ReplayRecord {
  type: RecordType;
  lsn: number;
  term: number;
  /** The record frame's crc. */
  checksum: number;
  payload: Uint8Array;
}

/** Where a record lies, for error messages. */
export type RecordSite = Omit<CorruptionSite, 'lsn'>;

export interface CommitRulesSummary {
  baseLsn: number;
  /** The last LSN passed in (baseLsn if none after it was). */
  lastLsn: number;
  /** The highest commit point named by a COMMIT record after the base (at least baseLsn). */
  commitLsn: number;
  applied: number;
  aborted: number;
  inDoubt: number;
  inDoubtFirstLsn: number | null;
  inDoubtLastLsn: number | null;
}

const statusOther = 0;
const statusPending = 1;
const statusApplied = 2;
const statusAborted = 3;

interface PendingIntent {
  lsn: number;
  effects: Effect[];
}

/** A growable byte-per-LSN status column and a crc column, indexed by lsn - baseLsn - 1. */
class Columns {
  status = new Uint8Array(1024);
  checksums = new Uint32Array(1024);
  count = 0;

  push(status: number, checksum: number): void {
    if (this.count === this.status.length) {
      const status = new Uint8Array(this.count * 2);
      status.set(this.status);
      const checksums = new Uint32Array(this.count * 2);
      checksums.set(this.checksums);
      this.status = status;
      this.checksums = checksums;
    }
    this.status[this.count] = status;
    this.checksums[this.count] = checksum >>> 0;
    this.count += 1;
  }
}

export class CommitRules {
  readonly #apply: (lsn: number, effects: readonly Effect[]) => void;
  readonly #columns = new Columns();
  #pending: PendingIntent[] = [];
  #pendingHead = 0;
  /** ABORT ranges that reach past their own record (they cover intents still to come). */
  #abortsAhead: { lsnFirst: number; lsnLast: number }[] = [];
  #commitLsn: number;
  #lastLsn: number;
  #applied = 0;
  #aborted = 0;

  /** `apply` receives each committed intent's effects, in LSN order. */
  constructor(
    readonly baseLsn: number,
    apply: (lsn: number, effects: readonly Effect[]) => void,
  ) {
    assert(Number.isSafeInteger(baseLsn) && baseLsn >= 0, 'CommitRules: base is an LSN');
    this.#apply = apply;
    this.#commitLsn = baseLsn;
    this.#lastLsn = baseLsn;
  }

  get commitLsn(): number {
    return this.#commitLsn;
  }

  /** Feeds the next record. Throws CorruptionError (naming `site`) if it breaks the rules. */
  add(record: ReplayRecord, site: RecordSite): void {
    assert(record.type !== RecordType.Seal, 'CommitRules: SEAL frames are not records');
    if (record.lsn <= this.baseLsn) return;
    assert(record.lsn === this.#lastLsn + 1, 'CommitRules: records arrive in LSN order');
    this.#lastLsn = record.lsn;
    try {
      this.#addRecord(record, site);
    } catch (error: unknown) {
      if (!(error instanceof InvalidError)) throw error;
      const type = recordTypeName(record.type);
      throw new CorruptionError(
        { ...site, lsn: record.lsn },
        `undecodable ${type} record: ${error.message}`,
      );
    }
  }

  #addRecord(record: ReplayRecord, site: RecordSite): void {
    switch (record.type) {
      case RecordType.Intent:
        return this.#addIntent(record);
      case RecordType.Commit:
        this.#columns.push(statusOther, 0);
        return this.#addCommit(record, site);
      case RecordType.Abort:
        this.#columns.push(statusOther, 0);
        return this.#addAbort(record, site);
      case RecordType.Term:
        decodeTerm(record.payload);
        this.#columns.push(statusOther, 0);
        return;
      default:
        // CHECKPOINT is informational; the log layer rejects unknown types.
        this.#columns.push(statusOther, 0);
    }
  }

  #addIntent(record: ReplayRecord): void {
    const intent = decodeIntent(record.payload);
    this.#abortsAhead = this.#abortsAhead.filter((range) => range.lsnLast >= record.lsn);
    if (this.#abortsAhead.some((range) => range.lsnFirst <= record.lsn)) {
      this.#columns.push(statusAborted, record.checksum);
      this.#aborted += 1;
      return;
    }
    if (record.lsn <= this.#commitLsn) {
      // A commit point that already covers it (a COMMIT naming a point past itself).
      this.#columns.push(statusApplied, record.checksum);
      this.#applyIntent(record.lsn, intent.effects);
      return;
    }
    this.#columns.push(statusPending, record.checksum);
    this.#pending.push({ lsn: record.lsn, effects: intent.effects });
  }

  #statusAt(lsn: number): number {
    const index = lsn - this.baseLsn - 1;
    return index >= 0 && index < this.#columns.count ? (this.#columns.status[index] ?? 0) : -1;
  }

  #addCommit(record: ReplayRecord, site: RecordSite): void {
    const commit = decodeCommit(record.payload);
    const status = this.#statusAt(commit.intentLsn);
    if (commit.intentLsn > 0 && status !== -1 && status !== statusOther) {
      const stored = this.#columns.checksums[commit.intentLsn - this.baseLsn - 1];
      if (stored !== commit.intentChecksum >>> 0) {
        throw new CorruptionError(
          { ...site, lsn: record.lsn },
          `COMMIT at ${record.lsn} names intent ${commit.intentLsn} with a different checksum ` +
            'than that intent has',
        );
      }
    }
    if (commit.commitLsn <= this.#commitLsn) return;
    this.#commitLsn = commit.commitLsn;
    for (; this.#pendingHead < this.#pending.length; this.#pendingHead++) {
      const intent = this.#pending[this.#pendingHead];
      assert(intent !== undefined, 'pending intents are dense');
      if (intent.lsn > this.#commitLsn) break;
      if (this.#statusAt(intent.lsn) !== statusPending) continue;
      this.#columns.status[intent.lsn - this.baseLsn - 1] = statusApplied;
      this.#applyIntent(intent.lsn, intent.effects);
    }
    if (this.#pendingHead > 1024 && this.#pendingHead * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#pendingHead);
      this.#pendingHead = 0;
    }
  }

  #applyIntent(lsn: number, effects: readonly Effect[]): void {
    this.#applied += 1;
    this.#apply(lsn, effects);
  }

  #addAbort(record: ReplayRecord, site: RecordSite): void {
    const abort = decodeAbort(record.payload);
    if (abort.lsnLast >= record.lsn) this.#abortsAhead.push(abort);
    const first = Math.max(abort.lsnFirst, this.baseLsn + 1);
    const last = Math.min(abort.lsnLast, record.lsn - 1);
    for (let lsn = first; lsn <= last; lsn++) {
      const status = this.#statusAt(lsn);
      if (status === statusApplied) {
        throw new CorruptionError(
          { ...site, lsn: record.lsn },
          `ABORT at ${record.lsn} rolls back intent ${lsn}, which a COMMIT already committed`,
        );
      }
      if (status !== statusPending) continue;
      this.#columns.status[lsn - this.baseLsn - 1] = statusAborted;
      this.#aborted += 1;
    }
  }

  /** What the records passed in so far add up to. */
  summary(): CommitRulesSummary {
    let inDoubt = 0;
    let inDoubtFirstLsn: number | null = null;
    let inDoubtLastLsn: number | null = null;
    for (let index = this.#pendingHead; index < this.#pending.length; index++) {
      const intent = this.#pending[index];
      assert(intent !== undefined, 'pending intents are dense');
      if (this.#statusAt(intent.lsn) !== statusPending) continue;
      inDoubt += 1;
      inDoubtFirstLsn ??= intent.lsn;
      inDoubtLastLsn = intent.lsn;
    }
    return {
      baseLsn: this.baseLsn,
      lastLsn: this.#lastLsn,
      commitLsn: this.#commitLsn,
      applied: this.#applied,
      aborted: this.#aborted,
      inDoubt,
      inDoubtFirstLsn,
      inDoubtLastLsn,
    };
  }
}
