import { describe, expect, it } from 'vitest';
import { RecordType } from '../../src/core/format/frame.js';
import {
  encodeAbort,
  encodeCommit,
  encodeIntent,
  encodeTerm,
} from '../../src/core/format/record.js';
import {
  checkHistory,
  committedHistory,
  type AckFacts,
  type Command,
  type FinalStatus,
  type History,
  type LogEntry,
  type ReadHistory,
  type WriteHistory,
  type WriteOutcome,
} from '../../src/harness/cluster-model.js';
import {
  clusterConfig,
  commandKinds,
  randomCommand,
  writtenValues,
  type WorkloadView,
} from '../../src/harness/cluster-workload.js';
import { Random } from '../../src/sim/random.js';

/**
 * The cluster simulation's history checker on hand-made histories: a correct one passes, and
 * each invariant, broken on purpose, is reported.
 */
const text = new TextEncoder();

type Put = [key: string, value: string | null];

function intent(lsn: number, requestId: string | null, effects: Put[]): LogEntry {
  const payload = encodeIntent({
    requestId,
    effects: effects.map(([key, value]) =>
      value === null
        ? { op: 'delete' as const, key: text.encode(key) }
        : { op: 'put' as const, key: text.encode(key), value: text.encode(value) },
    ),
  });
  return { lsn, type: RecordType.Intent, payload };
}

function commit(lsn: number, commitLsn: number): LogEntry {
  const payload = encodeCommit({ commitLsn, intentLsn: commitLsn, intentChecksum: 0 });
  return { lsn, type: RecordType.Commit, payload };
}

function abort(lsn: number, lsnFirst: number, lsnLast: number): LogEntry {
  return { lsn, type: RecordType.Abort, payload: encodeAbort({ lsnFirst, lsnLast }) };
}

function term(lsn: number): LogEntry {
  return { lsn, type: RecordType.Term, payload: encodeTerm({ term: 1, primaryId: 'n1' }) };
}

const fullAck: AckFacts = {
  durableOn: ['n1', 'n2', 'n3'],
  eligible: ['n2', 'n3'],
  acks: 'all',
  minReplicas: 1,
};

function ok(lsn: number, extra: Partial<Extract<WriteOutcome, { kind: 'ok' }>> = {}) {
  return {
    node: 'n1',
    outcome: {
      kind: 'ok' as const,
      lsn,
      duplicate: false,
      effect: true,
      value: null,
      ack: fullAck,
      ...extra,
    },
  };
}

function error(code: string, node = 'n1') {
  return { node, outcome: { kind: 'error' as const, code } };
}

function write(requestId: string, command: Command, attempts: WriteHistory['attempts']) {
  return { requestId, command, attempts };
}

/**
 * A correct history: w1 put, w2 incr, w3 NOREPLICAS (aborted at LSN 5), w4 a CAS answered
 * UNKNOWN that committed, w5 lost in a crash and never logged, w6 refused by a replica, w7 a
 * batch, w8 a delete.
 */
function goodHistory(): History {
  const log: LogEntry[] = [
    term(1),
    intent(2, 'w1', [['a', '5']]),
    intent(3, 'w2', [['a', '7']]),
    intent(4, 'w3', [['b', 'x']]),
    abort(5, 4, 4),
    commit(6, 5),
    intent(7, 'w4', [['a', 'c']]),
    intent(8, 'w7', [
      ['b', 'y'],
      ['c', 'z'],
    ]),
    intent(9, 'w8', [['c', null]]),
  ];
  const writes: WriteHistory[] = [
    write('w1', { kind: 'put', key: 'a', value: '5' }, [ok(2)]),
    write('w2', { kind: 'incr', key: 'a', delta: 2 }, [ok(3, { value: 7n })]),
    write('w3', { kind: 'put', key: 'b', value: 'x' }, [error('NOREPLICAS')]),
    write('w4', { kind: 'cas', key: 'a', expected: '7', next: 'c' }, [error('UNKNOWN')]),
    write('w5', { kind: 'put', key: 'a', value: 'lost' }, [
      { node: 'n1', outcome: { kind: 'lost' } },
    ]),
    write('w6', { kind: 'put', key: 'a', value: 'nope' }, [error('NOTPRIMARY', 'n2')]),
    write(
      'w7',
      {
        kind: 'batch',
        operations: [
          { op: 'put', key: 'b', value: 'y' },
          { op: 'put', key: 'c', value: 'z' },
        ],
      },
      [ok(8)],
    ),
    write('w8', { kind: 'delete', key: 'c' }, [ok(9), ok(9, { duplicate: true })]),
  ];
  const statuses = new Map<string, FinalStatus>([
    ['w1', { status: 'committed', lsn: 2 }],
    ['w2', { status: 'committed', lsn: 3 }],
    ['w3', { status: 'aborted', lsn: 4 }],
    ['w4', { status: 'committed', lsn: 7 }],
    ['w5', { status: 'unknown' }],
    ['w6', { status: 'unknown' }],
    ['w7', { status: 'committed', lsn: 8 }],
    ['w8', { status: 'committed', lsn: 9 }],
  ]);
  const reads: ReadHistory[] = [
    { node: 'n2', key: 'a', after: null, appliedLo: 1, appliedHi: 2, value: '5' },
    { node: 'n2', key: 'a', after: null, appliedLo: 0, appliedHi: 1, value: null },
    { node: 'n3', key: 'a', after: 3, appliedLo: 2, appliedHi: 6, value: '7' },
    { node: 'n3', key: 'b', after: null, appliedLo: 4, appliedHi: 9, value: 'y' },
  ];
  const scans = [
    {
      node: 'n1',
      appliedLo: 9,
      appliedHi: 9,
      entries: [
        ['a', 'c'],
        ['b', 'y'],
      ],
      when: 'end',
    },
    { node: 'n2', appliedLo: 3, appliedHi: 5, entries: [['a', '7']], when: 'run' },
  ] as History['scans'];
  return {
    members: ['n1', 'n2', 'n3'],
    primary: 'n1',
    writes,
    reads,
    scans,
    statuses,
    log,
    commitLsn: 9,
  };
}

