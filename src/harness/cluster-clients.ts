/**
 * The clients of the cluster simulation: each has at most one operation in flight (a write to
 * the primary, a write to a replica that must be refused with NOTPRIMARY, a read on any node in
 * 'stale' or `{ after }` mode), plus scans of any node. Every write carries a request id; some
 * are retried with it. Answers are recorded in the history (cluster-model.ts checks it at the
 * end); what can only be seen at the moment of an answer is checked then: the durability of an
 * acknowledged write on the disks, and the consistency of repeated answers for one request id.
 *
 * Calls and answers also tick a counter (`h.calls`), so that the history of the operations on
 * the primary can be checked for linearizability at the end (`clientOperations`).
 */
import { SyncwalError } from '../core/errors.js';
import { recordAt } from './cluster-logs.js';
import { invoke, type Answer } from './invoke.js';
import {
  ackProblems,
  type AckFacts,
  type Command,
  type FinalStatus,
  type WriteAttempt,
  type WriteHistory,
  type WriteOutcome,
} from './cluster-model.js';
import {
  fail,
  note,
  primarySlot,
  replicationOf,
  upSlots,
  type Client,
  type ClusterHarness,
  type ClusterNode,
  type Inflight,
  type Slot,
} from './cluster-state.js';
import {
  commandKinds,
  describeCommand,
  randomCommand,
  randomKey,
  writtenValues,
  type WorkloadView,
} from './cluster-workload.js';
import { batchOperations, type KvAction, type KvOperation } from './linearizability.js';

/** Set to false once replicas wait for `{ after }` LSNs they have not received yet. */
const toleratedAfterBeyondLog = false;

/**
 * Known engine deviation, found by the linearizability check (reported): a write that changes
 * nothing (a CAS that does not match, a delete of an absent key, an INCR answered INVALID) is
 * computed against committed state plus the pending writes and answered at once, before those
 * commit or abort, so its answer can reflect a write that a later read on the primary does not
 * see yet, or never (`npm run sim -- --cluster --seed 0 --trace`; seed 103: the pending write
 * aborted). True leaves those answers out of the check while it stands; false checks them.
 */
const toleratedNoEffectAnswers = false;

export function workloadView(h: ClusterHarness): WorkloadView {
  return {
    config: h.config,
    random: h.workload,
    sequence: h.writeSequence,
    lastKnown: (key) => h.lastKnown.get(key) ?? null,
  };
}

export function walDir(slot: Slot): string {
  return `${slot.dir}/wal`;
}

/** Which nodes hold the primary's record at `lsn` durably, and what the primary reports. */
function ackFacts(h: ClusterHarness, slot: Slot, node: ClusterNode, lsn: number): AckFacts {
  // A record the primary's checkpoint removed from its log is in the archive.
  const own = recordAt(slot.disk, walDir(slot), lsn, 'visible') ?? h.archive.get(lsn) ?? null;
  const durableOn: string[] = [];
  for (const other of h.slots) {
    // A checkpoint holds committed state only: covering `lsn` is holding it (the record may be
    // gone from the log after it, or never there on a replica that installed a full sync).
    const held = other.device.appliedLsn >= lsn || lsn <= other.heldBeforeWipe;
    const logged = own === null ? null : recordAt(other.disk, walDir(other), lsn, 'durable');
    if (held || (logged !== null && logged.checksum === own?.checksum)) durableOn.push(other.id);
  }
  const replication = replicationOf(h, slot, node);
  return {
    durableOn,
    eligible: replication.replicas.filter((replica) => replica.eligible).map((r) => r.id),
    acks: replication.policy.acks,
    minReplicas: replication.policy.minReplicas,
  };
}

export function newWrite(h: ClusterHarness, command: Command): WriteHistory {
  h.writeSequence += 1;
  const write: WriteHistory = { requestId: `w${h.writeSequence}`, command, attempts: [] };
  h.writes.push(write);
  h.writeById.set(write.requestId, write);
  return write;
}

function countCommand(h: ClusterHarness, command: Command): void {
  const counters = h.counters;
  if (command.kind === 'put') counters.puts += 1;
  else if (command.kind === 'delete') counters.deletes += 1;
  else if (command.kind === 'batch') counters.batchOps += 1;
  else if (command.kind === 'incr') counters.incrOps += 1;
  else counters.casOps += 1;
}

