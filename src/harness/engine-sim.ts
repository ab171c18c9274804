/**
 * The crash-recovery harness, v1 (DESIGN §7, RELIABILITY §3.1 L1): one node on the simulated
 * disk and the simulated checkpoint device, sharing one virtual-time scheduler, under a random
 * workload and a random nemesis. Everything random comes from the seed, so `runEngineSeed(s)`
 * replays a run exactly.
 *
 * Workload: a few clients, each with at most one operation in flight, issue puts, deletes,
 * batches, INCRs, compare-and-sets, reads and scans. Every write carries a request id, so every
 * write whose outcome is not known (UNKNOWN, or no answer before a crash) can be decided after
 * the restart from `status(requestId)`. Some writes are retried with their request id: while the
 * first attempt is in flight, after it answered, and after a crash.
 *
 * Nemesis (between scheduler steps, each seed enabling a random subset of faults at random
 * rates, "swarm testing"): power loss with unsynced-data loss and torn sectors, also during
 * recovery; fdatasync EIO (the node must fence; it is then crashed and restarted); failed
 * writes; a full disk (the next segment preparation fails with NOSPACE) that is freed later;
 * manual checkpoints; failed checkpoint applies (EIO and ENOSPC).
 *
 * The model records, for every write, its command and the outcome of each attempt. It keeps
 * the committed writes as a set keyed by LSN; replaying them in LSN order gives the state the
 * node must hold. Invariants:
 * - (a) after every restart, and at the end, the node's full scan EQUALS the replay of every
 *   committed write: every OK write is there (unless overwritten later), nothing else is;
 * - (b) a write answered with a definitive error (INVALID, NOSPACE, NOREPLICAS, or IOERR from
 *   a fenced node) never commits: its request id is never 'committed' unless a later attempt
 *   of it was;
 * - (c) an INCR answered OK reports the value the replay computes at its LSN, a committed CAS
 *   had its expected value, a committed delete found its key;
 * - (d) a retry with a known request id answers `duplicate: true` with the first attempt's LSN
 *   (and INCR value), and no request id commits at two LSNs;
 * - (e) a read returns exactly the committed value of its key at the moment it was invoked
 *   (the node applies a write before it answers OK, and the harness only acts between steps,
 *   when every answer has been delivered, so the model and the node agree exactly then);
 * - a write invoked on a fenced node never answers OK, and every operation completes once the
 *   faults stop (liveness at quiescence).
 *
 * A violation throws a `SimulationFailure` whose message starts with `seed N:` and ends with
 * the last trace lines. The trace is always kept in a ring buffer; `trace: true` keeps it all.
 */
import { SyncwalError } from '../core/errors.js';
import { freeSpaceReserveBytes } from '../core/limits.js';
import type { ReadMode, ScanPage, SyncwalNode } from '../engine/node.js';
import { openNodeWith } from '../engine/open.js';
import type { Disk } from '../ports/disk.js';
import { SimCheckpointDevice } from '../sim/checkpoint.js';
import { SimDisk, type CrashMode } from '../sim/disk.js';
import { Random } from '../sim/random.js';
import { SimScheduler } from '../sim/scheduler.js';
import { scanLog } from '../storage/scan-log.js';
import { CountingDisk, quietDiskEvents } from './cluster-disk.js';
import type { BatchItem, Command } from './cluster-model.js';
import { invoke, type Answer } from './invoke.js';

/**
 * Coverage counters. Every one must be above zero over a CI run: each proves that a fault was
 * injected or a recovery path was taken, so a harness change that silently stops exercising
 * one fails CI. The less obvious ones:
 * - crashesWithUnsyncedData: power losses with written, not yet synced data (it may be lost);
 * - tornSectors: sectors a crash garbled, or lost while keeping other unsynced sectors (a
 *   partially persisted write);
 * - recoveriesWithTornTail: restarts whose log scan found a torn tail to cut;
 * - crashesDuringRecovery: power losses while the node was still opening;
 * - fsyncFailures, writeFailures: injected fdatasync and write errors that reached the log;
 * - unknownOutcomesResolved: writes answered UNKNOWN, or not at all before a crash, decided
 *   by `status()` after the restart (as committed, or as lost);
 * - segmentsDeleted: log segments removed after checkpoints;
 * - duplicatesReturned: retries answered from the first attempt (`duplicate: true`).
 */
export const counterNames = [
  'crashes',
  'crashesWithUnsyncedData',
  'tornSectors',
  'recoveriesWithTornTail',
  'crashesDuringRecovery',
  'fsyncFailures',
  'writeFailures',
  'fencedNodes',
  'unknownOutcomesResolved',
  'unknownResolvedCommitted',
  'unknownResolvedLost',
  'noSpaceRejections',
  'checkpoints',
  'checkpointFailures',
  'segmentsDeleted',
  'requestIdRetries',
  'duplicatesReturned',
  'okWrites',
  'puts',
  'incrOps',
  'casOps',
  'batchOps',
  'deletes',
  'reads',
  'scans',
  'restarts',
] as const;

export type CounterName = (typeof counterNames)[number];
export type Counters = Record<CounterName, number>;

export interface SeedOptions {
  /** Keep the whole trace (returned in the report and put in a failure's message). */
  trace?: boolean;
  /** Client operations to issue before the run quiesces (default 160). */
  opsMax?: number;
}

