/**
 * A linearizability checker for key-value histories (DESIGN §7: "histories are linearizable
 * (per key)"; issue #5), in the manner of Wing & Gong's search with Lowe's memoization, the
 * algorithm Porcupine and Knossos use. Pure: operations in, a verdict out. It touches no clock
 * unless the caller passes one in as a deadline.
 *
 * The model is one register per key holding a string or nothing (null). A key's operations are
 * the ones the engine offers on one key: get (answers the value), put, delete (answers whether
 * the key existed), incr (adds a delta to the signed 64-bit integer stored as decimal text,
 * absent counting as 0, and answers the new value; on a value that is not such an integer, or
 * on overflow, it changes nothing and answers INVALID), and compare-and-set (sets `next`, null
 * deleting, only if the key holds `expected`, null meaning absent; answers whether it did).
 * An answer the caller did not observe is left out and then any answer fits. Atomic multi-key
 * batches enter as their per-key parts (`batchOperations`, which says why that is sound).
 *
 * Every operation has a call time and a return time on any monotonic counter, and an outcome:
 * - `ok`: it took effect exactly once, between its call and its return, and its answer is known;
 * - `failed`: it definitely did not take effect (NOREPLICAS, NOTPRIMARY): it is left out;
 * - `indeterminate`: it may or may not have taken effect, at any moment after its call (an
 *   UNKNOWN answer, a crash before the answer). It is treated as never returning, with its
 *   answer unknown; linearizing it after every other operation is the same as "not at all",
 *   since no model step refuses an operation whose answer is unknown.
 * Operations whose times are equal count as concurrent (a call sorts before a return at the
 * same time), so coarse clocks can only make the checker accept more, never reject wrongly.
 *
 * The search: keys are independent objects, so a history of single-key operations is
 * linearizable if and only if each key's sub-history is (P-compositionality, Herlihy & Wing's
 * locality), and each key is searched alone. Per key, the calls and returns form one
 * time-ordered list. The search walks it: at a call it tries to linearize that operation next
 * (the model must accept its answer in the current state), removes the operation's call and
 * return from the list and starts again from the front; reaching a return means the operation
 * returning there was not linearized in time, so it backtracks. Lowe's cache remembers every
 * (set of linearized operations, state) pair reached, as a bitset and an interned state, so no
 * configuration is explored twice. The list is a doubly linked list in typed arrays (dancing
 * links), the stack is explicit (no recursion), and each key has a step and a cache budget:
 * when one runs out the verdict for that key is `unknown`, never a guess. A violation names the
 * key and shows the longest linearizable prefix found and the operations that could not come
 * next, with the reason each one does not fit.
 */
import { assert } from '../core/assert.js';
import { InvalidError } from '../core/errors.js';
import { Random } from '../sim/random.js';

export type KvAction =
  | { kind: 'get'; value: string | null }
  | { kind: 'put'; value: string }
  /** `deleted`: whether the key existed, if the answer was observed. */
  | { kind: 'delete'; deleted?: boolean }
  /** `result`: the new value, or 'invalid' (the key held no integer, or it would overflow). */
  | { kind: 'incr'; delta: bigint; result?: bigint | 'invalid' }
  /** `swapped`: whether the key held `expected` and now holds `next`, if observed. */
  | { kind: 'cas'; expected: string | null; next: string | null; swapped?: boolean };

export type KvOutcome = 'ok' | 'failed' | 'indeterminate';

export interface KvOperation {
  /** Names the operation in a report (a request id, a client and a sequence number). */
  label: string;
  key: string;
  action: KvAction;
  outcome: KvOutcome;
  /** When it was called, on any monotonic counter. */
  called: number;
  /** When its answer came: required for `ok`, ignored for `indeterminate` (never returned). */
  returned: number | null;
}

export interface LinearizabilityOptions {
  /** Operations in one history (more is INVALID). */
  operationsMax?: number;
  /** Search steps per key before its verdict is `unknown`. */
  stepsPerKeyMax?: number;
  /** Remembered (linearized set, state) pairs per key before its verdict is `unknown`. */
  cacheEntriesPerKeyMax?: number;
  /** A clock in ms (e.g. `performance.now`) and a budget on it for the whole check. */
  deadline?: { now: () => number; msMax: number };
}