/** Invokes one attempt of `write` on `slot`'s node; the answer lands in the history. */
export function issueWrite(
  h: ClusterHarness,
  slot: Slot,
  client: Client,
  write: WriteHistory,
): WriteAttempt | null {
  const node = slot.node;
  if (node === null) return null;
  const attempt: WriteAttempt = { node: slot.id, outcome: { kind: 'pending' } };
  write.attempts.push(attempt);
  client.busy = true;
  h.ops += 1;
  h.counters.writes += 1;
  const op: Inflight = {
    slot,
    incarnation: slot.life.incarnation,
    client,
    lost: () => {
      attempt.outcome = { kind: 'lost' };
      client.busy = false;
      h.counters.lostInCrash += 1;
    },
  };
  h.inflight.add(op);
  note(h, `c${client.id} ${describeCommand(write.command)} id=${write.requestId} -> ${slot.id}`);
  const times: { called: number; returned: number | null } = { called: tick(h), returned: null };
  h.calls.writes.set(attempt, times);
  invoke(node, write.command, write.requestId).then(
    (answer) => {
      if (!h.inflight.delete(op)) return;
      client.busy = false;
      times.returned = tick(h);
      settleOk(h, { slot, node, write, attempt, client }, answer);
    },
    (error: unknown) => {
      if (!h.inflight.delete(op)) return;
      client.busy = false;
      times.returned = tick(h);
      settleError(h, slot, write, attempt, error);
    },
  );
  return attempt;
}

interface Settling {
  slot: Slot;
  node: ClusterNode;
  write: WriteHistory;
  attempt: WriteAttempt;
  client: Client;
}

function checkRepeatedAnswer(h: ClusterHarness, write: WriteHistory, answer: Answer): void {
  for (const other of write.attempts) {
    const outcome = other.outcome;
    if (outcome.kind !== 'ok' || !outcome.effect) continue;
    if (outcome.lsn !== answer.lsn) {
      fail(h, `${write.requestId} answered OK at LSN ${answer.lsn} and at ${outcome.lsn}`);
    }
    if (outcome.value !== null && answer.value !== null && outcome.value !== answer.value) {
      fail(h, `${write.requestId}: INCR answered ${answer.value} and ${outcome.value}`);
    }
  }
}

function settleOk(h: ClusterHarness, settling: Settling, answer: Answer): void {
  const { slot, node, write, attempt, client } = settling;
  const value = answer.value === null ? '' : ` value ${answer.value}`;
  const what = answer.duplicate ? 'duplicate ' : answer.effect ? '' : 'no-op ';
  note(h, `c${client.id} ${write.requestId} -> ok ${what}lsn ${answer.lsn}${value}`);
  if (slot.id !== h.primaryId) fail(h, `${write.requestId}: replica ${slot.id} answered OK`);
  // A retry of a write answered without effect gets that answer again (the primary remembers
  // it), so no attempt may be answered with an effect and another without.
  const mixed = write.attempts.some(
    (other) =>
      other !== attempt && other.outcome.kind === 'ok' && other.outcome.effect !== answer.effect,
  );
  if (mixed) fail(h, `${write.requestId}: answered OK both with and without effect`);
  if (!answer.effect) {
    attempt.outcome = { kind: 'ok', ...answer, ack: null };
    return;
  }
  checkRepeatedAnswer(h, write, answer);
  const facts = ackFacts(h, slot, node, answer.lsn);
  // A duplicate committed earlier, under the policy of then: only the majority rule holds.
  const ack = answer.duplicate ? { ...facts, acks: 'quorum' as const, minReplicas: 0 } : facts;
  attempt.outcome = { kind: 'ok', ...answer, ack };
  const where = `${write.requestId} answered OK at LSN ${answer.lsn}`;
  for (const problem of ackProblems(h.members, h.primaryId, where, ack)) fail(h, problem);
  h.counters.okWrites += 1;
  if (ack.acks === 'all' && ack.eligible.length > 0) h.counters.acksAllChecked += 1;
  if (answer.duplicate) h.counters.duplicatesReturned += 1;
  client.lastOkLsn = Math.max(client.lastOkLsn, answer.lsn);
  h.okLsnMax = Math.max(h.okLsnMax, answer.lsn);
  for (const [key, written] of writtenValues(write.command)) h.lastKnown.set(key, written);
  if (write.command.kind === 'incr' && answer.value !== null) {
    h.lastKnown.set(write.command.key, answer.value.toString());
  }
}

