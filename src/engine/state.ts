import { assert } from '../core/assert.js';
import {
  keyBytes,
  keyString,
  newSortedKeys,
  valueBytes,
  valueString,
  type KeyString,
  type SortedKeys,
  type ValueString,
} from './keys.js';

/**
 * The committed, applied state: what reads see. Changed only by `apply`, in LSN order, after
 * the intent committed. It also remembers which keys changed since the last checkpoint, so a
 * checkpoint costs in proportion to new writes, not to the data size (DESIGN §5).
 *
 * Keys and values are held as latin1 strings (KeyString, ValueString in keys.ts): the values
 * are immutable, so `get` hands them out without a copy and callers copy into bytes as needed.
 */
/** Changes taken for a checkpoint, to give back if it fails. */
export interface TakenChanges {
  dirty: Map<KeyString, ValueString | null>;
  replayed: KeyString[];
}

interface Entry {
  key: Buffer;
  value: Buffer;
}

export class CommittedState {
  readonly #values = new Map<KeyString, ValueString>();
  /**
   * Key order for scans, built on the first scan and maintained from then on: a node that is
   * never scanned (or not yet) pays nothing for it on writes, loads and replay.
   */
  #order: SortedKeys | null = null;
  /** Latest value (null: deleted) of every key changed since the last checkpoint. */
  #dirty = new Map<KeyString, ValueString | null>();
  /**
   * Keys the replay changed (each once), whose values `takeChanges` looks up: replay runs before
   * the node serves anything and touches every key of the log, so it only notes them here, one
   * array push per key instead of a second map update during the open.
   */
  #dirtyReplayed: KeyString[] = [];
  /** Keys the replay deleted, until the checkpoint is merged (it must not bring them back). */
  #replayDeleted = new Set<KeyString>();
  /** Replay ended: the checkpoint is merged and `applyReplayed` may no longer be called. */
  #merged = false;
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

