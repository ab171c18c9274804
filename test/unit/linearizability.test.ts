import { describe, expect, it } from 'vitest';
import { SyncwalError } from '../../src/core/errors.js';
import {
  batchOperations,
  checkLinearizability,
  type KvAction,
  type KvOperation,
  type LinearizabilityResult,
} from '../../src/harness/linearizability.js';
import { Random } from '../../src/sim/random.js';

/**
 * The linearizability checker (src/harness/linearizability.ts): hand-made histories it must
 * accept and reject, seeded random histories produced by a concurrent run of a sequential
 * model (always accepted), and seeded mutations of them that break linearizability in a known
 * way (always rejected, on the key that was mutated).
 */

let labels = 0;

function op(
  key: string,
  action: KvAction,
  called: number,
  returned: number | null,
  outcome: KvOperation['outcome'] = 'ok',
): KvOperation {
  labels += 1;
  return { label: `o${labels}`, key, action, outcome, called, returned };
}

const get = (value: string | null): KvAction => ({ kind: 'get', value });
const put = (value: string): KvAction => ({ kind: 'put', value });
const incr = (delta: number, result?: number | bigint | 'invalid'): KvAction =>
  result === undefined
    ? { kind: 'incr', delta: BigInt(delta) }
    : {
        kind: 'incr',
        delta: BigInt(delta),
        result: result === 'invalid' ? result : BigInt(result),
      };

function verdict(operations: KvOperation[]): LinearizabilityResult['verdict'] {
  return checkLinearizability(operations).verdict;
}

describe('linearizability checker: histories it must accept', () => {
  it('accepts a sequential history of every operation', () => {
    const history = [
      op('k', get(null), 0, 1),
      op('k', put('a'), 2, 3),
      op('k', get('a'), 4, 5),
      op('k', { kind: 'cas', expected: 'a', next: 'b', swapped: true }, 6, 7),
      op('k', { kind: 'cas', expected: 'a', next: 'c', swapped: false }, 8, 9),
      op('k', { kind: 'delete', deleted: true }, 10, 11),
      op('k', { kind: 'delete', deleted: false }, 12, 13),
      op('k', incr(5, 5), 14, 15),
      op('k', incr(-7, -2), 16, 17),
      op('k', get('-2'), 18, 19),
      op('k', { kind: 'cas', expected: null, next: 'x', swapped: false }, 20, 21),
    ];
    const result = checkLinearizability(history);
    expect(result).toMatchObject({ verdict: 'linearizable', keys: 1, operations: 11 });
  });

  it('accepts reads that see either of two overlapping writes, in either order', () => {
    const writes = () => [op('k', put('x'), 0, 100), op('k', put('y'), 1, 99)];
    expect(verdict([...writes(), op('k', get('x'), 10, 20), op('k', get('y'), 30, 40)])).toBe(
      'linearizable',
    );
    expect(verdict([...writes(), op('k', get('y'), 10, 20), op('k', get('x'), 30, 40)])).toBe(
      'linearizable',
    );
    expect(verdict([...writes(), op('k', get(null), 10, 20), op('k', get('y'), 30, 40)])).toBe(
      'linearizable',
    );
  });

  it('accepts an indeterminate write seen, or never seen', () => {
    const unknown = () => op('k', put('v'), 0, null, 'indeterminate');
    expect(verdict([unknown(), op('k', get('v'), 50, 60)])).toBe('linearizable');
    expect(verdict([unknown(), op('k', get(null), 50, 60), op('k', get(null), 70, 80)])).toBe(
      'linearizable',
    );
    // Late: not seen at first, seen afterwards (it may take effect any time after its call).
    expect(verdict([unknown(), op('k', get(null), 50, 60), op('k', get('v'), 70, 80)])).toBe(
      'linearizable',
    );
    // An indeterminate INCR on a non-integer value changes nothing; any answer fits.
    expect(
      verdict([
        op('k', put('text'), 0, 1),
        op('k', incr(1), 2, null, 'indeterminate'),
        op('k', get('text'), 5, 6),
      ]),
    ).toBe('linearizable');
  });

  it('accepts a failed write that is never seen, and ignores its answer', () => {
    const history = [
      op('k', put('v'), 0, 10, 'failed'),
      op('k', { kind: 'delete', deleted: true }, 1, 2, 'failed'),
      op('k', get(null), 20, 30),
    ];
    expect(verdict(history)).toBe('linearizable');
  });

  it('counts operations at equal times as concurrent', () => {
    expect(verdict([op('k', put('a'), 0, 5), op('k', get(null), 5, 6)])).toBe('linearizable');
    expect(verdict([op('k', put('a'), 0, 5), op('k', get(null), 6, 7)])).toBe('violation');
  });

  it('models INCR as Redis does: absent is 0, INVALID on text and on overflow', () => {
    const max = '9223372036854775807';
    const history = [
      op('a', incr(3, 3), 0, 1),
      op('b', put('12x'), 0, 1),
      op('b', incr(1, 'invalid'), 2, 3),
      op('c', put(max), 0, 1),
      op('c', incr(1, 'invalid'), 2, 3),
      op('c', incr(-1, 9223372036854775806n), 4, 5),
      op('d', put('-0'), 0, 1),
      op('d', incr(1, 'invalid'), 2, 3),
      op('e', put('007'), 0, 1),
      op('e', incr(1, 'invalid'), 2, 3),
    ];
    expect(verdict(history)).toBe('linearizable');
    expect(verdict([op('a', put('5'), 0, 1), op('a', incr(1, 'invalid'), 2, 3)])).toBe('violation');
    expect(verdict([op('a', put('v'), 0, 1), op('a', incr(1, 1), 2, 3)])).toBe('violation');
  });

  it('accepts two concurrent INCRs that answer in either order', () => {
    const history = [op('k', incr(1, 2), 0, 10), op('k', incr(1, 1), 1, 5)];
    expect(verdict(history)).toBe('linearizable');
  });
});

