import { describe, expect, it } from 'vitest';
import { StateTable, type StateTableOptions } from '../../src/engine/state-table.js';
import { Random } from '../../src/sim/random.js';

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

function randomKey(random: Random, keys: number): Uint8Array {
  // A small keyspace, so that puts overwrite and deletes hit; lengths 0 to 40.
  const id = random.int(keys);
  const length = id % 41;
  return Uint8Array.from({ length }, (_, index) => (id * 31 + index * 7) & 0xff);
}

function randomValue(random: Random, large: boolean): Uint8Array {
  const length = large ? 3_000 + random.int(2_000) : random.int(200);
  return Uint8Array.from({ length }, () => random.int(256));
}

/** Every entry of the table as latin1 key -> latin1 value, read through every accessor. */
function contents(table: StateTable): Map<string, string> {
  const found = new Map<string, string>();
  for (let slot = 0; slot < table.capacity; slot++) {
    if (!table.occupied(slot)) continue;
    const key = table.keyString(slot);
    expect(latin1(table.keyCopy(slot))).toBe(key);
    expect(latin1(table.valueCopy(slot))).toBe(table.valueString(slot));
    expect(found.has(key)).toBe(false);
    found.set(key, table.valueString(slot));
  }
  expect(found.size).toBe(table.size);
  let liveBytes = 0;
  for (const [key, value] of found) liveBytes += 8 + key.length + value.length;
  expect(table.stats().liveBytes).toBe(liveBytes);
  return found;
}

/** A put through one of the three ways in (bytes, an INTENT-shaped effect, strings). */
function putRandomly(random: Random, table: StateTable, key: Uint8Array, value: Uint8Array) {
  const way = random.int(4);
  if (way === 0) return table.putBytes(key, 0, key.length, value, 0, value.length);
  if (way === 1) return table.putString(latin1(key), latin1(value));
  // An effect inside a larger payload: op byte, key length, key, value length, value.
  const payload = new Uint8Array(3 + 1 + 4 + key.length + 4 + value.length + 5);
  const view = new DataView(payload.buffer);
  view.setUint8(3, 1);
  view.setUint32(4, key.length, true);
  payload.set(key, 8);
  view.setUint32(8 + key.length, value.length, true);
  payload.set(value, 12 + key.length);
  const valueEnd = 12 + key.length + value.length;
  // Adopted: the payload's buffer becomes the record's home (the test never changes it again).
  if (way === 3) {
    // A view into the middle of its buffer, as a frame's payload in a segment is.
    const backing = new Uint8Array(payload.length + 16);
    backing.set(payload, 16);
    return table.adoptEffect(backing.subarray(16), 8, 8 + key.length, valueEnd);
  }
  return table.putEffect(payload, 8, 8 + key.length, valueEnd);
}

function runModel(seed: number, options: StateTableOptions, steps: number): StateTable {
  const random = new Random(seed);
  const table = new StateTable(options);
  const model = new Map<string, string>();
  for (let step = 0; step < steps; step++) {
    const key = randomKey(random, 300);
    const name = latin1(key);
    const roll = random.int(10);
    if (roll < 5) {
      const value = randomValue(random, random.bool(0.02));
      const fresh = putRandomly(random, table, key, value);
      expect(fresh).toBe(!model.has(name));
      model.set(name, latin1(value));
    } else if (roll < 7) {
      const slot = table.findBytes(key, 0, key.length);
      expect(slot >= 0).toBe(model.has(name));
      if (slot >= 0) table.deleteSlot(slot);
      model.delete(name);
    } else {
      const slot = random.bool(0.5) ? table.findString(name) : table.findBytes(key, 0, key.length);
      expect(slot >= 0 ? table.valueString(slot) : undefined).toBe(model.get(name));
    }
    if (random.bool(0.05)) table.compact();
    if (random.bool(0.01)) table.releaseAdopted(random.bool(0.5) ? 0.5 : 1.01);
  }
  expect(contents(table)).toEqual(model);
  return table;
}

