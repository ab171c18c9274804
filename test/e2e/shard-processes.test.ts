/**
 * Real processes, replicated (issue #4, RELIABILITY.md §3.1 L2): three `syncwal serve` children
 * on 127.0.0.1 (n1 the configured primary), every peer link through its own fault proxy, and
 * seeded writers (SET of 100-byte values with request ids, through ioredis) while a seeded
 * schedule of faults runs:
 *
 * - SIGKILL a replica under load and restart it (sometimes killed again while it catches up);
 * - blackhole (both ways or one way), delay, reset or drop a replica's links, then heal;
 * - lose the quorum: cut one replica's links and kill the other (writes get NOREPLICAS or
 *   UNKNOWN), then heal;
 * - SIGKILL the primary and restart it (same node id, a new term);
 * - a full-shard outage: kill all three, restart them in a seeded order;
 * - restart a replica with an empty data directory: it rejoins by full sync (the primary's
 *   checkpoints removed the log's start).
 *
 * After each fault the test waits for the affected replicas to be eligible again (events: log
 * lines and INFO round trips, never sleeps). Then it heals, stops the writers, writes two fence
 * writes (so every history write is under a COMMIT record in every log), waits until the shard
 * converges, and checks from the client history:
 * - every OK write is committed (primary STATUS), at an LSN that respects real time;
 * - no NOREPLICAS write is committed or visible anywhere;
 * - every indeterminate write is resolved (committed, aborted, or never logged: not pending);
 * - every replica's STATUS agrees with the primary's (committed, same LSN);
 * - each node's keys and values (SCAN) equal the committed writes applied in LSN order, and each
 *   final value is allowed by the client history alone (the last OK write to the key, or a write
 *   with an unknown outcome that no OK write definitely followed);
 * then stops the nodes (SIGTERM, exit 0) and checks the data directories with wal-inspect:
 * `verify` clean, `state` equal to the expected state, `diff` against the primary exit 0.
 *
 * SHARD_SEED=<seed> replays the schedule and the writers' keys and values (the timing of real
 * processes is not replayed, so a failure may take a few runs to recur). SHARD_REPLICA_KILLS,
 * SHARD_LINK_FAULTS, SHARD_QUORUM_LOSSES, SHARD_PRIMARY_RESTARTS, SHARD_OUTAGES and
 * SHARD_WIPES size the schedule; SHARD_CHECKPOINT_BYTES sets --checkpoint-log-bytes (0: no
 * automatic checkpoints); SHARD_KEEP=1 keeps the data directories and writes every node's log
 * lines there.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../src/sim/random.js';
import { prepareWriter, removeTemporary, type PreparedWriter } from './harness.js';
import {
  ClientHistory,
  FinalValueModel,
  Workload,
  checkReplicaStatuses,
  checkState,
  checkLog,
  checkStatuses,
  connectOptions,
  expectedState,
  type DumpedRecord,
  type PrimaryAccess,
  type RequestStatus,
} from './shard-history.js';
import {
  ControlClients,
  inspectState,
  stateOf,
  statusesOf,
  untilConverged,
  untilEligible,
  walInspect,
} from './shard-inspect.js';
import { Shard, killAllNodes, type LogLine } from './shard-nodes.js';

const seed = Number(process.env.SHARD_SEED ?? 20_261_122);
const counts = {
  replicaKills: Number(process.env.SHARD_REPLICA_KILLS ?? 12),
  linkFaults: Number(process.env.SHARD_LINK_FAULTS ?? 8),
  quorumLosses: Number(process.env.SHARD_QUORUM_LOSSES ?? 2),
  primaryRestarts: Number(process.env.SHARD_PRIMARY_RESTARTS ?? 2),
  outages: Number(process.env.SHARD_OUTAGES ?? 1),
  /** Replicas restarted with an empty data directory: they rejoin by full sync. */
  wipes: Number(process.env.SHARD_WIPES ?? 2),
};
const keep = process.env.SHARD_KEEP === '1';
const ids = ['n1', 'n2', 'n3'] as const;
const primaryId = 'n1';
/**
 * Small segments and checkpoints, so rotation, checkpoints and log prefix removal happen under
 * the faults too (SHARD_CHECKPOINT_BYTES=0 turns automatic checkpoints off).
 */
