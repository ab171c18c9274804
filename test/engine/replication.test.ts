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

describe('linearizable answers on a replicated primary (decision 0004)', () => {
  it('a restarted primary reads only once its TERM record committed', async () => {
    const s = shard(21);
    const nodes = await openAll(s);
    let a = nodes.get('a')!;
    await s.drive(a.put('x', 'acknowledged'));
    await s.drive(a.close());
    s.network.block('a', 'b');
    s.network.block('a', 'c');
    a = await s.drive(s.open('a'));
    expect(() => a.getSync('x')).toThrow(expect.objectContaining({ code: 'TRYAGAIN' }));
    let read: string | null | undefined;
    void a.get('x').then((value) => (read = text(value)));
    await s.settle(200);
    expect(read).toBeUndefined();
    s.network.unblock('a', 'b');
    s.network.unblock('a', 'c');
    await s.settle(300);
    expect(read).toBe('acknowledged');
    expect(text(a.getSync('x'))).toBe('acknowledged');
    for (const node of [a, nodes.get('b')!, nodes.get('c')!]) await s.drive(node.close());
  });

  it('a CAS that misses waits for the pending write it read, and sees it abort', async () => {
    const s = shard(22);
    const nodes = await openAll(s);
    const a = nodes.get('a')!;
    s.network.block('a', 'b');
    s.network.block('a', 'c');
    const doomed = a.put('k', 'never', { requestId: 'doomed' });
    doomed.catch(() => undefined);
    // Reads the pending 'never': a miss, but not answered from a write that may abort.
    let answer: { ok: boolean; current: Uint8Array | null } | undefined;
    void a
      .compareAndSet('k', 'other', 'next', { requestId: 'cas' })
      .then((result) => (answer = result));
    await s.settle(100);
    expect(answer).toBeUndefined();
    const retry = a.compareAndSet('k', 'other', 'next', { requestId: 'cas' });
    await s.settle(700);
    s.network.unblock('a', 'b');
    s.network.unblock('a', 'c');
    await expect(s.drive(doomed)).rejects.toMatchObject({ code: 'NOREPLICAS' });
    await s.settle(100);
    expect(answer).toMatchObject({ ok: false, current: null });
    // The retry joined the first attempt: the same answer, nothing run twice.
    expect(await s.drive(retry)).toMatchObject({ ok: false, current: null, duplicate: true });
    expect(a.getSync('k')).toBeNull();
    for (const node of nodes.values()) await s.drive(node.close());
  });
});

