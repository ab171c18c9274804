import { describe, expect, it } from 'vitest';
import { encodeIntent, intentEffectsStart, type Effect } from '../../src/core/format/record.js';
import { CommittedState } from '../../src/engine/state.js';
import { Random } from '../../src/sim/random.js';

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

function randomEffects(random: Random, keys: number): Effect[] {
  return Array.from({ length: random.range(1, 12) }, (): Effect => {
    const key = Buffer.from(`k${random.int(keys)}`, 'latin1');
    if (random.bool(0.25)) return { op: 'delete', key };
    const value = Uint8Array.from({ length: random.int(60) }, () => random.int(256));
    return { op: 'put', key, value };
  });
}

/** The state as latin1 key -> latin1 value, read through `sortedEntries`. */
function entries(state: CommittedState): Map<string, string> {
  const { keys, values } = state.sortedEntries();
  return new Map(keys.map((key, index) => [key, values[index] as string]));
}

/** Applies `effects` as one intent, in one of the three ways the engine does. */
function applyRandomly(random: Random, state: CommittedState, lsn: number, effects: Effect[]) {
  const way = random.int(3);
  if (way === 0) {
    const names = effects.map((effect) => latin1(effect.key));
    const values = effects.map((effect) => (effect.op === 'put' ? latin1(effect.value) : null));
    state.apply(lsn, names, values);
    return;
  }
  // A payload inside a larger buffer, as a frame's payload lies in a segment.
  const payload = encodeIntent({ requestId: random.bool(0.2) ? `r${lsn}` : null, effects });
  const backing = new Uint8Array(payload.length + 24);
  backing.set(payload, 24);
  const view = backing.subarray(24);
  state.applyIntent(lsn, view, intentEffectsStart(view), way === 2);
}

describe('CommittedState', () => {
  it('checkpoints exactly what changed, and gives back what a failed checkpoint took', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const random = new Random(seed);
      const state = new CommittedState(0, { hashSeed: seed });
      const model = new Map<string, string>();
      const store = new Map<string, string>();
      for (let lsn = 1; lsn <= 400; lsn++) {
        const effects = randomEffects(random, 40);
        applyRandomly(random, state, lsn, effects);
        for (const effect of effects) {
          if (effect.op === 'put') model.set(latin1(effect.key), latin1(effect.value));
          else model.delete(latin1(effect.key));
        }
        if (lsn % 50 === 0) state.releaseAdopted();
        if (!random.bool(0.1)) continue;
        const { taken, puts, deletes } = state.takeChanges();
        const keys = [...puts.map((put) => latin1(put.key)), ...deletes.map(latin1)];
        expect(new Set(keys).size).toBe(keys.length);
        if (random.bool(0.3)) {
          state.restoreDirty(taken);
          continue;
        }
        for (const put of puts) store.set(latin1(put.key), latin1(put.value));
        for (const key of deletes) store.delete(latin1(key));
        expect(store).toEqual(model);
      }
      expect(entries(state)).toEqual(model);
      expect(state.size).toBe(model.size);
      for (const [key, value] of model) {
        expect(state.get(key)).toBe(value);
        expect(latin1(state.copyOf(key) as Buffer)).toBe(value);
        expect(latin1(state.copyOfBytes(Buffer.from(key, 'latin1')) as Buffer)).toBe(value);
      }
      expect(state.get('absent')).toBeUndefined();
      expect(state.copyOfBytes(Buffer.from('absent'))).toBeNull();
    }
  });

  it('merges a checkpoint under the replay: the log wins, deleted keys stay deleted', () => {
    const state = new CommittedState(0);
    const payload = encodeIntent({
      requestId: null,
      effects: [
        { op: 'put', key: Buffer.from('a'), value: Buffer.from('log') },
        { op: 'delete', key: Buffer.from('b') },
      ],
    });
    state.applyIntent(5, payload, intentEffectsStart(payload), true);
    state.releaseAdopted();
    const entry = (key: string, value: string) => ({
      key: Buffer.from(key),
      value: Buffer.from(value),
    });
    state.mergeCheckpoint([entry('a', 'old'), entry('b', 'old'), entry('c', 'kept')], 9);
    expect(entries(state)).toEqual(
      new Map([
        ['a', 'log'],
        ['c', 'kept'],
      ]),
    );
    expect(state.appliedLsn).toBe(9);
    // The replay's changes are still to be stored; the checkpoint's own entries are not.
    const { puts, deletes } = state.takeChanges();
    expect(puts.map((put) => latin1(put.key))).toEqual(['a']);
    expect(deletes.map(latin1)).toEqual(['b']);
  });

  it('keeps an adopted buffer only while most of it is records in use', () => {
    const state = new CommittedState(0);
    const effects: Effect[] = Array.from({ length: 100 }, (_, index) => ({
      op: 'put',
      key: Buffer.from(`key-${index}`),
      value: Buffer.alloc(200, index),
    }));
    // One buffer that is all records, one that is mostly zeros (a segment's unwritten tail).
    const full = encodeIntent({ requestId: null, effects: effects.slice(0, 50) });
    const sparse = new Uint8Array(200_000);
    const tail = encodeIntent({ requestId: null, effects: effects.slice(50) });
    sparse.set(tail, 8);
    state.applyIntent(1, full, intentEffectsStart(full), true);
    const view = sparse.subarray(8, 8 + tail.length);
    state.applyIntent(2, view, intentEffectsStart(view), true);
    expect(state.stats().slabBytes).toBe(full.length + sparse.length);
    state.releaseAdopted();
    // The sparse buffer's records were copied out and the buffer let go; the full one stays.
    expect(state.stats().slabBytes).toBeLessThan(full.length + 64 * 1024 + 1);
    sparse.fill(0xee);
    for (const effect of effects) {
      const value = state.copyOf(latin1(effect.key));
      expect(value).toEqual(Buffer.from(effect.op === 'put' ? effect.value : []));
    }
  });
});