describe('linearizability checker: histories it must reject', () => {
  it('rejects a stale read after an acknowledged write finished', () => {
    const history = [op('k', put('a'), 0, 1), op('k', put('b'), 2, 3), op('k', get('a'), 4, 5)];
    const result = checkLinearizability(history);
    expect(result.verdict).toBe('violation');
    if (result.verdict !== 'violation') return;
    expect(result.key).toBe('k');
    expect(result.explanation).toMatch(/read 'a', but the key holds 'b'/);
  });

  it("rejects a read of a value never written, and a read of a failed write's value", () => {
    expect(verdict([op('k', put('a'), 0, 1), op('k', get('ghost'), 2, 3)])).toBe('violation');
    expect(verdict([op('k', put('v'), 0, 10, 'failed'), op('k', get('v'), 5, 6)])).toBe(
      'violation',
    );
  });

  it('rejects an indeterminate write seen and then unseen', () => {
    const history = [
      op('k', put('v'), 0, null, 'indeterminate'),
      op('k', get('v'), 10, 20),
      op('k', get(null), 30, 40),
    ];
    expect(verdict(history)).toBe('violation');
  });

  it('rejects two readers that see two concurrent writes in opposite orders', () => {
    const writes = () => [op('k', put('x'), 0, 100), op('k', put('y'), 0, 100)];
    const first = () => [op('k', get('x'), 10, 20), op('k', get('y'), 30, 40)];
    const second = () => [op('k', get('y'), 10, 20), op('k', get('x'), 30, 40)];
    expect(verdict([...writes(), ...first()])).toBe('linearizable');
    expect(verdict([...writes(), ...second()])).toBe('linearizable');
    expect(verdict([...writes(), ...first(), ...second()])).toBe('violation');
  });

  it('rejects INCR results that skip or repeat', () => {
    expect(verdict([op('k', incr(1, 1), 0, 1), op('k', incr(1, 3), 2, 3)])).toBe('violation');
    expect(verdict([op('k', incr(1, 1), 0, 10), op('k', incr(1, 1), 1, 5)])).toBe('violation');
  });

  it('rejects wrong answers of delete and compare-and-set', () => {
    expect(verdict([op('k', { kind: 'delete', deleted: true }, 0, 1)])).toBe('violation');
    const cas = { kind: 'cas', expected: 'a', next: 'b', swapped: true } as const;
    expect(verdict([op('k', put('c'), 0, 1), op('k', cas, 2, 3)])).toBe('violation');
    const miss = { kind: 'cas', expected: 'c', next: 'b', swapped: false } as const;
    expect(verdict([op('k', put('c'), 0, 1), op('k', miss, 2, 3)])).toBe('violation');
  });

  it('names the violating key among correct ones and explains the violation', () => {
    labels = 0;
    const history = [
      op('fine', put('1'), 0, 1),
      op('fine', get('1'), 2, 3),
      op('bad', put('a'), 0, 1),
      op('bad', put('b'), 2, 3),
      op('bad', get('a'), 4, 5),
      op('zzz', get(null), 0, 1),
    ];
    const result = checkLinearizability(history);
    expect(result.verdict).toBe('violation');
    if (result.verdict !== 'violation') return;
    expect(result.key).toBe('bad');
    expect(result.explanation).toBe(
      [
        'no linearization of its 3 operations: the longest linearizable prefix found has 2, ' +
          "after which the key holds 'b'",
        "  the prefix ends with: o3 put 'a' [0, 1]; o4 put 'b' [2, 3]",
        "  o5 get -> 'a' [4, 5] had to take effect by 5; none of these fits next:",
        "    o5 get -> 'a' [4, 5]: read 'a', but the key holds 'b'",
      ].join('\n'),
    );
  });
});