export const linearizabilityDefaults = {
  operationsMax: 1_000_000,
  stepsPerKeyMax: 2_000_000,
  cacheEntriesPerKeyMax: 1_000_000,
} as const;

interface Totals {
  /** Keys with at least one operation left after dropping failed ones. */
  keys: number;
  /** Operations searched (failed ones and unanswered gets are left out). */
  operations: number;
  /** Search steps over all keys: the work done. */
  steps: number;
}

export type LinearizabilityResult =
  | ({ verdict: 'linearizable' } & Totals)
  | ({
      verdict: 'violation' | 'unknown';
      /** The key with no linearization, or (unknown) whose search ran out of budget. */
      key: string;
      /** A few lines: what could not be linearized and why, or which budget ran out. */
      explanation: string;
    } & Totals);

// -------------------------------------------------------------------------------------------
// Batches.

export type BatchItem = { op: 'put'; key: string; value: string } | { op: 'delete'; key: string };

/**
 * The per-key parts of an atomic multi-key batch (MSET, `node.batch`): on each key it writes,
 * its last item there, with the batch's label, outcome and times (a batch applies its items in
 * order, all at once, so only the last one per key is ever visible).
 *
 * Why splitting is sound: if the whole history is linearizable, then so is its projection on
 * one key (keep that key's operations in the same order; the batch's single point serves every
 * key it writes), so a key whose projection has no linearization is a real violation. The
 * converse does not hold, so this check cannot see a batch that takes effect on its keys at
 * different moments (a torn batch observed by two single-key reads); batch atomicity needs a
 * multi-key observation, such as the scans cluster-model.ts compares with committed states.
 */
export function batchOperations(
  batch: Omit<KvOperation, 'key' | 'action'> & { items: readonly BatchItem[] },
): KvOperation[] {
  const last = new Map<string, BatchItem>();
  for (const item of batch.items) last.set(item.key, item);
  return [...last.values()].map((item) => ({
    label: batch.label,
    key: item.key,
    action: item.op === 'put' ? { kind: 'put', value: item.value } : { kind: 'delete' },
    outcome: batch.outcome,
    called: batch.called,
    returned: batch.returned,
  }));
}

// -------------------------------------------------------------------------------------------
// The model, on interned states (0 is "absent"; every value string has one number).

const absent = 0;
const rejected = -1;
const int64Max = 2n ** 63n - 1n;
const int64Min = -(2n ** 63n);
const integerPattern = /^-?(0|[1-9][0-9]{0,18})$/;

class Values {
  readonly #ids = new Map<string, number>();
  readonly #strings: (string | null)[] = [null];

  intern(value: string | null): number {
    if (value === null) return absent;
    let id = this.#ids.get(value);
    if (id === undefined) {
      id = this.#strings.length;
      this.#ids.set(value, id);
      this.#strings.push(value);
    }
    return id;
  }

