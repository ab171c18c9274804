import { assert } from '../core/assert.js';
import { latin1Of } from '../core/latin1.js';

/**
 * The key-value pairs of the committed state, held outside the garbage-collected heap: a hash
 * index over typed arrays, and the keys and values as bytes in large buffers (slabs).
 *
 * Why not a `Map` of strings: at a million keys the state is two million long-lived heap
 * strings, and a `Map` over them. Measured on the development machine, inserting them (the
 * replay on open) cost about 1.9 s, most of it the garbage collector copying and marking them
 * as the heap grew, and a read paid four dependent cache misses (bucket, entry, key string,
 * value string) plus a string made of the caller's key bytes to look it up with. Here the heap
 * holds a handful of objects whatever the size, a read hashes the caller's bytes as they are and
 * touches the index slot and then one record, and an overwritten value is garbage the table
 * reclaims itself, in bounded steps (`compact`), instead of old-generation garbage.
 *
 * Records. A record is `u32 keyBytes | key | u32 valueBytes | value` (little-endian), the layout
 * of a put in an INTENT payload after its op byte, so a put is copied from a payload in one
 * piece (`putEffect`). It is written once at the end of the current slab and never changed: a
 * put of an existing key writes a new record and releases the old one. Slabs start at
 * `slabBytesMin` and double up to `slabBytesMax`, so a small state stays small; a record
 * larger than a quarter of `slabBytesMax` gets a slab of its own.
 *
 * Index. Open addressing with linear probing over an Int32Array, three words per slot: the tag
 * (0: empty; else bit 30 set, bits 0-29 the key's hash, bit 31 the dirty flag), the record's
 * slab and its offset in the slab. The table doubles before more than three quarters of its
 * slots are in use, so a probe always ends at an empty slot. A delete shifts the entries after
 * it back into place (no tombstones), so lookups never walk over removed entries. The index is
 * one typed array of at most 2 GiB (asserted): about 130 million keys.
 *
 * Hashing. FNV-1a over the key's bytes, seeded, then a murmur3 finalizer. A key given as a
 * KeyString (one char per byte, see keys.ts) hashes the same as its bytes. The seed is what
 * makes the slots unpredictable to someone choosing keys to collide (the composition root
 * passes a random one; tests and simulations keep the default and stay deterministic). Nothing
 * anyone can observe depends on the order of slots: scans sort, a checkpoint batch is a set.
 *
 * Adopted buffers. A put read from a buffer nobody changes any more (the replay on open: the
 * log segments recovery read) can be adopted instead of copied (`adoptEffect`): the record stays
 * where it is and the whole buffer becomes a slab, an external one. Everything in it that is not
 * a live record counts as dead (frame headers, other records, a segment's zero tail), and
 * `releaseAdopted` copies out the live records of adopted buffers that are mostly dead, so a
 * buffer is kept only while it is mostly records in use. An adopted buffer is not a sequence of
 * records, so emptying one scans the index for its entries instead of walking it, a bounded
 * step per `compact` call (a buffer may be as large as a log segment).
 *
 * Reclaiming. Released records are dead bytes of their slab; a slab whose records are all dead
 * is dropped at once. `compact` moves the live records out of the emptiest slabs while the dead
 * bytes are more than half the live ones (and more than `compactDeadBytesMin`): a write
 * therefore costs at most about three times its size in copying, and the slabs hold at most
 * about one and a half times the live bytes, plus one slab being filled.
 */
export interface StateTableOptions {
  /** Seeds the key hash (default: a fixed constant). */
  hashSeed?: number;
  /** Bits of the key hash kept in the tag, 1 to 30 (default 30; fewer make tests collide). */
  hashBits?: number;
  /** The first slab's size; later ones double up to `slabBytesMax` (default 64 KiB). */
  slabBytesMin?: number;
  /** The largest shared slab (default 4 MiB). */
  slabBytesMax?: number;
  /** Dead bytes tolerated whatever the live bytes (default 8 MiB). */
  compactDeadBytesMin?: number;
  /** Index slots one step of draining an adopted buffer scans (default 256 Ki). */
  drainSlotsPerStep?: number;
}

const slotWords = 3;
const tagOccupied = 0x40000000;
const tagDirty = -0x80000000;
const tagHashMask = 0x3fffffff;
/** The two length fields of a record. */
const recordHeaderBytes = 8;
const capacityMin = 64;
/** Entries per slot, at most, before the index doubles: 3/4. */
const loadNumerator = 3;
const loadDenominator = 4;
/** Dropped full-size slabs kept for reuse, at most. */
const slabsSpareMax = 2;
/** Slabs emptied per `compact` call, at most (each is at most `slabBytesMax`). */
const compactSlabsPerCall = 8;
/** One step of draining an adopted buffer moves at most this many bytes. */
const drainBytesPerStep = 8 * 1024 * 1024;
/** Byte ranges up to this long are copied in a loop rather than through a subarray view. */
const copyLoopBytesMax = 24;

