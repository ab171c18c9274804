/**
 * The cluster simulation's state: the nodes (each on its own simulated disk and checkpoint
 * device, all on one simulated network and one virtual-time scheduler), the clients, the
 * history being recorded, the coverage counters and the trace. See cluster-sim.ts for the run.
 */
import type { ScanPage } from '../engine/node.js';
import { SimCheckpointDevice } from '../sim/checkpoint.js';
import { SimDisk } from '../sim/disk.js';
import { SimNetwork } from '../sim/network.js';
import { Random } from '../sim/random.js';
import { SimScheduler } from '../sim/scheduler.js';
import type {
  BatchItem,
  ReadHistory,
  ScanHistory,
  WriteAttempt,
  WriteHistory,
} from './cluster-model.js';
import { clusterConfig, type ClusterConfig } from './cluster-workload.js';
import { CountingDisk } from './cluster-disk.js';
import type { LogFrame } from './cluster-logs.js';
import { SimulationFailure } from './engine-sim.js';

/**
 * The node API the harness drives (the engine's `SyncwalNode` with replication). Declared here
 * so that the harness states exactly what it relies on.
 */
export interface ClusterNode {
  readonly role: 'primary' | 'replica';
  put(key: string, value: string, options: { requestId: string }): Promise<WriteAnswer>;
  delete(key: string, options: { requestId: string }): Promise<WriteAnswer & { deleted: boolean }>;
  batch(operations: BatchItem[], options: { requestId: string }): Promise<WriteAnswer>;
  incrBy(
    key: string,
    delta: number,
    options: { requestId: string },
  ): Promise<WriteAnswer & { value: bigint }>;
  compareAndSet(
    key: string,
    expected: string | null,
    next: string | null,
    options: { requestId: string },
  ): Promise<WriteAnswer & { ok: boolean }>;
  get(key: string, options: { read: 'stale' | { after: number } }): Promise<Buffer | null>;
  scan(options: { limit: number }): Promise<ScanPage>;
  status(
    requestId: string,
  ): { status: 'committed' | 'aborted' | 'pending'; lsn: number } | { status: 'unknown' };
  info(): NodeFacts;
  /** Null only on a node opened without replication (never in this harness). */
  replication(): ReplicationFacts | null;
  setDurabilityPolicy(policy: { acks?: 'quorum' | 'all'; minReplicas?: number }): unknown;
  on(event: 'fenced' | 'checkpoint', listener: (value: unknown) => void): unknown;
  close(): Promise<void>;
}

export interface WriteAnswer {
  lsn: number;
  duplicate: boolean;
}

export interface NodeFacts {
  role: 'primary' | 'replica';
  term: number;
  lastLsn: number;
  commitLsn: number;
  appliedLsn: number;
  fenced: string | null;
}

export interface ReplicationFacts {
  role: 'primary' | 'replica';
  term: number;
  commitLsn: number;
  eligible: boolean;
  policy: { acks: 'quorum' | 'all'; minReplicas: number };
  replicas: {
    id: string;
    connected: boolean;
    eligible: boolean;
    state: string;
    ackedLsn: number;
  }[];
}

export const clusterCounterNames = [
  'writes',
  'okWrites',
  'puts',
  'deletes',
  'batchOps',
  'incrOps',
  'casOps',
  'acksAllChecked',
  'noReplicas',
  'unknownAnswers',
  'lostInCrash',
  'unknownResolvedCommitted',
  'unknownResolvedLost',
  'notPrimary',
  'requestIdRetries',
  'duplicatesReturned',
  'staleReads',
  'replicaReads',
  'afterReads',
  'catchUpReads',
  'catchUpLogReads',
  'scans',
  'messagesDropped',
  'messagesDuplicated',
  'messagesReordered',
  'messagesBlocked',
  'symmetricPartitions',
  'asymmetricPartitions',
  'linksBroken',
  'replicaCrashes',
  'primaryCrashes',
  'crashesWithUnsyncedData',
  'crashesDuringRecovery',
  'restarts',
  'slowDisks',
  'replicaFsyncFailures',
  'primaryFsyncFailures',
  'fencedReplicas',
  'fencedPrimaries',
  'policyChanges',
  'divergentTailTruncations',
  'eligibilityGrants',
  'eligibilityRevokes',
  'fullOutages',
  'logRecordsCompared',
  'replicaWipes',
  'fullSyncsInstalled',
  'fullSyncsFailed',
  'checkpoints',
  'afterReadsRefused',
  'linearizabilityChecked',
] as const;

