import { describe, expect, it } from 'vitest';
import { RecordType } from '../../src/core/format/frame.js';
import {
  encodeAbort,
  encodeCheckpoint,
  encodeCommit,
  encodeIntent,
  encodeTerm,
  type Effect,
} from '../../src/core/format/record.js';
import { CommitRules, type ReplayRecord } from '../../src/core/replay/commit-rules.js';

const text = new TextEncoder();
const decoder = new TextDecoder();
const site = { segment: '00000000000000000001.wal', offset: 64 };

/** Builds records with consecutive LSNs; an intent's checksum is 1000 + its LSN. */
class Script {
  readonly records: ReplayRecord[] = [];
  constructor(private lsn = 1) {}

  #push(type: RecordType, term: number, payload: Uint8Array): number {
    const lsn = this.lsn++;
    this.records.push({ type, lsn, term, checksum: 1000 + lsn, payload });
    return lsn;
  }
  term(term: number) {
    return this.#push(RecordType.Term, term, encodeTerm({ term, primaryId: `n${term}` }));
  }
  put(key: string, value: string, term = 1) {
    const effects: Effect[] = [{ op: 'put', key: text.encode(key), value: text.encode(value) }];
    return this.#push(RecordType.Intent, term, encodeIntent({ requestId: null, effects }));
  }
  del(key: string, term = 1) {
    const effects: Effect[] = [{ op: 'delete', key: text.encode(key) }];
    return this.#push(RecordType.Intent, term, encodeIntent({ requestId: null, effects }));
  }
  commit(commitLsn: number, intentLsn = commitLsn, term = 1, intentChecksum = 1000 + intentLsn) {
    return this.#push(
      RecordType.Commit,
      term,
      encodeCommit({ commitLsn, intentLsn, intentChecksum }),
    );
  }
  abort(lsnFirst: number, lsnLast: number, term = 1) {
    return this.#push(RecordType.Abort, term, encodeAbort({ lsnFirst, lsnLast }));
  }
  checkpoint(lsn: number) {
    return this.#push(RecordType.Checkpoint, 1, encodeCheckpoint({ lsn }));
  }
  raw(type: RecordType, payload: Uint8Array) {
    return this.#push(type, 1, payload);
  }
}

/** Replays `script` from `baseLsn` and returns the state, the applied LSNs and the summary. */
function replay(script: Script, baseLsn = 0) {
  const state = new Map<string, string>();
  const appliedLsns: number[] = [];
  const rules = new CommitRules(baseLsn, (lsn, effects) => {
    appliedLsns.push(lsn);
    for (const effect of effects) {
      const key = decoder.decode(effect.key);
      if (effect.op === 'put') state.set(key, decoder.decode(effect.value));
      else state.delete(key);
    }
  });
  for (const record of script.records) rules.add(record, site);
  return { state: Object.fromEntries(state), appliedLsns, summary: rules.summary() };
}

describe('CommitRules (DESIGN §3)', () => {
  it('applies intents at or below the highest commit point, in LSN order', () => {
    const script = new Script();
    script.term(1);
    script.put('a', '1');
    const b = script.put('b', '2');
    script.commit(b);
    script.del('a');
    const result = replay(script);
    expect(result.state).toEqual({ a: '1', b: '2' });
    expect(result.appliedLsns).toEqual([2, 3]);
    expect(result.summary).toMatchObject({
      commitLsn: 3,
      applied: 2,
      aborted: 0,
      inDoubt: 1,
      inDoubtFirstLsn: 5,
      inDoubtLastLsn: 5,
    });
  });

  it('drops every intent an ABORT range covers, and a later COMMIT passes them by', () => {
    const script = new Script();
    script.put('a', '1'); // 1
    script.put('b', '2'); // 2
    script.abort(1, 2); // 3
    const c = script.put('c', '3'); // 4
    script.commit(c);
    const result = replay(script);
    expect(result.state).toEqual({ c: '3' });
    expect(result.summary).toMatchObject({ applied: 1, aborted: 2, inDoubt: 0 });
  });

  it("commits an earlier term's intent with the new primary's first COMMIT (Raft's rule)", () => {
    const script = new Script();
    script.term(1);
    const pending = script.put('x', 'old-term', 1);
    const term = script.term(2);
    script.commit(term, pending, 2);
    expect(replay(script).state).toEqual({ x: 'old-term' });
  });

  it('skips records at or below the base (they are in the checkpoint)', () => {
    const script = new Script();
    script.put('a', '1'); // 1
    script.commit(1); // 2
    script.put('b', '2'); // 3
    script.commit(3); // 4
    const result = replay(script, 2);
    expect(result.state).toEqual({ b: '2' });
    expect(result.summary).toMatchObject({ baseLsn: 2, lastLsn: 4, applied: 1 });
  });

  it('an ABORT whose range reaches past it also covers the intents still to come', () => {
    const script = new Script();
    script.abort(2, 3); // 1
    script.put('a', '1'); // 2
    script.put('b', '2'); // 3
    const c = script.put('c', '3'); // 4
    script.commit(c);
    expect(replay(script).state).toEqual({ c: '3' });
  });

  it('a COMMIT below the commit point changes nothing; CHECKPOINT is informational', () => {
    const script = new Script();
    script.put('a', '1');
    script.commit(1);
    script.put('b', '2');
    script.checkpoint(1);
    script.commit(1);
    expect(replay(script).summary).toMatchObject({ commitLsn: 1, applied: 1, inDoubt: 1 });
  });

  it('refuses an ABORT of an intent that a COMMIT already committed', () => {
    const script = new Script();
    script.put('a', '1');
    script.commit(1);
    script.abort(1, 1);
    expect(() => replay(script)).toThrow(/ABORT at 3 rolls back intent 1, which a COMMIT already/);
  });

  it('refuses a COMMIT naming an intent with another checksum (a bad intent, good commit)', () => {
    const script = new Script();
    script.put('a', '1');
    script.commit(1, 1, 1, 7);
    expect(() => replay(script)).toThrow(/CORRUPT: COMMIT at 2 names intent 1 with a different/);
  });

  it('reports a payload that does not decode as corruption, naming the place', () => {
    const script = new Script();
    script.raw(RecordType.Intent, new Uint8Array([9, 9, 9]));
    expect(() => replay(script)).toThrow(
      /undecodable INTENT record.*segment 00000000000000000001\.wal, offset 64, lsn 1/,
    );
  });
});
