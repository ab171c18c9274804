import { describe, expect, it } from 'vitest';
import type { Heartbeat } from '../../src/core/consensus/messages.js';
import type { HelloSource, Transport } from '../../src/ports/transport.js';
import { SimNetwork } from '../../src/sim/network.js';
import type { SimNetworkFaults } from '../../src/sim/network.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import { Recorder, allUp, heartbeat, transportConformanceSuite } from './transport.suite.js';
import type { ClusterOptions, TransportCluster } from './transport.suite.js';

interface SimCluster extends TransportCluster {
  network: SimNetwork;
  scheduler: SimScheduler;
}

function simCluster(options: ClusterOptions & { seed?: number; trace?: boolean }): SimCluster {
  const scheduler = new SimScheduler();
  const network = new SimNetwork({
    scheduler,
    seed: options.seed ?? 1,
    ...(options.sendQueueBytesMax === undefined
      ? {}
      : { sendQueueBytesMax: options.sendQueueBytesMax }),
    ...(options.trace === undefined ? {} : { trace: options.trace }),
  });
  const transports = new Map<string, Transport>();
  const hellos = new Map<string, HelloSource>();
  const startOne = (id: string): Transport => {
    const hello = hellos.get(id);
    const transport = network.transport(id, hello === undefined ? {} : { hello });
    transports.set(id, transport);
    return transport;
  };
  return {
    network,
    scheduler,
    shardId: 'sim',
    start: async (ids, hello) => {
      for (const id of ids) hellos.set(id, hello(id));
      return ids.map(startOne);
    },
    restart: async (id) => {
      await transports.get(id)?.close();
      return startOne(id);
    },
    stop: async (id) => {
      await transports.get(id)?.close();
    },
    settle: async (promise, label) => {
      try {
        return await scheduler.drive(promise, { stepsMax: 100_000 });
      } catch (error: unknown) {
        throw new Error(`${label}: not settled`, { cause: error });
      }
    },
    cleanup: async () => {
      for (const transport of transports.values()) await transport.close();
      scheduler.clear();
    },
  };
}

transportConformanceSuite('SimNetwork', async (options) => simCluster(options));

transportConformanceSuite('SimNetwork with delays', async (options) => {
  const cluster = simCluster({ ...options, seed: 7 });
  cluster.network.setFaults({ delayMs: { min: 0, max: 30 }, connectDelayMs: { min: 0, max: 50 } });
  return cluster;
});

// ---------------------------------------------------------------------------------------------
// Simulation-only behaviour: faults, counters, determinism.

const quiet: HelloSource = () => ({ term: 0, lastLsn: 0, lastTerm: 0 });

async function started(cluster: SimCluster, ids: string[]): Promise<Recorder[]> {
  const transports = await cluster.start(ids, () => quiet);
  const recorders = transports.map((transport) => new Recorder(transport));
  await allUp(cluster, recorders);
  return recorders;
}

/** Runs the scheduler until nothing is queued (every message delivered or lost). */
async function drain(cluster: SimCluster): Promise<void> {
  await cluster.scheduler.run({ stepsMax: 1_000_000 });
  expect(cluster.scheduler.pending).toBe(0);
}

function seqs(recorder: Recorder, from: string): number[] {
  return recorder.messagesFrom(from).map((message) => (message as Heartbeat).seq);
}