type Latin1Write = (this: Uint8Array, text: string, offset: number, length: number) => number;
const latin1Write = (Buffer.prototype as unknown as { latin1Write: Latin1Write }).latin1Write;

function readU32(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16)) +
    (bytes[at + 3] as number) * 0x1000000
  );
}

function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = (value >>> 24) & 0xff;
}

/** Copies `source[start, end)` to `target` at `at`. */
function copyBytes(source: Uint8Array, start: number, end: number, target: Uint8Array, at: number) {
  if (end - start <= copyLoopBytesMax) {
    for (let index = start; index < end; index++) target[at + index - start] = source[index]!;
  } else target.set(source.subarray(start, end), at);
}

function finalize(hash: number, bits: number): number {
  let mixed = hash;
  mixed ^= mixed >>> 16;
  mixed = Math.imul(mixed, 0x85ebca6b);
  mixed ^= mixed >>> 13;
  mixed = Math.imul(mixed, 0xc2b2ae35);
  mixed ^= mixed >>> 16;
  return mixed & (tagHashMask >>> (30 - bits));
}

export class StateTable {
  readonly #seed: number;
  readonly #hashBits: number;
  readonly #slabBytesMin: number;
  readonly #slabBytesMax: number;
  readonly #compactDeadBytesMin: number;
  readonly #drainSlotsPerStep: number;
  #slots: Int32Array;
  #mask: number;
  #size = 0;
  #slabs: (Uint8Array | null)[] = [];
  /** Bytes written into each slab, and the bytes of its records still in use. */
  #slabUsed: number[] = [];
  #slabLive: number[] = [];
  /** Indexes of dropped slabs, for reuse. */
  #slabsFree: number[] = [];
  /** Dropped full-size slabs, for reuse (at most `slabsSpareMax`). */
  #slabsSpare: Uint8Array[] = [];
  /** Slabs that are adopted buffers (`adoptEffect`), by slab and by buffer. */
  #slabAdopted: boolean[] = [];
  #adopted = new Map<ArrayBufferLike, number>();
  /** The adopted buffer `compact` is emptying (-1: none), where, and in which index. */
  #draining = -1;
  #drainCursor = 0;
  #drainSlots: Int32Array | null = null;
  /** The buffer adopted last and its slab (`#adopt` checks the slab is still that buffer). */
  #adoptedLast: ArrayBufferLike | null = null;
  #adoptedLastSlab = -1;
  /** The slab new records go to (-1: none yet). */
  #writeSlab = -1;
  #liveBytes = 0;
  #usedBytes = 0;
  /** Where `#allocate` put the last record. */
  #allocatedOffset = 0;

