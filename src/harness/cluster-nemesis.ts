/**
 * The cluster simulation's nemesis: between scheduler steps it injects the faults the seed
 * enabled (cluster-workload.ts), each lasting a random while: power loss of a replica or of the
 * primary (aimed at moments with unsynced data, also during recovery), symmetric and
 * asymmetric partitions, broken connections, message drop/duplicate/reorder rates, slow disks,
 * fdatasync EIO (the node must fence; it is then restarted), durability policy changes, and
 * (behind a flag) a replica losing its whole disk. `healAll` stops every fault.
 */
import { crashNode, wipeNode } from './cluster-nodes.js';
import {
  fail,
  note,
  primarySlot,
  replicationOf,
  upSlots,
  type ClusterHarness,
  type Slot,
} from './cluster-state.js';

const networkFaultsMax = 3;

function healDue(h: ClusterHarness): void {
  const now = h.scheduler.now;
  const due = h.networkFaults.filter((fault) => fault.healAt <= now);
  if (due.length === 0) return;
  h.networkFaults = h.networkFaults.filter((fault) => fault.healAt > now);
  for (const fault of due) {
    fault.heal();
    note(h, `healed: ${fault.what}`);
  }
}

function healDisks(h: ClusterHarness, all: boolean): void {
  const now = h.scheduler.now;
  for (const slot of h.slots) {
    if (slot.slowUntil === null || (!all && slot.slowUntil > now)) continue;
    slot.slowUntil = null;
    slot.disk.setLatency({ min: 0, max: h.config.latencyMaxMs });
    if (!all) note(h, `${slot.id} disk fast again`);
  }
}

function shuffled<T>(h: ClusterHarness, items: readonly T[]): T[] {
  const copy = [...items];
  for (let index = copy.length - 1; index > 0; index--) {
    const other = h.nemesis.int(index + 1);
    const item = copy[index] as T;
    copy[index] = copy[other] as T;
    copy[other] = item;
  }
  return copy;
}

function faultUntil(h: ClusterHarness): number {
  return h.scheduler.now + h.nemesis.range(10, h.config.faultMsMax);
}

function symmetricPartition(h: ClusterHarness): void {
  const members = shuffled(h, h.members);
  const cut = h.nemesis.range(1, members.length - 1);
  const groupA = members.slice(0, cut);
  const groupB = members.slice(cut);
  h.network.partition(groupA, groupB);
  h.counters.symmetricPartitions += 1;
  const what = `partition [${groupA}] | [${groupB}]`;
  note(h, `FAULT: ${what}`);
  h.networkFaults.push({
    what,
    healAt: faultUntil(h),
    heal: () => {
      for (const a of groupA) {
        for (const b of groupB) {
          h.network.unblock(a, b);
          h.network.unblock(b, a);
        }
      }
    },
  });
}

/** One direction of one link; half of the time it touches the primary. */
function randomDirection(h: ClusterHarness): [string, string] {
  const random = h.nemesis;
  const others = h.members.filter((id) => id !== h.primaryId);
  const first = random.bool(0.5) ? h.primaryId : random.pick(h.members);
  const second = random.pick(
    first === h.primaryId ? others : h.members.filter((id) => id !== first),
  );
  return random.bool(0.5) ? [first, second] : [second, first];
}

function asymmetricPartition(h: ClusterHarness): void {
  const [from, to] = randomDirection(h);
  h.network.block(from, to);
  h.counters.asymmetricPartitions += 1;
  const what = `messages ${from} -> ${to} lost`;
  note(h, `FAULT: ${what}`);
  h.networkFaults.push({ what, healAt: faultUntil(h), heal: () => h.network.unblock(from, to) });
}

function linkDown(h: ClusterHarness): void {
  const [from, to] = randomDirection(h);
  h.network.setLink(from, to, false);
  h.counters.linksBroken += 1;
  const what = `connection ${from} -> ${to} broken`;
  note(h, `FAULT: ${what}`);
  h.networkFaults.push({
    what,
    healAt: faultUntil(h),
    heal: () => h.network.setLink(from, to, true),
  });
}

function networkChange(h: ClusterHarness): void {
  const random = h.nemesis;
  const levels = h.config.network;
  const calm = random.bool(0.3);
  const pick = (level: number) => (calm || !random.bool(0.7) ? 0 : level);
  const faults = {
    dropProbability: pick(levels.drop),
    duplicateProbability: pick(levels.duplicate),
    reorderProbability: pick(levels.reorder),
    reorderDelayMsMax: 4 * levels.delayMaxMs,
    delayMs: { min: 1, max: levels.delayMaxMs },
  };
  h.network.setFaults(faults);
  note(h, `network: ${JSON.stringify(faults)}`);
}

function slowDisk(h: ClusterHarness): void {
  const up = upSlots(h);
  if (up.length === 0) return;
  const slot = h.nemesis.pick(up);
  const max = h.nemesis.pick([40, 200, 1000]);
  slot.disk.setLatency({ min: 5, max });
  slot.slowUntil = faultUntil(h);
  h.counters.slowDisks += 1;
  note(h, `FAULT: ${slot.id} disk slow (up to ${max} ms)`);
}

