import { describe, expect, it } from 'vitest';
import {
  decodeIntent,
  encodeIntent,
  encodeIntentShared,
  intentEffectRanges,
  intentEffectsStart,
  visitIntentEffects,
  type Effect,
} from '../../src/core/format/record.js';
import { Random } from '../../src/sim/random.js';

function randomBytes(random: Random, lengthMax: number): Uint8Array {
  return Uint8Array.from({ length: random.int(lengthMax + 1) }, () => random.int(256));
}

function randomIntent(random: Random) {
  const effects = Array.from({ length: random.range(1, 8) }, (): Effect => {
    const key = randomBytes(random, 24);
    return random.bool(0.3)
      ? { op: 'delete', key }
      : { op: 'put', key, value: randomBytes(random, 120) };
  });
  return { requestId: random.bool(0.3) ? `request-${random.int(1000)}` : null, effects };
}

/** The effects as `visitIntentEffects` and `intentEffectRanges` see them, as plain arrays. */
function effectsInPlace(payload: Uint8Array, start: number) {
  const visited: number[][] = [];
  visitIntentEffects(payload, start, (keyStart, keyEnd, valueEnd) => {
    visited.push([keyStart, keyEnd, valueEnd]);
  });
  const ranges = new Int32Array(3 * visited.length);
  intentEffectRanges(payload, start, ranges);
  expect([...ranges]).toEqual(visited.flat());
  return visited.map(([keyStart, keyEnd, valueEnd]) =>
    (valueEnd as number) < 0
      ? { op: 'delete', key: [...payload.subarray(keyStart, keyEnd)] }
      : {
          op: 'put',
          key: [...payload.subarray(keyStart, keyEnd)],
          value: [...payload.subarray((keyEnd as number) + 4, valueEnd)],
        },
  );
}

function plain(effects: readonly Effect[]) {
  return effects.map((effect) =>
    effect.op === 'put'
      ? { op: 'put', key: [...effect.key], value: [...effect.value] }
      : { op: 'delete', key: [...effect.key] },
  );
}

describe('INTENT effects read in place', () => {
  it('finds exactly the effects decodeIntent finds, and encodes the same bytes shared', () => {
    const random = new Random(71);
    for (let round = 0; round < 500; round++) {
      const intent = randomIntent(random);
      const payload = encodeIntent(intent);
      expect([...encodeIntentShared(intent)]).toEqual([...payload]);
      const start = intentEffectsStart(payload);
      expect(start).toBeGreaterThanOrEqual(8);
      expect(effectsInPlace(payload, start)).toEqual(plain(decodeIntent(payload).effects));
    }
  });

  it('refuses exactly what decodeIntent refuses, except a request id that is not UTF-8', () => {
    const random = new Random(72);
    for (let round = 0; round < 60; round++) {
      const payload = encodeIntent(randomIntent(random));
      const damaged: Uint8Array[] = [];
      for (let cut = 0; cut < payload.length; cut++) damaged.push(payload.subarray(0, cut));
      damaged.push(Uint8Array.from([...payload, 0]));
      for (let flip = 0; flip < 20; flip++) {
        const copy = Uint8Array.from(payload);
        copy[random.int(copy.length)] = random.int(256);
        damaged.push(copy);
      }
      for (const bytes of damaged) {
        let refused = false;
        try {
          decodeIntent(bytes);
        } catch {
          refused = true;
        }
        const start = intentEffectsStart(bytes);
        if (start >= 0 && refused) {
          // The one difference: the request id's UTF-8 is decodeIntent's to check.
          expect(() => decodeIntent(bytes)).toThrow(/utf-8/);
          continue;
        }
        expect(start < 0).toBe(refused);
        if (start >= 0) {
          expect(effectsInPlace(bytes, start)).toEqual(plain(decodeIntent(bytes).effects));
        }
      }
    }
  });
});