describe('SimNetwork: faults', () => {
  it('partitions both ways, silently, with the links still up, until healed', async () => {
    const cluster = simCluster({});
    const [a, b, c] = await started(cluster, ['a', 'b', 'c']);
    cluster.network.partition(['a'], ['b', 'c']);
    expect(a!.transport.send('b', heartbeat('a', 1))).toBe(true);
    expect(b!.transport.send('a', heartbeat('b', 1))).toBe(true);
    expect(b!.transport.send('c', heartbeat('b', 1))).toBe(true);
    await drain(cluster);
    expect(a!.messages).toEqual([]);
    expect(seqs(c!, 'b')).toEqual([1]);
    expect(b!.messages).toEqual([]);
    expect(cluster.network.counters.blocked).toBe(2);
    expect(a!.transport.isConnected('b')).toBe(true);
    cluster.network.heal();
    expect(a!.transport.send('b', heartbeat('a', 2))).toBe(true);
    await drain(cluster);
    expect(seqs(b!, 'a')).toEqual([2]);
    await cluster.cleanup();
  });

  it('blocks one direction only', async () => {
    const cluster = simCluster({});
    const [a, b] = await started(cluster, ['a', 'b']);
    cluster.network.block('a', 'b');
    a!.transport.send('b', heartbeat('a', 1));
    b!.transport.send('a', heartbeat('b', 1));
    await drain(cluster);
    expect(b!.messages).toEqual([]);
    expect(seqs(a!, 'b')).toEqual([1]);
    cluster.network.unblock('a', 'b');
    a!.transport.send('b', heartbeat('a', 2));
    await drain(cluster);
    expect(seqs(b!, 'a')).toEqual([2]);
    await cluster.cleanup();
  });

  it('loses messages in flight when a block starts', async () => {
    const cluster = simCluster({});
    cluster.network.setFaults({ delayMs: { min: 10, max: 10 } });
    const [a, b] = await started(cluster, ['a', 'b']);
    a!.transport.send('b', heartbeat('a', 1));
    cluster.network.block('a', 'b');
    await drain(cluster);
    expect(b!.messages).toEqual([]);
    expect(cluster.network.counters.blocked).toBe(1);
    expect(a!.transport.queuedBytes('b')).toBe(0);
    await cluster.cleanup();
  });

  it('takes a link down and up with onPeer events; in-flight messages are lost', async () => {
    const cluster = simCluster({});
    cluster.network.setFaults({ delayMs: { min: 10, max: 10 } });
    const [a, b] = await started(cluster, ['a', 'b']);
    expect(a!.transport.send('b', heartbeat('a', 1))).toBe(true);
    cluster.network.setLink('a', 'b', false);
    expect(a!.transport.isConnected('b')).toBe(false);
    expect(a!.transport.send('b', heartbeat('a', 2))).toBe(false);
    await drain(cluster);
    expect(a!.isUp('b', 'outbound')).toBe(false);
    expect(b!.isUp('a', 'inbound')).toBe(false);
    // The other direction is a link of its own.
    expect(b!.isUp('a', 'outbound')).toBe(true);
    expect(b!.messages).toEqual([]);
    const counters = cluster.network.counters;
    expect(counters.lost).toBe(1);
    expect(counters.refused).toBe(1);
    cluster.network.setLink('a', 'b', true);
    await cluster.settle(
      a!.until(() => a!.isUp('b', 'outbound')),
      'link back up',
    );
    expect(a!.transport.send('b', heartbeat('a', 3))).toBe(true);
    await drain(cluster);
    expect(seqs(b!, 'a')).toEqual([3]);
    await cluster.cleanup();
  });

  it('crashes a node: peers see it down, its handlers stay silent, it restarts', async () => {
    const cluster = simCluster({});
    cluster.network.setFaults({ delayMs: { min: 5, max: 5 } });
    const [a, b] = await started(cluster, ['a', 'b']);
    a!.transport.send('b', heartbeat('a', 1));
    b!.transport.send('a', heartbeat('b', 1));
    const bEvents = b!.peerEvents.length;
    cluster.network.crash('b');
    expect(b!.transport.send('a', heartbeat('b', 2))).toBe(false);
    await drain(cluster);
    expect(a!.isUp('b', 'outbound') || a!.isUp('b', 'inbound')).toBe(false);
    expect(b!.peerEvents.length).toBe(bEvents);
    expect(b!.messages).toEqual([]);
    expect(a!.messages).toEqual([]);
    expect(cluster.network.counters.lost).toBe(2);
    const b2 = new Recorder(cluster.network.transport('b'));
    await allUp(cluster, [a!, b2]);
    expect(a!.transport.send('b', heartbeat('a', 3))).toBe(true);
    await drain(cluster);
    expect(seqs(b2, 'a')).toEqual([3]);
    expect(b!.messages).toEqual([]);
    await cluster.cleanup();
  });

  it('drops and duplicates at the configured rates, and counts what it did', async () => {
    const cluster = simCluster({ seed: 42 });
    const [a, b] = await started(cluster, ['a', 'b']);
    cluster.network.setFaults({
      dropProbability: 0.2,
      duplicateProbability: 0.1,
      reorderDelayMsMax: 5,
    });
    const sent = 2000;
    for (let seq = 0; seq < sent; seq++)
      expect(a!.transport.send('b', heartbeat('a', seq))).toBe(true);
    await drain(cluster);
    const counters = cluster.network.counters;
    expect(counters.sent).toBe(sent);
    expect(counters.dropped).toBeGreaterThan(sent * 0.15);
    expect(counters.dropped).toBeLessThan(sent * 0.25);
    expect(counters.duplicated).toBeGreaterThan(sent * 0.06);
    expect(counters.duplicated).toBeLessThan(sent * 0.14);
    expect(counters.delivered).toBe(sent - counters.dropped + counters.duplicated);
    expect(b!.messages.length).toBe(counters.delivered);
    expect(new Set(seqs(b!, 'a')).size).toBe(sent - counters.dropped);
    await cluster.cleanup();
  });

  it('reorders only when told to', async () => {
    const cluster = simCluster({ seed: 5 });
    const [a, b] = await started(cluster, ['a', 'b']);
    cluster.network.setFaults({ delayMs: { min: 0, max: 20 } });
    for (let seq = 0; seq < 200; seq++) a!.transport.send('b', heartbeat('a', seq));
    await drain(cluster);
    const inOrder = seqs(b!, 'a');
    expect(inOrder).toEqual([...inOrder].sort((x, y) => x - y));
    cluster.network.setFaults({ reorderProbability: 0.5, reorderDelayMsMax: 50 });
    for (let seq = 200; seq < 400; seq++) a!.transport.send('b', heartbeat('a', seq));
    await drain(cluster);
    const later = seqs(b!, 'a').slice(200);
    expect(later).not.toEqual([...later].sort((x, y) => x - y));
    expect([...later].sort((x, y) => x - y)).toEqual(
      Array.from({ length: 200 }, (_, i) => i + 200),
    );
    expect(cluster.network.counters.reordered).toBeGreaterThan(0);
    await cluster.cleanup();
  });
});