const checkpointBytes = Number(process.env.SHARD_CHECKPOINT_BYTES ?? 512 * 1024);
const serveArgs = [
  ...['--commit-timeout-ms', '2000', '--replica-timeout-ms', '1000'],
  ...['--segment-size-bytes', String(64 * 1024), '--checkpoint-log-bytes', String(checkpointBytes)],
];
const workloadShape = { writers: 4, keys: 24, valueBytes: 100, writesPerWriterMax: 50_000 };
/** Write replies to wait for before a fault and while it lasts: seeded in these ranges. */
const repliesBefore: [number, number] = [10, 150];
const repliesDuring: [number, number] = [20, 200];
const repliesDuringLong: [number, number] = [1_000, 3_000];
const stallMs = 90_000;

type LinkFault =
  | { kind: 'blackhole'; direction: 'both' | 'to-replica' | 'from-replica' }
  | { kind: 'delay'; ms: number }
  | { kind: 'reset' }
  | { kind: 'drop' }
  | { kind: 'partition' };

type Action =
  | { kind: 'kill-replica'; node: string; before: number; during: number; again: boolean }
  | { kind: 'link-fault'; node: string; fault: LinkFault; before: number; during: number }
  | { kind: 'quorum-loss'; cut: string; killed: string; reset: boolean; before: number }
  | { kind: 'restart-primary'; before: number }
  | { kind: 'outage'; before: number; order: string[] }
  | { kind: 'wipe-replica'; node: string; before: number; during: number };

/** A seeded Fisher-Yates shuffle (a copy). */
function shuffle<T>(random: Random, items: readonly T[]): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index--) {
    const other = random.int(index + 1);
    [copy[index], copy[other]] = [copy[other]!, copy[index]!];
  }
  return copy;
}

function linkFault(random: Random): LinkFault {
  const roll = random.int(7);
  if (roll === 0) return { kind: 'blackhole', direction: 'both' };
  if (roll === 1) return { kind: 'blackhole', direction: 'to-replica' };
  if (roll === 2) return { kind: 'blackhole', direction: 'from-replica' };
  if (roll === 3) return { kind: 'delay', ms: random.range(20, 400) };
  if (roll === 4) return { kind: 'reset' };
  if (roll === 5) return { kind: 'drop' };
  return { kind: 'partition' };
}

/** The seeded fault schedule. */
function schedule(random: Random): Action[] {
  const replicas = ids.filter((id) => id !== primaryId);
  const before = () => random.range(...repliesBefore);
  // Now and then a long fault, so a restarted replica has a real backlog to catch up on.
  const during = () =>
    random.bool(0.2) ? random.range(...repliesDuringLong) : random.range(...repliesDuring);
  const actions: Action[] = [];
  for (let index = 0; index < counts.replicaKills; index++) {
    const node = random.pick(replicas);
    actions.push({ kind: 'kill-replica', node, before: before(), during: during(), again: false });
    if (random.bool(0.25)) (actions.at(-1) as { again: boolean }).again = true;
  }
  for (let index = 0; index < counts.linkFaults; index++) {
    const node = random.pick(replicas);
    const fault = linkFault(random);
    actions.push({ kind: 'link-fault', node, fault, before: before(), during: during() });
  }
  for (let index = 0; index < counts.quorumLosses; index++) {
    const cut = random.pick(replicas);
    const killed = replicas.find((id) => id !== cut)!;
    actions.push({ kind: 'quorum-loss', cut, killed, reset: random.bool(0.5), before: before() });
  }
  for (let index = 0; index < counts.primaryRestarts; index++) {
    actions.push({ kind: 'restart-primary', before: before() });
  }
  for (let index = 0; index < counts.wipes; index++) {
    const node = random.pick(replicas);
    actions.push({ kind: 'wipe-replica', node, before: before(), during: during() });
  }
  for (let index = 0; index < counts.outages; index++) {
    actions.push({ kind: 'outage', before: before(), order: shuffle(random, ids) });
  }
  return shuffle(random, actions);
}

// ---------------------------------------------------------------------------------------------
// Running the faults.