describe('linearizability checker: batches, budgets and bad input', () => {
  it('splits a batch into its last write per key', () => {
    const items = [
      { op: 'put', key: 'a', value: '1' },
      { op: 'put', key: 'b', value: '2' },
      { op: 'delete', key: 'a' },
    ] as const;
    const parts = batchOperations({ label: 'b1', items, outcome: 'ok', called: 0, returned: 10 });
    expect(parts.map((part) => [part.key, part.action])).toEqual([
      ['a', { kind: 'delete' }],
      ['b', { kind: 'put', value: '2' }],
    ]);
    expect(verdict([...parts, op('a', get(null), 11, 12), op('b', get('2'), 11, 12)])).toBe(
      'linearizable',
    );
    expect(verdict([...parts, op('a', get('1'), 11, 12)])).toBe('violation');
  });

  it('answers unknown, naming the key, when a budget runs out', () => {
    // Many concurrent writes and a read of a value none wrote: the search tries many orders.
    const writes = Array.from({ length: 10 }, (_, index) => op('k', put(`v${index}`), 0, 100));
    const history = [...writes, op('k', get('ghost'), 50, 60)];
    expect(checkLinearizability(history).verdict).toBe('violation');
    const bounded = checkLinearizability(history, { stepsPerKeyMax: 50 });
    expect(bounded).toMatchObject({ verdict: 'unknown', key: 'k' });
    if (bounded.verdict === 'unknown') expect(bounded.explanation).toMatch(/50 steps/);
    const small = checkLinearizability(history, { cacheEntriesPerKeyMax: 10 });
    expect(small).toMatchObject({ verdict: 'unknown', key: 'k' });
    let now = 0;
    const clock = () => (now += 1000);
    const late = checkLinearizability(history, { deadline: { now: clock, msMax: 500 } });
    expect(late).toMatchObject({ verdict: 'unknown', key: 'k' });
    if (late.verdict === 'unknown') expect(late.explanation).toMatch(/out of time/);
  });

  it('refuses malformed operations and oversized histories with INVALID', () => {
    const invalid = (operations: KvOperation[], operationsMax?: number) => {
      try {
        checkLinearizability(operations, operationsMax === undefined ? {} : { operationsMax });
      } catch (error: unknown) {
        return error instanceof SyncwalError ? error.code : 'other';
      }
      return 'accepted';
    };
    expect(invalid([op('k', put('a'), 5, 4)])).toBe('INVALID');
    expect(invalid([op('k', put('a'), 5, null)])).toBe('INVALID');
    expect(invalid([op('k', put('a'), Number.NaN, 4)])).toBe('INVALID');
    expect(invalid([op('k', put('a'), 0, 1), op('k', put('b'), 0, 1)], 1)).toBe('INVALID');
    expect(invalid([op('k', put('a'), 5, null, 'indeterminate')])).toBe('accepted');
  });
});

