import { assert } from '../core/assert.js';
import type { RequestIdRecord } from '../ports/checkpoint.js';

/**
 * Request ids seen in intents: a retried write with a known id returns its first outcome
 * instead of being applied twice, and `status(id)` answers from here. Retention is bounded:
 * the `retained` most recent ids (by LSN) are kept, in memory and in the checkpoint; an older
 * id is forgotten and reads as 'unknown'.
 */
export type RequestOutcome = 'committed' | 'aborted';

export interface RequestIdEntry {
  lsn: number;
  outcome: RequestOutcome;
  /** For computed writes (INCR), the value the write produced, when known. */
  value: Uint8Array | null;
}

export class RequestIds {
  /** Insertion order is LSN order (ids are recorded as their intents apply). */
  readonly #known = new Map<string, RequestIdEntry>();
  #sinceCheckpoint: RequestIdRecord[] = [];

  constructor(readonly retained: number) {
    assert(Number.isSafeInteger(retained) && retained >= 0, 'retention is a count');
  }

  get size(): number {
    return this.#known.size;
  }

  get(requestId: string): RequestIdEntry | undefined {
    return this.#known.get(requestId);
  }

  /** Loads ids from a checkpoint (oldest first) without marking them for the next one. */
  load(record: RequestIdRecord): void {
    const entry = { lsn: record.lsn, outcome: record.outcome, value: record.value };
    this.#known.set(record.requestId, entry);
    this.#evict();
  }

  /**
   * Records an outcome. An id can have several intents only when a retry followed an earlier
   * intent that did not commit (aborted, or unknown and later aborted); the intent with the
   * highest LSN decides, so a late "aborted" never hides the retry that committed.
   */
  record(requestId: string, entry: RequestIdEntry): void {
    const known = this.#known.get(requestId);
    if (known !== undefined && known.lsn > entry.lsn) return;
    this.#known.delete(requestId);
    this.#known.set(requestId, entry);
    this.#sinceCheckpoint.push({
      requestId,
      lsn: entry.lsn,
      outcome: entry.outcome,
      value: entry.value,
    });
    this.#evict();
  }

  #evict(): void {
    for (let guard = 0; this.#known.size > this.retained && guard < 1_000_000; guard++) {
      const oldest = this.#known.keys().next();
      if (oldest.done === true) break;
      this.#known.delete(oldest.value);
    }
  }

  /** The LSN below which ids are forgotten (the oldest retained id's LSN). */
  forgetBelowLsn(): number {
    const oldest = this.#known.values().next();
    return oldest.done === true ? 0 : oldest.value.lsn;
  }

  /** Every remembered id, oldest first (a full sync ships them with the state). */
  records(): RequestIdRecord[] {
    return [...this.#known].map(([requestId, entry]) => ({ requestId, ...entry }));
  }

  /** Replaces every id with a checkpoint's (a replica installed a full sync). */
  replaceAll(records: readonly RequestIdRecord[]): void {
    this.#known.clear();
    this.#sinceCheckpoint = [];
    for (const record of records) this.load(record);
  }

  takeSinceCheckpoint(): RequestIdRecord[] {
    const taken = this.#sinceCheckpoint;
    this.#sinceCheckpoint = [];
    return taken.filter((record) => this.#known.get(record.requestId)?.lsn === record.lsn);
  }

  restoreSinceCheckpoint(taken: RequestIdRecord[]): void {
    this.#sinceCheckpoint = [...taken, ...this.#sinceCheckpoint];
  }
}
