import { describe, expect, it } from 'vitest';
import type { SyncwalNode } from '../../src/engine/node.js';
import type { DurabilityPolicy } from '../../src/core/consensus/quorum.js';
import { SimDisk } from '../../src/sim/disk.js';
import { simClock } from '../../src/sim/clock.js';
import { SimNetwork } from '../../src/sim/network.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import { MemoryCheckpoint, simNode, text } from './helpers.js';

const members = ['a', 'b', 'c'];

/** A three-node shard on simulated disks and network; node 'a' is the primary. */
function shard(seed: number, policy: Partial<DurabilityPolicy> = {}) {
  const scheduler = new SimScheduler();
  const network = new SimNetwork({ scheduler, seed });
  const clock = simClock(scheduler);
  const disks = new Map(members.map((id, index) => [id, new SimDisk({ seed: seed + index })]));
  const checkpoints = new Map(members.map((id) => [id, new MemoryCheckpoint()]));
  const open = (id: string) =>
    simNode(disks.get(id)!, checkpoints.get(id)!, {
      nodeId: id,
      replication: {
        shardId: 'test',
        members,
        primary: 'a',
        transport: (hello) => network.transport(id, { hello }),
        policy: { commitTimeoutMs: 500, replicaTimeoutMs: 1_000, ...policy },
        heartbeatIntervalMs: 20,
        clock,
      },
    });
  const drive = <T>(promise: Promise<T>) => scheduler.drive(promise, { stepsMax: 200_000 });
  const settle = (ms: number) => {
    let done = () => undefined as void;
    const promise = new Promise<void>((resolve) => (done = resolve));
    clock.setTimer(ms, () => done());
    return drive(promise);
  };
  return { scheduler, network, open, drive, settle, disks };
}

async function openAll(s: ReturnType<typeof shard>) {
  const nodes = new Map<string, SyncwalNode>();
  for (const id of members) nodes.set(id, await s.drive(s.open(id)));
  await s.settle(200);
  return nodes;
}

describe('replicated shard on the simulated network', () => {
  it('commits on a quorum; replicas apply, serve stale reads, refuse writes', async () => {
    const s = shard(1);
    const nodes = await openAll(s);
    const [a, b, c] = [nodes.get('a')!, nodes.get('b')!, nodes.get('c')!];
    expect(a.role).toBe('primary');
    expect(b.role).toBe('replica');
    const written = await s.drive(a.put('k', 'v1', { requestId: 'r1' }));
    expect(written.lsn).toBeGreaterThan(1);
    await s.drive(b.get('k', { read: { after: written.lsn } }));
    expect(text(await b.get('k', { read: 'stale' }))).toBe('v1');
    await s.settle(100);
    expect(text(c.getSync('k'))).toBe('v1');
    await expect(b.put('k', 'nope')).rejects.toMatchObject({ code: 'NOTPRIMARY', primary: 'a' });
    await expect(b.get('k', { read: 'linearizable' })).rejects.toMatchObject({
      code: 'NOTPRIMARY',
    });
    const status = a.replication();
    expect(status?.replicas.map((replica) => replica.id)).toEqual(['b', 'c']);
    expect(status?.replicas.every((replica) => replica.connected && replica.eligible)).toBe(true);
    expect(b.status('r1')).toMatchObject({ status: 'committed' });
    for (const node of nodes.values()) await s.drive(node.close());
  });

  it('says NOREPLICAS before logging when no replica is connected', async () => {
    const s = shard(2);
    const nodes = await openAll(s);
    const a = nodes.get('a')!;
    s.network.setLink('a', 'b', false);
    s.network.setLink('a', 'c', false);
    await s.settle(50);
    const lastLsn = a.info().lastLsn;
    await expect(a.put('k', 'v')).rejects.toMatchObject({ code: 'NOREPLICAS' });
    expect(a.info().lastLsn).toBe(lastLsn);
    for (const node of nodes.values()) await s.drive(node.close());
  });

  it('aborts a write that cannot commit in time: NOREPLICAS once the ABORT is safe', async () => {
    const s = shard(3);
    const nodes = await openAll(s);
    const a = nodes.get('a')!;
    // The replicas still look connected, but nothing reaches them: no quorum.
    s.network.block('a', 'b');
    s.network.block('a', 'c');
    const write = a.put('k', 'lost', { requestId: 'lost-1' });
    write.catch(() => undefined);
    await s.settle(700);
    s.network.unblock('a', 'b');
    s.network.unblock('a', 'c');
    await expect(s.drive(write)).rejects.toMatchObject({ code: 'NOREPLICAS' });
    expect(a.status('lost-1')).toMatchObject({ status: 'aborted' });
    const after = await s.drive(a.put('k', 'kept'));
    await s.settle(100);
    for (const id of members) {
      const node = nodes.get(id)!;
      await s.drive(node.get('k', { read: { after: after.lsn } }));
      expect(text(node.getSync('k'))).toBe('kept');
    }
    expect(nodes.get('b')!.status('lost-1')).toMatchObject({ status: 'aborted' });
    for (const node of nodes.values()) await s.drive(node.close());
  });

  it('a replica that was down catches up; a restarted primary resumes', async () => {
    const s = shard(4);
    const nodes = await openAll(s);
    let a = nodes.get('a')!;
    await s.drive(nodes.get('c')!.close());
    for (let index = 0; index < 50; index++) await s.drive(a.put(`k${index}`, `v${index}`));
    const c = await s.drive(s.open('c'));
    await s.settle(500);
    expect(text(c.getSync('k49'))).toBe('v49');
    await s.drive(a.close());
    a = await s.drive(s.open('a'));
    await s.settle(200);
    expect(a.info().term).toBe(2);
    const written = await s.drive(a.put('after', 'restart'));
    await s.drive(c.get('after', { read: { after: written.lsn } }));
    expect(text(c.getSync('after'))).toBe('restart');
    for (const node of [a, nodes.get('b')!, c]) await s.drive(node.close());
  });
});
