/**
 * The cluster simulation (DESIGN §7, RELIABILITY §3.1 L1, issue #4 "Cluster simulation"): a
 * shard of 3 or 5 nodes (the primary fixed by configuration, the rest replicas) in one process,
 * each node on its own simulated disk and checkpoint device, all on one simulated network and
 * one virtual-time scheduler. Everything random comes from the seed, so `runClusterSeed(s)`
 * replays a run exactly.
 *
 * A run: clients issue a random workload with request ids (cluster-clients.ts) while the
 * nemesis injects the faults the seed enabled (cluster-nemesis.ts: crashes with unsynced loss,
 * partitions, message faults, slow disks, fdatasync EIO, policy changes). Then every fault
 * stops, every node comes back, a barrier write commits and the shard must converge: every
 * node holds a byte-identical committed log prefix (compared record by record; SEAL frames are
 * local) and identical committed state. Then the whole shard loses power at once, restarts and
 * must converge again. Finally the history of every client operation is checked against the
 * committed history of the final log (cluster-model.ts): every OK write survived, nothing
 * answered NOREPLICAS or NOTPRIMARY is visible, no read returned uncommitted data, `{after}`
 * reads saw their LSN, every acknowledged write was durable per the policy at the moment of
 * its answer, and request-id answers and final statuses agree. Then the operations on the
 * primary, with their call and answer order, must be linearizable per key (linearizability.ts).
 *
 * A violation throws a `SimulationFailure` whose message starts with `seed N:` and ends with
 * the last trace lines; `npm run sim -- --cluster --seed N --trace` replays it in full.
 */
import { recordTypeName } from '../core/format/frame.js';
import { describePayload } from '../core/format/record.js';
import { readLog, logDifference, type LogFrame } from './cluster-logs.js';
import {
  checkHistory,
  type FinalStatus,
  type History,
  type WriteAttempt,
} from './cluster-model.js';
import {
  clientOperations,
  issueClientOperations,
  issueScan,
  issueWrite,
  newWrite,
  walDir,
} from './cluster-clients.js';
import { healAll, nemesis } from './cluster-nemesis.js';
import { closeNodes, crashNode, reviveNodes } from './cluster-nodes.js';
import {
  clusterCounterNames,
  createClusterHarness,
  failure,
  note,
  primarySlot,
  throwIfFailed,
  type Client,
  type ClusterCounterName,
  type ClusterHarness,
  type ClusterNode,
  type ClusterSeedOptions,
  type ClusterSeedReport,
  type Slot,
} from './cluster-state.js';
import { SimulationFailure } from './engine-sim.js';
import { checkLinearizability } from './linearizability.js';

export {
  clusterCounterNames,
  emptyClusterCounters,
  type ClusterCounterName,
  type ClusterCounters,
  type ClusterSeedOptions,
  type ClusterSeedReport,
} from './cluster-state.js';

/**
 * The counters a long enough run must raise above zero. A refused after-read needs a replica to
 * fall behind a read's LSN for the whole wait; not every run sees one.
 */
export const clusterCoverageCounters: readonly ClusterCounterName[] = clusterCounterNames.filter(
  (name) => name !== 'afterReadsRefused',
);

/** Bounds that turn a hang into a reported failure instead of a stuck process. */
const runStepsMax = 400_000;
const settleMsMax = 120_000;
const settleStepsMax = 400_000;
const driveStepsMax = 200_000;