/** `promise`, or a rejection naming `what` after `timeoutMs` (the timer is always cleared). */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited ${timeoutMs} ms for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface Run {
  shard: Shard;
  clients: ControlClients;
  history: ClientHistory;
  /** What happened, with times, for a failure message. */
  journal: string[];
  startMs: number;
}

function note(run: Run, text: string): void {
  const seconds = ((performance.now() - run.startMs) / 1000).toFixed(1);
  run.journal.push(`${seconds}s ${text}`);
}

async function replies(run: Run, count: number): Promise<void> {
  await run.history.moreReplies(count, stallMs);
}

async function restartReplica(run: Run, node: string, again: boolean): Promise<void> {
  await run.shard.start(node);
  if (again) {
    // Killed again at once: while it recovers and catches up.
    await run.shard.kill(node);
    note(run, `${node} killed again while catching up`);
    await run.shard.start(node);
  }
  await untilEligible(run.shard, run.clients, node);
}

function applyLinkFault(run: Run, node: string, fault: LinkFault): Promise<void> {
  const shard = run.shard;
  const toReplica = shard.link(shard.primary, node);
  const fromReplica = shard.link(node, shard.primary);
  const blackhole = { kind: 'blackhole' } as const;
  switch (fault.kind) {
    case 'blackhole':
      for (const link of [toReplica, fromReplica]) {
        if (
          fault.direction === 'both' ||
          (fault.direction === 'to-replica') === (link === toReplica)
        ) {
          link.set('toTarget', blackhole);
          link.set('toClient', blackhole);
        }
      }
      return Promise.resolve();
    case 'delay':
      for (const link of [toReplica, fromReplica]) {
        link.set('toTarget', { kind: 'delay', ms: fault.ms });
        link.set('toClient', { kind: 'delay', ms: fault.ms });
      }
      return Promise.resolve();
    case 'drop':
      toReplica.set('toTarget', { kind: 'drop' });
      return Promise.resolve();
    case 'reset':
      return resetLinks([toReplica, fromReplica]);
    case 'partition':
      return partition(shard.linksOf(node));
  }
}

async function resetLinks(links: readonly ReturnType<Shard['link']>[]): Promise<void> {
  for (const link of links) {
    await link.setAccept('reset');
    link.reset();
  }
}

async function partition(links: readonly ReturnType<Shard['link']>[]): Promise<void> {
  for (const link of links) {
    link.set('toTarget', { kind: 'blackhole' });
    link.set('toClient', { kind: 'blackhole' });
    await link.setAccept('blackhole');
  }
}

/** Waits for the primary to revoke `node` (logged at line `from` or later). */
async function revoked(run: Run, node: string, from: number): Promise<void> {
  const primary = run.shard.process(run.shard.primary);
  const match = (line: LogLine) => line.event === 'eligibility-revoked' && line.peer === node;
  await primary.line(match, from, stallMs).catch((error: unknown) => {
    throw new Error(`the primary did not revoke ${node}'s eligibility: ${String(error)}`);
  });
  note(run, `${node} revoked`);
}

async function healLinks(run: Run, node: string): Promise<void> {
  for (const link of run.shard.linksOf(node)) await link.heal();
}