function withWrite(history: History, requestId: string, change: Partial<WriteHistory>): History {
  const writes = history.writes.map((entry) =>
    entry.requestId === requestId ? { ...entry, ...change } : entry,
  );
  return { ...history, writes };
}

function withStatus(history: History, requestId: string, status: FinalStatus): History {
  const statuses = new Map(history.statuses);
  statuses.set(requestId, status);
  return { ...history, statuses };
}

function expectProblem(history: History, pattern: RegExp): void {
  const problems = checkHistory(history);
  expect(
    problems.some((problem) => pattern.test(problem)),
    problems.join('\n'),
  ).toBe(true);
}

describe('cluster history checker', () => {
  it('accepts a correct history', () => {
    expect(checkHistory(goodHistory())).toEqual([]);
  });

  it('derives the committed history: aborted and uncommitted intents are out', () => {
    const history = goodHistory();
    const committed = committedHistory(history.log, 8);
    expect(committed.problems).toEqual([]);
    expect(committed.writes.map((entry) => entry.requestId)).toEqual(['w1', 'w2', 'w4', 'w7']);
  });

  it('reports an OK write that is not in the committed history (lost after OK)', () => {
    const history = { ...goodHistory(), commitLsn: 8 };
    expectProblem(history, /w8 answered OK at LSN 9 but is not in the committed history/);
  });

  it('reports an OK write answered with another LSN', () => {
    const history = withWrite(goodHistory(), 'w1', { attempts: [ok(3)] });
    expectProblem(history, /w1 answered OK at LSN 3 but is at 2/);
  });

  it('reports a NOREPLICAS write that became visible', () => {
    const base = goodHistory();
    // No ABORT: the intent of w3 at LSN 4 commits with the rest.
    const log = base.log.map((entry) => (entry.lsn === 5 ? commit(5, 4) : entry));
    expectProblem({ ...base, log }, /w3 answered NOREPLICAS by n1, yet committed at LSN 4/);
  });

  it('reports a NOTPRIMARY write that committed', () => {
    const base = goodHistory();
    const log = [...base.log, intent(10, 'w6', [['a', 'nope']])];
    const history = withStatus({ ...base, log, commitLsn: 10 }, 'w6', {
      status: 'committed',
      lsn: 10,
    });
    expectProblem(history, /w6 answered NOTPRIMARY by n2, yet committed at LSN 10/);
  });

  it('reports a dirty read and a read of a value that never committed', () => {
    const base = goodHistory();
    const dirty: ReadHistory = {
      node: 'n2',
      key: 'b',
      after: null,
      appliedLo: 4,
      appliedHi: 5,
      value: 'x',
    };
    expectProblem({ ...base, reads: [dirty] }, /read of b on n2 returned x/);
    const early: ReadHistory = {
      node: 'n2',
      key: 'a',
      after: null,
      appliedLo: 1,
      appliedHi: 2,
      value: '7',
    };
    expectProblem({ ...base, reads: [early] }, /read of a on n2 returned 7/);
  });

  it('reports an {after} read that did not reflect its LSN', () => {
    const base = goodHistory();
    const short: ReadHistory = {
      node: 'n3',
      key: 'a',
      after: 3,
      appliedLo: 1,
      appliedHi: 2,
      value: '5',
    };
    expectProblem({ ...base, reads: [short] }, /after 3 answered at applied LSN 2/);
    const stale: ReadHistory = {
      node: 'n3',
      key: 'a',
      after: 3,
      appliedLo: 1,
      appliedHi: 4,
      value: '5',
    };
    expectProblem({ ...base, reads: [stale] }, /read of a on n3 returned 5/);
  });

  it('reports an acknowledged write not durable as the policy requires', () => {
    const base = goodHistory();
    const cases: [Partial<AckFacts>, RegExp][] = [
      [{ durableOn: ['n1', 'n2'] }, /acks=all: eligible replicas \[n3\] do not hold it/],
      [{ durableOn: ['n1'], eligible: [], acks: 'quorum', minReplicas: 0 }, /durable on 1 nodes/],
      [{ durableOn: ['n2', 'n3'] }, /not durable on the primary/],
      [
        { durableOn: ['n1', 'n2'], eligible: [], minReplicas: 2 },
        /durable on 1 replicas, minReplicas 2/,
      ],
    ];
    for (const [facts, pattern] of cases) {
      const history = withWrite(base, 'w1', {
        attempts: [ok(2, { ack: { ...fullAck, ...facts } })],
      });
      expectProblem(history, pattern);
    }
  });

  it('reports an ABORT that overturns a COMMIT, and a request id committed twice', () => {
    const base = goodHistory();
    const overturn = [...base.log, abort(10, 2, 2)];
    expectProblem({ ...base, log: overturn, commitLsn: 10 }, /ABORT at 10 of 2..2 overturns/);
    const twice = [...base.log, intent(10, 'w1', [['a', '5']])];
    expectProblem({ ...base, log: twice, commitLsn: 10 }, /request w1 committed twice/);
  });

  it('reports final statuses that disagree with the committed history', () => {
    const base = goodHistory();
    expectProblem(
      withStatus(base, 'w5', { status: 'committed', lsn: 4 }),
      /w5 is not in the committed/,
    );
    expectProblem(withStatus(base, 'w4', { status: 'unknown' }), /w4 committed at 7, status says/);
    expectProblem(withStatus(base, 'w5', { status: 'pending', lsn: 11 }), /w5 still pending/);
  });

  it('reports effects that do not follow from the command', () => {
    const base = goodHistory();
    const cas = withWrite(base, 'w4', {
      command: { kind: 'cas', key: 'a', expected: '5', next: 'c' },
    });
    expectProblem(cas, /w4 at LSN 7: CAS committed though a held 7, not 5/);
    const incr = withWrite(base, 'w2', { attempts: [ok(3, { value: 8n })] });
    expectProblem(incr, /w2: INCR answered 8, the replay gives 7/);
    const put = withWrite(base, 'w1', { command: { kind: 'put', key: 'a', value: '6' } });
    expectProblem(put, /w1 at LSN 2 logged \[a=5\], its command gives \[a=6\]/);
    const del = withWrite(base, 'w8', { command: { kind: 'delete', key: 'zz' } });
    expectProblem(del, /delete committed though zz was absent/);
  });

  it('reports a no-op answer for a write that committed, and a scan of no committed state', () => {
    const base = goodHistory();
    expectProblem(
      withWrite(base, 'w1', { attempts: [ok(9, { effect: false })] }),
      /without effect/,
    );
    const entries: [string, string][] = [['a', '5']];
    const scans = [{ node: 'n2', appliedLo: 3, appliedHi: 5, entries, when: 'run' }];
    expectProblem({ ...base, scans }, /scan of n2 \(run\)/);
  });

  it('reports a committed intent of a request the harness never issued', () => {
    const base = goodHistory();
    const log = [...base.log, intent(10, 'w99', [['a', '1']])];
    expectProblem({ ...base, log, commitLsn: 10 }, /committed intent of unknown request w99/);
  });
});

describe('cluster workload', () => {
  const view = (seed: number): WorkloadView => {
    const random = new Random(seed);
    return { config: clusterConfig(random.fork()), random, sequence: 7, lastKnown: () => '3' };
  };

  it('draws the same seed shape and commands from the same seed', () => {
    const first = view(42);
    const second = view(42);
    expect(second.config).toEqual(first.config);
    const commands = (v: WorkloadView) => commandKinds.map((kind) => randomCommand(v, kind));
    expect(commands(second)).toEqual(commands(first));
  });

  it('produces every kind of command, and knows what each writes', () => {
    const v = view(1);
    const kinds = new Set<string>();
    for (let index = 0; index < 200; index++) {
      const command = randomCommand(v, v.random.pick(commandKinds));
      kinds.add(command.kind);
      if (command.kind === 'incr') expect(writtenValues(command)).toEqual([]);
      if (command.kind === 'put')
        expect(writtenValues(command)).toEqual([[command.key, command.value]]);
    }
    expect([...kinds].sort()).toEqual(['batch', 'cas', 'delete', 'incr', 'put']);
  });
});
