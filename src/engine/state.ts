import { assert } from '../core/assert.js';
import { latin1Of } from '../core/latin1.js';
import { intentEffectCount, intentEffectRanges } from '../core/format/record.js';
import {
  keyBytes,
  keyString,
  newSortedKeys,
  type KeyString,
  type SortedKeys,
  type ValueString,
} from './keys.js';
import { StateTable } from './state-table.js';

/**
 * An adopted buffer is kept after the replay if at least this share of it is live records: its
 * dead bytes are then at most half its live ones, below what makes the table compact.
 */
const adoptedShareMin = 2 / 3;

/** Intents with at least this many effects hash and look ahead before applying. */
const touchAheadEffectsMin = 8;

/**
 * The committed, applied state: what reads see. Changed only by `apply` / `applyIntent`, in LSN
 * order, after the intent committed. It also remembers which keys changed since the last
 * checkpoint, so a checkpoint writes only new changes, not the whole data (DESIGN §5): a dirty
 * flag in the key's index slot for keys written (taking them scans the index, see decision
 * 0005), a set for keys deleted.
 *
 * The pairs themselves live in a StateTable (state-table.ts), outside the garbage-collected
 * heap. Keys and values cross this class's interface either as bytes or as KeyString /
 * ValueString (latin1 strings, one char per byte, see keys.ts).
 */
/** Changes taken for a checkpoint, to give back if it fails. */
export interface TakenChanges {
  /** The keys taken as puts (the `puts` keys: stores copy them, so they stay intact). */
  puts: readonly Uint8Array[];
  /** The keys taken as deletes. */
  deletes: readonly KeyString[];
}

interface Entry {
  key: Buffer;
  value: Buffer;
}

export interface CommittedStateOptions {
  /** Seeds the key hash (StateTable); the composition root passes a random one. */
  hashSeed?: number;
}

export class CommittedState {
  readonly #table: StateTable;
  /**
   * Key order for scans, built on the first scan and maintained from then on: a node that is
   * never scanned (or not yet) pays nothing for it on writes, loads and replay.
   */
  #order: SortedKeys | null = null;
  /**
   * Keys deleted since the last checkpoint (a key in the table again is not deleted: its slot
   * is dirty). During the replay on open, these are also the keys the checkpoint must not
   * bring back when it is merged.
   */
  #deleted = new Set<KeyString>();
  /** The checkpoint is merged (or replaced): `mergeCheckpoint` runs once. */
  #merged = false;
  #appliedLsn: number;
  /** Where each effect of the intent being applied lies (`intentEffectRanges`). */
  #ranges = new Int32Array(3 * 64);
  /** The hashes of its keys (0 for a delete). */
  #hashes = new Int32Array(64);
  /** Index words read ahead of a batch's puts (kept, so that the reads are not dropped). */
  #touched = 0;