export type ClusterCounterName = (typeof clusterCounterNames)[number];
export type ClusterCounters = Record<ClusterCounterName, number>;

export function emptyClusterCounters(): ClusterCounters {
  const counters = {} as ClusterCounters;
  for (const name of clusterCounterNames) counters[name] = 0;
  return counters;
}

export interface ClusterSeedOptions {
  /** Keep the whole trace (returned in the report and put in a failure's message). */
  trace?: boolean;
  /** Client operations to issue before the faults stop (default 120). */
  opsMax?: number;
  /** Nodes in the shard: a primary and 2 or 4 replicas (default 3). */
  nodes?: 3 | 5;
}

export interface ClusterSeedReport {
  seed: number;
  nodes: number;
  counters: ClusterCounters;
  /** The whole trace with `trace: true`, else its last lines. */
  trace: string[];
  ops: number;
  steps: number;
  virtualMs: number;
}

const traceTailLines = 60;

export class Trace {
  readonly #lines: string[] = [];
  readonly #full: boolean;

  constructor(full: boolean) {
    this.#full = full;
  }

  add(line: string): void {
    this.#lines.push(line);
    if (!this.#full && this.#lines.length > traceTailLines) this.#lines.shift();
  }

  lines(): string[] {
    return [...this.#lines];
  }

  /** Whether the whole run is kept (a replay with --trace). */
  get full(): boolean {
    return this.#full;
  }
}

/** One member of the shard across its incarnations (a crash ends one, a restart begins one). */
export interface Slot {
  id: string;
  dir: string;
  disk: SimDisk;
  counting: CountingDisk;
  device: SimCheckpointDevice;
  node: ClusterNode | null;
  state: 'up' | 'opening' | 'down';
  /** The current incarnation: its timers and callbacks act only while it is alive. */
  life: { alive: boolean; incarnation: number };
  /** While down: when to open it again (virtual ms). */
  restartAt: number | null;
  openAttempts: number;
  /** It fenced itself: crash and restart it at this virtual time. */
  fenceCrashAt: number | null;
  /** A crash the nemesis decided on, waiting (until then) for unsynced written data. */
  crashArmedUntil: number | null;
  slowUntil: number | null;
  /**
   * The highest LSN its disk held durably when the nemesis wiped it (0: never wiped). Records
   * up to it still count as held there when a write is answered (first time or on a retry):
   * the primary may have counted that copy just before the wipe, and losing a disk is a
   * failure the quorum absorbs, not a broken acknowledgement.
   */
  heldBeforeWipe: number;
}

export interface Client {
  id: number;
  busy: boolean;
  /** LSN of this client's last OK write (read-your-writes on replicas). */
  lastOkLsn: number;
}

/** A write attempt or a read waiting for its answer, on one incarnation of one node. */
export interface Inflight {
  slot: Slot;
  incarnation: number;
  client: Client;
  /** The node crashed: the answer will never come. */
  lost(): void;
}

export interface NetworkFault {
  what: string;
  healAt: number;
  heal(): void;
}

export interface ClusterHarness {
  seed: number;
  config: ClusterConfig;
  workload: Random;
  nemesis: Random;
  scheduler: SimScheduler;
  network: SimNetwork;
  slots: Slot[];
  members: string[];
  primaryId: string;
  policy: { acks: 'quorum' | 'all'; minReplicas: number };
  step: number;
  ops: number;
  opsMax: number;
  writeSequence: number;
  writes: WriteHistory[];
  writeById: Map<string, WriteHistory>;
  reads: ReadHistory[];
  scans: ScanHistory[];
  clients: Client[];
  inflight: Set<Inflight>;
  networkFaults: NetworkFault[];
  lastKnown: Map<string, string | null>;
  okLsnMax: number;
  counters: ClusterCounters;
  trace: Trace;
  failure: string | null;
  quiescing: boolean;
  /**
   * Committed records the primary deleted from its log (prefix truncation after a checkpoint),
   * by LSN: the history check replays them with the log that is left.
   */
  archive: Map<number, LogFrame>;
  calls: CallTimes;
}

/**
 * When client operations were called and answered, for the linearizability check
 * (cluster-clients.ts records them, `clientOperations` turns them into its history).
 */
export interface CallTimes {
  /** Ticks once at every call and every answer: their real-time order. */
  clock: number;
  /** Each write attempt's call and answer (null: no answer came). */
  writes: Map<WriteAttempt, { called: number; returned: number | null }>;
  /** Reads the primary answered (replica reads are not linearizable: see cluster-clients.ts). */
  reads: { label: string; key: string; value: string | null; called: number; returned: number }[];
}

export const shardId = 'sim-shard';

function createSlot(
  id: string,
  root: Random,
  h: { scheduler: SimScheduler },
  latencyMaxMs: number,
) {
  const latencyMs = { min: 0, max: latencyMaxMs };
  const disk = new SimDisk({ seed: root.fork().seed, scheduler: h.scheduler, latencyMs });
  const device = new SimCheckpointDevice({ seed: root.fork().seed, scheduler: h.scheduler });
  return { id, dir: `/${id}`, disk, device };
}

export function createClusterHarness(seed: number, options: ClusterSeedOptions): ClusterHarness {
  const root = new Random(seed);
  const config = clusterConfig(root.fork());
  const workload = root.fork();
  const nemesis = root.fork();
  const scheduler = new SimScheduler();
  const network = new SimNetwork({ scheduler, seed: root.fork().seed, shardId });
  const members = Array.from({ length: options.nodes ?? 3 }, (_, index) => `n${index + 1}`);
  const counters = emptyClusterCounters();
  const slots: Slot[] = members.map((id) => {
    const parts = createSlot(id, root, { scheduler }, config.latencyMaxMs);
    return {
      ...parts,
      counting: new CountingDisk(parts.disk),
      node: null,
      state: 'down',
      life: { alive: false, incarnation: 0 },
      restartAt: 0,
      openAttempts: 0,
      fenceCrashAt: null,
      crashArmedUntil: null,
      slowUntil: null,
      heldBeforeWipe: 0,
    };
  });
  const clients = Array.from({ length: config.clients }, (_, id) => ({
    id,
    busy: false,
    lastOkLsn: 0,
  }));
  return {
    seed,
    config,
    workload,
    nemesis,
    scheduler,
    network,
    slots,
    members,
    primaryId: nemesis.pick(members),
    policy: { acks: 'quorum', minReplicas: 0 },
    step: 0,
    ops: 0,
    opsMax: options.opsMax ?? 120,
    writeSequence: 0,
    writes: [],
    writeById: new Map(),
    reads: [],
    scans: [],
    clients,
    inflight: new Set(),
    networkFaults: [],
    lastKnown: new Map(),
    okLsnMax: 0,
    counters,
    trace: new Trace(options.trace === true),
    failure: null,
    quiescing: false,
    archive: new Map(),
    calls: { clock: 0, writes: new Map(), reads: [] },
  };
}

export function note(h: ClusterHarness, line: string): void {
  h.trace.add(`[${h.scheduler.now}] ${line}`);
}

/** Records the first violation; the main loop throws it after the current step. */
export function fail(h: ClusterHarness, problem: string): void {
  if (h.failure !== null) return;
  h.failure = problem;
  note(h, `VIOLATION: ${problem}`);
}

function describeRun(h: ClusterHarness): string {
  return `${h.members.length} nodes, primary ${h.primaryId}`;
}

export function failure(h: ClusterHarness, problem: string): SimulationFailure {
  fail(h, problem);
  return new SimulationFailure(h.seed, `(${describeRun(h)}) ${h.failure}`, h.trace.lines());
}

export function throwIfFailed(h: ClusterHarness): void {
  if (h.failure !== null) throw failure(h, h.failure);
}

export function primarySlot(h: ClusterHarness): Slot {
  const slot = h.slots.find((candidate) => candidate.id === h.primaryId);
  if (slot === undefined) throw failure(h, 'the primary has no slot');
  return slot;
}

/** A node's replication status; a node of the shard without one is a failure. */
export function replicationOf(h: ClusterHarness, slot: Slot, node: ClusterNode): ReplicationFacts {
  const replication = node.replication();
  if (replication === null) throw failure(h, `${slot.id} reports no replication status`);
  return replication;
}

export function upSlots(h: ClusterHarness): Slot[] {
  return h.slots.filter((slot) => slot.state === 'up' && slot.node !== null);
}
