import { describe, expect, it } from 'vitest';
import {
  decide,
  matchingCases,
  recoveryCases,
  type Evidence,
} from '../../src/core/recovery/plan.js';

function* everyEvidence(): Generator<Evidence> {
  for (const stop of ['end', 'bad'] as const) {
    for (const next of ['none', 'continues', 'gap'] as const) {
      for (let bits = 0; bits < 16; bits++) {
        yield {
          stop,
          next,
          sealAfter: (bits & 1) !== 0,
          strayCopy: (bits & 2) !== 0,
          recordsAfter: (bits & 4) !== 0,
          bitFlip: (bits & 8) !== 0,
        };
      }
    }
  }
}

describe('recovery decision table', () => {
  it('matches exactly one case for every combination of evidence', () => {
    let combinations = 0;
    for (const evidence of everyEvidence()) {
      expect(
        matchingCases(evidence).map((entry) => entry.label),
        JSON.stringify(evidence),
      ).toHaveLength(1);
      combinations += 1;
    }
    expect(combinations).toBe(96);
  });

  it('uses every case for some evidence', () => {
    const used = new Set<string>();
    for (const evidence of everyEvidence()) used.add(decide(evidence).label);
    expect([...used].sort()).toEqual(recoveryCases.map((entry) => entry.label).sort());
  });

  it('never truncates when anything vouches for the damaged place', () => {
    for (const evidence of everyEvidence()) {
      const { decision } = decide(evidence);
      if (evidence.sealAfter || evidence.next !== 'none' || evidence.strayCopy) {
        expect(decision, JSON.stringify(evidence)).not.toBe('truncate');
      }
      if (evidence.stop === 'bad' && evidence.bitFlip) expect(decision).toBe('corrupt');
    }
  });

  it('reads the common cases as expected', () => {
    const base: Evidence = {
      stop: 'end',
      next: 'none',
      sealAfter: false,
      strayCopy: false,
      recordsAfter: false,
      bitFlip: false,
    };
    expect(decide(base).label).toBe('@clean-end');
    expect(decide({ ...base, stop: 'bad' }).label).toBe('@torn');
    expect(decide({ ...base, stop: 'bad', bitFlip: true }).label).toBe('@bit-rot');
    expect(decide({ ...base, stop: 'bad', sealAfter: true }).label).toBe('@sealed-damage');
    expect(decide({ ...base, next: 'continues' }).label).toBe('@rotated');
    expect(decide({ ...base, next: 'gap' }).label).toBe('@gap');
    expect(decide({ ...base, recordsAfter: true }).label).toBe('@torn-orphans');
  });
});