export interface SeedReport {
  seed: number;
  counters: Counters;
  /** The whole trace with `trace: true`, else its last lines. */
  trace: string[];
  ops: number;
  steps: number;
  virtualMs: number;
}

/** A violated invariant (or an engine error the harness cannot explain). */
export class SimulationFailure extends Error {
  readonly seed: number;
  readonly trace: string[];
  constructor(seed: number, problem: string, trace: string[]) {
    super(`seed ${seed}: ${problem}\n--- trace (${trace.length} lines) ---\n${trace.join('\n')}`);
    this.seed = seed;
    this.trace = trace;
  }
  override get name(): string {
    return 'SimulationFailure';
  }
}

export function emptyCounters(): Counters {
  const counters = {} as Counters;
  for (const name of counterNames) counters[name] = 0;
  return counters;
}

const nodeDir = '/node';
const walDir = '/node/wal';
const traceTailLines = 30;
/** Bounds that turn a hang into a reported failure instead of a stuck process. */
const driveStepsMax = 200_000;
const idleTurnsMax = 50;
const quiesceStepsMax = 100_000;
const restartAttemptsMax = 12;
const runStepsMax = 400_000;

// -------------------------------------------------------------------------------------------
// Trace: a ring buffer of the last lines, or the whole run.

class Trace {
  readonly #lines: string[] = [];
  readonly #full: boolean;

  constructor(full: boolean) {
    this.#full = full;
  }

  add(line: string): void {
    this.#lines.push(line);
    // Bounded: a long run keeps only what a failure report prints.
    if (!this.#full && this.#lines.length > traceTailLines) {
      this.#lines.shift();
    }
  }

