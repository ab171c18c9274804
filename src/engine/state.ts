import { assert } from '../core/assert.js';
import type { Effect } from '../core/format/record.js';
import { keyBytes, keyString, newSortedKeys, type KeyString, type SortedKeys } from './keys.js';

/**
 * The committed, applied state: what reads see. Changed only by `apply`, in LSN order, after
 * the intent committed. It also remembers which keys changed since the last checkpoint, so a
 * checkpoint costs in proportion to new writes, not to the data size (DESIGN §5).
 */
export class CommittedState {
  readonly #values = new Map<KeyString, Uint8Array>();
  /**
   * Key order for scans, built on the first scan and maintained from then on: a node that is
   * never scanned (or not yet) pays nothing for it on writes, loads and replay.
   */
  #order: SortedKeys | null = null;
  /** Latest value (null: deleted) of every key changed since the last checkpoint. */
  #dirty = new Map<KeyString, Uint8Array | null>();
  #appliedLsn: number;

  constructor(appliedLsn: number) {
    this.#appliedLsn = appliedLsn;
  }

  /** Every committed intent with LSN <= this is applied. */
  get appliedLsn(): number {
    return this.#appliedLsn;
  }

  get size(): number {
    return this.#values.size;
  }

  get dirtyCount(): number {
    return this.#dirty.size;
  }

  /** Loads one checkpointed entry (startup only, before any apply). */
  load(key: Uint8Array, value: Uint8Array): void {
    const name = keyString(key);
    this.#values.set(name, value);
    this.#order?.set(name, undefined);
  }

  get(key: KeyString): Uint8Array | undefined {
    return this.#values.get(key);
  }

  /**
   * Applies a committed intent's effects. LSNs must increase. `names` may carry the effects'
   * key strings when the caller already computed them (index for index).
   */
  apply(lsn: number, effects: readonly Effect[], names?: readonly KeyString[]): void {
    assert(lsn > this.#appliedLsn, 'intents apply in LSN order');
    assert(names === undefined || names.length === effects.length, 'one name per effect');
    for (let index = 0; index < effects.length; index++) {
      const effect = effects[index];
      assert(effect !== undefined, 'effects are dense');
      const name = names?.[index] ?? keyString(effect.key);
      if (effect.op === 'put') {
        // The sorted index only changes when the key is new.
        if (this.#order !== null && !this.#values.has(name)) this.#order.set(name, undefined);
        this.#values.set(name, effect.value);
        this.#dirty.set(name, effect.value);
      } else {
        if (this.#values.delete(name)) this.#order?.delete(name);
        this.#dirty.set(name, null);
      }
    }
    this.#appliedLsn = lsn;
  }

  /** Moves the applied LSN past records that are not intents (COMMIT, TERM, ...). */
  advance(lsn: number): void {
    if (lsn > this.#appliedLsn) this.#appliedLsn = lsn;
  }

  /** Takes the changes since the last checkpoint (and starts a new change set). */
  takeDirty(): Map<KeyString, Uint8Array | null> {
    const taken = this.#dirty;
    this.#dirty = new Map();
    return taken;
  }

  /** Gives back changes a failed checkpoint did not store; newer changes win. */
  restoreDirty(taken: Map<KeyString, Uint8Array | null>): void {
    for (const [key, value] of taken) if (!this.#dirty.has(key)) this.#dirty.set(key, value);
  }

  #sortedKeys(): SortedKeys {
    if (this.#order !== null) return this.#order;
    const keys = [...this.#values.keys()].sort();
    const order = newSortedKeys();
    for (const key of keys) order.set(key, undefined);
    this.#order = order;
    return order;
  }

  /**
   * Up to `limit` entries with start <= key < end (either bound optional), ascending, plus
   * whether more follow.
   */
  scan(range: { start: KeyString | null; end: KeyString | null; limit: number }) {
    const entries: { key: Buffer; value: Uint8Array }[] = [];
    let more = false;
    const order = this.#sortedKeys();
    const low = range.start ?? order.minKey();
    if (low === undefined) return { entries, more };
    order.forRange(low, range.end ?? '\uffff', false, (key) => {
      if (range.end !== null && key >= range.end) return { break: true };
      if (entries.length === range.limit) {
        more = true;
        return { break: true };
      }
      const value = this.#values.get(key);
      assert(value !== undefined, 'the order index matches the values');
      entries.push({ key: keyBytes(key), value });
      return undefined;
    });
    return { entries, more };
  }
}