async function perform(run: Run, action: Action): Promise<void> {
  const { shard } = run;
  await replies(run, action.before);
  note(run, JSON.stringify(action));
  switch (action.kind) {
    case 'kill-replica':
      await shard.kill(action.node);
      await replies(run, action.during);
      await restartReplica(run, action.node, action.again);
      return;
    case 'link-fault': {
      const from = shard.process(shard.primary).lines.length;
      await applyLinkFault(run, action.node, action.fault);
      // Held until the primary notices (a delay only slows the link down), then a while more.
      if (action.fault.kind !== 'delay') await revoked(run, action.node, from);
      await replies(run, action.during);
      await healLinks(run, action.node);
      await untilEligible(shard, run.clients, action.node);
      return;
    }
    case 'quorum-loss':
      return quorumLoss(run, action);
    case 'restart-primary':
      await shard.kill(shard.primary);
      await shard.start(shard.primary);
      for (const id of shard.replicas) await untilEligible(shard, run.clients, id);
      return;
    case 'wipe-replica': {
      await shard.kill(action.node);
      removeTemporary(shard.dataDir(action.node));
      await replies(run, action.during);
      // A checkpoint moves the primary's log start past LSN 1: the empty replica needs a
      // full sync (it could otherwise catch up from the log).
      const primary = await run.clients.get(shard.primary);
      expect(await primary.call('CHECKPOINT')).toBeTruthy();
      await shard.start(action.node);
      const installed = (line: LogLine) => line.event === 'full-sync-installed';
      await shard.process(action.node).line(installed, 0, stallMs);
      note(run, `${action.node} installed a full sync`);
      const info = await run.clients.info(action.node, ['replication']);
      expect(info.get('master_sync_state')).toBe('done');
      expect(info.get('master_sync_in_progress')).toBe('0');
      await untilEligible(shard, run.clients, action.node);
      return;
    }
    case 'outage':
      for (const id of action.order) await shard.kill(id);
      for (const id of action.order) await shard.start(id);
      for (const id of shard.replicas) await untilEligible(shard, run.clients, id);
      return;
  }
}

async function quorumLoss(
  run: Run,
  action: Extract<Action, { kind: 'quorum-loss' }>,
): Promise<void> {
  const { shard, history } = run;
  const cut = [shard.link(shard.primary, action.cut), shard.link(action.cut, shard.primary)];
  if (action.reset) await resetLinks(cut);
  else await partition(cut);
  await shard.kill(action.killed);
  // Writes now fail: NOREPLICAS at once (no replica connected), or after the commit timeout
  // (UNKNOWN while the ABORT cannot reach a majority). A few of them, then heal.
  const failedBefore = history.counts.noreplicas + history.counts.indeterminate;
  await replies(run, 4);
  const failed = history.counts.noreplicas + history.counts.indeterminate - failedBefore;
  note(run, `quorum lost: ${failed} of the last 4+ replies failed`);
  await healLinks(run, action.cut);
  await shard.start(action.killed);
  for (const id of shard.replicas) await untilEligible(shard, run.clients, id);
}

// ---------------------------------------------------------------------------------------------
// The final checks.

interface Outcome {
  problems: string[];
  summary: string;
}

/** Two writes after the workload: every earlier write is then under a logged COMMIT. */
async function fenceWrites(run: Run): Promise<void> {
  const redis = new Redis(connectOptions(run.shard.clientPort(run.shard.primary)));
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    for (const index of [1, 2]) {
      const reply = await redis.call('SET', `fence:${index}`, 'x', 'RID', `fence-${index}`);
      if (reply !== 'OK') throw new Error(`fence write ${index}: ${String(reply)}`);
    }
  } finally {
    redis.disconnect();
  }
}

interface LiveOutcome extends Outcome {
  expected: Map<string, string>;
  statuses: Map<string, RequestStatus>;
}

async function checkLiveNodes(run: Run): Promise<LiveOutcome> {
  const { shard, clients, history } = run;
  const rids = history.writes.map((write) => write.rid);
  const primaryStatuses = await statusesOf(await clients.get(shard.primary), rids);
  const verdict = checkStatuses(history.writes, primaryStatuses);
  const problems = [...verdict.problems];
  const expected = expectedState(verdict.committed);
  const model = new FinalValueModel(history.writes, (life) => shard.lifeEndMs(primaryId, life));
  const withFences = new Map([...expected, ['fence:1', 'x'], ['fence:2', 'x']]);
  for (const id of shard.ids) {
    const redis = await clients.get(id);
    problems.push(...checkState(id, await stateOf(redis), withFences, model));
    if (id === shard.primary) continue;
    const statuses: Map<string, RequestStatus> = await statusesOf(redis, rids);
    problems.push(...checkReplicaStatuses(id, history.writes, primaryStatuses, statuses));
  }
  const { committed, aborted, unknown } = verdict.resolved;
  const summary =
    `${verdict.committed.length} committed, ${expected.size} keys; indeterminate resolved: ` +
    `${committed} committed, ${aborted} aborted, ${unknown} never logged`;
  return { problems, summary, expected, statuses: primaryStatuses };
}