  lines(): string[] {
    return [...this.#lines];
  }
}

// -------------------------------------------------------------------------------------------
/** The shared pass-through disk, counting what a single node's faults did. */
function countingDisk(disk: Disk, counters: Counters): CountingDisk {
  const counting = new CountingDisk(disk);
  counting.events = {
    ...quietDiskEvents,
    writeFailed: () => (counters.writeFailures += 1),
    datasyncFailed: () => (counters.fsyncFailures += 1),
    // Only checkpoints delete whole segments on a single node (prefix truncation).
    segmentRemoved: () => (counters.segmentsDeleted += 1),
  };
  return counting;
}

// -------------------------------------------------------------------------------------------
// Commands and the model.

/** One write (one request id) and what is known of its attempts. */
interface WriteRecord {
  requestId: string;
  command: Command;
  /** The LSN it committed at, once known (an OK answer or a status after restart). */
  committedLsn: number | null;
  /** INCR values answered OK for it (first answer and duplicates). */
  incrValues: bigint[];
  /** Attempts in flight in the current process. */
  inflight: number;
  /** Attempts whose outcome is unknown until the next restart resolves them. */
  unresolved: number;
  /** An attempt answered OK without logging anything (delete of an absent key, CAS miss). */
  noop: boolean;
}

interface Attempt {
  record: WriteRecord;
  client: Client;
  /** The node was already fenced when the attempt was invoked: it must not answer OK. */
  fencedAtInvoke: boolean;
}

interface Client {
  id: number;
  busy: boolean;
}

interface Replayed {
  state: Map<string, string>;
  lsnMax: number;
  problem: string | null;
}

interface SeedConfig {
  segmentSizeBytes: number;
  checkpointLogBytes: number;
  clients: number;
  issueProbability: number;
  keys: number;
  padBytesMax: number;
  latencyMaxMs: number;
  rates: {
    crash: number;
    fsyncFault: number;
    writeFault: number;
    noSpace: number;
    checkpoint: number;
    checkpointFault: number;
    retry: number;
    recoveryCrash: number;
  };
}

/**
 * Swarm testing: each seed draws its own shape and its own subset of faults, so rare
 * combinations (a full disk during a checkpoint failure, a crash during recovery) happen.
 */
function seedConfig(random: Random): SeedConfig {
  const maybe = (probability: number, rates: number[]) =>
    random.bool(probability) ? random.pick(rates) : 0;
  const segmentSizeBytes = random.pick([4096, 8192, 12288, 16384]);
  // Large values make writes that span pages, which a crash can persist in part (a torn
  // write); a quarter segment still fits a record and the COMMIT riding with it.
  const padBytesMax = Math.min(random.pick([8, 64, 300, 900, 2500, 2500]), segmentSizeBytes / 4);
  return {
    segmentSizeBytes,
    checkpointLogBytes: random.bool(0.5) ? random.range(2, 12) * 1024 : 0,
    clients: random.range(1, 8),
    issueProbability: random.pick([0.1, 0.2, 0.4]),
    keys: random.range(2, 10),
    padBytesMax,
    latencyMaxMs: random.range(1, 10),
    rates: {
      crash: random.pick([1 / 40, 1 / 100, 1 / 250, 1 / 600]),
      fsyncFault: maybe(0.6, [1 / 300, 1 / 1000]),
      writeFault: maybe(0.4, [1 / 500, 1 / 1500]),
      noSpace: maybe(0.6, [1 / 150, 1 / 500]),
      checkpoint: maybe(0.6, [1 / 40, 1 / 200]),
      checkpointFault: maybe(0.5, [1 / 100, 1 / 400]),
      retry: random.pick([0.03, 0.1]),
      recoveryCrash: maybe(0.4, [0.2, 0.5]),
    },
  };
}

// -------------------------------------------------------------------------------------------
// The harness state.

interface Harness {
  seed: number;
  config: SeedConfig;
  workload: Random;
  nemesis: Random;
  scheduler: SimScheduler;
  disk: SimDisk;
  countingDisk: CountingDisk;
  device: SimCheckpointDevice;
  node: SyncwalNode | null;
  /** Bumped by every crash: answers from an older process are ignored (they never come). */
  epoch: number;
  step: number;
  ops: number;
  opsMax: number;
  writeSequence: number;
  records: WriteRecord[];
  inflight: Set<Attempt>;
  clients: Client[];
  counters: Counters;
  trace: Trace;
  failure: string | null;
  replayCache: Replayed | null;
  fenceCrashAt: number | null;
  /** A crash the nemesis decided on, waiting (until this step) for unsynced written data. */
  crashArmedUntil: number | null;
  /** While the disk is full: the step to free it at (moved closer once NOSPACE was seen). */
  capacityFreeAt: number | null;
  /** NOSPACE rejections counted when the disk was last made full. */
  noSpaceSeenAtFull: number;
  checkpointLsnSeen: number;
  quiescing: boolean;
}

function createHarness(seed: number, options: SeedOptions): Harness {
  const root = new Random(seed);
  const config = seedConfig(root.fork());
  const workload = root.fork();
  const nemesis = root.fork();
  const scheduler = new SimScheduler();
  const latencyMs = { min: 0, max: config.latencyMaxMs };
  const disk = new SimDisk({ seed: root.fork().seed, scheduler, latencyMs });
  const device = new SimCheckpointDevice({ seed: root.fork().seed, scheduler, latencyMs });
  const counters = emptyCounters();
  const clients = Array.from({ length: config.clients }, (_, id) => ({ id, busy: false }));
  return {
    seed,
    config,
    workload,
    nemesis,
    scheduler,
    disk,
    countingDisk: countingDisk(disk, counters),
    device,
    node: null,
    epoch: 0,
    step: 0,
    ops: 0,
    opsMax: options.opsMax ?? 160,
    writeSequence: 0,
    records: [],
    inflight: new Set(),
    clients,
    counters,
    trace: new Trace(options.trace === true),
    failure: null,
    replayCache: null,
    fenceCrashAt: null,
    crashArmedUntil: null,
    capacityFreeAt: null,
    noSpaceSeenAtFull: 0,
    checkpointLsnSeen: 0,
    quiescing: false,
  };
}

function note(h: Harness, line: string): void {
  h.trace.add(`[${h.scheduler.now} e${h.epoch}] ${line}`);
}

/** Records the first violation; the main loop throws it after the current step. */
function fail(h: Harness, problem: string): void {
  if (h.failure !== null) return;
  h.failure = problem;
  note(h, `VIOLATION: ${problem}`);
}

function failure(h: Harness, problem: string): SimulationFailure {
  fail(h, problem);
  return new SimulationFailure(h.seed, h.failure ?? problem, h.trace.lines());
}

function throwIfFailed(h: Harness): void {
  if (h.failure !== null) throw new SimulationFailure(h.seed, h.failure, h.trace.lines());
}

function describeCommand(command: Command): string {
  switch (command.kind) {
    case 'put':
      return `put ${command.key}=${command.value.slice(0, 12)}`;
    case 'delete':
      return `delete ${command.key}`;
    case 'batch':
      return `batch [${command.operations.map((item) => `${item.op} ${item.key}`).join(', ')}]`;
    case 'incr':
      return `incrBy ${command.key} ${command.delta}`;
    case 'cas':
      return `cas ${command.key} ${command.expected ?? 'null'} -> ${command.next ?? 'null'}`;
  }
}

// -------------------------------------------------------------------------------------------
// Replay of the model: the committed writes in LSN order.

function replayIncrement(state: Map<string, string>, record: WriteRecord, key: string): string {
  const command = record.command;
  if (command.kind !== 'incr') return '';
  const current = state.get(key) ?? '0';
  if (!/^-?(0|[1-9][0-9]*)$/.test(current)) {
    return `INCR ${record.requestId} committed on the non-integer value '${current}'`;
  }
  const next = BigInt(current) + BigInt(command.delta);
  state.set(key, next.toString());
  const wrong = record.incrValues.find((value) => value !== next);
  if (wrong !== undefined) {
    return `INCR ${record.requestId} answered ${wrong} but replays to ${next}`;
  }
  return '';
}

/** Applies one committed write to `state`; returns a problem, or '' if it replays cleanly. */
function replayOne(state: Map<string, string>, record: WriteRecord): string {
  const command = record.command;
  switch (command.kind) {
    case 'put':
      state.set(command.key, command.value);
      return '';
    case 'delete':
      if (!state.has(command.key)) {
        return `delete ${record.requestId} committed though ${command.key} was absent`;
      }
      state.delete(command.key);
      return '';
    case 'batch':
      for (const item of command.operations) {
        if (item.op === 'put') state.set(item.key, item.value);
        else state.delete(item.key);
      }
      return '';
    case 'incr':
      return replayIncrement(state, record, command.key);
    case 'cas': {
      const current = state.get(command.key) ?? null;
      if (current !== command.expected) {
        return `CAS ${record.requestId} committed though ${command.key} held ${current}`;
      }
      if (command.next === null) state.delete(command.key);
      else state.set(command.key, command.next);
      return '';
    }
  }
}

function replayModel(h: Harness): Replayed {
  if (h.replayCache !== null) return h.replayCache;
  const committed = h.records.filter((record) => record.committedLsn !== null);
  committed.sort((left, right) => (left.committedLsn ?? 0) - (right.committedLsn ?? 0));
  const state = new Map<string, string>();
  let problem: string | null = null;
  let lsnMax = 0;
  for (const record of committed) {
    const lsn = record.committedLsn ?? 0;
    if (lsn === lsnMax) problem ??= `two writes committed at LSN ${lsn}`;
    lsnMax = lsn;
    const found = replayOne(state, record);
    if (found !== '') problem ??= `${found} (lsn ${lsn})`;
  }
  h.replayCache = { state, lsnMax, problem };
  return h.replayCache;
}

// -------------------------------------------------------------------------------------------
// The workload.

function randomKey(h: Harness): string {
  return `k${h.workload.int(h.config.keys)}`;
}

function randomValue(h: Harness): string {
  const random = h.workload;
  // Integers let INCR succeed on keys that a put wrote; the others make INCR fail INVALID.
  if (random.bool(0.4)) return String(random.range(-100, 100));
  const pad = 'x'.repeat(random.int(h.config.padBytesMax + 1));
  return `v${h.writeSequence}.${pad}`;
}

function randomCommand(h: Harness, kind: Command['kind']): Command {
  const random = h.workload;
  switch (kind) {
    case 'put':
      return { kind, key: randomKey(h), value: randomValue(h) };
    case 'delete':
      return { kind, key: randomKey(h) };
    case 'batch': {
      const count = random.range(1, 4);
      const operations = Array.from({ length: count }, (): BatchItem => {
        const key = randomKey(h);
        return random.bool(0.75)
          ? { op: 'put', key, value: randomValue(h) }
          : { op: 'delete', key };
      });
      return { kind, operations };
    }
    case 'incr':
      return { kind, key: randomKey(h), delta: random.range(-5, 20) };
    case 'cas': {
      const key = randomKey(h);
      const current = replayModel(h).state.get(key) ?? null;
      // Mostly the committed value (a hit, unless a pending write changes it first).
      const expected = random.bool(0.7) ? current : random.pick([null, 'stale', '0']);
      const next = random.bool(0.15) ? null : randomValue(h);
      return { kind, key, expected, next };
    }
  }
}

function countCommand(h: Harness, command: Command): void {
  const counters = h.counters;
  if (command.kind === 'put') counters.puts += 1;
  else if (command.kind === 'delete') counters.deletes += 1;
  else if (command.kind === 'batch') counters.batchOps += 1;
  else if (command.kind === 'incr') counters.incrOps += 1;
  else counters.casOps += 1;
}

/** Invokes one attempt of `record` from `client`; the answer updates the model later. */
function issueWrite(h: Harness, node: SyncwalNode, client: Client, record: WriteRecord): void {
  const attempt: Attempt = { record, client, fencedAtInvoke: node.info().fenced !== null };
  const epoch = h.epoch;
  record.inflight += 1;
  client.busy = true;
  h.inflight.add(attempt);
  h.ops += 1;
  note(h, `c${client.id} ${describeCommand(record.command)} id=${record.requestId}`);
  invoke(node, record.command, record.requestId).then(
    (answer) => {
      if (epoch === h.epoch) settleOk(h, attempt, answer);
    },
    (error: unknown) => {
      if (epoch === h.epoch) settleError(h, attempt, error);
    },
  );
}

function finishAttempt(h: Harness, attempt: Attempt): void {
  attempt.record.inflight -= 1;
  attempt.client.busy = false;
  h.inflight.delete(attempt);
}

function settleOk(h: Harness, attempt: Attempt, answer: Answer): void {
  finishAttempt(h, attempt);
  const record = attempt.record;
  const what = answer.duplicate ? 'duplicate ' : '';
  const value = answer.value === null ? '' : ` value ${answer.value}`;
  note(h, `c${attempt.client.id} ${record.requestId} -> ok ${what}lsn ${answer.lsn}${value}`);
  if (attempt.fencedAtInvoke) fail(h, `${record.requestId} was invoked on a fenced node: OK`);
  if (!answer.effect) {
    // A retry of a write answered without effect gets that answer again (remembered).
    if (answer.duplicate && record.committedLsn !== null) {
      fail(h, `${record.requestId}: answered without effect, yet committed`);
    }
    record.noop = true;
    return;
  }
  h.counters.okWrites += 1;
  if (answer.duplicate) {
    h.counters.duplicatesReturned += 1;
    if (record.committedLsn === null && record.inflight === 0) {
      fail(h, `${record.requestId}: duplicate answer, yet no attempt of it committed`);
    }
  } else if (record.committedLsn !== null) {
    fail(h, `${record.requestId} applied twice (lsn ${record.committedLsn}, ${answer.lsn})`);
  }
  if (record.committedLsn !== null && record.committedLsn !== answer.lsn) {
    fail(h, `${record.requestId}: answered lsn ${answer.lsn}, committed at ${record.committedLsn}`);
  }
  if (answer.value !== null) {
    const first = record.incrValues[0];
    if (first !== undefined && first !== answer.value) {
      fail(h, `${record.requestId}: INCR answered ${answer.value}, first answered ${first}`);
    }
    record.incrValues.push(answer.value);
  }
  record.committedLsn = answer.lsn;
  h.replayCache = null;
}

function settleError(h: Harness, attempt: Attempt, error: unknown): void {
  finishAttempt(h, attempt);
  const record = attempt.record;
  const code = error instanceof SyncwalError ? error.code : null;
  const message = error instanceof Error ? error.message : String(error);
  // A typed error's message starts with its code already.
  note(
    h,
    `c${attempt.client.id} ${record.requestId} -> ${code === null ? 'untyped: ' : ''}${message}`,
  );
  switch (code) {
    case 'UNKNOWN':
      record.unresolved += 1;
      return;
    case 'NOSPACE':
      h.counters.noSpaceRejections += 1;
      return;
    case 'INVALID':
    case 'NOREPLICAS':
      return;
    case 'IOERR':
      // A write is refused with IOERR only by a fenced node, before anything is logged.
      if (h.node?.info().fenced === null) fail(h, `${record.requestId}: IOERR, node not fenced`);
      return;
    default:
      fail(h, `${record.requestId}: unexpected error ${code ?? 'untyped'}: ${message}`);
  }
}

function newRecord(h: Harness, command: Command): WriteRecord {
  h.writeSequence += 1;
  const record: WriteRecord = {
    requestId: `w${h.writeSequence}`,
    command,
    committedLsn: null,
    incrValues: [],
    inflight: 0,
    unresolved: 0,
    noop: false,
  };
  h.records.push(record);
  return record;
}

/** A write worth retrying: one that logged (or may have logged) something, recently. */
function retryCandidate(h: Harness): WriteRecord | null {
  const recent = h.records.slice(-40).filter((record) => !record.noop);
  return recent.length === 0 ? null : h.workload.pick(recent);
}

function issueRead(h: Harness, node: SyncwalNode, client: Client): void {
  const key = randomKey(h);
  const replayed = replayModel(h);
  const expected = replayed.state.get(key) ?? null;
  const modes: (ReadMode | undefined)[] = [undefined, 'linearizable', 'lease', 'stale'];
  // Waiting for an applied LSN returns at once, so the read still sees the state at invocation.
  if (replayed.lsnMax > 0) modes.push({ after: replayed.lsnMax });
  const mode = h.workload.pick(modes);
  const epoch = h.epoch;
  h.counters.reads += 1;
  client.busy = true;
  const read = mode === undefined ? node.get(key) : node.get(key, { read: mode });
  read.then(
    (value) => {
      if (epoch !== h.epoch) return;
      client.busy = false;
      const got = value === null ? null : value.toString('utf8');
      note(h, `c${client.id} get ${key} -> ${got?.slice(0, 12) ?? 'null'}`);
      if (got !== expected) fail(h, `get ${key} returned ${got}, committed is ${expected}`);
    },
    (error: unknown) => {
      if (epoch !== h.epoch) return;
      client.busy = false;
      fail(h, `get ${key} failed: ${String(error)}`);
    },
  );
}

function issueClientOperation(h: Harness, node: SyncwalNode, client: Client): void {
  const random = h.workload;
  if (random.bool(h.config.rates.retry)) {
    const record = retryCandidate(h);
    if (record !== null) {
      h.counters.requestIdRetries += 1;
      note(h, `retry ${record.requestId}`);
      issueWrite(h, node, client, record);
      return;
    }
  }
  const draw = random.int(100);
  if (draw < 18) {
    issueRead(h, node, client);
    return;
  }
  if (draw < 22) {
    h.counters.scans += 1;
    h.ops += 1;
    void checkScan(h, node, 'scan during the run');
    return;
  }
  const kinds: Command['kind'][] = ['put', 'put', 'put', 'delete', 'batch', 'incr', 'incr', 'cas'];
  const command = randomCommand(h, random.pick(kinds));
  countCommand(h, command);
  issueWrite(h, node, client, newRecord(h, command));
}

function issueClientOperations(h: Harness): void {
  const node = h.node;
  if (node === null || h.quiescing) return;
  for (const client of h.clients) {
    if (h.ops >= h.opsMax) return;
    if (client.busy || !h.workload.bool(h.config.issueProbability)) continue;
    issueClientOperation(h, node, client);
  }
}

// -------------------------------------------------------------------------------------------
// Checks against the model.

/** Every committed entry of the node, by paging through full scans. */
async function scanAll(node: SyncwalNode): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  let start: Buffer | null = null;
  for (let page = 0; page < 10_000; page++) {
    const result: ScanPage =
      start === null ? await node.scan({ limit: 1000 }) : await node.scan({ limit: 1000, start });
    for (const entry of result.entries) {
      entries.set(entry.key.toString('utf8'), entry.value.toString('utf8'));
    }
    if (result.next === null) return entries;
    start = result.next;
  }
  return entries;
}