  constructor(options: StateTableOptions = {}) {
    this.#seed = (options.hashSeed ?? 0x2f6b3c1d) | 0;
    this.#hashBits = options.hashBits ?? 30;
    this.#slabBytesMin = options.slabBytesMin ?? 64 * 1024;
    this.#slabBytesMax = options.slabBytesMax ?? 4 * 1024 * 1024;
    this.#compactDeadBytesMin = options.compactDeadBytesMin ?? 8 * 1024 * 1024;
    this.#drainSlotsPerStep = options.drainSlotsPerStep ?? 256 * 1024;
    assert(this.#drainSlotsPerStep >= 1, 'StateTable: drainSlotsPerStep >= 1');
    assert(Number.isSafeInteger(this.#hashBits), 'StateTable: hashBits is an integer');
    assert(this.#hashBits >= 1 && this.#hashBits <= 30, 'StateTable: hashBits in [1, 30]');
    assert(this.#slabBytesMin >= 64, 'StateTable: slabs of at least 64 bytes');
    assert(this.#slabBytesMin <= this.#slabBytesMax, 'StateTable: slabBytesMin <= slabBytesMax');
    assert(this.#slabBytesMax <= 2 ** 30, 'StateTable: slab offsets fit an Int32');
    assert(this.#compactDeadBytesMin >= 0, 'StateTable: compactDeadBytesMin >= 0');
    this.#slots = new Int32Array(capacityMin * slotWords);
    this.#mask = capacityMin - 1;
  }

  /** Keys present. */
  get size(): number {
    return this.#size;
  }

  /** Slots of the index: `slot` arguments are in [0, capacity). */
  get capacity(): number {
    return this.#mask + 1;
  }

  /** Bytes of the records in use, of the records written and not reclaimed, and of all slabs. */
  stats(): { liveBytes: number; usedBytes: number; slabBytes: number; indexBytes: number } {
    let slabBytes = 0;
    for (const slab of this.#slabs) slabBytes += slab?.length ?? 0;
    for (const slab of this.#slabsSpare) slabBytes += slab.length;
    const indexBytes = this.#slots.byteLength;
    return { liveBytes: this.#liveBytes, usedBytes: this.#usedBytes, slabBytes, indexBytes };
  }

  // -------------------------------------------------------------------------------------------
  // Hashing and lookup.

  /** The hash of `bytes[start, end)`: the tag's hash bits. */
  hashBytes(bytes: Uint8Array, start: number, end: number): number {
    let hash = this.#seed ^ (end - start);
    for (let index = start; index < end; index++) {
      hash = Math.imul(hash ^ (bytes[index] as number), 0x01000193);
    }
    return finalize(hash, this.#hashBits);
  }

  /**
   * The hash of a KeyString (one char per byte), equal to the hash of its bytes; -1 if a char
   * is above 0xff (then it is no KeyString, and the caller encodes it first).
   */
  hashString(key: string): number {
    let hash = this.#seed ^ key.length;
    for (let index = 0; index < key.length; index++) {
      const code = key.charCodeAt(index);
      if (code > 0xff) return -1;
      hash = Math.imul(hash ^ code, 0x01000193);
    }
    return finalize(hash, this.#hashBits);
  }

  /** The slot holding the key `bytes[start, end)`, or -1. */
  findBytes(bytes: Uint8Array, start: number, end: number): number {
    const found = this.#probeBytes(this.hashBytes(bytes, start, end), bytes, start, end);
    return found < 0 ? -1 : found;
  }

  /** The key's slot, or -1 - the free slot where its probe ended. */
  #probeBytes(hash: number, bytes: Uint8Array, start: number, end: number): number {
    const tag = hash | tagOccupied;
    const slots = this.#slots;
    const mask = this.#mask;
    let slot = hash & mask;
    for (let probe = 0; probe <= mask; probe++) {
      const word = slots[slot * slotWords] as number;
      if (word === 0) return -1 - slot;
      if ((word & ~tagDirty) === tag && this.#keyEqualsBytes(slot, bytes, start, end)) return slot;
      slot = (slot + 1) & mask;
    }
    assert(false, 'StateTable: a probe ends at an empty slot');
  }

  /** The slot holding the KeyString `key`, or -1 (also for a string that is no KeyString). */
  findString(key: string): number {
    const hash = this.hashString(key);
    if (hash < 0) return -1;
    const found = this.#probeString(hash, key);
    return found < 0 ? -1 : found;
  }

  /** The key's slot, or -1 - the free slot where its probe ended. */
  #probeString(hash: number, key: string): number {
    const tag = hash | tagOccupied;
    const slots = this.#slots;
    const mask = this.#mask;
    let slot = hash & mask;
    for (let probe = 0; probe <= mask; probe++) {
      const word = slots[slot * slotWords] as number;
      if (word === 0) return -1 - slot;
      if ((word & ~tagDirty) === tag && this.#keyEqualsString(slot, key)) return slot;
      slot = (slot + 1) & mask;
    }
    assert(false, 'StateTable: a probe ends at an empty slot');
  }

  #keyEqualsBytes(slot: number, bytes: Uint8Array, start: number, end: number): boolean {
    const slab = this.#slabs[this.#slots[slot * slotWords + 1] as number] as Uint8Array;
    const offset = this.#slots[slot * slotWords + 2] as number;
    if (readU32(slab, offset) !== end - start) return false;
    const keyStart = offset + 4 - start;
    for (let index = start; index < end; index++) {
      if (slab[keyStart + index] !== bytes[index]) return false;
    }
    return true;
  }

  #keyEqualsString(slot: number, key: string): boolean {
    const slab = this.#slabs[this.#slots[slot * slotWords + 1] as number] as Uint8Array;
    const offset = this.#slots[slot * slotWords + 2] as number;
    if (readU32(slab, offset) !== key.length) return false;
    const keyStart = offset + 4;
    for (let index = 0; index < key.length; index++) {
      if (slab[keyStart + index] !== key.charCodeAt(index)) return false;
    }
    return true;
  }

  /**
   * Reads the index slots where probes for `hashes[0, count)` start, so that a put of many keys
   * finds them in the cache (CommittedState `applyIntent`). At a million keys the index is far
   * larger than the cache, and this loop is tight and its reads independent, so the processor
   * keeps many of them under way at once instead of waiting for each in turn. Returns the words
   * folded together, for the caller to keep, so that the reads are not optimized away.
   */
  touch(hashes: Int32Array, count: number): number {
    const slots = this.#slots;
    const mask = this.#mask;
    let folded = 0;
    for (let index = 0; index < count; index++) {
      folded ^= slots[((hashes[index] as number) & mask) * slotWords] as number;
    }
    return folded;
  }

  /** Whether `slot` holds an entry (iterate with `for (slot < capacity)`). */
  occupied(slot: number): boolean {
    return this.#slots[slot * slotWords] !== 0;
  }

  dirty(slot: number): boolean {
    return (this.#slots[slot * slotWords] as number) < 0;
  }

  setDirty(slot: number, dirty: boolean): void {
    const at = slot * slotWords;
    const word = this.#slots[at] as number;
    assert(word !== 0, 'StateTable.setDirty: an occupied slot');
    this.#slots[at] = dirty ? word | tagDirty : word & ~tagDirty;
  }

  // -------------------------------------------------------------------------------------------
  // Reading an entry.

  #slabOf(slot: number): Uint8Array {
    const slab = this.#slabs[this.#slots[slot * slotWords + 1] as number];
    assert(slab !== undefined && slab !== null, 'StateTable: an entry lives in a slab');
    return slab;
  }

  #offsetOf(slot: number): number {
    return this.#slots[slot * slotWords + 2] as number;
  }

  /** The value at `slot` as a fresh Buffer (the caller may keep and change it). */
  valueCopy(slot: number): Buffer {
    const slab = this.#slabOf(slot);
    const offset = this.#offsetOf(slot);
    const lengthAt = offset + 4 + readU32(slab, offset);
    const start = lengthAt + 4;
    const length = readU32(slab, lengthAt);
    const copy = Buffer.allocUnsafe(length);
    copyBytes(slab, start, start + length, copy, 0);
    return copy;
  }

  /** The value at `slot` as a ValueString (one char per byte). */
  valueString(slot: number): string {
    const slab = this.#slabOf(slot);
    const offset = this.#offsetOf(slot);
    const lengthAt = offset + 4 + readU32(slab, offset);
    return latin1Of(slab, lengthAt + 4, lengthAt + 4 + readU32(slab, lengthAt));
  }

  /** The key at `slot` as a KeyString. */
  keyString(slot: number): string {
    const slab = this.#slabOf(slot);
    const offset = this.#offsetOf(slot);
    return latin1Of(slab, offset + 4, offset + 4 + readU32(slab, offset));
  }

  /** The key at `slot` as a fresh Buffer. */
  keyCopy(slot: number): Buffer {
    const slab = this.#slabOf(slot);
    const offset = this.#offsetOf(slot);
    const length = readU32(slab, offset);
    const copy = Buffer.allocUnsafe(length);
    copyBytes(slab, offset + 4, offset + 4 + length, copy, 0);
    return copy;
  }

  // -------------------------------------------------------------------------------------------
  // Changing entries.

  /**
   * Puts the key `keySource[keyStart, keyEnd)` with the value `valueSource[valueStart,
   * valueEnd)`, copying both. Returns whether the key is new. The slot is marked dirty.
   */
  putBytes(
    keySource: Uint8Array,
    keyStart: number,
    keyEnd: number,
    valueSource: Uint8Array,
    valueStart: number,
    valueEnd: number,
  ): boolean {
    const keyBytes = keyEnd - keyStart;
    const valueBytes = valueEnd - valueStart;
    const hash = this.hashBytes(keySource, keyStart, keyEnd);
    const slot = this.#slotForPut(hash, this.#probeBytes(hash, keySource, keyStart, keyEnd));
    const slabIndex = this.#allocate(recordHeaderBytes + keyBytes + valueBytes);
    const slab = this.#slabs[slabIndex] as Uint8Array;
    const offset = this.#allocatedOffset;
    writeU32(slab, offset, keyBytes);
    copyBytes(keySource, keyStart, keyEnd, slab, offset + 4);
    writeU32(slab, offset + 4 + keyBytes, valueBytes);
    copyBytes(valueSource, valueStart, valueEnd, slab, offset + 8 + keyBytes);
    return this.#place(slot, hash, slabIndex, offset);
  }

  /**
   * Puts a put effect of an INTENT payload: the key is `payload[keyStart, keyEnd)`, preceded by
   * its u32 length, and the value follows it with its own (`payload[keyEnd + 4, valueEnd)`).
   * That is a record's layout, so it is copied in one piece. Returns whether the key is new.
   */
  putEffect(
    payload: Uint8Array,
    keyStart: number,
    keyEnd: number,
    valueEnd: number,
    hash: number = this.hashBytes(payload, keyStart, keyEnd),
  ): boolean {
    assert(readU32(payload, keyStart - 4) === keyEnd - keyStart, 'putEffect: the key length');
    assert(readU32(payload, keyEnd) === valueEnd - keyEnd - 4, 'putEffect: the value length');
    const slot = this.#slotForPut(hash, this.#probeBytes(hash, payload, keyStart, keyEnd));
    const slabIndex = this.#allocate(valueEnd - keyStart + 4);
    copyBytes(
      payload,
      keyStart - 4,
      valueEnd,
      this.#slabs[slabIndex] as Uint8Array,
      this.#allocatedOffset,
    );
    return this.#place(slot, hash, slabIndex, this.#allocatedOffset);
  }

  /**
   * `putEffect` without the copy: the record stays in `payload`'s buffer, which the table
   * adopts as a slab. Only for a buffer that nobody changes any more, and that may stay alive
   * as long as the table holds a record in it (see Adopted buffers above).
   */
  adoptEffect(
    payload: Uint8Array,
    keyStart: number,
    keyEnd: number,
    valueEnd: number,
    hash: number = this.hashBytes(payload, keyStart, keyEnd),
  ): boolean {
    assert(readU32(payload, keyStart - 4) === keyEnd - keyStart, 'adoptEffect: the key length');
    assert(readU32(payload, keyEnd) === valueEnd - keyEnd - 4, 'adoptEffect: the value length');
    const bytes = valueEnd - keyStart + 4;
    // Growing for a new buffer comes first: a rehash moves every slot.
    const buffer = payload.buffer;
    if (buffer !== this.#adoptedLast && !this.#adopted.has(buffer)) {
      this.#reserveFor(buffer.byteLength, bytes);
    }
    const slot = this.#slotForPut(hash, this.#probeBytes(hash, payload, keyStart, keyEnd));
    // After the put's release of the key's old record, which may drop that record's buffer.
    const slabIndex = this.#adopt(buffer);
    const offset = payload.byteOffset + keyStart - 4;
    assert(offset + bytes <= 2 ** 31, 'StateTable: adopted offsets fit an Int32');
    this.#slabLive[slabIndex] = (this.#slabLive[slabIndex] as number) + bytes;
    this.#liveBytes += bytes;
    return this.#place(slot, hash, slabIndex, offset);
  }

  /**
   * A new buffer of `bufferBytes` to adopt says how many keys are about to come (about one per
   * `recordBytes`, or per the average record so far): the index grows for them at once
   * (`reserve`; `fit` corrects a guess that was too high).
   */
  #reserveFor(bufferBytes: number, recordBytes: number): void {
    const average = this.#size > 0 ? this.#liveBytes / this.#size : recordBytes;
    this.reserve(this.#size + Math.ceil(bufferBytes / Math.max(average, 1)));
  }

  /** The slab that is `buffer`, adopting it first if need be. */
  #adopt(buffer: ArrayBufferLike): number {
    // The replay adopts effect after effect from the same segment.
    if (buffer === this.#adoptedLast && this.#slabs[this.#adoptedLastSlab]?.buffer === buffer) {
      return this.#adoptedLastSlab;
    }
    const known = this.#adopted.get(buffer);
    this.#adoptedLast = buffer;
    if (known !== undefined) {
      this.#adoptedLastSlab = known;
      return known;
    }
    const slab = new Uint8Array(buffer);
    const slabIndex = this.#slabsFree.pop() ?? this.#slabs.length;
    this.#slabs[slabIndex] = slab;
    this.#slabUsed[slabIndex] = slab.length;
    this.#slabLive[slabIndex] = 0;
    this.#slabAdopted[slabIndex] = true;
    this.#usedBytes += slab.length;
    this.#adopted.set(buffer, slabIndex);
    this.#adoptedLastSlab = slabIndex;
    return slabIndex;
  }

  /**
   * Copies out the live records of every adopted buffer less than `shareMin` of which is live
   * records, and lets go of those buffers (one pass over the index for all of them). Returns
   * the buffers let go.
   */
  releaseAdopted(shareMin: number): number {
    const victims = new Set<number>();
    for (const slabIndex of this.#adopted.values()) {
      const live = this.#slabLive[slabIndex] as number;
      if (live < shareMin * (this.#slabUsed[slabIndex] as number)) victims.add(slabIndex);
    }
    if (victims.size > 0) this.#evacuateByIndex(victims);
    this.fit();
    return victims.size;
  }

  /** `putBytes` with the key and value given as KeyString and ValueString. */
  putString(key: string, value: string): boolean {
    const hash = this.hashString(key);
    assert(hash >= 0, 'StateTable.putString: a KeyString');
    const slot = this.#slotForPut(hash, this.#probeString(hash, key));
    const slabIndex = this.#allocate(recordHeaderBytes + key.length + value.length);
    const slab = this.#slabs[slabIndex] as Uint8Array;
    const offset = this.#allocatedOffset;
    writeU32(slab, offset, key.length);
    for (let index = 0; index < key.length; index++)
      slab[offset + 4 + index] = key.charCodeAt(index);
    writeU32(slab, offset + 4 + key.length, value.length);
    const written = latin1Write.call(slab, value, offset + 8 + key.length, value.length);
    assert(written === value.length, 'StateTable.putString: the whole value is written');
    return this.#place(slot, hash, slabIndex, offset);
  }

  /**
   * The slot a put goes to, from its probe (`#probeBytes`): the key's own (its old record is
   * released), or for a new key -1 - a free slot (after growing the index if it is due).
   */
  #slotForPut(hash: number, probed: number): number {
    if (probed >= 0) {
      this.#release(probed);
      return probed;
    }
    if ((this.#size + 1) * loadDenominator <= this.capacity * loadNumerator) return probed;
    this.#grow();
    const slots = this.#slots;
    const mask = this.#mask;
    let slot = hash & mask;
    for (let probe = 0; probe <= mask; probe++) {
      if (slots[slot * slotWords] === 0) return -1 - slot;
      slot = (slot + 1) & mask;
    }
    assert(false, 'StateTable: the index has a free slot');
  }

  /**
   * Points the slot at the new record and marks it dirty. `slot` is the key's slot, or
   * -1 - slot for a free one. Returns whether the key is new.
   */
  #place(slot: number, hash: number, slabIndex: number, offset: number): boolean {
    const fresh = slot < 0;
    const at = (fresh ? -1 - slot : slot) * slotWords;
    assert(fresh === (this.#slots[at] === 0), 'StateTable: a new key takes a free slot');
    this.#slots[at] = hash | tagOccupied | tagDirty;
    this.#slots[at + 1] = slabIndex;
    this.#slots[at + 2] = offset;
    if (fresh) this.#size += 1;
    return fresh;
  }

  /** Removes the entry at `slot` (its record is released; later entries shift back). */
  deleteSlot(slot: number): void {
    assert(this.occupied(slot), 'StateTable.deleteSlot: an occupied slot');
    this.#release(slot);
    const slots = this.#slots;
    const mask = this.#mask;
    let hole = slot;
    let next = slot;
    for (let probe = 0; probe < mask; probe++) {
      next = (next + 1) & mask;
      const word = slots[next * slotWords] as number;
      if (word === 0) break;
      const home = word & this.#hashMaskOf() & mask;
      // The entry at `next` stays if its home lies cyclically in (hole, next].
      const stays = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (stays) continue;
      slots.copyWithin(hole * slotWords, next * slotWords, next * slotWords + slotWords);
      hole = next;
    }
    slots.fill(0, hole * slotWords, hole * slotWords + slotWords);
    this.#size -= 1;
  }

  #hashMaskOf(): number {
    return tagHashMask >>> (30 - this.#hashBits);
  }

  /** Forgets every entry and every slab. */
  clear(): void {
    this.#slots = new Int32Array(capacityMin * slotWords);
    this.#mask = capacityMin - 1;
    this.#size = 0;
    this.#slabs = [];
    this.#slabUsed = [];
    this.#slabLive = [];
    this.#slabsFree = [];
    this.#slabsSpare = [];
    this.#slabAdopted = [];
    this.#adopted = new Map();
    this.#adoptedLast = null;
    this.#adoptedLastSlab = -1;
    this.#draining = -1;
    this.#drainSlots = null;
    this.#writeSlab = -1;
    this.#liveBytes = 0;
    this.#usedBytes = 0;
  }

  #grow(): void {
    this.#rehash((this.#mask + 1) * 2);
  }

  /** The smallest index capacity that holds `entries` within the load limit. */
  #capacityFor(entries: number): number {
    let capacity = capacityMin;
    while (entries * loadDenominator > capacity * loadNumerator) capacity *= 2;
    return capacity;
  }

  /**
   * Grows the index at once to hold `entries` keys, when more are known to be coming (the
   * replay adopting a segment): one rehash instead of a doubling every so often.
   */
  reserve(entries: number): void {
    const capacity = this.#capacityFor(entries);
    if (capacity > this.#mask + 1) this.#rehash(capacity);
  }

  /**
   * Shrinks the index if it is less than a quarter as full as it may be (after a `reserve`
   * that guessed high), to half the load limit.
   */
  fit(): void {
    const capacity = this.#capacityFor(this.#size * 2);
    if (capacity * 2 <= this.#mask + 1) this.#rehash(capacity);
  }

  #rehash(capacity: number): void {
    const old = this.#slots;
    assert(capacity * slotWords <= 2 ** 31, 'StateTable: the index fits a typed array');
    assert(this.#size * loadDenominator <= capacity * loadNumerator, 'StateTable: room');
    const slots = new Int32Array(capacity * slotWords);
    const mask = capacity - 1;
    const hashMask = this.#hashMaskOf();
    for (let at = 0; at < old.length; at += slotWords) {
      const word = old[at] as number;
      if (word === 0) continue;
      let slot = word & hashMask & mask;
      for (let probe = 0; slots[slot * slotWords] !== 0 && probe <= mask; probe++) {
        slot = (slot + 1) & mask;
      }
      slots[slot * slotWords] = word;
      slots[slot * slotWords + 1] = old[at + 1] as number;
      slots[slot * slotWords + 2] = old[at + 2] as number;
    }
    this.#slots = slots;
    this.#mask = mask;
  }

  // -------------------------------------------------------------------------------------------
  // Slabs.

  #recordBytes(slabIndex: number, offset: number): number {
    const slab = this.#slabs[slabIndex] as Uint8Array;
    const keyBytes = readU32(slab, offset);
    return recordHeaderBytes + keyBytes + readU32(slab, offset + 4 + keyBytes);
  }

  /** Marks the record of `slot` dead; drops its slab if nothing in it is alive any more. */
  #release(slot: number): void {
    const slabIndex = this.#slots[slot * slotWords + 1] as number;
    const bytes = this.#recordBytes(slabIndex, this.#slots[slot * slotWords + 2] as number);
    const live = (this.#slabLive[slabIndex] as number) - bytes;
    assert(live >= 0, 'StateTable: live bytes never go negative');
    this.#slabLive[slabIndex] = live;
    this.#liveBytes -= bytes;
    if (live === 0 && slabIndex !== this.#writeSlab) this.#dropSlab(slabIndex);
  }

  #dropSlab(slabIndex: number): void {
    assert(this.#slabLive[slabIndex] === 0, 'StateTable: only an empty slab is dropped');
    if (slabIndex === this.#draining) this.#draining = -1;
    this.#usedBytes -= this.#slabUsed[slabIndex] as number;
    const slab = this.#slabs[slabIndex];
    if (this.#slabAdopted[slabIndex] === true) {
      this.#slabAdopted[slabIndex] = false;
      if (slab !== null && slab !== undefined) this.#adopted.delete(slab.buffer);
    } else if (slab?.length === this.#slabBytesMax && this.#slabsSpare.length < slabsSpareMax) {
      // A full-size slab is kept for the next one: a fresh one costs a page fault per page when
      // first written, and its memory goes back only when the garbage collector finds it.
      this.#slabsSpare.push(slab);
    }
    this.#slabs[slabIndex] = null;
    this.#slabUsed[slabIndex] = 0;
    this.#slabsFree.push(slabIndex);
  }

  #newSlab(bytes: number): number {
    const spare = bytes === this.#slabBytesMax ? this.#slabsSpare.pop() : undefined;
    const slab = spare ?? new Uint8Array(bytes);
    const slabIndex = this.#slabsFree.pop() ?? this.#slabs.length;
    this.#slabs[slabIndex] = slab;
    this.#slabUsed[slabIndex] = 0;
    this.#slabLive[slabIndex] = 0;
    return slabIndex;
  }

  /** Room for a record of `bytes`: returns its slab, and its offset in `#allocatedOffset`. */
  #allocate(bytes: number): number {
    this.#liveBytes += bytes;
    this.#usedBytes += bytes;
    if (bytes * 4 > this.#slabBytesMax) {
      // A large record gets a slab of its own, dropped when the record is released.
      const own = this.#newSlab(bytes);
      this.#slabUsed[own] = bytes;
      this.#slabLive[own] = bytes;
      this.#allocatedOffset = 0;
      return own;
    }
    let slabIndex = this.#writeSlab;
    let slab = slabIndex < 0 ? null : this.#slabs[slabIndex];
    const used = slabIndex < 0 ? 0 : (this.#slabUsed[slabIndex] as number);
    if (slab === null || slab === undefined || used + bytes > slab.length) {
      const previous = slabIndex;
      // Doubling, but at least the record (which is at most a quarter of the largest slab).
      const size = Math.min(
        this.#slabBytesMax,
        Math.max(this.#slabBytesMin, 2 * (slab?.length ?? 0), bytes),
      );
      assert(bytes <= size, 'StateTable: a new slab holds the record');
      slabIndex = this.#newSlab(size);
      slab = this.#slabs[slabIndex] as Uint8Array;
      this.#writeSlab = slabIndex;
      // The slab just left behind may hold nothing alive already.
      if (previous >= 0 && this.#slabLive[previous] === 0) this.#dropSlab(previous);
    }
    const offset = this.#slabUsed[slabIndex] as number;
    this.#slabUsed[slabIndex] = offset + bytes;
    this.#slabLive[slabIndex] = (this.#slabLive[slabIndex] as number) + bytes;
    this.#allocatedOffset = offset;
    return slabIndex;
  }

  /** Whether enough bytes are dead that `compact` would move records. */
  get compactionDue(): boolean {
    const dead = this.#usedBytes - this.#liveBytes;
    return dead > this.#compactDeadBytesMin && dead * 2 > this.#liveBytes;
  }

  /**
   * Reclaims dead bytes while `compactionDue`: moves the live records of the slab with the
   * smallest share of live bytes to the current slab and drops it. Bounded per call: at most
   * `compactSlabsPerCall` shared slabs, and an adopted buffer (which may be as large as a log
   * segment) is emptied over several calls (`#drainStep`). Returns the slabs emptied.
   */
  compact(): number {
    let emptied = 0;
    for (let step = 0; step < compactSlabsPerCall && this.compactionDue; step++) {
      if (this.#draining < 0) {
        const victim = this.#emptiestSlab();
        if (victim < 0) break;
        if (this.#slabAdopted[victim] === true) {
          this.#draining = victim;
          this.#drainCursor = 0;
          this.#drainSlots = this.#slots;
        } else {
          this.#evacuate(victim);
          emptied += 1;
          continue;
        }
      }
      if (this.#drainStep()) emptied += 1;
      // An adopted buffer gets one step per call.
      break;
    }
    return emptied;
  }

  /**
   * Moves the entries of the adopted buffer being drained out of it, scanning at most
   * `drainSlotsPerStep` index slots and moving at most `drainBytesPerStep` bytes; drops it once it
   * holds nothing alive. Returns whether it did. A rehash, or entries shifted back past the
   * scan by deletes, only make the scan start over.
   */
  #drainStep(): boolean {
    const victim = this.#draining;
    if (this.#drainSlots !== this.#slots) {
      this.#drainSlots = this.#slots;
      this.#drainCursor = 0;
    }
    const slots = this.#slots;
    const end = Math.min(this.#mask + 1, this.#drainCursor + this.#drainSlotsPerStep);
    let moved = 0;
    let slot = this.#drainCursor;
    for (; slot < end && moved < drainBytesPerStep; slot++) {
      const at = slot * slotWords;
      if (slots[at] === 0 || slots[at + 1] !== victim) continue;
      const offset = slots[at + 2] as number;
      const bytes = this.#recordBytes(victim, offset);
      this.#move(slot, this.#slabs[victim] as Uint8Array, offset, bytes);
      moved += bytes;
    }
    this.#drainCursor = slot;
    if (this.#slabLive[victim] === 0) {
      this.#dropSlab(victim);
      return true;
    }
    if (slot > this.#mask) this.#drainCursor = 0;
    return false;
  }

  /** The shared slab (not the one being filled) with the smallest share of live bytes, or -1. */
  #emptiestSlab(): number {
    let best = -1;
    let bestShare = 1;
    for (let slabIndex = 0; slabIndex < this.#slabs.length; slabIndex++) {
      const slab = this.#slabs[slabIndex];
      if (slab === null || slab === undefined || slabIndex === this.#writeSlab) continue;
      // A slab all alive (a large record's own one always is) has a share of 1: never picked.
      const share = (this.#slabLive[slabIndex] as number) / (this.#slabUsed[slabIndex] as number);
      if (share < bestShare) {
        best = slabIndex;
        bestShare = share;
      }
    }
    return best;
  }

  /** Moves every live record out of `victim`, then drops it. */
  #evacuate(victim: number): void {
    assert(this.#slabAdopted[victim] !== true, 'StateTable: adopted buffers are drained');
    const slab = this.#slabs[victim] as Uint8Array;
    const used = this.#slabUsed[victim] as number;
    let offset = 0;
    for (let record = 0; offset < used && record < used; record++) {
      const keyBytes = readU32(slab, offset);
      const bytes = recordHeaderBytes + keyBytes + readU32(slab, offset + 4 + keyBytes);
      assert(offset + bytes <= used, 'StateTable: records lie within their slab');
      const keyStart = offset + 4;
      const slot = this.#slotOfRecord(
        victim,
        offset,
        this.hashBytes(slab, keyStart, keyStart + keyBytes),
      );
      if (slot >= 0) this.#move(slot, slab, offset, bytes);
      offset += bytes;
    }
    assert(offset === used, 'StateTable: the records fill their slab exactly');
    assert(this.#slabLive[victim] === 0, 'StateTable: an evacuated slab holds nothing alive');
    this.#dropSlab(victim);
  }

  /**
   * Moves every entry whose record is in one of `victims` to the current slab, then drops them:
   * for adopted buffers, which are not sequences of records (one pass over the whole index).
   */
  #evacuateByIndex(victims: ReadonlySet<number>): void {
    const slots = this.#slots;
    for (let slot = 0; slot <= this.#mask; slot++) {
      const at = slot * slotWords;
      if (slots[at] === 0 || !victims.has(slots[at + 1] as number)) continue;
      const slabIndex = slots[at + 1] as number;
      const offset = slots[at + 2] as number;
      const slab = this.#slabs[slabIndex] as Uint8Array;
      this.#move(slot, slab, offset, this.#recordBytes(slabIndex, offset));
    }
    for (const victim of victims) {
      assert(this.#slabLive[victim] === 0, 'StateTable: an evacuated slab holds nothing alive');
      this.#dropSlab(victim);
    }
  }

  /** The slot whose entry is the record at `offset` of `slabIndex`, or -1 if it is dead. */
  #slotOfRecord(slabIndex: number, offset: number, hash: number): number {
    const slots = this.#slots;
    const mask = this.#mask;
    const tag = hash | tagOccupied;
    let slot = hash & mask;
    for (let probe = 0; probe <= mask; probe++) {
      const at = slot * slotWords;
      const word = slots[at] as number;
      if (word === 0) return -1;
      if ((word & ~tagDirty) === tag && slots[at + 1] === slabIndex && slots[at + 2] === offset) {
        return slot;
      }
      slot = (slot + 1) & mask;
    }
    assert(false, 'StateTable: a probe ends at an empty slot');
  }

  #move(slot: number, source: Uint8Array, offset: number, bytes: number): void {
    const from = this.#slots[slot * slotWords + 1] as number;
    this.#slabLive[from] = (this.#slabLive[from] as number) - bytes;
    this.#liveBytes -= bytes;
    // `#allocate` counts the copy as used; the original leaves `#usedBytes` with its slab.
    const target = this.#allocate(bytes);
    assert(target !== from, 'StateTable: a record moves to another slab');
    const targetSlab = this.#slabs[target] as Uint8Array;
    targetSlab.set(source.subarray(offset, offset + bytes), this.#allocatedOffset);
    this.#slots[slot * slotWords + 1] = target;
    this.#slots[slot * slotWords + 2] = this.#allocatedOffset;
  }
}