  /**
   * Merges the checkpoint into the state the replay built (startup only, see replay.ts): every
   * key the log wrote or deleted keeps the log's last word, every other key takes the
   * checkpoint's value. Then every intent up to the checkpoint's LSN counts as applied.
   */
  mergeCheckpoint(entries: readonly { key: Uint8Array; value: Uint8Array }[], lsn: number): void {
    const replayed = this.#values.size > 0 || this.#replayDeleted.size > 0;
    for (const entry of entries) {
      const name = keyString(entry.key);
      if (replayed && (this.#values.has(name) || this.#replayDeleted.has(name))) continue;
      this.#values.set(name, valueString(entry.value));
      this.#order?.set(name, undefined);
    }
    this.#replayDeleted = new Set();
    this.#merged = true;
    if (lsn > this.#appliedLsn) this.#appliedLsn = lsn;
  }

  /**
   * Replaces everything with a checkpoint's state at `lsn` (a replica installed a full sync):
   * the store holds exactly this now, so nothing counts as changed since the last checkpoint.
   */
  replaceAll(entries: readonly { key: Uint8Array; value: Uint8Array }[], lsn: number): void {
    this.#values.clear();
    this.#order = null;
    this.#dirty = new Map();
    this.#dirtyReplayed = [];
    this.#replayDeleted = new Set();
    this.#merged = true;
    for (const entry of entries) this.#values.set(keyString(entry.key), valueString(entry.value));
    this.#appliedLsn = lsn;
  }

  /**
   * Every key and value, keys ascending, as they are now (a full sync's snapshot: the strings
   * are immutable, so the arrays stay the state at this LSN while the state moves on).
   */
  sortedEntries(): { keys: KeyString[]; values: ValueString[] } {
    const keys: KeyString[] = [];
    const values: ValueString[] = [];
    for (const key of this.#sortedKeys().keys()) {
      const value = this.#values.get(key);
      assert(value !== undefined, 'the sorted index holds only present keys');
      keys.push(key);
      values.push(value);
    }
    return { keys, values };
  }

  get(key: KeyString): ValueString | undefined {
    return this.#values.get(key);
  }

  /**
   * Applies a committed intent's effects, given as its keys and their new values (null:
   * delete), index for index and in the intent's order. LSNs must increase.
   */
  apply(lsn: number, names: readonly KeyString[], values: readonly (ValueString | null)[]): void {
    assert(lsn > this.#appliedLsn, 'intents apply in LSN order');
    assert(names.length === values.length, 'one value per key');
    for (let index = 0; index < names.length; index++) {
      const name = names[index];
      const value = values[index];
      assert(name !== undefined && value !== undefined, 'effects are dense');
      this.#set(name, value);
      this.#dirty.set(name, value);
    }
    this.#appliedLsn = lsn;
  }

  /**
   * `apply` for the replay on open, which starts from an empty state: each key is noted as
   * changed the first time the replay puts or deletes it.
   */
  applyReplayed(
    lsn: number,
    names: readonly KeyString[],
    values: readonly (ValueString | null)[],
  ): void {
    assert(!this.#merged, 'the replay ends when the checkpoint is merged');
    assert(lsn > this.#appliedLsn, 'intents apply in LSN order');
    assert(names.length === values.length, 'one value per key');
    for (let index = 0; index < names.length; index++) {
      const name = names[index];
      const value = values[index];
      assert(name !== undefined && value !== undefined, 'effects are dense');
      // New to the map, or absent and not deleted before: the replay has not noted it yet.
      const sizeBefore = this.#values.size;
      this.#set(name, value);
      const seen = this.#replayDeleted.size > 0 && this.#replayDeleted.has(name);
      if (value !== null) {
        if (this.#values.size > sizeBefore && !seen) this.#dirtyReplayed.push(name);
      } else {
        if (this.#values.size === sizeBefore && !seen) this.#dirtyReplayed.push(name);
        this.#replayDeleted.add(name);
      }
    }
    this.#appliedLsn = lsn;
  }

  #set(name: KeyString, value: ValueString | null): void {
    if (value !== null) {
      // The sorted index only changes when the key is new.
      if (this.#order !== null && !this.#values.has(name)) this.#order.set(name, undefined);
      this.#values.set(name, value);
    } else if (this.#values.delete(name)) this.#order?.delete(name);
  }

  /** Moves the applied LSN past records that are not intents (COMMIT, TERM, ...). */
  advance(lsn: number): void {
    if (lsn > this.#appliedLsn) this.#appliedLsn = lsn;
  }

  /**
   * Takes the changes since the last checkpoint (and starts a new change set): what to give
   * back to `restoreDirty` if the checkpoint fails, and the same changes as the puts and
   * deletes of a checkpoint batch (fresh bytes, for the store to keep or move), each key once.
   */
  takeChanges(): { taken: TakenChanges; puts: Entry[]; deletes: Buffer[] } {
    const taken: TakenChanges = { dirty: this.#dirty, replayed: this.#dirtyReplayed };
    this.#dirty = new Map();
    this.#dirtyReplayed = [];
    const puts: Entry[] = [];
    const deletes: Buffer[] = [];
    const add = (name: KeyString, value: ValueString | null) => {
      if (value === null) deletes.push(keyBytes(name));
      else puts.push({ key: keyBytes(name), value: valueBytes(value) });
    };
    for (const [name, value] of taken.dirty) add(name, value);
    const check = taken.dirty.size > 0;
    for (const name of taken.replayed) {
      if (!check || !taken.dirty.has(name)) add(name, this.#values.get(name) ?? null);
    }
    return { taken, puts, deletes };
  }

  /** Gives back changes a failed checkpoint did not store; newer changes win. */
  restoreDirty(taken: TakenChanges): void {
    for (const [key, value] of taken.dirty) if (!this.#dirty.has(key)) this.#dirty.set(key, value);
    // Notes carry no value (it is looked up when taken), so newer changes win by themselves.
    for (const name of taken.replayed) this.#dirtyReplayed.push(name);
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
    const entries: { key: Buffer; value: ValueString }[] = [];
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