  string(id: number): string | null {
    assert(id >= 0 && id < this.#strings.length, 'Values: unknown state');
    return this.#strings[id] ?? null;
  }
}

/** A key's value as INCR reads it: absent is 0; anything but a signed 64-bit integer is null. */
export function integerOf(value: string | null): bigint | null {
  if (value === null) return 0n;
  if (!integerPattern.test(value) || value === '-0') return null;
  const parsed = BigInt(value);
  return parsed > int64Max || parsed < int64Min ? null : parsed;
}

/** An action with its values interned; `null` marks an answer that was not observed. */
type Step =
  | { kind: 'get'; value: number }
  | { kind: 'put'; value: number }
  | { kind: 'delete'; deleted: boolean | null }
  | { kind: 'incr'; delta: bigint; result: bigint | 'invalid' | null }
  | { kind: 'cas'; expected: number; next: number; swapped: boolean | null };

function compileAction(values: Values, action: KvAction, answered: boolean): Step {
  switch (action.kind) {
    case 'get':
      return { kind: 'get', value: values.intern(action.value) };
    case 'put':
      return { kind: 'put', value: values.intern(action.value) };
    case 'delete':
      return { kind: 'delete', deleted: answered ? (action.deleted ?? null) : null };
    case 'incr':
      return {
        kind: 'incr',
        delta: action.delta,
        result: answered ? (action.result ?? null) : null,
      };
    case 'cas':
      return {
        kind: 'cas',
        expected: values.intern(action.expected),
        next: values.intern(action.next),
        swapped: answered ? (action.swapped ?? null) : null,
      };
  }
}

/** The state after `action` in `state`, or `rejected` if its answer does not fit. */
function applyStep(values: Values, state: number, action: Step): number {
  switch (action.kind) {
    case 'get':
      return action.value === state ? state : rejected;
    case 'put':
      return action.value;
    case 'delete':
      if (action.deleted !== null && action.deleted !== (state !== absent)) return rejected;
      return absent;
    case 'incr': {
      const current = integerOf(values.string(state));
      const next = current === null ? null : current + action.delta;
      if (next === null || next > int64Max || next < int64Min) {
        return action.result === null || action.result === 'invalid' ? state : rejected;
      }
      if (action.result !== null && action.result !== next) return rejected;
      return values.intern(next.toString());
    }
    case 'cas': {
      const hit = state === action.expected;
      if (action.swapped !== null && action.swapped !== hit) return rejected;
      return hit ? action.next : state;
    }
  }
}

// -------------------------------------------------------------------------------------------
// Descriptions for reports.

const shownCharsMax = 16;

function show(value: string | null): string {
  if (value === null) return 'null';
  const short = value.length > shownCharsMax ? `${value.slice(0, shownCharsMax)}…` : value;
  return `'${short}'`;
}

export function describeAction(action: KvAction): string {
  switch (action.kind) {
    case 'get':
      return `get -> ${show(action.value)}`;
    case 'put':
      return `put ${show(action.value)}`;
    case 'delete':
      return action.deleted === undefined
        ? 'delete'
        : `delete -> ${action.deleted ? 'deleted' : 'absent'}`;
    case 'incr': {
      const result = action.result === undefined ? '' : ` -> ${action.result}`;
      return `incr ${action.delta}${result}`;
    }
    case 'cas': {
      const swapped = action.swapped === undefined ? '' : action.swapped ? ' -> ok' : ' -> miss';
      return `cas ${show(action.expected)} -> ${show(action.next)}${swapped}`;
    }
  }
}

function describeOperation(operation: KvOperation): string {
  const returned = operation.outcome === 'indeterminate' ? '∞' : String(operation.returned);
  return (
    `${operation.label} ${describeAction(operation.action)} ` +
    `[${operation.called}, ${returned}]${operation.outcome === 'ok' ? '' : ` ${operation.outcome}`}`
  );
}

/** Why `action` does not fit in `state` (the model refused it). */
function whyNot(values: Values, state: number, action: Step): string {
  const holds = `the key holds ${show(values.string(state))}`;
  switch (action.kind) {
    case 'get':
      return `read ${show(values.string(action.value))}, but ${holds}`;
    case 'delete':
      return `answered ${action.deleted === true ? 'deleted' : 'absent'}, but ${holds}`;
    case 'incr': {
      const current = integerOf(values.string(state));
      const next = current === null ? null : current + action.delta;
      const gives = next === null ? '' : ` (gives ${next})`;
      return `answered ${String(action.result)}, but ${holds}${gives}`;
    }
    case 'cas':
      return `answered ${action.swapped === true ? 'ok' : 'miss'}, but ${holds}`;
    case 'put':
      return 'a put always fits';
  }
}

// -------------------------------------------------------------------------------------------
// One key's history, compiled for the search.

interface KeyHistory {
  key: string;
  operations: KvOperation[];
  steps: Step[];
  called: number[];
  /** Infinity for indeterminate operations. */
  returned: number[];
}

const none = -1;

/**
 * The calls and returns of a key's operations, in time order, as a doubly linked list in typed
 * arrays: entry 2i is operation i's call, 2i + 1 its return, and `head` is a sentinel. Removing
 * an operation (`lift`) keeps the removed entries' own links, so operations put back in the
 * reverse order (`unlift`) restore the list exactly (Knuth's dancing links).
 */
class EntryList {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  readonly head: number;