describe('full sync on the simulated network', () => {
  /** A shard whose primary checkpoints often and keeps little log for laggards. */
  function syncShard(seed: number) {
    const scheduler = new SimScheduler();
    const network = new SimNetwork({ scheduler, seed });
    const clock = simClock(scheduler);
    const disks = new Map(members.map((id, index) => [id, new SimDisk({ seed: seed + index })]));
    const checkpoints = new Map(members.map((id) => [id, new MemoryCheckpoint()]));
    const events: Record<string, unknown>[] = [];
    const open = (id: string) =>
      simNode(disks.get(id)!, checkpoints.get(id)!, {
        nodeId: id,
        checkpointLogBytes: 4096,
        replication: {
          shardId: 'test',
          members,
          primary: 'a',
          transport: (hello) => network.transport(id, { hello }),
          policy: { commitTimeoutMs: 500, replicaTimeoutMs: 1_000 },
          heartbeatIntervalMs: 20,
          clock,
          logRetainRecords: 10,
          fullSync: { streams: 3, chunkBytes: 1024, retransmitMs: 100, stallMs: 2_000 },
        },
      }).then((node) => {
        node.on('replication', (event) => events.push({ node: id, ...(event as object) }));
        return node;
      });
    const drive = <T>(promise: Promise<T>) => scheduler.drive(promise, { stepsMax: 400_000 });
    const settle = (ms: number) => {
      let done = () => undefined as void;
      const promise = new Promise<void>((resolve) => (done = resolve));
      clock.setTimer(ms, () => done());
      return drive(promise);
    };
    /** Node `id` lost its whole data directory. */
    const wipe = (id: string) => {
      disks.set(id, new SimDisk({ seed: seed + 100 }));
      checkpoints.set(id, new MemoryCheckpoint());
    };
    return { network, open, drive, settle, wipe, events, checkpoints };
  }

  async function written(
    s: ReturnType<typeof syncShard>,
    a: SyncwalNode,
    from: number,
    to: number,
  ) {
    for (let index = from; index < to; index++) {
      await s.drive(a.put(`k${index}`, `v${index}`, { requestId: `r${index}` }));
    }
    if (from === 0) await s.drive(a.delete('k3'));
  }

  it('a replica that lost its data directory rejoins by full sync, then is eligible', async () => {
    const s = syncShard(11);
    const nodes = new Map<string, SyncwalNode>();
    for (const id of members) nodes.set(id, await s.drive(s.open(id)));
    await s.settle(200);
    const a = nodes.get('a')!;
    await s.drive(nodes.get('c')!.close());
    await written(s, a, 0, 200);
    await s.drive(a.checkpoint());
    expect(a.info().firstLsn).toBeGreaterThan(1);
    s.wipe('c');
    const c = await s.drive(s.open('c'));
    await s.settle(1_500);
    expect(s.events.some((e) => e.node === 'a' && e.event === 'full-sync-done')).toBe(true);
    expect(s.events.some((e) => e.node === 'c' && e.event === 'full-sync-installed')).toBe(true);
    expect(text(c.getSync('k199'))).toBe('v199');
    expect(c.getSync('k3')).toBeNull();
    expect(c.info().keys).toBe(a.info().keys);
    expect(c.status('r150')).toMatchObject({ status: 'committed' });
    const after = await s.drive(a.put('after', 'sync'));
    await s.drive(c.get('after', { read: { after: after.lsn } }));
    expect(text(c.getSync('after'))).toBe('sync');
    await s.settle(200);
    const replica = a.replication()!.replicas.find((r) => r.id === 'c')!;
    expect(replica).toMatchObject({ connected: true, eligible: true, state: 'replicate' });
    expect(c.replication()!.fullSync).toMatchObject({ state: 'done', keysDone: 199 });
    // The installed replica restarts from its checkpoint and the log after the snapshot.
    await s.drive(c.close());
    const again = await s.drive(s.open('c'));
    expect(text(again.getSync('k199'))).toBe('v199');
    // 'after' waits in its log until the primary's commit point reaches it again.
    await s.drive(again.get('after', { read: { after: after.lsn } }));
    expect(text(again.getSync('after'))).toBe('sync');
    for (const node of [a, nodes.get('b')!, again]) await s.drive(node.close());
  });

  it('a stop between checkpoint commit and log reset is finished at the next open', async () => {
    const s = syncShard(12);
    const nodes = new Map<string, SyncwalNode>();
    for (const id of members) nodes.set(id, await s.drive(s.open(id)));
    await s.settle(200);
    const a = nodes.get('a')!;
    let c = nodes.get('c')!;
    await s.drive(c.put('x', 'y').catch(() => undefined));
    s.network.setLink('a', 'c', false);
    await s.settle(50);
    await written(s, a, 0, 120);
    await s.drive(a.checkpoint());
    // c commits the snapshot to its checkpoint, then "stops" before its log is reset.
    const checkpoint = s.checkpoints.get('c')!;
    const store = checkpoint.store();
    const commitReplace = store.commitReplace.bind(store);
    let committed = false;
    checkpoint.store = () => ({
      ...store,
      commitReplace: async (commit) => {
        await commitReplace(commit);
        committed = true;
        throw new Error('stopped after the commit');
      },
    });
    await s.drive(c.close());
    c = await s.drive(s.open('c'));
    s.network.setLink('a', 'c', true);
    for (let round = 0; round < 40 && !committed; round++) await s.settle(50);
    expect(committed).toBe(true);
    expect(c.info().lastLsn).toBeLessThan(checkpoint.logBase!.lsn);
    await s.drive(c.close());
    checkpoint.store = MemoryCheckpoint.prototype.store;
    c = await s.drive(s.open('c'));
    expect(c.info().firstLsn).toBe(checkpoint.logBase!.lsn + 1);
    expect(text(c.getSync('k119'))).toBe('v119');
    await s.settle(500);
    const after = await s.drive(a.put('after', 'reset'));
    await s.drive(c.get('after', { read: { after: after.lsn } }));
    expect(text(c.getSync('after'))).toBe('reset');
    for (const node of [a, nodes.get('b')!, c]) await s.drive(node.close());
  });
});
