/**
 * The checks of the shard e2e test (shard-history.ts, shard-inspect.ts) on hand-made
 * histories: each rule fires on the violation it is there for and stays quiet otherwise, so a
 * green shard run means something.
 */
import { describe, expect, it } from 'vitest';
import {
  FinalValueModel,
  checkLog,
  checkReplicaStatuses,
  checkState,
  checkStatuses,
  expectedState,
  parseStatus,
  type DumpedRecord,
  type Outcome,
  type RequestStatus,
  type WriteRecord,
} from './shard-history.js';
import { parseInfo, replicaRows } from './shard-inspect.js';

/** A write to `key` invoked at `invoked` and answered at `replied` (ms), in primary life 1. */
function write(
  rid: string,
  key: string,
  outcome: Outcome,
  invoked: number,
  replied: number,
  life = 1,
): WriteRecord {
  return {
    rid,
    writer: 0,
    key,
    value: `${rid}|value`,
    life,
    invokedMs: invoked,
    repliedMs: replied,
    outcome,
    detail: outcome === 'ok' ? '' : outcome.toUpperCase(),
  };
}

const committed = (lsn: number): RequestStatus => ({ status: 'committed', lsn });
const aborted = (lsn: number): RequestStatus => ({ status: 'aborted', lsn });
const unknown: RequestStatus = { status: 'unknown' };

