/**
 * The history checker of the cluster simulation (src/harness/cluster-sim.ts), pure: a run's
 * client history plus the final log of the converged shard in, a list of violations out. It
 * knows nothing of nodes, disks or time, so tests feed it hand-made histories.
 *
 * The committed history is derived from the primary's final log (records only, SEALs are
 * local): every INTENT at or below the final commit point that no ABORT record covers, in LSN
 * order. Replaying it gives the state at every LSN, which every observation must match:
 * - (c1) the log itself is sane: consecutive LSNs, an ABORT never covers an intent an earlier
 *   COMMIT committed, no request id commits twice, every committed intent carries a request id
 *   the harness issued;
 * - (c2) every committed intent logs the effects of its command against the committed state
 *   just before it (a CAS had its expected value, a delete found its key, an INCR added to an
 *   integer, a put or batch wrote what was asked);
 * - (c3) every OK write with an effect committed at the LSN it was answered with (OK survives),
 *   and an INCR answered the value the replay computes;
 * - (c4) a write answered NOREPLICAS or NOTPRIMARY never committed (the harness never retries
 *   those request ids), and an OK without effect (CAS miss, delete of nothing) logged nothing;
 * - (c5) at the moment of each OK, the record was durable on the primary and on a majority, on
 *   at least minReplicas replicas, and with acks=all on every replica the primary listed as
 *   eligible (the runner reads the disks' durable bytes and records these facts);
 * - (c6) the final `status(requestId)` of every write agrees with the committed history (this
 *   is how UNKNOWN answers and writes lost in a crash are decided), and none is still pending;
 * - (c7) a read returned the committed value of its key at some LSN between the node's applied
 *   LSN when it was invoked (at least the `after` LSN) and when it answered: no dirty read, no
 *   read of anything that did not end up committed, and `{after}` reads reflect that LSN;
 * - (c8) a scan returned exactly the committed state at such an LSN.
 */
import { RecordType } from '../core/format/frame.js';
import { decodeAbort, decodeCommit, decodeIntent } from '../core/format/record.js';

export type BatchItem = { op: 'put'; key: string; value: string } | { op: 'delete'; key: string };

export type Command =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'delete'; key: string }
  | { kind: 'batch'; operations: BatchItem[] }
  | { kind: 'incr'; key: string; delta: number }
  | { kind: 'cas'; key: string; expected: string | null; next: string | null };

/** What the runner saw on the disks and the primary when a write was answered OK. */
export interface AckFacts {
  /** Nodes whose durable log held the record (the primary's bytes) at that moment. */
  durableOn: string[];
  /** Replicas the primary listed as eligible when it answered. */
  eligible: string[];
  acks: 'quorum' | 'all';
  minReplicas: number;
}

export type WriteOutcome =
  | {
      kind: 'ok';
      lsn: number;
      duplicate: boolean;
      /** False when the write logged nothing (a CAS miss, a delete of an absent key). */
      effect: boolean;
      value: bigint | null;
      ack: AckFacts | null;
    }
  | { kind: 'error'; code: string }
  /** The node crashed before it answered. */
  | { kind: 'lost' }
  /** No answer yet. */
  | { kind: 'pending' };

export interface WriteAttempt {
  node: string;
  outcome: WriteOutcome;
}

export interface WriteHistory {
  requestId: string;
  command: Command;
  attempts: WriteAttempt[];
}

export interface ReadHistory {
  node: string;
  key: string;
  after: number | null;
  /** The node's applied LSN when the read was invoked and when it answered. */
  appliedLo: number;
  appliedHi: number;
  value: string | null;
}

export interface ScanHistory {
  node: string;
  appliedLo: number;
  appliedHi: number;
  entries: [string, string][];
  when: string;
}

export type FinalStatus =
  { status: 'committed' | 'aborted' | 'pending'; lsn: number } | { status: 'unknown' };

