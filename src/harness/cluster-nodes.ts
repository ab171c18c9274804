/**
 * Node lifecycles in the cluster simulation: open (asynchronously: the rest of the shard keeps
 * running while a node recovers), crash (power loss of its disk and checkpoint device, its
 * transport dies, its timers never fire again), restart, and wipe (behind a flag).
 *
 * A crashed incarnation must never act again: its disk operations never settle (SimDisk drops
 * them), its transport is dead (SimNetwork), and its timers go through a clock that checks the
 * incarnation is alive before calling back. Callbacks the harness registers check it too.
 */
import { SyncwalError } from '../core/errors.js';
import { openNodeWith } from '../engine/open.js';
import type { Clock } from '../ports/clock.js';
import type { LogFields, Logger } from '../ports/logger.js';
import type { HelloSource } from '../ports/transport.js';
import { SimCheckpointDevice } from '../sim/checkpoint.js';
import { SimDisk, type CrashMode } from '../sim/disk.js';
import type { SimScheduler } from '../sim/scheduler.js';
import { CountingDisk, quietDiskEvents } from './cluster-disk.js';
import { readLog, readSegment } from './cluster-logs.js';
import {
  fail,
  failure,
  note,
  shardId,
  type ClusterHarness,
  type ClusterNode,
  type Slot,
} from './cluster-state.js';

const openAttemptsMax = 12;

/** Virtual time for one incarnation: its timers do nothing once it crashed. */
function incarnationClock(scheduler: SimScheduler, life: { alive: boolean }): Clock {
  return {
    now: () => scheduler.now,
    setTimer(delayMs, callback) {
      let cancelled = false;
      scheduler.schedule(delayMs, () => {
        if (!cancelled && life.alive) callback();
      });
      return () => {
        cancelled = true;
      };
    },
    defer(callback) {
      scheduler.schedule(0, () => {
        if (life.alive) callback();
      });
    },
  };
}