  constructor(history: KeyHistory) {
    const count = history.operations.length;
    const time = (entry: number) =>
      (entry & 1) === 0 ? history.called[entry >> 1]! : history.returned[entry >> 1]!;
    // Time order; at equal times calls first (equal times count as concurrent), then by index.
    const order = Array.from({ length: 2 * count }, (_, entry) => entry).sort(
      (left, right) => time(left) - time(right) || (left & 1) - (right & 1) || left - right,
    );
    this.head = 2 * count;
    this.next = new Int32Array(2 * count + 1).fill(none);
    this.prev = new Int32Array(2 * count + 1).fill(none);
    let previous = this.head;
    for (const entry of order) {
      this.next[previous] = entry;
      this.prev[entry] = previous;
      previous = entry;
    }
  }

  get empty(): boolean {
    return this.next[this.head] === none;
  }

  first(): number {
    return this.next[this.head]!;
  }

  lift(operation: number): void {
    this.#remove(2 * operation);
    this.#remove(2 * operation + 1);
  }

  unlift(operation: number): void {
    this.#restore(2 * operation + 1);
    this.#restore(2 * operation);
  }

  #remove(entry: number): void {
    const before = this.prev[entry]!;
    const after = this.next[entry]!;
    this.next[before] = after;
    if (after !== none) this.prev[after] = before;
  }

  #restore(entry: number): void {
    const before = this.prev[entry]!;
    const after = this.next[entry]!;
    assert(this.next[before] === after, 'EntryList: restored out of order');
    this.next[before] = entry;
    if (after !== none) this.prev[after] = entry;
  }
}

/**
 * The set of linearized operations as a bitset with an incrementally kept Zobrist hash (two
 * 32-bit halves: the XOR of a fixed random pair per operation in the set).
 */
class LinearizedSet {
  readonly words: Uint32Array;
  readonly #keys: Uint32Array;
  hashLow = 0;
  hashHigh = 0;

