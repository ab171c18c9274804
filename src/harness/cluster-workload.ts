/**
 * The cluster simulation's seed shape and client workload, pure and seeded: which faults a
 * seed enables and how often (swarm testing: each seed draws its own subset, so rare
 * combinations happen), and the commands clients send. Nothing here touches a node.
 */
import type { Random } from '../sim/random.js';
import type { BatchItem, Command } from './cluster-model.js';

export interface ClusterRates {
  /** Per step: crash a replica (power loss, unsynced data may be lost or torn). */
  replicaCrash: number;
  primaryCrash: number;
  /** A crashed node being opened again is crashed again (crash during recovery). */
  recoveryCrash: number;
  symmetricPartition: number;
  asymmetricPartition: number;
  /** A connection breaks (both sides notice) and comes back later. */
  linkDown: number;
  /** Drop, duplicate and reorder rates change (some seeds never enable some of them). */
  networkChange: number;
  slowDisk: number;
  /** The next fdatasync of a replica fails with EIO: it must fence, and is restarted. */
  replicaFsyncFault: number;
  primaryFsyncFault: number;
  policyChange: number;
  replicaWipe: number;
  retry: number;
}

export interface ClusterConfig {
  segmentSizeBytes: number;
  clients: number;
  issueProbability: number;
  keys: number;
  padBytesMax: number;
  latencyMaxMs: number;
  heartbeatIntervalMs: number;
  commitTimeoutMs: number;
  replicaTimeoutMs: number;
  /** Network fault levels this seed may switch to (0 = that fault never happens). */
  network: { drop: number; duplicate: number; reorder: number; delayMaxMs: number };
  /** Longest a partition, broken link or slow disk lasts, in virtual ms. */
  faultMsMax: number;
  /** Longest a crashed node stays down, in virtual ms. */
  downMsMax: number;
  rates: ClusterRates;
  /** Automatic checkpoints every this many log bytes (0: none, the log keeps everything). */
  checkpointLogBytes: number;
  /** Records the primary keeps behind its checkpoint for laggards (then: full sync). */
  logRetainRecords: number;
  fullSync: { streams: number; chunkBytes: number; retransmitMs: number; stallMs: number };
}

/** Draws a seed's shape. */
export function clusterConfig(random: Random): ClusterConfig {
  const maybe = (probability: number, rates: number[]) =>
    random.bool(probability) ? random.pick(rates) : 0;
  const segmentSizeBytes = random.pick([4096, 8192, 16384]);
  const heartbeatIntervalMs = random.pick([20, 50, 100]);
  return {
    segmentSizeBytes,
    clients: random.range(2, 8),
    issueProbability: random.pick([0.05, 0.15, 0.3]),
    keys: random.range(2, 8),
    padBytesMax: Math.min(random.pick([8, 64, 400, 1500]), segmentSizeBytes / 8),
    latencyMaxMs: random.range(1, 8),
    heartbeatIntervalMs,
    commitTimeoutMs: random.pick([150, 300, 600, 1500]),
    replicaTimeoutMs: random.pick([100, 400, 1000, 3000]),
    network: {
      drop: maybe(0.5, [0.01, 0.05, 0.2]),
      duplicate: maybe(0.5, [0.01, 0.05, 0.2]),
      reorder: maybe(0.5, [0.02, 0.1, 0.3]),
      delayMaxMs: random.pick([1, 5, 20]),
    },
    faultMsMax: random.pick([200, 800, 3000]),
    downMsMax: random.pick([100, 600, 2500]),
    rates: clusterRates(random, maybe),
    checkpointLogBytes: maybe(0.7, [2048, 8192, 32768]),
    logRetainRecords: random.pick([0, 10, 100, 2000]),
    fullSync: {
      streams: random.range(1, 4),
      chunkBytes: random.pick([1024, 4096, 65536]),
      retransmitMs: random.pick([50, 200, 1000]),
      stallMs: random.pick([1000, 5000]),
    },
  };
}