function stateDifference(expected: Map<string, string>, actual: Map<string, string>): string {
  for (const [key, value] of expected) {
    const got = actual.get(key);
    if (got !== value) return `${key}: node has ${got ?? 'nothing'}, committed is ${value}`;
  }
  for (const [key, value] of actual) {
    if (!expected.has(key)) return `${key}: node has ${value}, nothing committed`;
  }
  return '';
}

/** (a) + (c): the node's whole state equals the replay of the committed writes. */
async function checkScan(h: Harness, node: SyncwalNode, when: string): Promise<void> {
  const replayed = replayModel(h);
  if (replayed.problem !== null) fail(h, `${when}: ${replayed.problem}`);
  const expected = new Map(replayed.state);
  const actual = await scanAll(node);
  const difference = stateDifference(expected, actual);
  if (difference !== '') fail(h, `${when}: state differs from the replay: ${difference}`);
  note(h, `${when}: ${actual.size} keys match the replay of committed writes`);
}

/** Decides every write whose outcome was unknown from the restarted node's status. */
function resolveUnknowns(h: Harness, node: SyncwalNode): void {
  for (const record of h.records) {
    if (record.unresolved === 0) continue;
    const status = node.status(record.requestId);
    h.counters.unknownOutcomesResolved += record.unresolved;
    record.unresolved = 0;
    if (status.status === 'committed') {
      h.counters.unknownResolvedCommitted += 1;
      if (record.committedLsn === null) {
        record.committedLsn = status.lsn;
        h.replayCache = null;
      }
    } else {
      h.counters.unknownResolvedLost += 1;
    }
    note(h, `resolved ${record.requestId}: ${status.status}`);
  }
}