// -------------------------------------------------------------------------------------------
// Random histories: a concurrent run of a sequential model.

interface Shape {
  clients: number;
  /** Keys written with put, delete, CAS and INCR (puts write unique non-integer values). */
  registers: number;
  /** Keys only incremented (by positive deltas) and read: their value only grows. */
  counters: number;
  operations: number;
}

interface Timed {
  client: number;
  called: number;
  /** The moment it takes effect in the sequential model: strictly inside [called, returned]. */
  point: number;
  returned: number;
}

/** Clients run operations back to back; each takes effect at a random moment inside it. */
function timeline(random: Random, shape: Shape): Timed[] {
  const clocks = new Array<number>(shape.clients).fill(0);
  const timed: Timed[] = [];
  for (let index = 0; index < shape.operations; index++) {
    const client = random.int(shape.clients);
    const called = clocks[client]! + random.next() * 3;
    const length = random.bool(0.05) ? 100 : 10;
    const point = called + (0.01 + random.next() * 0.98) * length;
    const returned = called + length;
    clocks[client] = returned;
    timed.push({ client, called, point, returned });
  }
  return timed.sort((left, right) => left.point - right.point);
}

/** The generator's own INCR: absent is 0, only small decimal integers occur here. */
function incremented(value: string | null, delta: number): string | null {
  if (value === null) return String(delta);
  return /^-?[0-9]+$/.test(value) ? String(BigInt(value) + BigInt(delta)) : null;
}

interface Drawn {
  action: KvAction;
  /** The value the key holds afterwards, if it takes effect. */
  after: string | null;
}

function drawRegister(random: Random, current: string | null, sequence: number): Drawn {
  const draw = random.int(100);
  if (draw < 35) return { action: get(current), after: current };
  if (draw < 65) return { action: put(`v${sequence}`), after: `v${sequence}` };
  if (draw < 75) return { action: { kind: 'delete', deleted: current !== null }, after: null };
  if (draw < 85) {
    const delta = random.range(-3, 9);
    const next = incremented(current, delta);
    const result = next === null ? ('invalid' as const) : BigInt(next);
    return { action: { kind: 'incr', delta: BigInt(delta), result }, after: next ?? current };
  }
  const expected = random.bool(0.6) ? current : random.pick([null, `v${sequence - 1}`]);
  const next = random.bool(0.15) ? null : `c${sequence}`;
  const swapped = expected === current;
  return {
    action: { kind: 'cas', expected, next, swapped },
    after: swapped ? next : current,
  };
}

function drawCounter(random: Random, current: string | null): Drawn {
  if (random.bool(0.4)) return { action: get(current), after: current };
  const delta = random.range(1, 5);
  const next = incremented(current, delta);
  return { action: incr(delta, Number(next)), after: next };
}

/** Strips the answer of an operation whose answer never came. */
function unanswered(action: KvAction): KvAction {
  if (action.kind === 'delete') return { kind: 'delete' };
  if (action.kind === 'incr') return { kind: 'incr', delta: action.delta };
  if (action.kind === 'cas') return { kind: 'cas', expected: action.expected, next: action.next };
  return action;
}

function keyNames(shape: Shape): string[] {
  const registers = Array.from({ length: shape.registers }, (_, index) => `r${index}`);
  const counters = Array.from({ length: shape.counters }, (_, index) => `n${index}`);
  return [...registers, ...counters];
}