describe('StateTable', () => {
  it('agrees with a Map under random puts, deletes and reads (collisions forced)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const compactDeadBytesMin = seed % 2 === 0 ? 0 : 2048;
      // Small steps make draining an adopted buffer take several calls, and start over.
      const drainSlotsPerStep = seed % 3 === 0 ? 7 : 1_000_000;
      runModel(
        seed,
        {
          hashBits: 1 + (seed % 6),
          slabBytesMin: 256,
          slabBytesMax: 4096,
          compactDeadBytesMin,
          drainSlotsPerStep,
        },
        3_000,
      );
    }
  });

  it('puts records larger than the next slab would be, but not large enough for their own', () => {
    const table = new StateTable({ slabBytesMin: 256, slabBytesMax: 65_536 });
    table.putString('small', 'x');
    // 5,000 bytes: more than the second slab's 512, less than a quarter of the largest.
    table.putString('large', 'y'.repeat(5_000));
    table.putString('after', 'z');
    expect(table.valueString(table.findString('large'))).toBe('y'.repeat(5_000));
    expect(contents(table)).toEqual(
      new Map([
        ['small', 'x'],
        ['large', 'y'.repeat(5_000)],
        ['after', 'z'],
      ]),
    );
  });

  it('reclaims dead bytes: slabs stay within about 1.5x the live bytes', () => {
    // Adopted buffers drained a slot at a time, or in one go.
    for (const drainSlotsPerStep of [1, 1_000_000]) {
      const options = {
        slabBytesMin: 1024,
        slabBytesMax: 8192,
        compactDeadBytesMin: 16_384,
        drainSlotsPerStep,
      };
      const table = runModel(7, options, 20_000);
      for (let call = 0; call < 10_000 && table.compactionDue; call++) table.compact();
      const stats = table.stats();
      expect(stats.usedBytes - stats.liveBytes).toBeLessThanOrEqual(
        Math.max(16_384, stats.liveBytes / 2),
      );
      // Used bytes lie in slabs: beyond them, one slab partly filled and two spare ones at most.
      expect(stats.slabBytes).toBeLessThanOrEqual(stats.usedBytes + 3 * 8192);
    }
  });

  it('hashes a KeyString like its bytes and refuses strings that are no KeyString', () => {
    const table = new StateTable({ hashSeed: 12345 });
    const bytes = Uint8Array.of(0, 1, 0x7f, 0x80, 0xff);
    expect(table.hashString(latin1(bytes))).toBe(table.hashBytes(bytes, 0, bytes.length));
    expect(table.hashString('\u0100')).toBe(-1);
    table.putString(latin1(bytes), 'v');
    expect(table.findString('\u0100')).toBe(-1);
    expect(table.findBytes(bytes, 0, bytes.length)).toBe(table.findString(latin1(bytes)));
  });

  it('marks written entries dirty until told otherwise, and keeps the flag across moves', () => {
    const table = new StateTable({ slabBytesMin: 256, slabBytesMax: 1024, compactDeadBytesMin: 0 });
    for (let index = 0; index < 200; index++) table.putString(`k${index}`, 'x'.repeat(30));
    for (let slot = 0; slot < table.capacity; slot++) {
      if (!table.occupied(slot)) continue;
      expect(table.dirty(slot)).toBe(true);
      if (table.keyString(slot) < 'k5') table.setDirty(slot, false);
    }
    // Overwrites make the first slabs mostly dead, deletes shift entries: flags must follow.
    for (let index = 0; index < 200; index += 3) table.putString(`k${index}`, 'y');
    for (let index = 1; index < 200; index += 7) table.deleteSlot(table.findString(`k${index}`));
    expect(table.compact()).toBeGreaterThan(0);
    for (let index = 0; index < 200; index++) {
      const slot = table.findString(`k${index}`);
      if (index % 7 === 1) {
        expect(slot).toBe(-1);
        continue;
      }
      const rewritten = index % 3 === 0;
      expect(table.valueString(slot)).toBe(rewritten ? 'y' : 'x'.repeat(30));
      expect(table.dirty(slot)).toBe(rewritten || `k${index}` >= 'k5');
    }
  });

  it('drains an adopted buffer over several calls, even when deletes shift entries back', () => {
    // One hash bit: the keys form one run of slots from slot 0, so a delete at its start shifts
    // every later entry back by one, behind a drain that has passed them.
    const options = {
      hashBits: 1,
      compactDeadBytesMin: 0,
      drainSlotsPerStep: 1,
      slabBytesMin: 256,
    };
    const table = new StateTable(options);
    const buffer = new Uint8Array(4096);
    const model = new Map<string, string>();
    let at = 0;
    for (let index = 0; index < 10; index++) {
      const key = Buffer.from(`key-${index}`);
      const value = Buffer.alloc(20, index);
      new DataView(buffer.buffer).setUint32(at, key.length, true);
      buffer.set(key, at + 4);
      new DataView(buffer.buffer).setUint32(at + 4 + key.length, value.length, true);
      buffer.set(value, at + 8 + key.length);
      const keyStart = at + 4;
      at = keyStart + key.length + 4 + value.length;
      table.adoptEffect(buffer, keyStart, keyStart + key.length, at);
      model.set(latin1(key), latin1(value));
    }
    for (let call = 0; call < 5; call++) table.compact();
    const first = table.keyString(0);
    table.deleteSlot(0);
    model.delete(first);
    for (let call = 0; call < 2000 && table.stats().slabBytes >= buffer.length; call++) {
      table.compact();
    }
    // The buffer is let go: what remains is one small slab of copies.
    expect(table.stats().slabBytes).toBeLessThan(buffer.length);
    buffer.fill(0);
    expect(contents(table)).toEqual(model);
  });

  it('clear forgets everything', () => {
    const table = runModel(3, {}, 500);
    table.clear();
    expect(table.size).toBe(0);
    expect(table.stats()).toEqual({ liveBytes: 0, usedBytes: 0, slabBytes: 0, indexBytes: 768 });
    expect(table.findString('')).toBe(-1);
  });
});