/** (b) + (d): every request id answers consistently with the model after a restart. */
function checkRequestIds(h: Harness, node: SyncwalNode): void {
  for (const record of h.records) {
    const status = node.status(record.requestId);
    if (record.committedLsn !== null) {
      const ok = status.status === 'committed' && status.lsn === record.committedLsn;
      if (!ok) {
        fail(
          h,
          `${record.requestId} committed at ${record.committedLsn}, status says ` +
            JSON.stringify(status),
        );
      }
    } else if (status.status === 'committed') {
      fail(h, `${record.requestId} was never committed, status says lsn ${status.lsn}`);
    }
  }
}

// -------------------------------------------------------------------------------------------
// Crash and restart.

function crash(h: Harness, why: string): void {
  const modes: CrashMode[] = ['random', 'random', 'random', 'random', 'lose-unsynced', 'clean'];
  const mode = h.nemesis.pick(modes);
  const report = h.disk.crash({ mode });
  h.device.crash();
  h.countingDisk.crashed();
  h.scheduler.clear();
  h.epoch += 1;
  h.node = null;
  h.counters.crashes += 1;
  if (report.writesUnsynced > 0) h.counters.crashesWithUnsyncedData += 1;
  h.counters.tornSectors += report.sectorsGarbled;
  // Sectors lost while others of the unsynced data were kept: a partially persisted write.
  if (report.sectorsKept > 0) h.counters.tornSectors += report.sectorsDropped;
  for (const attempt of h.inflight) {
    attempt.record.inflight -= 1;
    attempt.record.unresolved += 1;
  }
  h.inflight.clear();
  for (const client of h.clients) client.busy = false;
  h.disk.setCapacity(null);
  h.capacityFreeAt = null;
  h.fenceCrashAt = null;
  h.crashArmedUntil = null;
  note(
    h,
    `CRASH (${why}, ${mode}): ${report.writesUnsynced} unsynced writes, ` +
      `${report.sectorsGarbled} sectors garbled, ${report.sectorsDropped} dropped`,
  );
}