/** A linearizable history: every operation's answer comes from the model at its point. */
function generate(random: Random, shape: Shape): KvOperation[] {
  const state = new Map<string, string | null>();
  const keys = keyNames(shape);
  return timeline(random, shape).map((timed, sequence) => {
    const key = random.pick(keys);
    const current = state.get(key) ?? null;
    const drawn = key.startsWith('n')
      ? drawCounter(random, current)
      : drawRegister(random, current, sequence);
    const base = { label: `c${timed.client}#${sequence}`, key, called: timed.called };
    const outcome = drawn.action.kind === 'get' ? 99 : random.int(100);
    if (outcome < 6) return { ...base, action: drawn.action, outcome: 'failed', returned: 1e9 };
    if (outcome < 12) {
      if (random.bool(0.5)) state.set(key, drawn.after);
      const action = unanswered(drawn.action);
      return { ...base, action, outcome: 'indeterminate', returned: null };
    }
    state.set(key, drawn.after);
    return { ...base, action: drawn.action, outcome: 'ok', returned: timed.returned };
  });
}

// -------------------------------------------------------------------------------------------
// Mutations that break linearizability in a known way.

interface Mutation {
  name: string;
  /** The mutated history and the key it must be rejected on, or null if it does not apply. */
  apply(random: Random, history: KvOperation[]): { history: KvOperation[]; key: string } | null;
}

type Indexed = { operation: KvOperation; index: number };

function indexed(history: KvOperation[], test: (operation: KvOperation) => boolean): Indexed[] {
  return history
    .map((operation, index) => ({ operation, index }))
    .filter((entry) => test(entry.operation));
}

function replaced(history: KvOperation[], index: number, action: KvAction) {
  return history.map((operation, at) => (at === index ? { ...operation, action } : operation));
}

const okGet = (operation: KvOperation) =>
  operation.outcome === 'ok' && operation.action.kind === 'get';

function before(left: KvOperation, right: KvOperation): boolean {
  return left.returned !== null && left.returned < right.called;
}

const mutations: Mutation[] = [
  {
    // No operation writes a value starting with 'ghost'.
    name: 'a read of a value never written',
    apply(random, history) {
      const reads = indexed(history, okGet);
      if (reads.length === 0) return null;
      const read = random.pick(reads);
      const history2 = replaced(history, read.index, get(`ghost${read.index}`));
      return { history: history2, key: read.operation.key };
    },
  },
  {
    // Only that put writes its value (unique), and it did not take effect.
    name: "a read of a failed write's value",
    apply(random, history) {
      const failed = indexed(history, (o) => o.outcome === 'failed' && o.action.kind === 'put');
      const pairs = failed.flatMap((write) =>
        indexed(history, (o) => okGet(o) && o.key === write.operation.key).map((read) => ({
          write,
          read,
        })),
      );
      if (pairs.length === 0) return null;
      const { write, read } = random.pick(pairs);
      const value = write.operation.action.kind === 'put' ? write.operation.action.value : '';
      return { history: replaced(history, read.index, get(value)), key: read.operation.key };
    },
  },
  {
    // p1 < p2 < read in real time, p1's value unique and never an INCR's: once p2 took
    // effect the key never holds p1's value again.
    name: 'a stale read after an acknowledged write finished',
    apply(random, history) {
      const byKey = new Map<string, Indexed[]>();
      for (const entry of indexed(history, (o) => o.outcome === 'ok')) {
        const list = byKey.get(entry.operation.key) ?? [];
        list.push(entry);
        byKey.set(entry.operation.key, list);
      }
      const choices: { value: string; read: Indexed }[] = [];
      for (const list of byKey.values()) {
        const kinds = (kind: KvAction['kind']) =>
          list.filter((o) => o.operation.action.kind === kind);
        const overwrites = [...kinds('put'), ...kinds('delete')];
        const reads = kinds('get');
        for (const first of kinds('put')) {
          const second = overwrites.find((o) => before(first.operation, o.operation));
          if (second === undefined) continue;
          const read = reads.find((o) => before(second.operation, o.operation));
          const action = first.operation.action;
          if (read !== undefined && action.kind === 'put')
            choices.push({ value: action.value, read });
        }
      }
      if (choices.length === 0) return null;
      const { value, read } = random.pick(choices);
      return { history: replaced(history, read.index, get(value)), key: read.operation.key };
    },
  },
  {
    // On a counter key the value only grows: an INCR after another answers more.
    name: 'an INCR answer that goes backwards',
    apply(random, history) {
      const incrs = indexed(
        history,
        (o) => o.outcome === 'ok' && o.action.kind === 'incr' && o.key.startsWith('n'),
      );
      const pairs = incrs.flatMap((first) =>
        incrs
          .filter((o) => o.operation.key === first.operation.key)
          .filter((o) => before(first.operation, o.operation))
          .map((second) => ({ first, second })),
      );
      if (pairs.length === 0) return null;
      const { first, second } = random.pick(pairs);
      const action = first.operation.action;
      const later = second.operation.action;
      if (action.kind !== 'incr' || later.kind !== 'incr' || action.result === undefined) {
        return null;
      }
      const mutated = { ...later, result: action.result };
      return { history: replaced(history, second.index, mutated), key: second.operation.key };
    },
  },
];