  constructor(appliedLsn: number, options: CommittedStateOptions = {}) {
    this.#appliedLsn = appliedLsn;
    this.#table = new StateTable(
      options.hashSeed === undefined ? {} : { hashSeed: options.hashSeed },
    );
  }

  /** Every committed intent with LSN <= this is applied. */
  get appliedLsn(): number {
    return this.#appliedLsn;
  }

  get size(): number {
    return this.#table.size;
  }

  /** Bytes held: records in use, records not reclaimed yet, slabs, and the index. */
  stats() {
    return this.#table.stats();
  }

  /**
   * Merges the checkpoint into the state the replay built (startup only, see replay.ts): every
   * key the log wrote or deleted keeps the log's last word, every other key takes the
   * checkpoint's value. Then every intent up to the checkpoint's LSN counts as applied.
   */
  mergeCheckpoint(entries: readonly { key: Uint8Array; value: Uint8Array }[], lsn: number): void {
    assert(!this.#merged, 'the checkpoint is merged once');
    const table = this.#table;
    const deleted = this.#deleted.size > 0;
    for (const entry of entries) {
      const key = entry.key;
      if (table.size > 0 && table.findBytes(key, 0, key.length) >= 0) continue;
      if (deleted && this.#deleted.has(keyString(key))) continue;
      this.#insertClean(entry);
    }
    this.#merged = true;
    if (lsn > this.#appliedLsn) this.#appliedLsn = lsn;
  }

  /** Inserts a checkpoint's entry, which is not a change since that checkpoint. */
  #insertClean(entry: { key: Uint8Array; value: Uint8Array }): void {
    const { key, value } = entry;
    this.#table.putBytes(key, 0, key.length, value, 0, value.length);
    this.#table.setDirty(this.#table.findBytes(key, 0, key.length), false);
    this.#order?.set(keyString(key), undefined);
  }

  /**
   * Replaces everything with a checkpoint's state at `lsn` (a replica installed a full sync):
   * the store holds exactly this now, so nothing counts as changed since the last checkpoint.
   */
  replaceAll(entries: readonly { key: Uint8Array; value: Uint8Array }[], lsn: number): void {
    this.#table.clear();
    this.#order = null;
    this.#deleted = new Set();
    this.#merged = true;
    for (const entry of entries) this.#insertClean(entry);
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
      const slot = this.#table.findString(key);
      assert(slot >= 0, 'the sorted index holds only present keys');
      keys.push(key);
      values.push(this.#table.valueString(slot));
    }
    return { keys, values };
  }

  get(key: KeyString): ValueString | undefined {
    const slot = this.#table.findString(key);
    return slot < 0 ? undefined : this.#table.valueString(slot);
  }

  /** The committed value of the key `name` as a fresh Buffer, or null. */
  copyOf(name: KeyString): Buffer | null {
    const slot = this.#table.findString(name);
    return slot < 0 ? null : this.#table.valueCopy(slot);
  }

  /** `copyOf` for a key given as its bytes. */
  copyOfBytes(key: Uint8Array): Buffer | null {
    const slot = this.#table.findBytes(key, 0, key.length);
    return slot < 0 ? null : this.#table.valueCopy(slot);
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
      if (value === null) this.#deleteName(name);
      else if (this.#table.putString(name, value)) this.#order?.set(name, undefined);
    }
    this.#appliedLsn = lsn;
    this.#reclaim();
  }

  /**
   * Applies a committed intent given as its INTENT payload, whose effects start at `start`
   * (as `intentEffectsStart` checked and returned it): the same as `apply`, read from the
   * payload's bytes in place. With `adopt`, its puts stay where they are, in the payload's
   * buffer, which nobody may change any more (the replay's log segments; see StateTable
   * `adoptEffect`); call `releaseAdopted` when done.
   */
  applyIntent(lsn: number, payload: Uint8Array, start: number, adopt = false): void {
    assert(lsn > this.#appliedLsn, 'intents apply in LSN order');
    const count = intentEffectCount(payload);
    if (this.#hashes.length < count) {
      this.#hashes = new Int32Array(count);
      this.#ranges = new Int32Array(3 * count);
    }
    const ranges = this.#ranges;
    const hashes = this.#hashes;
    const table = this.#table;
    intentEffectRanges(payload, start, ranges);
    for (let index = 0; index < count; index++) {
      const put = (ranges[3 * index + 2] as number) >= 0;
      const keyStart = ranges[3 * index] as number;
      hashes[index] = put ? table.hashBytes(payload, keyStart, ranges[3 * index + 1] as number) : 0;
    }
    // A batch reads its keys' index slots first, all together (see StateTable `touch`).
    if (count >= touchAheadEffectsMin) this.#touched ^= table.touch(hashes, count);
    for (let index = 0; index < count; index++) {
      const keyStart = ranges[3 * index] as number;
      const keyEnd = ranges[3 * index + 1] as number;
      const valueEnd = ranges[3 * index + 2] as number;
      if (valueEnd < 0) {
        this.#deleteName(latin1Of(payload, keyStart, keyEnd));
        continue;
      }
      const hash = hashes[index] as number;
      const fresh = adopt
        ? table.adoptEffect(payload, keyStart, keyEnd, valueEnd, hash)
        : table.putEffect(payload, keyStart, keyEnd, valueEnd, hash);
      if (fresh && this.#order !== null) {
        this.#order.set(latin1Of(payload, keyStart, keyEnd), undefined);
      }
    }
    this.#appliedLsn = lsn;
    // Not while the replay adopts: a segment being adopted is mostly not live yet, and moving
    // its records out would undo the adoption (`releaseAdopted` settles them at the end).
    if (!adopt) this.#reclaim();
  }

  #deleteName(name: KeyString): void {
    const slot = this.#table.findString(name);
    if (slot >= 0) {
      this.#table.deleteSlot(slot);
      this.#order?.delete(name);
    }
    // Noted even if absent: during the replay the key may be in the checkpoint, not merged yet.
    this.#deleted.add(name);
  }

  /**
   * Lets go of adopted buffers (`applyIntent` with `adopt`) less than `adoptedShareMin` of which
   * is records in use, copying those records out: the end of the replay, when shares are known.
   */
  releaseAdopted(): void {
    this.#table.releaseAdopted(adoptedShareMin);
  }

  /** Gives the table its bounded step of reclaiming overwritten records, when due. */
  #reclaim(): void {
    if (this.#table.compactionDue) this.#table.compact();
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
    const table = this.#table;
    const puts: Entry[] = [];
    const putKeys: Uint8Array[] = [];
    for (let slot = 0; slot < table.capacity; slot++) {
      if (!table.occupied(slot) || !table.dirty(slot)) continue;
      table.setDirty(slot, false);
      const key = table.keyCopy(slot);
      puts.push({ key, value: table.valueCopy(slot) });
      putKeys.push(key);
    }
    const deletes: Buffer[] = [];
    const deleted: KeyString[] = [];
    for (const name of this.#deleted) {
      if (table.findString(name) >= 0) continue;
      deletes.push(keyBytes(name));
      deleted.push(name);
    }
    this.#deleted = new Set();
    return { taken: { puts: putKeys, deletes: deleted }, puts, deletes };
  }

  /** Gives back changes a failed checkpoint did not store; newer changes win. */
  restoreDirty(taken: TakenChanges): void {
    // The values are looked up when next taken, so newer changes win by themselves. A key put
    // and deleted since is in `#deleted`; one deleted and put again since is dirty.
    for (const key of taken.puts) {
      const slot = this.#table.findBytes(key, 0, key.length);
      if (slot >= 0) this.#table.setDirty(slot, true);
    }
    for (const name of taken.deletes) {
      if (this.#table.findString(name) < 0) this.#deleted.add(name);
    }
  }

  #sortedKeys(): SortedKeys {
    if (this.#order !== null) return this.#order;
    const table = this.#table;
    const keys: KeyString[] = [];
    for (let slot = 0; slot < table.capacity; slot++) {
      if (table.occupied(slot)) keys.push(table.keyString(slot));
    }
    keys.sort();
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
      const slot = this.#table.findString(key);
      assert(slot >= 0, 'the order index matches the values');
      entries.push({ key: keyBytes(key), value: this.#table.valueString(slot) });
      return undefined;
    });
    return { entries, more };
  }
}