describe('shard e2e checks', () => {
  it('parses STATUS and INFO replies', () => {
    expect(parseStatus(['status', 'committed', 'lsn', 12])).toEqual(committed(12));
    expect(parseStatus(['status', 'unknown'])).toEqual(unknown);
    expect(() => parseStatus('OK')).toThrow(/STATUS reply/);
    const info = parseInfo(
      '# Replication\r\nrole:master\r\nlast_lsn:40\r\n' +
        'slave0:id=n2,ip=,port=,state=online,offset=38,lag=0,eligible=1,lag_lsn=2\r\n' +
        'slave1:id=n3,ip=,port=,state=offline,offset=0,lag=0,eligible=0,lag_lsn=40\r\n',
    );
    expect(info.get('last_lsn')).toBe('40');
    expect(replicaRows(info).get('n2')).toEqual({
      id: 'n2',
      state: 'online',
      offset: 38,
      eligible: true,
      lagLsn: 2,
    });
    expect(replicaRows(info).get('n3')?.eligible).toBe(false);
  });

  it('STATUS: OK writes committed, NOREPLICAS never, nothing pending, real-time order', () => {
    const writes = [
      write('a', 'k', 'ok', 0, 10),
      write('b', 'k', 'noreplicas', 0, 10),
      write('c', 'k', 'indeterminate', 0, 10),
      write('d', 'k', 'ok', 20, 30),
    ];
    const good = new Map([
      ['a', committed(2)],
      ['b', unknown],
      ['c', aborted(3)],
      ['d', committed(5)],
    ]);
    const verdict = checkStatuses(writes, good);
    expect(verdict.problems).toEqual([]);
    expect(verdict.resolved).toEqual({ committed: 0, aborted: 1, unknown: 0 });
    expect(expectedState(verdict.committed)).toEqual(new Map([['k', 'd|value']]));

    const bad = new Map([
      ['a', aborted(2)],
      ['b', committed(3)],
      ['c', { status: 'pending', lsn: 4 } as RequestStatus],
      ['d', committed(3)],
    ]);
    const problems = checkStatuses(writes, bad).problems.join('\n');
    expect(problems).toMatch(/^a .*LOST/m);
    expect(problems).toMatch(/^b .*NOREPLICAS but committed at lsn 3/m);
    expect(problems).toMatch(/^c .*still pending/m);
    expect(problems).toMatch(/two writes committed at lsn 3/);

    // d was invoked after a's OK reply, so it must commit at a higher LSN.
    const reordered = new Map([...good, ['a', committed(9)]]);
    expect(checkStatuses(writes, reordered).problems.join('\n')).toMatch(
      /^a .*at lsn 9, but d at lower lsn 5 was invoked after that OK/m,
    );
  });

  it('the final value model: the last OK write, or an unknown one that nothing followed', () => {
    const writes = [
      write('a', 'k', 'ok', 0, 10),
      write('b', 'k', 'ok', 5, 15),
      write('c', 'k', 'indeterminate', 16, 18, 1),
      write('d', 'k', 'ok', 40, 50, 2),
      write('e', 'k', 'indeterminate', 45, 60, 2),
      write('f', 'k', 'noreplicas', 70, 80, 2),
      write('g', 'j', 'indeterminate', 0, 5, 1),
    ];
    // Primary life 1 ended at 30 ms; life 2 is still running.
    const model = new FinalValueModel(writes, (life) => (life === 1 ? 30 : Infinity));
    expect(model.problem('k', 'd|value')).toBeNull();
    // e's outcome is unknown and its life did not end: it may have committed after d.
    expect(model.problem('k', 'e|value')).toBeNull();
    // a, b and c all ended before d was invoked.
    expect(model.problem('k', 'b|value')).toMatch(/a later OK write/);
    expect(model.problem('k', 'c|value')).toMatch(/a later OK write/);
    expect(model.problem('k', 'f|value')).toMatch(/NOREPLICAS/);
    expect(model.problem('k', undefined)).toMatch(/absent/);
    expect(model.problem('k', 'g|value')).toMatch(/a write to j/);
    expect(model.problem('k', 'zzz')).toMatch(/no client wrote/);
    // No OK write to j: absent or g's value are both possible.
    expect(model.problem('j', undefined)).toBeNull();
    expect(model.problem('j', 'g|value')).toBeNull();

    const expected = new Map([['k', 'd|value']]);
    expect(checkState('n2', new Map([['k', 'd|value']]), expected, model)).toEqual([]);
    const state = new Map([
      ['k', 'b|value'],
      ['x', '1'],
    ]);
    const problems = checkState('n2', state, expected, model).join('\n');
    expect(problems).toMatch(/^n2 k: holds b .*a later OK write/m);
    expect(problems).toMatch(/^n2 k: b\|value, the committed writes give d\|value/m);
    expect(problems).toMatch(/^n2 x: 1, the committed writes give absent/m);
  });

  it('replica STATUS agrees with the primary on what committed and where', () => {
    const writes = [write('a', 'k', 'ok', 0, 1), write('b', 'k', 'indeterminate', 0, 1)];
    const primary = new Map([
      ['a', committed(2)],
      ['b', aborted(3)],
    ]);
    expect(checkReplicaStatuses('n3', writes, primary, new Map(primary))).toEqual([]);
    const replica = new Map([
      ['a', committed(4)],
      ['b', committed(3)],
    ]);
    expect(checkReplicaStatuses('n3', writes, primary, replica)).toHaveLength(2);
  });

  it('STATUS against the commit rules applied to the log', () => {
    const intent = (lsn: number, requestId: string): DumpedRecord => ({
      lsn,
      type: 'INTENT',
      payload: { requestId },
    });
    const records: DumpedRecord[] = [
      intent(10, 'a'),
      intent(11, 'b'),
      { lsn: 12, type: 'ABORT', payload: { lsnFirst: 11, lsnLast: 11 } },
      intent(13, 'c'),
      { lsn: 14, type: 'COMMIT', payload: { commitLsn: 13 } },
    ];
    const writes = ['a', 'b', 'c', 'd', 'e'].map((rid) => write(rid, 'k', 'ok', 0, 1));
    const statuses = new Map([
      ['a', committed(10)],
      ['b', aborted(11)],
      ['c', committed(13)],
      ['d', unknown],
      // Below the log's first LSN: a checkpoint removed it.
      ['e', committed(5)],
    ]);
    expect(checkLog(records, writes, statuses)).toEqual([]);
    const wrong = new Map([
      ...statuses,
      ['b', committed(11)],
      ['d', committed(20)],
      ['c', unknown],
    ]);
    const problems = checkLog([...records, intent(15, 'a')], writes, wrong).join('\n');
    expect(problems).toMatch(/a logged twice/);
    expect(problems).toMatch(/^b .*the log: aborted at lsn 11/m);
    expect(problems).toMatch(/^c .*"unknown".*the log: committed at lsn 13/m);
    expect(problems).toMatch(/^d .*no intent in the log/m);
  });
});