/** One record of a log as the checker needs it. */
export interface LogEntry {
  lsn: number;
  type: number;
  payload: Uint8Array;
}

export interface History {
  members: readonly string[];
  primary: string;
  writes: readonly WriteHistory[];
  reads: readonly ReadHistory[];
  scans: readonly ScanHistory[];
  /** `status(requestId)` of every write, asked of the primary at the end. */
  statuses: ReadonlyMap<string, FinalStatus>;
  /** The primary's final log, records only, from its first LSN. */
  log: readonly LogEntry[];
  /** The primary's final commit point. */
  commitLsn: number;
}

export interface Effect {
  key: string;
  value: string | null;
}

export interface CommittedWrite {
  lsn: number;
  requestId: string | null;
  effects: Effect[];
}

export interface Committed {
  writes: CommittedWrite[];
  lsnById: Map<string, number>;
  problems: string[];
}

const utf8 = new TextDecoder();

export function majorityOf(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

function decodeEffects(payload: Uint8Array): { requestId: string | null; effects: Effect[] } {
  const intent = decodeIntent(payload);
  const effects = intent.effects.map((effect) => ({
    key: utf8.decode(effect.key),
    value: effect.op === 'put' ? utf8.decode(effect.value) : null,
  }));
  return { requestId: intent.requestId, effects };
}

interface LogScanState {
  intents: Map<number, { requestId: string | null; effects: Effect[] }>;
  aborts: { lsn: number; first: number; last: number }[];
  commitRecorded: number;
  problems: string[];
}

function scanEntry(state: LogScanState, entry: LogEntry, commitLsn: number): void {
  const { lsn, payload } = entry;
  try {
    if (entry.type === RecordType.Intent) {
      state.intents.set(lsn, decodeEffects(payload));
    } else if (entry.type === RecordType.Commit) {
      const commit = decodeCommit(payload);
      if (commit.commitLsn >= lsn)
        state.problems.push(`COMMIT at ${lsn} names ${commit.commitLsn}`);
      if (commit.commitLsn > commitLsn) {
        state.problems.push(`COMMIT at ${lsn} names ${commit.commitLsn} > final ${commitLsn}`);
      }
      state.commitRecorded = Math.max(state.commitRecorded, commit.commitLsn);
    } else if (entry.type === RecordType.Abort) {
      const abort = decodeAbort(payload);
      if (abort.lsnLast >= lsn) state.problems.push(`ABORT at ${lsn} covers later LSNs`);
      if (abort.lsnFirst <= state.commitRecorded) {
        state.problems.push(
          `ABORT at ${lsn} of ${abort.lsnFirst}..${abort.lsnLast} overturns the COMMIT of ` +
            `${state.commitRecorded}`,
        );
      }
      if (lsn > commitLsn && abort.lsnFirst <= commitLsn) {
        state.problems.push(`ABORT at ${lsn} (uncommitted) covers committed ${abort.lsnFirst}`);
      }
      state.aborts.push({ lsn, first: abort.lsnFirst, last: abort.lsnLast });
    }
  } catch (error: unknown) {
    state.problems.push(`record ${lsn} does not decode: ${String(error)}`);
  }
}

/** The committed intents of a log at commit point `commitLsn` (see the top of the file). */
export function committedHistory(log: readonly LogEntry[], commitLsn: number): Committed {
  const state: LogScanState = { intents: new Map(), aborts: [], commitRecorded: 0, problems: [] };
  let expected = log[0]?.lsn ?? 1;
  for (const entry of log) {
    if (entry.lsn !== expected) {
      state.problems.push(`log has LSN ${entry.lsn} where ${expected} was expected`);
    }
    expected = entry.lsn + 1;
    scanEntry(state, entry, commitLsn);
  }
  const last = log.at(-1)?.lsn ?? 0;
  if (commitLsn > last) state.problems.push(`commit point ${commitLsn} beyond the log (${last})`);
  const aborted = (lsn: number) =>
    state.aborts.some((abort) => abort.lsn <= commitLsn && abort.first <= lsn && lsn <= abort.last);
  const writes: CommittedWrite[] = [];
  const lsnById = new Map<string, number>();
  for (const [lsn, intent] of state.intents) {
    if (lsn > commitLsn || aborted(lsn)) continue;
    writes.push({ lsn, ...intent });
    if (intent.requestId === null) continue;
    const earlier = lsnById.get(intent.requestId);
    if (earlier !== undefined) {
      state.problems.push(`request ${intent.requestId} committed twice: LSN ${earlier} and ${lsn}`);
    } else lsnById.set(intent.requestId, lsn);
  }
  writes.sort((left, right) => left.lsn - right.lsn);
  return { writes, lsnById, problems: state.problems };
}

// -------------------------------------------------------------------------------------------
// Replay: what each command must log against the committed state before it.

type State = Map<string, string>;

/** The effects `command` logs against `state`, or why it could not have committed there. */
export function expectedEffects(command: Command, state: State): Effect[] | string {
  switch (command.kind) {
    case 'put':
      return [{ key: command.key, value: command.value }];
    case 'delete':
      if (!state.has(command.key)) return `delete committed though ${command.key} was absent`;
      return [{ key: command.key, value: null }];
    case 'batch':
      return command.operations.map((item) => ({
        key: item.key,
        value: item.op === 'put' ? item.value : null,
      }));
    case 'incr': {
      const current = state.get(command.key) ?? '0';
      if (!/^-?(0|[1-9][0-9]*)$/.test(current)) {
        return `INCR committed on the non-integer value '${current}'`;
      }
      const next = BigInt(current) + BigInt(command.delta);
      return [{ key: command.key, value: next.toString() }];
    }
    case 'cas': {
      const current = state.get(command.key) ?? null;
      if (current !== command.expected) {
        return `CAS committed though ${command.key} held ${current}, not ${command.expected}`;
      }
      return [{ key: command.key, value: command.next }];
    }
  }
}

function sameEffects(left: readonly Effect[], right: readonly Effect[]): boolean {
  if (left.length !== right.length) return false;
  return left.every((effect, index) => {
    const other = right[index];
    return other !== undefined && other.key === effect.key && other.value === effect.value;
  });
}

function describeEffects(effects: readonly Effect[]): string {
  return effects.map((effect) => `${effect.key}=${effect.value ?? '(deleted)'}`).join(', ');
}

/** Per key, the committed changes in LSN order: the state at any LSN is a lookup. */
export class CommittedTimeline {
  readonly #changes = new Map<string, { lsn: number; value: string | null }[]>();
  readonly #lsns: number[] = [];

  apply(lsn: number, effects: readonly Effect[]): void {
    this.#lsns.push(lsn);
    for (const effect of effects) {
      let list = this.#changes.get(effect.key);
      if (list === undefined) {
        list = [];
        this.#changes.set(effect.key, list);
      }
      list.push({ lsn, value: effect.value });
    }
  }

  valueAt(key: string, lsn: number): string | null {
    const list = this.#changes.get(key) ?? [];
    let value: string | null = null;
    for (const change of list) {
      if (change.lsn > lsn) break;
      value = change.value;
    }
    return value;
  }

  /** The values `key` held at some LSN in [lo, hi]. */
  valuesIn(key: string, lo: number, hi: number): (string | null)[] {
    const values = [this.valueAt(key, lo)];
    for (const change of this.#changes.get(key) ?? []) {
      if (change.lsn > lo && change.lsn <= hi) values.push(change.value);
    }
    return values;
  }

  stateAt(lsn: number): State {
    const state: State = new Map();
    for (const key of this.#changes.keys()) {
      const value = this.valueAt(key, lsn);
      if (value !== null) state.set(key, value);
    }
    return state;
  }

  /** LSNs in (lo, hi] where some key changed. */
  changeLsnsIn(lo: number, hi: number): number[] {
    return this.#lsns.filter((lsn) => lsn > lo && lsn <= hi);
  }
}

interface Replay {
  timeline: CommittedTimeline;
  /** INCR results by request id, as the replay computes them. */
  incrValues: Map<string, bigint>;
}

function replay(
  committed: Committed,
  commands: ReadonlyMap<string, Command>,
  problems: string[],
): Replay {
  const timeline = new CommittedTimeline();
  const incrValues = new Map<string, bigint>();
  const state: State = new Map();
  for (const write of committed.writes) {
    const id = write.requestId;
    const command = id === null ? undefined : commands.get(id);
    if (id === null || command === undefined) {
      problems.push(`LSN ${write.lsn}: committed intent of unknown request ${id ?? '(none)'}`);
    } else {
      const expected = expectedEffects(command, state);
      if (typeof expected === 'string') problems.push(`${id} at LSN ${write.lsn}: ${expected}`);
      else if (!sameEffects(expected, write.effects)) {
        problems.push(
          `${id} at LSN ${write.lsn} logged [${describeEffects(write.effects)}], its command ` +
            `gives [${describeEffects(expected)}]`,
        );
      }
      const first = write.effects[0];
      if (command.kind === 'incr' && first?.value != null) {
        incrValues.set(id, BigInt(first.value));
      }
    }
    for (const effect of write.effects) {
      if (effect.value === null) state.delete(effect.key);
      else state.set(effect.key, effect.value);
    }
    timeline.apply(write.lsn, write.effects);
  }
  return { timeline, incrValues };
}

// -------------------------------------------------------------------------------------------
// The checks.

const definitiveCodes = new Set(['NOREPLICAS', 'NOTPRIMARY']);

/** What is wrong with the durability of a write acknowledged at `lsn` (c5); empty if nothing. */
export function ackProblems(
  members: readonly string[],
  primary: string,
  where: string,
  ack: AckFacts,
): string[] {
  const problems: string[] = [];
  const holders = new Set(ack.durableOn);
  if (!holders.has(primary)) problems.push(`${where}: not durable on the primary`);
  const majority = majorityOf(members.length);
  if (holders.size < majority) {
    problems.push(`${where}: durable on ${holders.size} nodes [${ack.durableOn}], < ${majority}`);
  }
  const replicas = ack.durableOn.filter((node) => node !== primary).length;
  if (replicas < ack.minReplicas) {
    problems.push(`${where}: durable on ${replicas} replicas, minReplicas ${ack.minReplicas}`);
  }
  if (ack.acks === 'all') {
    const missing = ack.eligible.filter((node) => !holders.has(node));
    if (missing.length > 0) {
      problems.push(`${where} with acks=all: eligible replicas [${missing}] do not hold it`);
    }
  }
  return problems;
}

function checkOk(
  history: History,
  write: WriteHistory,
  outcome: Extract<WriteOutcome, { kind: 'ok' }>,
  facts: { lsn: number | undefined; incr: bigint | undefined },
  problems: string[],
): void {
  const id = write.requestId;
  if (!outcome.effect) {
    if (facts.lsn !== undefined) {
      problems.push(`${id} answered OK without effect, yet committed at LSN ${facts.lsn}`);
    }
    return;
  }
  if (facts.lsn !== outcome.lsn) {
    const where =
      facts.lsn === undefined ? 'is not in the committed history' : `is at ${facts.lsn}`;
    problems.push(`${id} answered OK at LSN ${outcome.lsn} but ${where}`);
  }
  if (outcome.value !== null && facts.incr !== undefined && outcome.value !== facts.incr) {
    problems.push(`${id}: INCR answered ${outcome.value}, the replay gives ${facts.incr}`);
  }
  if (outcome.ack !== null) {
    const where = `${id} answered OK at LSN ${outcome.lsn}`;
    problems.push(...ackProblems(history.members, history.primary, where, outcome.ack));
  }
}

function checkStatus(
  write: WriteHistory,
  lsn: number | undefined,
  status: FinalStatus | undefined,
) {
  const id = write.requestId;
  if (status === undefined) return `${id}: no final status`;
  if (status.status === 'pending') return `${id} still pending at the end (LSN ${status.lsn})`;
  if (lsn !== undefined) {
    if (status.status !== 'committed' || status.lsn !== lsn) {
      return `${id} committed at ${lsn}, status says ${JSON.stringify(status)}`;
    }
  } else if (status.status === 'committed') {
    return `${id} is not in the committed history, status says committed at ${status.lsn}`;
  }
  return null;
}

function checkWrites(history: History, committed: Committed, replayed: Replay, problems: string[]) {
  for (const write of history.writes) {
    const id = write.requestId;
    const facts = { lsn: committed.lsnById.get(id), incr: replayed.incrValues.get(id) };
    for (const attempt of write.attempts) {
      const outcome = attempt.outcome;
      if (outcome.kind === 'ok') checkOk(history, write, outcome, facts, problems);
      else if (outcome.kind === 'error' && definitiveCodes.has(outcome.code)) {
        if (facts.lsn !== undefined) {
          problems.push(
            `${id} answered ${outcome.code} by ${attempt.node}, yet committed at LSN ${facts.lsn}`,
          );
        }
      }
    }
    const problem = checkStatus(write, facts.lsn, history.statuses.get(id));
    if (problem !== null) problems.push(problem);
  }
}

function checkReads(history: History, timeline: CommittedTimeline, problems: string[]) {
  for (const read of history.reads) {
    const lo = Math.max(read.appliedLo, read.after ?? 0);
    const where = `read of ${read.key} on ${read.node}`;
    if (read.after !== null && read.appliedHi < read.after) {
      problems.push(`${where} after ${read.after} answered at applied LSN ${read.appliedHi}`);
      continue;
    }
    const allowed = timeline.valuesIn(read.key, lo, read.appliedHi);
    if (!allowed.includes(read.value)) {
      problems.push(
        `${where} returned ${read.value}; committed values at LSNs ${lo}..${read.appliedHi} ` +
          `are [${allowed.map((value) => value ?? 'null').join(', ')}]`,
      );
    }
  }
}

function sameState(state: State, entries: readonly [string, string][]): boolean {
  if (state.size !== entries.length) return false;
  return entries.every(([key, value]) => state.get(key) === value);
}

function checkScans(history: History, timeline: CommittedTimeline, problems: string[]) {
  for (const scan of history.scans) {
    const candidates = [scan.appliedLo, ...timeline.changeLsnsIn(scan.appliedLo, scan.appliedHi)];
    if (candidates.some((lsn) => sameState(timeline.stateAt(lsn), scan.entries))) continue;
    const expected = timeline.stateAt(scan.appliedHi);
    const got = new Map(scan.entries);
    const differs = [...new Set([...expected.keys(), ...got.keys()])]
      .filter((key) => expected.get(key) !== got.get(key))
      .slice(0, 3)
      .map((key) => `${key}: node ${got.get(key) ?? 'absent'}, committed ${expected.get(key)}`);
    problems.push(
      `scan of ${scan.node} (${scan.when}) at applied ${scan.appliedLo}..${scan.appliedHi} ` +
        `matches no committed state: ${differs.join('; ')}`,
    );
  }
}

/** Every violation the history shows (see the top of the file); empty if none. */
export function checkHistory(history: History): string[] {
  const committed = committedHistory(history.log, history.commitLsn);
  const problems = [...committed.problems];
  const commands = new Map(history.writes.map((write) => [write.requestId, write.command]));
  const replayed = replay(committed, commands, problems);
  checkWrites(history, committed, replayed, problems);
  checkReads(history, replayed.timeline, problems);
  checkScans(history, replayed.timeline, problems);
  return problems;
}