describe('linearizability checker: seeded random histories and their mutations', () => {
  const shape: Shape = { clients: 6, registers: 3, counters: 1, operations: 160 };
  const seeds = 300;

  it(`accepts ${seeds} histories from a concurrent run of the sequential model`, () => {
    let operations = 0;
    for (let seed = 0; seed < seeds; seed++) {
      const history = generate(new Random(seed), shape);
      const result = checkLinearizability(history);
      expect(result.verdict, `seed ${seed}`).toBe('linearizable');
      operations += result.operations;
    }
    expect(operations).toBeGreaterThan(seeds * shape.operations * 0.8);
  });

  it(`rejects every mutation of those histories, on the mutated key`, () => {
    const applied = new Map<string, number>();
    for (let seed = 0; seed < seeds; seed++) {
      const random = new Random(seed);
      const history = generate(random, shape);
      for (const mutation of mutations) {
        const mutated = mutation.apply(random, history);
        if (mutated === null) continue;
        applied.set(mutation.name, (applied.get(mutation.name) ?? 0) + 1);
        const result = checkLinearizability(mutated.history);
        expect(result.verdict, `seed ${seed}: ${mutation.name}`).toBe('violation');
        if (result.verdict === 'violation') expect(result.key).toBe(mutated.key);
      }
    }
    for (const mutation of mutations) {
      expect(applied.get(mutation.name) ?? 0, mutation.name).toBeGreaterThan(seeds / 3);
    }
  });

  it('checks a 10,000-operation history over 50 keys (time printed, not asserted)', () => {
    const big: Shape = { clients: 16, registers: 45, counters: 5, operations: 10_000 };
    const history = generate(new Random(42), big);
    const started = performance.now();
    const result = checkLinearizability(history);
    const milliseconds = performance.now() - started;
    expect(result).toMatchObject({ verdict: 'linearizable', keys: 50 });
    const mutated = mutations[2]!.apply(new Random(7), history);
    expect(mutated).not.toBeNull();
    const mutatedStarted = performance.now();
    const rejected = checkLinearizability(mutated!.history);
    const mutatedMilliseconds = performance.now() - mutatedStarted;
    expect(rejected).toMatchObject({ verdict: 'violation', key: mutated!.key });
    console.log(
      `linearizability: ${result.operations} operations over ${result.keys} keys checked in ` +
        `${milliseconds.toFixed(1)} ms (${result.steps} steps); the stale-read mutation ` +
        `rejected in ${mutatedMilliseconds.toFixed(1)} ms (${rejected.steps} steps)`,
    );
  });
});