function fsyncFault(h: ClusterHarness, slot: Slot): void {
  slot.disk.failDatasync({ count: 1 });
  note(h, `FAULT: the next fdatasync of ${slot.id} fails with EIO`);
}

function policyChange(h: ClusterHarness): void {
  const slot = primarySlot(h);
  const node = slot.node;
  if (node === null) return;
  const random = h.nemesis;
  const replicas = h.members.length - 1;
  const acks = random.pick(['quorum', 'all'] as const);
  const minReplicas = random.bool(0.5) ? 0 : random.range(1, replicas);
  node.setDurabilityPolicy({ acks, minReplicas });
  h.policy = { acks, minReplicas };
  h.counters.policyChanges += 1;
  note(h, `POLICY: acks=${acks} minReplicas=${minReplicas}`);
  const now = replicationOf(h, slot, node).policy;
  if (now.acks !== acks || now.minReplicas !== minReplicas) {
    fail(h, `setDurabilityPolicy(${acks}, ${minReplicas}) reads back ${JSON.stringify(now)}`);
  }
}

/**
 * Crashes are decided, then wait (within a bound) for a moment when the node has written data
 * it has not synced yet: that is when a power loss can lose or tear something. A node being
 * opened may be crashed again (crash during recovery), decided once per incarnation.
 */
function crashes(h: ClusterHarness): void {
  const random = h.nemesis;
  const rates = h.config.rates;
  const now = h.scheduler.now;
  for (const slot of h.slots) {
    const armed = slot.crashArmedUntil;
    if (slot.state === 'opening' && armed === null) {
      const crashing = slot.openAttempts < 4 && random.bool(rates.recoveryCrash);
      slot.crashArmedUntil = crashing ? now + random.range(0, 30) : -1;
      continue;
    }
    if (armed === null || armed < 0) continue;
    const unsynced = slot.counting.hasUnsyncedWrites;
    if (slot.state === 'opening' && now >= armed) crashNode(h, slot, 'nemesis');
    else if (slot.state === 'up' && (unsynced || now >= armed)) {
      if (slot.id === h.primaryId) h.counters.primaryCrashes += 1;
      else h.counters.replicaCrashes += 1;
      crashNode(h, slot, unsynced ? 'nemesis, unsynced writes' : 'nemesis');
    }
  }
  const arm = (slot: Slot) => {
    if (slot.crashArmedUntil !== null) return;
    slot.crashArmedUntil = now + (random.bool(0.25) ? 0 : random.range(1, 300));
  };
  const replicas = upSlots(h).filter((slot) => slot.id !== h.primaryId);
  if (replicas.length > 0 && random.bool(rates.replicaCrash)) arm(random.pick(replicas));
  const primary = primarySlot(h);
  if (primary.state === 'up' && random.bool(rates.primaryCrash)) arm(primary);
}

export function nemesis(h: ClusterHarness): void {
  if (h.quiescing) return;
  const random = h.nemesis;
  const rates = h.config.rates;
  healDue(h);
  healDisks(h, false);
  crashes(h);
  const room = h.networkFaults.length < networkFaultsMax;
  if (room && random.bool(rates.symmetricPartition)) symmetricPartition(h);
  if (room && random.bool(rates.asymmetricPartition)) asymmetricPartition(h);
  if (room && random.bool(rates.linkDown)) linkDown(h);
  if (random.bool(rates.networkChange)) networkChange(h);
  if (random.bool(rates.slowDisk)) slowDisk(h);
  const replicas = upSlots(h).filter((slot) => slot.id !== h.primaryId);
  if (replicas.length > 0 && random.bool(rates.replicaFsyncFault)) {
    fsyncFault(h, random.pick(replicas));
  }
  const primary = primarySlot(h);
  if (primary.state === 'up' && random.bool(rates.primaryFsyncFault)) fsyncFault(h, primary);
  if (random.bool(rates.policyChange)) policyChange(h);
  const down = h.slots.filter((slot) => slot.id !== h.primaryId);
  if (random.bool(rates.replicaWipe)) wipeNode(h, random.pick(down));
}

/** Stops every fault: partitions, broken links, lossy network, slow disks, armed crashes. */
export function healAll(h: ClusterHarness): void {
  for (const fault of h.networkFaults) fault.heal();
  h.networkFaults = [];
  h.network.heal();
  for (const from of h.members) {
    for (const to of h.members) if (from !== to) h.network.setLink(from, to, true);
  }
  h.network.setFaults({
    dropProbability: 0,
    duplicateProbability: 0,
    reorderProbability: 0,
    delayMs: { min: 1, max: h.config.network.delayMaxMs },
  });
  healDisks(h, true);
  for (const slot of h.slots) slot.crashArmedUntil = null;
  note(h, 'HEAL: every fault stopped');
}