function settleError(
  h: ClusterHarness,
  slot: Slot,
  write: WriteHistory,
  attempt: WriteAttempt,
  error: unknown,
): void {
  const code = error instanceof SyncwalError ? error.code : 'untyped';
  const message = error instanceof Error ? error.message : String(error);
  attempt.outcome = { kind: 'error', code };
  note(h, `${write.requestId} -> ${code === 'untyped' ? 'untyped: ' : ''}${message}`);
  const primary = slot.id === h.primaryId;
  switch (code) {
    case 'NOREPLICAS':
      h.counters.noReplicas += 1;
      if (!primary) fail(h, `${write.requestId}: replica ${slot.id} answered NOREPLICAS`);
      return;
    case 'UNKNOWN':
      h.counters.unknownAnswers += 1;
      return;
    case 'NOTPRIMARY':
      h.counters.notPrimary += 1;
      if (primary) fail(h, `${write.requestId}: the primary answered NOTPRIMARY`);
      return;
    case 'INVALID':
      // INCR of a non-integer value.
      if (write.command.kind !== 'incr') fail(h, `${write.requestId}: ${message}`);
      return;
    case 'IOERR':
      // A fenced node refuses writes with IOERR before logging anything.
      if (slot.node?.info().fenced === null) fail(h, `${write.requestId}: IOERR, node not fenced`);
      return;
    default:
      fail(h, `${write.requestId}: unexpected error ${code}: ${message}`);
  }
}

/** A write worth retrying: recent, and no answer so far said it must not be retried. */
function retryCandidate(h: ClusterHarness): WriteHistory | null {
  const recent = h.writes.slice(-40).filter(
    (write) =>
      write.attempts.length > 0 &&
      write.attempts.every((attempt) => {
        // Writes sent to a replica are never retried: NOTPRIMARY must stay definitive.
        if (attempt.node !== h.primaryId) return false;
        const outcome = attempt.outcome;
        if (outcome.kind === 'ok') return outcome.effect;
        return outcome.kind !== 'error' || !['NOREPLICAS', 'NOTPRIMARY'].includes(outcome.code);
      }),
  );
  return recent.length === 0 ? null : h.workload.pick(recent);
}

function readMode(h: ClusterHarness, client: Client): number | null {
  const random = h.workload;
  if (random.bool(0.5)) return null;
  const after = random.bool(0.5) ? client.lastOkLsn : h.okLsnMax;
  return after > 0 ? after : null;
}

function issueRead(h: ClusterHarness, client: Client): void {
  const up = upSlots(h);
  if (up.length === 0) return;
  const slot = h.workload.pick(up);
  const node = slot.node;
  if (node === null) return;
  const key = randomKey(workloadView(h));
  const after = readMode(h, client);
  const appliedLo = node.info().appliedLsn;
  const counters = h.counters;
  if (slot.id !== h.primaryId) counters.replicaReads += 1;
  if (after === null) counters.staleReads += 1;
  else counters.afterReads += 1;
  if (after !== null && after > appliedLo) counters.catchUpReads += 1;
  const op: Inflight = {
    slot,
    incarnation: slot.life.incarnation,
    client,
    lost: () => {
      client.busy = false;
    },
  };
  h.inflight.add(op);
  client.busy = true;
  h.ops += 1;
  const label = `c${client.id} get at ${h.scheduler.now} ms`;
  const called = tick(h);
  node.get(key, { read: after === null ? 'stale' : { after } }).then(
    (bytes) => {
      if (!h.inflight.delete(op)) return;
      client.busy = false;
      const value = bytes === null ? null : bytes.toString('utf8');
      if (slot.id === h.primaryId) {
        h.calls.reads.push({ label, key, value, called, returned: tick(h) });
      }
      const appliedHi = node.info().appliedLsn;
      h.reads.push({ node: slot.id, key, after, appliedLo, appliedHi, value });
      const mode = after === null ? 'stale' : `after ${after}`;
      note(
        h,
        `c${client.id} get ${key} (${mode}) on ${slot.id} -> ${value?.slice(0, 12) ?? 'null'}`,
      );
    },
    (error: unknown) => {
      if (!h.inflight.delete(op)) return;
      client.busy = false;
      readFailed(h, slot, key, error);
    },
  );
}

