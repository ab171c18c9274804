import { assert } from '../core/assert.js';
import { CorruptionError, InvalidError } from '../core/errors.js';
import { decodeFrame, RecordType } from '../core/format/frame.js';
import { decodeAbort, decodeIntent } from '../core/format/record.js';
import { keyString, valueString, type KeyString, type ValueString } from './keys.js';
import type { RequestIds } from './request-ids.js';
import type { CommittedState } from './state.js';

interface HeldIntent {
  kind: 'intent';
  lsn: number;
  names: KeyString[];
  values: (ValueString | null)[];
  requestId: string | null;
  /** A single put's value, kept with its request id for retries after a failover. */
  value: Uint8Array | null;
}

interface HeldAbort {
  kind: 'abort';
  lsn: number;
  lsnFirst: number;
  lsnLast: number;
}

/**
 * A replica's apply side (DESIGN §3-§4): records received from the primary wait here, in LSN
 * order, until the commit point passes them; then the committed intents are applied in order
 * and the aborted ones dropped (an ABORT always precedes the commit point that passes the
 * intents it covers: the primary holds its commit point below them until the ABORT commits).
 */
export class ReplicaApply {
  readonly #state: CommittedState;
  readonly #ids: RequestIds;
  #held: (HeldIntent | HeldAbort)[] = [];
  #lastLsn: number;

  constructor(state: CommittedState, ids: RequestIds, lastLsn: number) {
    this.#state = state;
    this.#ids = ids;
    this.#lastLsn = lastLsn;
  }

  /**
   * The log's tail after its commit point, found at restart: its intents and ABORT records
   * wait like received ones (the primary resolves them; a truncation may drop them).
   */
  holdRecovered(
    intents: readonly {
      lsn: number;
      names: KeyString[];
      values: (ValueString | null)[];
      requestId: string | null;
    }[],
    aborts: readonly { lsn: number; lsnFirst: number; lsnLast: number }[],
  ): void {
    const records: (HeldIntent | HeldAbort)[] = [
      ...intents.map((intent): HeldIntent => {
        const { lsn, names, values, requestId } = intent;
        return { kind: 'intent', lsn, names, values, requestId, value: null };
      }),
      ...aborts.map((abort): HeldAbort => ({ kind: 'abort', ...abort })),
    ];
    records.sort((left, right) => left.lsn - right.lsn);
    assert(this.#held.length === 0, 'recovered records come first');
    this.#held = records;
  }

  get pending(): number {
    return this.#held.length;
  }

  /** Frames handed to the log (in order, contiguous with what came before). */
  receive(frames: Uint8Array): void {
    for (let offset = 0; offset < frames.length;) {
      const decoded = decodeFrame(frames, offset, frames.length);
      assert(decoded.kind === 'ok', 'the log accepted only valid frames');
      const frame = decoded.frame;
      offset += frame.frameBytes;
      if (frame.lsn <= this.#lastLsn) continue;
      assert(frame.lsn === this.#lastLsn + 1, 'received records are contiguous');
      this.#lastLsn = frame.lsn;
      try {
        if (frame.type === RecordType.Intent) this.#held.push(intentOf(frame.lsn, frame.payload));
        else if (frame.type === RecordType.Abort) {
          this.#held.push({ kind: 'abort', lsn: frame.lsn, ...decodeAbort(frame.payload) });
        }
      } catch (error: unknown) {
        if (!(error instanceof InvalidError)) throw error;
        throw new CorruptionError(
          { segment: 'replication', offset: 0, lsn: frame.lsn },
          `undecodable record from the primary: ${error.message}`,
        );
      }
    }
  }

  /** A full sync replaced the state and the log: records continue after `lsn`. */
  reset(lsn: number): void {
    this.#held = [];
    this.#lastLsn = lsn;
  }

  /** Records after `lsn` were dropped from the log. */
  truncateAfter(lsn: number): void {
    assert(lsn >= this.#state.appliedLsn, 'applied records are never truncated');
    this.#held = this.#held.filter((record) => record.lsn <= lsn);
    this.#lastLsn = Math.min(this.#lastLsn, lsn);
  }

  /** Applies what the commit point `lsn` covers. */
  commitTo(lsn: number): void {
    if (lsn <= this.#state.appliedLsn) return;
    assert(lsn <= this.#lastLsn, 'commit within the received log');
    let count = 0;
    while (count < this.#held.length && (this.#held[count]?.lsn ?? Infinity) <= lsn) count += 1;
    const due = this.#held.slice(0, count);
    this.#held = this.#held.slice(count);
    const aborts = due.filter((record): record is HeldAbort => record.kind === 'abort');
    const aborted = (at: number) =>
      aborts.some((abort) => at >= abort.lsnFirst && at <= abort.lsnLast);
    for (const record of due) {
      if (record.kind !== 'intent') continue;
      const skip = aborted(record.lsn);
      if (!skip) this.#state.apply(record.lsn, record.names, record.values);
      if (record.requestId !== null) {
        this.#ids.record(record.requestId, {
          lsn: record.lsn,
          outcome: skip ? 'aborted' : 'committed',
          value: record.value,
        });
      }
    }
    this.#state.advance(lsn);
  }
}

function intentOf(lsn: number, payload: Uint8Array): HeldIntent {
  const intent = decodeIntent(payload);
  const names = intent.effects.map((effect) => keyString(effect.key));
  const values = intent.effects.map((effect) =>
    effect.op === 'put' ? valueString(effect.value) : null,
  );
  const only = intent.effects.length === 1 ? intent.effects[0] : undefined;
  const value = only?.op === 'put' ? only.value.slice() : null;
  return { kind: 'intent', lsn, names, values, requestId: intent.requestId, value };
}