describe('SimNetwork: determinism', () => {
  const faults: Partial<SimNetworkFaults> = {
    dropProbability: 0.1,
    duplicateProbability: 0.1,
    reorderProbability: 0.2,
    reorderDelayMsMax: 40,
    delayMs: { min: 1, max: 15 },
    connectDelayMs: { min: 0, max: 30 },
  };

  /** A fixed workload with every fault on: traffic, a crash, a restart, a broken link. */
  async function run(seed: number): Promise<{ trace: readonly string[]; received: string[] }> {
    const cluster = simCluster({ seed, trace: true });
    cluster.network.setFaults(faults);
    const [a, b, c] = await started(cluster, ['a', 'b', 'c']);
    const received: string[] = [];
    for (const recorder of [a!, b!, c!]) {
      recorder.transport.onMessage((from, message) => {
        received.push(
          `${cluster.scheduler.now} ${from}->${recorder.transport.nodeId} ${
            (message as Heartbeat).seq
          }`,
        );
      });
    }
    for (let round = 0; round < 100; round++) {
      a!.transport.send('b', heartbeat('a', round));
      b!.transport.send('c', heartbeat('b', round));
      c!.transport.send('a', heartbeat('c', round));
      if (round === 40) cluster.network.crash('c');
      if (round === 60) cluster.network.setLink('a', 'b', false);
      if (round === 70) cluster.network.setLink('a', 'b', true);
      await cluster.scheduler.step();
      await cluster.scheduler.step();
    }
    await drain(cluster);
    const trace = cluster.network.trace;
    await cluster.cleanup();
    return { trace, received };
  }

  it('replays the same trace from the same seed', async () => {
    const first = await run(1234);
    const second = await run(1234);
    expect(first.trace.length).toBeGreaterThan(300);
    expect(second.trace).toEqual(first.trace);
    expect(second.received).toEqual(first.received);
    const other = await run(4321);
    expect(other.trace).not.toEqual(first.trace);
  });
});