function readFailed(h: ClusterHarness, slot: Slot, key: string, error: unknown): void {
  const code = error instanceof SyncwalError ? error.code : 'untyped';
  note(h, `get ${key} on ${slot.id} -> ${String(error)}`);
  // A fenced node fails the reads waiting for an LSN it will not apply.
  if (code === 'UNKNOWN' && slot.node?.info().fenced !== null) return;
  // Known engine deviation (reported): a replica refuses `{ after }` beyond its own log
  // instead of waiting for it (DESIGN §1 says it waits). Tolerated while it stands, counted.
  const beyond = code === 'INVALID' && /beyond the log/.test(String(error));
  if (beyond && slot.id !== h.primaryId && toleratedAfterBeyondLog) {
    h.counters.afterReadsRefused += 1;
    return;
  }
  fail(h, `get ${key} on ${slot.id} failed: ${String(error)}`);
}

/** Records a scan of `slot`'s committed state (one page holds every key of the workload). */
export function issueScan(h: ClusterHarness, slot: Slot, when: string): void {
  const node = slot.node;
  if (node === null) return;
  const life = slot.life;
  const appliedLo = node.info().appliedLsn;
  h.counters.scans += 1;
  node.scan({ limit: 1000 }).then(
    (page) => {
      if (slot.life !== life || !life.alive) return;
      if (page.next !== null) fail(h, `scan of ${slot.id} needs more than one page`);
      const entries = page.entries.map((entry): [string, string] => [
        entry.key.toString('utf8'),
        entry.value.toString('utf8'),
      ]);
      const appliedHi = node.info().appliedLsn;
      h.scans.push({ node: slot.id, appliedLo, appliedHi, entries, when });
    },
    (error: unknown) => {
      if (slot.life !== life || !life.alive) return;
      // A primary waits to read until its TERM commits; if it fences first, it cannot answer.
      const code = (error as { code?: unknown }).code;
      if (code === 'UNKNOWN' && node.info().fenced !== null) return;
      fail(h, `scan of ${slot.id}: ${String(error)}`);
    },
  );
}

function issueFreshWrite(h: ClusterHarness, slot: Slot, client: Client): void {
  const command = randomCommand(workloadView(h), h.workload.pick(commandKinds));
  countCommand(h, command);
  issueWrite(h, slot, client, newWrite(h, command));
}

function issueClientOperation(h: ClusterHarness, client: Client): void {
  const random = h.workload;
  const primary = primarySlot(h);
  const primaryUp = primary.state === 'up';
  if (primaryUp && random.bool(h.config.rates.retry)) {
    const write = retryCandidate(h);
    if (write !== null) {
      h.counters.requestIdRetries += 1;
      note(h, `retry ${write.requestId}`);
      issueWrite(h, primary, client, write);
      return;
    }
  }
  const draw = random.int(100);
  if (draw < 30) {
    issueRead(h, client);
    return;
  }
  if (draw < 34) {
    const up = upSlots(h);
    if (up.length > 0) issueScan(h, random.pick(up), 'during the run');
    return;
  }
  if (draw < 38) {
    const replicas = upSlots(h).filter((slot) => slot.id !== h.primaryId);
    if (replicas.length > 0) issueFreshWrite(h, random.pick(replicas), client);
    return;
  }
  if (primaryUp) issueFreshWrite(h, primary, client);
}

export function issueClientOperations(h: ClusterHarness): void {
  if (h.quiescing) return;
  for (const client of h.clients) {
    if (h.ops >= h.opsMax) return;
    if (client.busy || !h.workload.bool(h.config.issueProbability)) continue;
    issueClientOperation(h, client);
  }
}

// -------------------------------------------------------------------------------------------
// The history for the linearizability check (linearizability.ts).

function tick(h: ClusterHarness): number {
  h.calls.clock += 1;
  return h.calls.clock;
}

/** A write answered OK, with what its answer observed (null: a batch, see below). */
function okAction(command: Command, outcome: Extract<WriteOutcome, { kind: 'ok' }>) {
  switch (command.kind) {
    case 'put':
      return { kind: 'put', value: command.value } satisfies KvAction;
    case 'delete':
      return { kind: 'delete', deleted: outcome.effect } satisfies KvAction;
    case 'batch':
      return null;
    case 'incr': {
      const delta = BigInt(command.delta);
      const action: KvAction = { kind: 'incr', delta };
      return outcome.value === null ? action : { ...action, result: outcome.value };
    }
    case 'cas': {
      const { expected, next } = command;
      // Absent to absent logs nothing whether it matched or not: the answer is not recorded.
      if (expected === null && next === null) return { kind: 'cas', expected, next } as const;
      return { kind: 'cas', expected, next, swapped: outcome.effect } satisfies KvAction;
    }
  }
}