  constructor(count: number) {
    this.words = new Uint32Array(Math.ceil(count / 32));
    this.#keys = new Uint32Array(2 * count);
    // Fixed seed: the hash only spreads the cache's buckets; equality is always checked in full.
    const random = new Random(0x5eed);
    for (let index = 0; index < this.#keys.length; index++) this.#keys[index] = random.uint32();
  }

  flip(operation: number): void {
    this.words[operation >>> 5]! ^= 1 << (operation & 31);
    this.hashLow = (this.hashLow ^ this.#keys[2 * operation]!) >>> 0;
    this.hashHigh = (this.hashHigh ^ this.#keys[2 * operation + 1]!) >>> 0;
  }

  has(operation: number): boolean {
    return (this.words[operation >>> 5]! & (1 << (operation & 31))) !== 0;
  }
}

/** Lowe's cache: every (linearized set, state) configuration the search has reached. */
class ConfigurationCache {
  readonly #buckets = new Map<number, { words: Uint32Array; state: number }[]>();
  size = 0;

  /** Adds the configuration; false if it was there already. */
  add(set: LinearizedSet, state: number): boolean {
    const mixed = (set.hashLow ^ Math.imul(state + 1, 0x9e3779b1)) >>> 0;
    const key = (set.hashHigh & 0xfffff) * 2 ** 32 + mixed;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = [];
      this.#buckets.set(key, bucket);
    }
    for (const seen of bucket) {
      if (seen.state === state && sameWords(seen.words, set.words)) return false;
    }
    bucket.push({ words: set.words.slice(), state });
    this.size += 1;
    return true;
  }
}

function sameWords(left: Uint32Array, right: Uint32Array): boolean {
  for (let index = 0; index < left.length; index++) {
    if (left[index] !== right[index]) return false;
  }
  return true;
}

// -------------------------------------------------------------------------------------------
// The search.

interface SearchLimits {
  stepsMax: number;
  cacheEntriesMax: number;
  /** True once the whole check is out of time. */
  outOfTime: () => boolean;
}

interface KeyVerdict {
  verdict: 'linearizable' | 'violation' | 'unknown';
  steps: number;
  explanation: string;
}

/** The configuration with the most operations linearized: where a violation is explained. */
interface Deepest {
  depth: number;
  words: Uint32Array;
  state: number;
  /** The last operations linearized to reach it, oldest first. */
  tail: number[];
}

const tailShown = 3;
const candidatesShown = 5;
const deadlineEverySteps = 4096;

function budgetProblem(steps: number, cache: ConfigurationCache, limits: SearchLimits) {
  if (steps > limits.stepsMax) return `the search ran out of its ${limits.stepsMax} steps`;
  if (cache.size >= limits.cacheEntriesMax) {
    return `the search remembered ${limits.cacheEntriesMax} configurations, its limit`;
  }
  if (steps % deadlineEverySteps === 0 && limits.outOfTime()) return 'the check ran out of time';
  return null;
}

/** Wing & Gong's search with Lowe's cache over one key's history (see the top of the file). */
function searchKey(history: KeyHistory, values: Values, limits: SearchLimits): KeyVerdict {
  const list = new EntryList(history);
  const set = new LinearizedSet(history.operations.length);
  const cache = new ConfigurationCache();
  const stackOperations: number[] = [];
  const stackStates: number[] = [];
  let state = absent;
  let deepest: Deepest = { depth: 0, words: set.words.slice(), state, tail: [] };
  let entry = list.first();
  let steps = 0;
  while (!list.empty) {
    steps += 1;
    const budget = budgetProblem(steps, cache, limits);
    if (budget !== null) return { verdict: 'unknown', steps, explanation: budget };
    const operation = entry >> 1;
    if ((entry & 1) === 0) {
      const after = applyStep(values, state, history.steps[operation]!);
      if (after !== rejected) {
        set.flip(operation);
        if (cache.add(set, after)) {
          stackOperations.push(operation);
          stackStates.push(state);
          state = after;
          list.lift(operation);
          entry = list.first();
          if (stackOperations.length > deepest.depth) {
            const tail = stackOperations.slice(-tailShown);
            deepest = { depth: stackOperations.length, words: set.words.slice(), state, tail };
          }
          continue;
        }
        set.flip(operation);
      }
      entry = list.next[entry]!;
      continue;
    }
    // A return: its operation was not linearized before it returned. Undo the last choice.
    const top = stackOperations.pop();
    if (top === undefined) {
      return { verdict: 'violation', steps, explanation: explain(history, values, deepest) };
    }
    state = stackStates.pop()!;
    set.flip(top);
    list.unlift(top);
    entry = list.next[2 * top]!;
  }
  assert(stackOperations.length === history.operations.length, 'searchKey: not all linearized');
  return { verdict: 'linearizable', steps, explanation: '' };
}

/** The longest linearizable prefix found, and why none of the operations can come after it. */
function explain(history: KeyHistory, values: Values, deepest: Deepest): string {
  const count = history.operations.length;
  const linearized = (index: number) => (deepest.words[index >>> 5]! & (1 << (index & 31))) !== 0;
  const open = Array.from({ length: count }, (_, index) => index).filter((i) => !linearized(i));
  let due = open[0] ?? none;
  for (const index of open) if (history.returned[index]! < history.returned[due]!) due = index;
  assert(due !== none, 'explain: a violation with every operation linearized');
  const deadline = history.returned[due]!;
  const candidates = open.filter((index) => history.called[index]! <= deadline);
  const describe = (index: number) => describeOperation(history.operations[index]!);
  const lines = [
    `no linearization of its ${count} operations: the longest linearizable prefix found has ` +
      `${deepest.depth}, after which the key holds ${show(values.string(deepest.state))}`,
  ];
  if (deepest.tail.length > 0) {
    lines.push(`  the prefix ends with: ${deepest.tail.map(describe).join('; ')}`);
  }
  lines.push(`  ${describe(due)} had to take effect by ${deadline}; none of these fits next:`);
  for (const index of candidates.slice(0, candidatesShown)) {
    const step = history.steps[index]!;
    const after = applyStep(values, deepest.state, step);
    const why =
      after === rejected
        ? whyNot(values, deepest.state, step)
        : `fits (the key would hold ${show(values.string(after))}), but nothing can follow`;
    lines.push(`    ${describe(index)}: ${why}`);
  }
  if (candidates.length > candidatesShown) {
    lines.push(`    (and ${candidates.length - candidatesShown} more)`);
  }
  return lines.join('\n');
}

// -------------------------------------------------------------------------------------------
// The check.

function validate(operation: KvOperation): void {
  const where = `operation ${operation.label} on ${operation.key}`;
  if (!Number.isFinite(operation.called)) throw new InvalidError(`${where}: call time not finite`);
  const returned = operation.returned;
  if (operation.outcome === 'ok' && returned === null) {
    throw new InvalidError(`${where}: an ok operation needs a return time`);
  }
  if (operation.outcome !== 'indeterminate' && returned !== null) {
    if (!Number.isFinite(returned) || returned < operation.called) {
      throw new InvalidError(`${where}: return time ${returned} before call ${operation.called}`);
    }
  }
}

/** Per key, in key order, the operations to search: failed ones and unanswered gets left out. */
function partition(operations: readonly KvOperation[], values: Values): KeyHistory[] {
  const byKey = new Map<string, KeyHistory>();
  for (const operation of operations) {
    validate(operation);
    if (operation.outcome === 'failed') continue;
    const answered = operation.outcome === 'ok';
    // A read that may not have happened and whose answer is unknown constrains nothing.
    if (!answered && operation.action.kind === 'get') continue;
    let history = byKey.get(operation.key);
    if (history === undefined) {
      history = { key: operation.key, operations: [], steps: [], called: [], returned: [] };
      byKey.set(operation.key, history);
    }
    history.operations.push(operation);
    history.steps.push(compileAction(values, operation.action, answered));
    history.called.push(operation.called);
    history.returned.push(answered ? operation.returned! : Infinity);
  }
  return [...byKey.keys()].sort().map((key) => byKey.get(key)!);
}

/**
 * Whether `operations` form a linearizable history of per-key registers (see the top of the
 * file). Keys are checked in order; the first violation found is the verdict, else `unknown`
 * if some key's search ran out of budget, else `linearizable`. Malformed operations (a return
 * before its call, an ok operation without a return) and histories over `operationsMax` are
 * INVALID.
 */
export function checkLinearizability(
  operations: readonly KvOperation[],
  options: LinearizabilityOptions = {},
): LinearizabilityResult {
  const operationsMax = options.operationsMax ?? linearizabilityDefaults.operationsMax;
  if (operations.length > operationsMax) {
    throw new InvalidError(`history of ${operations.length} operations exceeds ${operationsMax}`);
  }
  const values = new Values();
  const histories = partition(operations, values);
  const deadline = options.deadline;
  const started = deadline?.now() ?? 0;
  const limits: SearchLimits = {
    stepsMax: options.stepsPerKeyMax ?? linearizabilityDefaults.stepsPerKeyMax,
    cacheEntriesMax: options.cacheEntriesPerKeyMax ?? linearizabilityDefaults.cacheEntriesPerKeyMax,
    outOfTime: () => deadline !== undefined && deadline.now() - started > deadline.msMax,
  };
  const totals: Totals = { keys: histories.length, operations: 0, steps: 0 };
  let unknown: { key: string; explanation: string } | null = null;
  for (const history of histories) {
    totals.operations += history.operations.length;
    const verdict = searchKey(history, values, limits);
    totals.steps += verdict.steps;
    if (verdict.verdict === 'violation') {
      return {
        verdict: 'violation',
        key: history.key,
        explanation: verdict.explanation,
        ...totals,
      };
    }
    if (verdict.verdict === 'unknown') unknown ??= { key: history.key, ...verdict };
  }
  if (unknown === null) return { verdict: 'linearizable', ...totals };
  return { verdict: 'unknown', key: unknown.key, explanation: unknown.explanation, ...totals };
}