/** Stops every node (SIGTERM, exit 0), then wal-inspect on each data directory. */
async function checkDataDirs(run: Run, script: string, live: LiveOutcome): Promise<Outcome> {
  const expected = live.expected;
  const { shard } = run;
  const problems: string[] = [];
  for (const id of shard.ids) {
    const status = await shard.stop(id);
    if (status.code !== 0) problems.push(`${id} stopped with ${JSON.stringify(status)}`);
  }
  const withoutFences = (state: Map<string, string>) =>
    new Map([...state].filter(([key]) => !key.startsWith('fence:')));
  const diffs: string[] = [];
  for (const id of shard.ids) {
    const dir = shard.dataDir(id);
    const verify = await walInspect(script, ['verify', dir]);
    if (verify.code !== 0)
      problems.push(`${id}: wal-inspect verify exit ${verify.code}: ${verify.stdout}`);
    const { state, run: inspected } = await inspectState(script, dir);
    if (inspected.code !== 0) problems.push(`${id}: wal-inspect state exit ${inspected.code}`);
    const name = `${id} (wal-inspect state)`;
    problems.push(...checkState(name, withoutFences(state), expected, null));
    if (id === shard.primary) {
      problems.push(...(await checkPrimaryLog(run, script, live.statuses)));
      continue;
    }
    const diff = await walInspect(script, ['diff', '--json', shard.dataDir(shard.primary), dir]);
    const result =
      diff.stdout.length > 0
        ? String((JSON.parse(diff.stdout) as { result: unknown }).result)
        : '?';
    diffs.push(`${id} ${result}`);
    if (diff.code !== 0)
      problems.push(`wal-inspect diff ${shard.primary} ${id}: exit ${diff.code}: ${diff.stdout}`);
  }
  return { problems, summary: `wal-inspect diff: ${diffs.join(', ')}` };
}

/** STATUS against the commit rules applied to the primary's log (`wal-inspect dump`). */
async function checkPrimaryLog(
  run: Run,
  script: string,
  statuses: Map<string, RequestStatus>,
): Promise<string[]> {
  const dump = await walInspect(script, ['dump', '--json', run.shard.dataDir(primaryId)]);
  if (dump.code !== 0) return [`wal-inspect dump ${primaryId}: exit ${dump.code}: ${dump.stderr}`];
  const records = dump.stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as DumpedRecord);
  return checkLog(records, run.history.writes, statuses);
}

/** Log lines no run should have: internal errors, fenced nodes, failed storage. */
function logProblems(shard: Shard): string[] {
  const bad = new Set(['command.failed', 'node.fenced', 'replica-storage-failed', 'server.error']);
  const problems = [...shard.unexpectedExits.map((exit) => `unexpected exit: ${exit}`)];
  for (const life of shard.allLives()) {
    for (const line of life.lines) {
      if (bad.has(line.event))
        problems.push(`${life.id} life ${life.life}: ${JSON.stringify(line)}`);
    }
  }
  return problems;
}

/** One line: the faults by kind, the replies by kind, what the checks saw. */
function summary(run: Run, actions: readonly Action[], parts: readonly string[]): string {
  const kinds = new Map<string, number>();
  for (const action of actions) {
    const kind = action.kind === 'link-fault' ? `link-${action.fault.kind}` : action.kind;
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  }
  const revocations = run.journal.filter((entry) => entry.endsWith(' revoked')).length;
  const { ok, noreplicas, indeterminate } = run.history.counts;
  const unknownReplies = run.history.writes.filter((write) =>
    write.detail.startsWith('UNKNOWN'),
  ).length;
  const seconds = ((performance.now() - run.startMs) / 1000).toFixed(1);
  return (
    `e2e shard: seed ${seed}, ${actions.length} faults in ${seconds} s ` +
    `(${[...kinds].map(([kind, count]) => `${kind} ${count}`).join(', ')}; ` +
    `${revocations} revocations awaited); ${run.history.writes.length} writes: ${ok} OK, ` +
    `${noreplicas} NOREPLICAS, ${indeterminate} indeterminate (${unknownReplies} UNKNOWN ` +
    `replies, the rest connection losses); ${parts.join('; ')}`
  );
}

// ---------------------------------------------------------------------------------------------