function clusterRates(
  random: Random,
  maybe: (probability: number, rates: number[]) => number,
): ClusterRates {
  return {
    replicaCrash: maybe(0.7, [1 / 400, 1 / 1500]),
    primaryCrash: maybe(0.5, [1 / 800, 1 / 3000]),
    recoveryCrash: maybe(0.3, [0.2, 0.5]),
    symmetricPartition: maybe(0.6, [1 / 300, 1 / 1200]),
    asymmetricPartition: maybe(0.6, [1 / 300, 1 / 1200]),
    linkDown: maybe(0.5, [1 / 300, 1 / 1200]),
    networkChange: maybe(0.7, [1 / 200, 1 / 800]),
    slowDisk: maybe(0.5, [1 / 300, 1 / 1200]),
    replicaFsyncFault: maybe(0.4, [1 / 600, 1 / 2000]),
    primaryFsyncFault: maybe(0.25, [1 / 1500, 1 / 4000]),
    policyChange: maybe(0.7, [1 / 150, 1 / 600]),
    // A wiped replica rejoins from nothing: by full sync once the primary's log no longer
    // starts at LSN 1.
    replicaWipe: maybe(0.3, [1 / 1500, 1 / 4000]),
    retry: random.pick([0.03, 0.1]),
  };
}

// -------------------------------------------------------------------------------------------
// Commands.

export interface WorkloadView {
  config: ClusterConfig;
  random: Random;
  /** A number unique to this write, so every value written is unique. */
  sequence: number;
  /** The latest value the harness saw committed for `key` (for CAS hits). */
  lastKnown: (key: string) => string | null;
}

export function randomKey(view: WorkloadView): string {
  return `k${view.random.int(view.config.keys)}`;
}

export function randomValue(view: WorkloadView): string {
  const random = view.random;
  // Integers let INCR succeed on keys that a put wrote; the others make INCR fail INVALID.
  if (random.bool(0.35)) return String(random.range(-100, 100));
  const pad = 'x'.repeat(random.int(view.config.padBytesMax + 1));
  return `v${view.sequence}.${pad}`;
}

export const commandKinds: readonly Command['kind'][] = [
  'put',
  'put',
  'put',
  'delete',
  'batch',
  'incr',
  'incr',
  'cas',
];

export function randomCommand(view: WorkloadView, kind: Command['kind']): Command {
  const random = view.random;
  switch (kind) {
    case 'put':
      return { kind, key: randomKey(view), value: randomValue(view) };
    case 'delete':
      return { kind, key: randomKey(view) };
    case 'batch': {
      const count = random.range(1, 4);
      const operations = Array.from({ length: count }, (): BatchItem => {
        const key = randomKey(view);
        return random.bool(0.75)
          ? { op: 'put', key, value: randomValue(view) }
          : { op: 'delete', key };
      });
      return { kind, operations };
    }
    case 'incr':
      return { kind, key: randomKey(view), delta: random.range(-5, 20) };
    case 'cas': {
      const key = randomKey(view);
      const current = view.lastKnown(key);
      // Mostly the value last seen committed (a hit, unless another write changed it since).
      const expected = random.bool(0.7) ? current : random.pick([null, 'stale', '0']);
      const next = random.bool(0.15) ? null : randomValue(view);
      return { kind, key, expected, next };
    }
  }
}

export function describeCommand(command: Command): string {
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

/** The keys a command writes and the values it leaves there (INCR's is not known yet). */
export function writtenValues(command: Command): [string, string | null][] {
  switch (command.kind) {
    case 'put':
      return [[command.key, command.value]];
    case 'delete':
      return [[command.key, null]];
    case 'batch':
      return command.operations.map((item) => [item.key, item.op === 'put' ? item.value : null]);
    case 'incr':
      return [];
    case 'cas':
      return [[command.key, command.next]];
  }
}