type Driven<T> =
  { kind: 'ok'; value: T } | { kind: 'error'; error: unknown } | { kind: 'interrupted' };

/**
 * Steps the scheduler until `promise` settles, or until `stepsBeforeCrash` steps ran (then it
 * reports 'interrupted' and the caller crashes). A promise that cannot settle is a failure.
 */
async function drive<T>(
  h: Harness,
  promise: Promise<T>,
  stepsBeforeCrash: number | null,
): Promise<Driven<T>> {
  let outcome: Driven<T> | null = null;
  promise.then(
    (value) => {
      outcome = { kind: 'ok', value };
    },
    (error: unknown) => {
      outcome = { kind: 'error', error };
    },
  );
  let idle = 0;
  for (let steps = 0; steps < driveStepsMax; steps++) {
    if (outcome !== null) return outcome;
    if (stepsBeforeCrash !== null && steps >= stepsBeforeCrash) return { kind: 'interrupted' };
    if (await h.scheduler.step()) {
      idle = 0;
      continue;
    }
    // Nothing is scheduled: give reactions that need no disk a turn, within a bound.
    if (++idle > idleTurnsMax) break;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw failure(h, 'an open, close or scan never settled (nothing left to run)');
}

/** Whether recovery will find a torn tail: the same read-only scan Log.open runs first. */
async function inspectLog(h: Harness): Promise<void> {
  if (!h.disk.exists(walDir)) return;
  const scanned = await drive(h, scanLog(h.disk, walDir), null);
  if (scanned.kind !== 'ok') return;
  if (scanned.value.tornTail !== null) {
    h.counters.recoveriesWithTornTail += 1;
    note(h, `log has a torn tail at offset ${scanned.value.tornTail.offset}`);
  }
}

function openNode(h: Harness): Promise<SyncwalNode> {
  const options = {
    dir: nodeDir,
    segmentSizeBytes: h.config.segmentSizeBytes,
    checkpointLogBytes: h.config.checkpointLogBytes,
  };
  const device = h.device;
  return openNodeWith(options, {
    disk: h.countingDisk,
    checkpointStore: async () => device.open(),
  });
}

/**
 * Opens the node, crashing it during recovery sometimes. An open that fails with IOERR or
 * NOSPACE met an injected fault that was still armed (the process died before it fired; the
 * capacity is unlimited during restarts, so NOSPACE comes from a failed write): crash, retry.
 */
async function openWithFaults(h: Harness): Promise<SyncwalNode> {
  for (let attempt = 0; attempt < restartAttemptsMax; attempt++) {
    await inspectLog(h);
    const crashing = attempt < 4 && h.nemesis.bool(h.config.rates.recoveryCrash);
    const stepsBeforeCrash = crashing ? h.nemesis.range(0, 80) : null;
    const opened = await drive(h, openNode(h), stepsBeforeCrash);
    if (opened.kind === 'ok') return opened.value;
    if (opened.kind === 'interrupted') {
      h.counters.crashesDuringRecovery += 1;
      crash(h, 'during recovery');
      continue;
    }
    const error = opened.error;
    const code = error instanceof SyncwalError ? error.code : null;
    if (code !== 'IOERR' && code !== 'NOSPACE') {
      throw failure(h, `restart failed: ${String(error)}`);
    }
    note(h, `open failed on an armed fault: ${String(error)}`);
    crash(h, 'open failed');
  }
  throw failure(h, `the node did not reopen in ${restartAttemptsMax} attempts`);
}

async function restart(h: Harness): Promise<void> {
  const node = await openWithFaults(h);
  const epoch = h.epoch;
  h.node = node;
  h.counters.restarts += 1;
  h.checkpointLsnSeen = node.info().checkpointLsn;
  node.on('fenced', (error) => {
    if (epoch !== h.epoch) return;
    h.counters.fencedNodes += 1;
    h.fenceCrashAt = h.step + h.nemesis.range(0, 20);
    note(h, `FENCED: ${String(error)}`);
  });
  const info = node.info();
  note(h, `restarted: lsn ${info.firstLsn}..${info.lastLsn}, checkpoint ${info.checkpointLsn}`);
  resolveUnknowns(h, node);
  await checkScan(h, node, 'after restart');
  checkRequestIds(h, node);
  throwIfFailed(h);
}

async function crashAndRestart(h: Harness, why: string): Promise<void> {
  crash(h, why);
  await restart(h);
}

// -------------------------------------------------------------------------------------------
// The nemesis.

function manualCheckpoint(h: Harness, node: SyncwalNode, why: string): void {
  const epoch = h.epoch;
  note(h, `checkpoint (${why})`);
  node.checkpoint().then(
    (result) => {
      if (epoch === h.epoch) note(h, `checkpoint -> lsn ${result.lsn}`);
    },
    (error: unknown) => {
      if (epoch !== h.epoch) return;
      const code = error instanceof SyncwalError ? error.code : null;
      h.counters.checkpointFailures += 1;
      note(h, `checkpoint -> ${String(error)}`);
      if (code !== 'NOSPACE' && code !== 'IOERR') fail(h, `checkpoint failed: ${String(error)}`);
    },
  );
}

/**
 * A full disk shows only when the next segment is prepared, so it stays full until a write was
 * refused with NOSPACE (then for a little longer), or for a bounded time if none came.
 */
function updateCapacity(h: Harness): void {
  const random = h.nemesis;
  if (h.capacityFreeAt === null) {
    if (!random.bool(h.config.rates.noSpace)) return;
    // Room for what is there, not for another segment plus the reserve: preparation fails.
    const spare = random.int(h.config.segmentSizeBytes);
    h.disk.setCapacity(h.disk.usedBytes() + freeSpaceReserveBytes + spare);
    h.capacityFreeAt = h.step + random.range(200, 1500);
    h.noSpaceSeenAtFull = h.counters.noSpaceRejections;
    note(h, 'FAULT: the disk is full');
    return;
  }
  if (h.counters.noSpaceRejections > h.noSpaceSeenAtFull) {
    h.capacityFreeAt = Math.min(h.capacityFreeAt, h.step + random.range(0, 100));
    h.noSpaceSeenAtFull = Number.MAX_SAFE_INTEGER;
  }
  if (h.step < h.capacityFreeAt) return;
  h.disk.setCapacity(null);
  h.capacityFreeAt = null;
  note(h, 'space freed');
}

function injectFaults(h: Harness, node: SyncwalNode): void {
  const random = h.nemesis;
  const rates = h.config.rates;
  if (random.bool(rates.fsyncFault)) {
    h.disk.failDatasync({ count: 1 });
    note(h, 'FAULT: the next fdatasync fails with EIO');
  }
  if (random.bool(rates.writeFault)) {
    const code = random.pick(['EIO', 'ENOSPC'] as const);
    h.disk.failWrite({ code, count: 1 });
    note(h, `FAULT: the next write fails with ${code}`);
  }
  updateCapacity(h);
  if (random.bool(rates.checkpointFault)) {
    const code = random.pick(['EIO', 'ENOSPC'] as const);
    h.device.failNextApply(code);
    note(h, `FAULT: the next checkpoint apply fails with ${code}`);
    manualCheckpoint(h, node, 'to meet the fault');
  } else if (random.bool(rates.checkpoint)) {
    manualCheckpoint(h, node, 'nemesis');
  }
}

async function nemesis(h: Harness): Promise<void> {
  const node = h.node;
  if (node === null || h.quiescing) return;
  if (h.fenceCrashAt !== null && h.step >= h.fenceCrashAt) {
    await crashAndRestart(h, 'the node fenced');
    return;
  }
  if (h.crashArmedUntil === null && h.nemesis.bool(h.config.rates.crash)) {
    h.crashArmedUntil = h.step + (h.nemesis.bool(0.25) ? 0 : h.nemesis.range(1, 200));
  }
  // Power loss is most telling while written data is not yet synced: wait for that, within a
  // bound (three times in four; the other crashes strike wherever they fall).
  const armed = h.crashArmedUntil;
  const unsynced = h.countingDisk.hasUnsyncedWrites;
  if (armed !== null && (unsynced || h.step >= armed)) {
    await crashAndRestart(h, unsynced ? 'nemesis, unsynced writes' : 'nemesis');
    return;
  }
  injectFaults(h, node);
}

/** Counts what the node did on its own (automatic checkpoints) since the last step. */
function observe(h: Harness): void {
  const node = h.node;
  if (node === null) return;
  const checkpointLsn = node.info().checkpointLsn;
  if (checkpointLsn > h.checkpointLsnSeen) {
    h.counters.checkpoints += 1;
    h.checkpointLsnSeen = checkpointLsn;
  }
}

async function tick(h: Harness): Promise<void> {
  h.step += 1;
  if (!(await h.scheduler.step())) {
    // Nothing is scheduled: let answers that need no disk (reads, duplicates) arrive.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  observe(h);
  throwIfFailed(h);
}

// -------------------------------------------------------------------------------------------
// The run.

/**
 * Stops the workload and the faults and runs until every operation answered and the disk is
 * idle. A fault still armed may fence the node meanwhile: crash and restart it then.
 */
async function quiesce(h: Harness): Promise<void> {
  h.quiescing = true;
  h.disk.setCapacity(null);
  h.capacityFreeAt = null;
  for (let steps = 0; steps < quiesceStepsMax; steps++) {
    if (h.fenceCrashAt !== null) await crashAndRestart(h, 'the node fenced while quiescing');
    const busy = h.inflight.size > 0 || h.clients.some((client) => client.busy);
    if (!busy && h.scheduler.pending === 0) return;
    await tick(h);
  }
  throw failure(h, `liveness: ${h.inflight.size} writes never answered after the faults stopped`);
}

async function closeNode(h: Harness): Promise<void> {
  const node = h.node;
  if (node === null) return;
  h.node = null;
  const closed = await drive(h, node.close(), null);
  if (closed.kind !== 'ok') throw failure(h, `close failed: ${String(closed)}`);
  note(h, 'closed');
}

async function finish(h: Harness): Promise<void> {
  await quiesce(h);
  const node = h.node;
  if (node === null) throw failure(h, 'no node at the end of the run');
  await checkScan(h, node, 'at quiescence');
  throwIfFailed(h);
  await crashAndRestart(h, 'final power loss');
  await quiesce(h);
  await closeNode(h);
  // A clean restart: the closing SEAL and COMMIT must be read back exactly too.
  await restart(h);
  await quiesce(h);
  await closeNode(h);
}

async function runSteps(h: Harness): Promise<void> {
  for (; h.step < runStepsMax && h.ops < h.opsMax;) {
    issueClientOperations(h);
    await nemesis(h);
    await tick(h);
  }
}

/**
 * One deterministic run of the harness (see the top of this file). Resolves with the coverage
 * counters and the trace; rejects with a `SimulationFailure` naming the seed on a violation.
 */
export async function runEngineSeed(seed: number, options: SeedOptions = {}): Promise<SeedReport> {
  const h = createHarness(seed, options);
  note(h, `seed ${seed}: ${JSON.stringify(h.config)}`);
  const unhandled = (reason: unknown): void => fail(h, `unhandled rejection: ${String(reason)}`);
  process.on('unhandledRejection', unhandled);
  try {
    await restart(h);
    await runSteps(h);
    await finish(h);
    throwIfFailed(h);
  } catch (error: unknown) {
    if (error instanceof SimulationFailure) throw error;
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
    throw failure(h, `harness or engine threw: ${detail}`);
  } finally {
    process.off('unhandledRejection', unhandled);
  }
  return {
    seed,
    counters: h.counters,
    trace: h.trace.lines(),
    ops: h.ops,
    steps: h.step,
    virtualMs: h.scheduler.now,
  };
}