async function tick(h: ClusterHarness): Promise<void> {
  h.step += 1;
  // With every node down nothing is scheduled: time must still pass for restarts to come.
  if (h.scheduler.pending === 0) h.scheduler.schedule(5, () => undefined);
  if (!(await h.scheduler.step())) {
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  reviveNodes(h);
  throwIfFailed(h);
}

async function runSteps(h: ClusterHarness): Promise<void> {
  for (; h.step < runStepsMax && h.ops < h.opsMax;) {
    issueClientOperations(h);
    nemesis(h);
    await tick(h);
  }
}

/** Steps the scheduler until `promise` settles (bounded). */
async function drive(h: ClusterHarness, promise: Promise<void>): Promise<void> {
  let settled = false;
  let failed: unknown = null;
  promise.then(
    () => {
      settled = true;
    },
    (error: unknown) => {
      settled = true;
      failed = error ?? new Error('rejected');
    },
  );
  for (let steps = 0; !settled && steps < driveStepsMax; steps++) {
    if (!(await h.scheduler.step())) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (!settled) throw failure(h, 'a close never settled');
  if (failed !== null) throw failed;
}

// -------------------------------------------------------------------------------------------
// Heal and converge.

function describeNodes(h: ClusterHarness): string {
  return h.slots
    .map((slot) => {
      const node = slot.node;
      if (node === null) return `${slot.id} ${slot.state}`;
      const info = node.info();
      const replicas = (node.replication()?.replicas ?? [])
        .map(
          (replica) =>
            ` [${replica.id} ${replica.connected ? 'connected' : 'disconnected'} ` +
            `${replica.state} acked ${replica.ackedLsn}${replica.eligible ? ' eligible' : ''}]`,
        )
        .join('');
      return (
        `${slot.id} ${node.role} last ${info.lastLsn} commit ${info.commitLsn} ` +
        `applied ${info.appliedLsn}${info.fenced === null ? '' : ' FENCED'}${replicas}`
      );
    })
    .join('; ');
}

/** Every node is up and holds exactly what the primary holds, all of it committed and applied. */
function converged(h: ClusterHarness, barrierLsn: number): boolean {
  const primary = primarySlot(h).node;
  if (primary === null) return false;
  const reference = primary.info();
  if (reference.commitLsn < barrierLsn || reference.appliedLsn !== reference.commitLsn) {
    return false;
  }
  return h.slots.every((slot) => {
    if (slot.state !== 'up' || slot.node === null) return false;
    const info = slot.node.info();
    return (
      info.lastLsn === reference.lastLsn &&
      info.commitLsn === reference.commitLsn &&
      info.appliedLsn === reference.commitLsn &&
      slot.disk.inflightCount === 0
    );
  });
}

interface Barrier {
  client: Client;
  attempt: WriteAttempt | null;
  lsn: number | null;
  /** After a failed attempt, the next waits a heartbeat interval. */
  nextAt: number;
}

/** A write through the primary once everything is up: it commits only if the shard works. */
function pushBarrier(h: ClusterHarness, barrier: Barrier): void {
  const outcome = barrier.attempt?.outcome;
  if (outcome?.kind === 'ok') barrier.lsn ??= outcome.lsn;
  if (barrier.lsn !== null || outcome?.kind === 'pending') return;
  if (outcome !== undefined && barrier.nextAt === 0) {
    barrier.nextAt = h.scheduler.now + h.config.heartbeatIntervalMs;
  }
  const primary = primarySlot(h);
  if (primary.state !== 'up' || barrier.client.busy || h.scheduler.now < barrier.nextAt) return;
  barrier.nextAt = 0;
  const write = newWrite(h, { kind: 'put', key: 'barrier', value: `b${h.writeSequence}` });
  barrier.attempt = issueWrite(h, primary, barrier.client, write);
}

/**
 * Stops the faults and runs until every operation answered, every node is up, a barrier write
 * committed and every node caught up with the primary (liveness once the faults stop).
 */
async function settle(h: ClusterHarness, when: string): Promise<void> {
  h.quiescing = true;
  healAll(h);
  for (const slot of h.slots) {
    if (slot.state === 'down' && slot.restartAt === null) slot.restartAt = h.scheduler.now;
  }
  const client = { id: 99, busy: false, lastOkLsn: 0 };
  const barrier: Barrier = { client, attempt: null, lsn: null, nextAt: 0 };
  const deadline = h.scheduler.now + settleMsMax;
  for (let steps = 0; steps < settleStepsMax && h.scheduler.now < deadline; steps++) {
    const idle = h.inflight.size === 0;
    const allUp = h.slots.every((slot) => slot.state === 'up');
    if (idle && allUp && barrier.lsn !== null && converged(h, barrier.lsn)) {
      note(h, `converged ${when}: ${describeNodes(h)}`);
      return;
    }
    if (allUp) pushBarrier(h, barrier);
    await tick(h);
  }
  const waiting = h.inflight.size;
  throw failure(
    h,
    `liveness ${when}: no convergence in ${settleMsMax} virtual ms after the faults stopped ` +
      `(${waiting} operations unanswered, barrier ${barrier.lsn ?? 'not committed'}): ` +
      describeNodes(h),
  );
}

/** With a full trace (a replay), puts a log's records in it: what the checks compared. */
function traceLog(h: ClusterHarness, node: string, log: readonly LogFrame[]): void {
  if (!h.trace.full) return;
  for (const frame of log) {
    const payload = JSON.stringify(describePayload(frame.type, frame.payload));
    // Padding runs of the workload's values say nothing: keep their first letters.
    const short = payload.replace(/x{8,}/g, (run) => `x…(${run.length})`);
    note(h, `${node} log ${frame.lsn} ${recordTypeName(frame.type)} term ${frame.term} ${short}`);
  }
}

function logOf(h: ClusterHarness, slot: Slot): LogFrame[] {
  const log = readLog(slot.disk, walDir(slot), 'visible');
  if (log.problem !== null) throw failure(h, `${slot.id}'s log does not read back: ${log.problem}`);
  return log.frames;
}

function stateOf(h: ClusterHarness, slot: Slot, first: number): string {
  const scan = h.scans.slice(first).find((candidate) => candidate.node === slot.id);
  if (scan === undefined) throw failure(h, `the scan of ${slot.id} did not answer`);
  return JSON.stringify(scan.entries);
}

/** Byte-identical committed log prefixes and identical committed state on every node. */
async function checkConverged(h: ClusterHarness, when: string): Promise<void> {
  const primary = primarySlot(h);
  const commitLsn = primary.node?.info().commitLsn ?? 0;
  const reference = logOf(h, primary);
  for (const slot of h.slots) {
    if (slot === primary) continue;
    const log = logOf(h, slot);
    const difference = logDifference(reference, log, commitLsn);
    if (difference !== null) {
      throw failure(h, `${when}: logs of ${primary.id} and ${slot.id} differ: ${difference}`);
    }
    h.counters.logRecordsCompared += Math.max(0, commitLsn - (log[0]?.lsn ?? 1) + 1);
  }
  const first = h.scans.length;
  for (const slot of h.slots) issueScan(h, slot, when);
  await new Promise<void>((resolve) => setImmediate(resolve));
  const expected = stateOf(h, primary, first);
  for (const slot of h.slots) {
    const state = stateOf(h, slot, first);
    if (state !== expected) {
      traceLog(h, primary.id, reference);
      throw failure(
        h,
        `${when}: state of ${slot.id} ${state} differs from the primary's ${expected}`,
      );
    }
  }
  note(h, `${when}: ${h.slots.length} logs identical through LSN ${commitLsn}, states identical`);
  throwIfFailed(h);
}

/** The whole shard loses power at once, then comes back (in a random order). */
function fullOutage(h: ClusterHarness): void {
  h.counters.fullOutages += 1;
  for (const slot of h.slots) crashNode(h, slot, 'full-shard power loss');
}

// -------------------------------------------------------------------------------------------
// The final check of the history.

function finalStatuses(h: ClusterHarness, node: ClusterNode): Map<string, FinalStatus> {
  const statuses = new Map<string, FinalStatus>();
  for (const write of h.writes) {
    const status = node.status(write.requestId);
    statuses.set(write.requestId, status);
    const answered = write.attempts.some((attempt) => attempt.outcome.kind === 'ok');
    const open = write.attempts.some(
      (attempt) =>
        attempt.outcome.kind === 'lost' ||
        (attempt.outcome.kind === 'error' && attempt.outcome.code === 'UNKNOWN'),
    );
    if (answered || !open) continue;
    if (status.status === 'committed') h.counters.unknownResolvedCommitted += 1;
    else h.counters.unknownResolvedLost += 1;
  }
  return statuses;
}

function checkFinalHistory(h: ClusterHarness): void {
  const primary = primarySlot(h);
  const node = primary.node;
  if (node === null) throw failure(h, 'no primary at the end of the run');
  const kept = logOf(h, primary);
  // Records the primary's checkpoints removed from its log come first (see h.archive).
  const first = kept[0]?.lsn ?? Infinity;
  const archived = [...h.archive.values()].filter((frame) => frame.lsn < first);
  archived.sort((left, right) => left.lsn - right.lsn);
  const log = [...archived, ...kept];
  const history: History = {
    members: h.members,
    primary: h.primaryId,
    writes: h.writes,
    reads: h.reads,
    scans: h.scans,
    statuses: finalStatuses(h, node),
    log,
    commitLsn: node.info().commitLsn,
  };
  const problems = checkHistory(history);
  if (problems.length > 0) traceLog(h, primary.id, log);
  note(
    h,
    `history: ${h.writes.length} writes, ${h.reads.length} reads, ${h.scans.length} scans ` +
      `checked against ${history.log.length} log records (commit ${history.commitLsn})`,
  );
  if (problems.length > 0) {
    for (const problem of problems.slice(1, 8)) note(h, `also: ${problem}`);
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more, traced above)` : '';
    throw failure(h, `history: ${problems[0]}${more}`);
  }
  checkLinearizable(h, history.statuses);
}

/** A run's histories are short: a key needing more steps than this is a finding in itself. */
const linearizabilityStepsPerKeyMax = 200_000;

/** The primary's client history must be linearizable per key (see `clientOperations`). */
function checkLinearizable(h: ClusterHarness, statuses: History['statuses']): void {
  const operations = clientOperations(h, statuses);
  const result = checkLinearizability(operations, {
    stepsPerKeyMax: linearizabilityStepsPerKeyMax,
  });
  h.counters.linearizabilityChecked += result.operations;
  note(
    h,
    `linearizability: ${result.operations} operations on ${result.keys} keys: ${result.verdict}`,
  );
  if (result.verdict === 'linearizable') return;
  const what = result.verdict === 'violation' ? 'not linearizable' : 'check inconclusive';
  throw failure(h, `linearizability: key ${result.key} ${what}: ${result.explanation}`);
}

function addNetworkCounters(h: ClusterHarness): void {
  const network = h.network.counters;
  h.counters.messagesDropped += network.dropped;
  h.counters.messagesDuplicated += network.duplicated;
  h.counters.messagesReordered += network.reordered;
  h.counters.messagesBlocked += network.blocked;
}

async function runAll(h: ClusterHarness): Promise<void> {
  await runSteps(h);
  await settle(h, 'after heal');
  await checkConverged(h, 'after heal');
  fullOutage(h);
  await settle(h, 'after the full outage');
  await checkConverged(h, 'after the full outage');
  checkFinalHistory(h);
  await closeNodes(h, (promise) => drive(h, promise));
  addNetworkCounters(h);
  throwIfFailed(h);
}

/**
 * One deterministic run of the cluster simulation (see the top of this file). Resolves with the
 * coverage counters and the trace; rejects with a `SimulationFailure` naming the seed.
 */
export async function runClusterSeed(
  seed: number,
  options: ClusterSeedOptions = {},
): Promise<ClusterSeedReport> {
  const h = createClusterHarness(seed, options);
  note(h, `seed ${seed}: ${h.members.length} nodes, primary ${h.primaryId}`);
  note(h, `config ${JSON.stringify(h.config)}`);
  const unhandled = (reason: unknown): void => {
    h.failure ??= `unhandled rejection: ${String(reason)}`;
  };
  process.on('unhandledRejection', unhandled);
  try {
    await runAll(h);
  } catch (error: unknown) {
    if (error instanceof SimulationFailure) throw error;
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    throw failure(h, `harness or engine threw: ${detail}`);
  } finally {
    process.off('unhandledRejection', unhandled);
  }
  return {
    seed,
    nodes: h.members.length,
    counters: h.counters,
    trace: h.trace.lines(),
    ops: h.ops,
    steps: h.step,
    virtualMs: h.scheduler.now,
  };
}