/** The checker's action for a write whose answer is unknown. */
function blindAction(command: Exclude<Command, { kind: 'batch' }>): KvAction {
  if (command.kind === 'put') return { kind: 'put', value: command.value };
  if (command.kind === 'delete') return { kind: 'delete' };
  if (command.kind === 'incr') return { kind: 'incr', delta: BigInt(command.delta) };
  return { kind: 'cas', expected: command.expected, next: command.next };
}

/**
 * One write as the checker sees it. It was called with its first attempt. It is `ok` from the
 * first OK answer (its result, or a duplicate's); `failed` if an answer was NOREPLICAS or
 * NOTPRIMARY (definitive: never committed) or if the final status says it never committed
 * (cluster-model.ts checks that statuses agree with the final log); else `indeterminate`: it
 * committed, at a moment no answer tells. An INCR answered INVALID also observed a value that
 * is not an integer, at some moment during that attempt, without changing anything.
 */
function writeOperations(
  h: ClusterHarness,
  write: WriteHistory,
  statuses: ReadonlyMap<string, FinalStatus>,
): KvOperation[] {
  const timed = write.attempts.flatMap((attempt) => {
    const times = h.calls.writes.get(attempt);
    return times === undefined ? [] : [{ outcome: attempt.outcome, ...times }];
  });
  const first = timed[0];
  if (first === undefined) return [];
  const command = write.command;
  const label = write.requestId;
  const operations: KvOperation[] = [];
  let ok: { outcome: Extract<WriteOutcome, { kind: 'ok' }>; returned: number } | null = null;
  let definitive = false;
  for (const { outcome, called, returned } of timed) {
    if (outcome.kind === 'ok' && returned !== null && (ok === null || returned < ok.returned)) {
      ok = { outcome, returned };
    }
    if (outcome.kind !== 'error' || returned === null) continue;
    definitive ||= outcome.code === 'NOREPLICAS' || outcome.code === 'NOTPRIMARY';
    if (outcome.code === 'INVALID' && command.kind === 'incr' && !toleratedNoEffectAnswers) {
      const action: KvAction = { kind: 'incr', delta: BigInt(command.delta), result: 'invalid' };
      operations.push({ label, key: command.key, action, outcome: 'ok', called, returned });
    }
  }
  const committed = statuses.get(label)?.status === 'committed';
  const outcome = ok !== null ? 'ok' : !definitive && committed ? 'indeterminate' : 'failed';
  const times = { label, outcome, called: first.called, returned: ok?.returned ?? null } as const;
  if (command.kind === 'batch') {
    return [...operations, ...batchOperations({ ...times, items: command.operations })];
  }
  // Without effect, a write is only an observation: left out, it constrains nothing.
  if (ok !== null && !ok.outcome.effect && toleratedNoEffectAnswers) return operations;
  const action = (ok === null ? null : okAction(command, ok.outcome)) ?? blindAction(command);
  return [...operations, { ...times, key: command.key, action }];
}

/**
 * The client history on the primary, for the linearizability check: every write (retries of a
 * request id are one operation) and every read the primary answered. Reads on replicas are
 * left out, because they are not linearizable by design (DESIGN §1): a replica serves what it
 * has applied, which trails the primary's commit point, so a 'stale' read there can miss a
 * write acknowledged before the read began; an `{ after }` read restores read-your-writes for
 * the LSN it names, but can still miss a write that committed, and that a read on the primary
 * already returned, before that write's OK arrived. cluster-model.ts checks those reads
 * against the committed history instead. Scans are left out too (a multi-key read, checked
 * there as well).
 */
export function clientOperations(
  h: ClusterHarness,
  statuses: ReadonlyMap<string, FinalStatus>,
): KvOperation[] {
  const operations = h.writes.flatMap((write) => writeOperations(h, write, statuses));
  for (const read of h.calls.reads) {
    const action: KvAction = { kind: 'get', value: read.value };
    operations.push({ ...read, action, outcome: 'ok' });
  }
  return operations;
}