let prepared: PreparedWriter;
const temporary: string[] = [];
let shard: Shard | null = null;

beforeAll(async () => {
  prepared = await prepareWriter();
  temporary.push(prepared.root);
});

afterEach(async () => {
  await shard?.close();
  shard = null;
  await killAllNodes();
});

afterAll(() => {
  for (const dir of temporary.splice(0)) removeTemporary(dir);
});

function primaryAccess(target: Shard): PrimaryAccess {
  return {
    primary: async () => {
      await target.whenUp(primaryId);
      return { port: target.clientPort(primaryId), life: target.life(primaryId) };
    },
    backoff: async () => {
      if (!target.isUp(primaryId)) return;
      await target.process(primaryId).nextEvent(['peer.up', 'eligibility-granted'], 500);
    },
  };
}

async function startShard(run: Run): Promise<void> {
  await Promise.all(run.shard.ids.map((id) => run.shard.start(id)));
  for (const id of run.shard.replicas) await untilEligible(run.shard, run.clients, id);
}

async function runFaults(run: Run, actions: readonly Action[]): Promise<Workload> {
  const workload = new Workload({ seed, ...workloadShape }, primaryAccess(run.shard), run.history);
  // A writer that throws stops the test at once rather than at the next stall.
  const failed = workload.done.then(
    () => new Error(`the writers stopped early: each made ${workloadShape.writesPerWriterMax}`),
    (error: unknown) => error,
  );
  for (const action of actions) {
    const outcome = await Promise.race([perform(run, action).then(() => null), failed]);
    if (outcome !== null) throw outcome;
  }
  return workload;
}

async function quiesce(run: Run, workload: Workload): Promise<void> {
  await run.shard.healAll();
  for (const id of run.shard.replicas) await untilEligible(run.shard, run.clients, id);
  workload.stop();
  await within(workload.done, stallMs, 'the writers to stop');
  await fenceWrites(run);
  await untilConverged(run.shard, run.clients);
  note(run, 'quiesced');
}

describe('e2e: a three-node shard of real processes under faults', () => {
  it(`keeps every acknowledged write and no refused one (seed ${seed})`, async () => {
    const random = new Random(seed);
    const actions = schedule(random);
    const dataRoot = mkdtempSync(join(tmpdir(), 'syncwal-e2e-shard-'));
    let failed = false;
    shard = await Shard.create({
      script: join(prepared.root, 'src', 'cli', 'syncwal.js'),
      dataRoot,
      ids,
      primary: primaryId,
      secret: `e2e-shard-secret-${seed}`,
      serveArgs,
    });
    const run: Run = {
      shard,
      clients: new ControlClients(shard),
      history: new ClientHistory(),
      journal: [],
      startMs: performance.now(),
    };
    const context = () =>
      `seed ${seed} (replay: SHARD_SEED=${seed}), data ${dataRoot}\n` +
      `journal:\n${run.journal.join('\n')}\n${run.shard.diagnostics()}`;
    try {
      await startShard(run);
      const workload = await runFaults(run, actions);
      await quiesce(run, workload);
      const live = await checkLiveNodes(run);
      run.clients.close();
      const inspect = join(prepared.root, 'src', 'cli', 'wal-inspect.js');
      const dirs = await checkDataDirs(run, inspect, live);
      const problems = [...live.problems, ...dirs.problems, ...logProblems(run.shard)];
      problems.push(...run.history.unexpected.map((text) => `unexpected reply: ${text}`));
      console.log(summary(run, actions, [live.summary, dirs.summary]));
      const more = problems.length > 40 ? [`... and ${problems.length - 40} more`] : [];
      expect([...problems.slice(0, 40), ...more], context()).toEqual([]);
      expect(run.history.counts.ok).toBeGreaterThan(actions.length * 10);
    } catch (error: unknown) {
      failed = true;
      console.log(`e2e shard failed (data and logs kept): ${context()}`);
      throw error;
    } finally {
      run.clients.close();
      // A failure keeps the data directories and every node's log lines for a post-mortem.
      if (keep || failed) run.shard.writeLogs(join(dataRoot, 'logs'));
      else temporary.push(dataRoot);
    }
  }, 600_000);
});