/** Counts the replication events the harness needs and traces the notable ones. */
function harnessLogger(h: ClusterHarness, slot: Slot, life: { alive: boolean }): Logger {
  const log = (level: string) => (event: string, fields?: LogFields) => {
    if (!life.alive) return;
    if (event === 'eligibility-granted') h.counters.eligibilityGrants += 1;
    if (event === 'eligibility-revoked') h.counters.eligibilityRevokes += 1;
    if (event === 'full-sync-installed') h.counters.fullSyncsInstalled += 1;
    if (event === 'full-sync-failed') h.counters.fullSyncsFailed += 1;
    if (event === 'peer-up' || event === 'peer-down') return;
    if (level === 'debug') return;
    const detail = fields === undefined ? '' : ` ${JSON.stringify(fields)}`;
    note(h, `${slot.id} ${level} ${event}${detail}`);
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

function nodeOptions(h: ClusterHarness, slot: Slot, life: { alive: boolean }) {
  const config = h.config;
  return {
    dir: slot.dir,
    nodeId: slot.id,
    segmentSizeBytes: config.segmentSizeBytes,
    checkpointLogBytes: config.checkpointLogBytes,
    replication: {
      shardId,
      members: [...h.members],
      primary: h.primaryId,
      transport: (hello: HelloSource) => h.network.transport(slot.id, { hello }),
      policy: {
        ...h.policy,
        commitTimeoutMs: config.commitTimeoutMs,
        replicaTimeoutMs: config.replicaTimeoutMs,
      },
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      clock: incarnationClock(h.scheduler, life),
      logger: harnessLogger(h, slot, life),
      logRetainRecords: config.logRetainRecords,
      fullSync: config.fullSync,
    },
  };
}

function watchDisk(h: ClusterHarness, slot: Slot, life: { alive: boolean }): void {
  slot.counting.events = {
    ...quietDiskEvents,
    segmentRead: () => {
      if (life.alive && slot.state === 'up' && slot.id === h.primaryId) {
        h.counters.catchUpLogReads += 1;
      }
    },
    datasyncFailed: () => {
      if (!life.alive) return;
      if (slot.id === h.primaryId) h.counters.primaryFsyncFailures += 1;
      else h.counters.replicaFsyncFailures += 1;
    },
    segmentRemoving: (path) => {
      // Only the primary's prefix truncation removes committed records for good (a replica's
      // full sync may remove an uncommitted tail with its old log).
      if (!life.alive || slot.id !== h.primaryId) return;
      for (const frame of readSegment(slot.disk, path).frames) h.archive.set(frame.lsn, frame);
    },
    truncationStarted: () => {
      if (!life.alive) return;
      h.counters.divergentTailTruncations += 1;
      note(h, `${slot.id} truncates a divergent tail`);
    },
  };
}

/** Begins opening the node of `slot` (a new incarnation); it joins once recovery finished. */
export function startNode(h: ClusterHarness, slot: Slot): void {
  const life = { alive: true, incarnation: slot.life.incarnation + 1 };
  slot.life = life;
  slot.state = 'opening';
  slot.restartAt = null;
  slot.openAttempts += 1;
  h.network.crash(slot.id);
  watchDisk(h, slot, life);
  note(h, `${slot.id} opening (incarnation ${life.incarnation})`);
  const options = nodeOptions(h, slot, life);
  const device = slot.device;
  const opened: Promise<ClusterNode> = openNodeWith(options, {
    disk: slot.counting,
    checkpointStore: async () => device.open(),
  });
  opened.then(
    (node) => {
      if (slot.life === life) joined(h, slot, node);
      else void node.close().catch(() => undefined);
    },
    (error: unknown) => {
      if (slot.life === life) openFailed(h, slot, error);
    },
  );
}

function joined(h: ClusterHarness, slot: Slot, node: ClusterNode): void {
  const life = slot.life;
  slot.node = node;
  slot.state = 'up';
  slot.openAttempts = 0;
  slot.crashArmedUntil = null;
  h.counters.restarts += 1;
  const role = slot.id === h.primaryId ? 'primary' : 'replica';
  if (node.role !== role) fail(h, `${slot.id} opened as ${node.role}, configured ${role}`);
  node.on('fenced', (error) => {
    if (slot.life !== life || slot.fenceCrashAt !== null) return;
    if (slot.id === h.primaryId) h.counters.fencedPrimaries += 1;
    else h.counters.fencedReplicas += 1;
    slot.fenceCrashAt = h.scheduler.now + h.nemesis.range(0, 100);
    note(h, `${slot.id} FENCED: ${String(error)}`);
  });
  node.on('checkpoint', () => {
    if (slot.life === life) h.counters.checkpoints += 1;
  });
  const info = node.info();
  note(
    h,
    `${slot.id} up as ${node.role}: term ${info.term}, last ${info.lastLsn}, ` +
      `commit ${info.commitLsn}, applied ${info.appliedLsn}`,
  );
}

/**
 * An open that fails with IOERR met an injected fault still armed (the process died before it
 * fired): crash and retry. Anything else is a failure to report.
 */
function openFailed(h: ClusterHarness, slot: Slot, error: unknown): void {
  const code = error instanceof SyncwalError ? error.code : null;
  if (code !== 'IOERR' || slot.openAttempts >= openAttemptsMax) {
    fail(h, `${slot.id} did not reopen (attempt ${slot.openAttempts}): ${String(error)}`);
    return;
  }
  note(h, `${slot.id} open failed on an armed fault: ${String(error)}`);
  crashNode(h, slot, 'open failed', 'random');
}

/** Power loss on one node. Its in-flight operations will never be answered. */
export function crashNode(h: ClusterHarness, slot: Slot, why: string, mode?: CrashMode): void {
  const opening = slot.state === 'opening';
  slot.life.alive = false;
  const crashMode = mode ?? h.nemesis.pick<CrashMode>(['random', 'random', 'lose-unsynced']);
  const report = slot.disk.crash({ mode: crashMode });
  slot.device.crash();
  slot.counting.crashed();
  h.network.crash(slot.id);
  slot.node = null;
  slot.state = 'down';
  slot.fenceCrashAt = null;
  slot.crashArmedUntil = null;
  slot.restartAt = h.scheduler.now + h.nemesis.range(0, h.config.downMsMax);
  if (report.writesUnsynced > 0) h.counters.crashesWithUnsyncedData += 1;
  if (opening) h.counters.crashesDuringRecovery += 1;
  for (const op of h.inflight) {
    if (op.slot !== slot) continue;
    h.inflight.delete(op);
    op.lost();
  }
  note(
    h,
    `${slot.id} CRASH (${why}, ${crashMode}${opening ? ', while opening' : ''}): ` +
      `${report.writesUnsynced} unsynced writes, ${report.sectorsGarbled} sectors garbled, ` +
      `${report.sectorsDropped} dropped`,
  );
}

/** The replica loses its whole disk: it must rejoin from nothing (full sync, DESIGN §5). */
export function wipeNode(h: ClusterHarness, slot: Slot): void {
  crashNode(h, slot, 'disk wiped', 'clean');
  const logged = readLog(slot.disk, `${slot.dir}/wal`, 'durable').frames.at(-1)?.lsn ?? 0;
  slot.heldBeforeWipe = Math.max(slot.heldBeforeWipe, slot.device.appliedLsn, logged);
  slot.disk = new SimDisk({
    seed: h.nemesis.fork().seed,
    scheduler: h.scheduler,
    latencyMs: { min: 0, max: h.config.latencyMaxMs },
  });
  slot.counting = new CountingDisk(slot.disk);
  slot.device = new SimCheckpointDevice({ seed: h.nemesis.fork().seed, scheduler: h.scheduler });
  h.counters.replicaWipes += 1;
  note(h, `${slot.id} DISK WIPED`);
}

/** Opens nodes whose restart time came, and restarts fenced ones. */
export function reviveNodes(h: ClusterHarness): void {
  const now = h.scheduler.now;
  for (const slot of h.slots) {
    if (slot.fenceCrashAt !== null && now >= slot.fenceCrashAt) {
      crashNode(h, slot, 'it fenced');
    }
    if (slot.state === 'down' && slot.restartAt !== null && now >= slot.restartAt) {
      startNode(h, slot);
    }
  }
}

/** Closes every node that is up (the end of a run); a close that fails is reported. */
export async function closeNodes(h: ClusterHarness, drive: (p: Promise<void>) => Promise<void>) {
  for (const slot of h.slots) {
    const node = slot.node;
    if (node === null) continue;
    slot.node = null;
    slot.state = 'down';
    slot.restartAt = null;
    try {
      await drive(node.close());
    } catch (error: unknown) {
      throw failure(h, `${slot.id} close failed: ${String(error)}`);
    }
    slot.life.alive = false;
  }
}
