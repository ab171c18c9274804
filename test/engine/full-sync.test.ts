/**
 * Full sync (src/engine/full-sync.ts) end to end on simulated ports: a primary-side sender and
 * a replica-side receiver over a SimNetwork that drops, duplicates and reorders, the replica
 * writing into a SimCheckpointDevice and a Log on a SimDisk, all in virtual time. Seeded; a
 * failure names its seed.
 */
import { describe, expect, it } from 'vitest';
import type { PeerMessage } from '../../src/core/consensus/messages.js';
import { RecordType } from '../../src/core/format/frame.js';
import {
  SnapshotReceiver,
  SnapshotSender,
  type FullSyncOptions,
  type FullSyncProgress,
  type InstalledSnapshot,
} from '../../src/engine/full-sync.js';
import { latin1SnapshotSource, type SnapshotSource } from '../../src/engine/full-sync-source.js';
import type { CheckpointStore, RequestIdRecord } from '../../src/ports/checkpoint.js';
import type { Transport } from '../../src/ports/transport.js';
import { SimCheckpointDevice } from '../../src/sim/checkpoint.js';
import { SimDisk } from '../../src/sim/disk.js';
import { SimNetwork, type SimNetworkFaults } from '../../src/sim/network.js';
import { Random } from '../../src/sim/random.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import { Log } from '../../src/storage/log.js';

const replicaDir = '/replica';
const tickMs = 5;

/** A sorted state of `count` keys with values of 0 to 200 bytes (latin1 strings). */
function makeState(random: Random, count: number) {
  const keys: string[] = [];
  const values: string[] = [];
  for (let index = 0; index < count; index++) {
    keys.push(`key:${String(index * 7).padStart(8, '0')}`);
    const length = random.range(0, 200);
    let value = '';
    for (let at = 0; at < length; at++) value += String.fromCharCode(random.int(256));
    values.push(value);
  }
  const requestIds: RequestIdRecord[] = [
    { requestId: 'req-a', lsn: 900, outcome: 'committed', value: Uint8Array.of(1, 2) },
    { requestId: 'req-\u00e9', lsn: 950, outcome: 'aborted', value: null },
  ];
  return { keys, values, requestIds };
}

function sourceOf(state: ReturnType<typeof makeState>, lsn = 1_000): SnapshotSource {
  return latin1SnapshotSource({ lsn, term: 3, checksum: 0xfeedf00d, ...state });
}

/** The replica: its disk, log, checkpoint device, transport and receiver (one process life). */
class Replica {
  readonly device: SimCheckpointDevice;
  readonly disk: SimDisk;
  log!: Log;
  store!: CheckpointStore;
  transport!: Transport;
  receiver!: SnapshotReceiver;
  installed: InstalledSnapshot[] = [];
  failures: string[] = [];
  /** Called when the receiver calls commitReplace (the install begins). */
  onCommit: (() => void) | null = null;

  constructor(
    readonly scheduler: SimScheduler,
    readonly network: SimNetwork,
    seed: number,
  ) {
    this.device = new SimCheckpointDevice({ seed, scheduler, latencyMs: { min: 0, max: 3 } });
    this.disk = new SimDisk({ seed, scheduler, latencyMs: { min: 0, max: 2 } });
  }

  /** Starts (or restarts) the replica process. */
  async start(): Promise<void> {
    this.log = await this.scheduler.drive(
      Log.open(this.disk, { dir: replicaDir, segmentSizeBytes: 64 * 1024 }),
    );
    this.store = this.device.open();
    this.transport = this.network.transport('replica');
    const store = this.store;
    const watched: CheckpointStore = {
      load: () => store.load(),
      apply: (batch) => store.apply(batch),
      close: () => store.close(),
      beginReplace: () => store.beginReplace(),
      addReplace: (entries) => store.addReplace(entries),
      commitReplace: (commit) => {
        this.onCommit?.();
        return store.commitReplace(commit);
      },
    };
    this.receiver = new SnapshotReceiver({
      transport: this.transport,
      nodeId: 'replica',
      store: watched,
      log: this.log,
      onInstalled: (installed) => {
        this.installed.push(installed);
      },
      onFailed: (error) => {
        this.failures.push(error.code);
      },
    });
    this.transport.onMessage((from, message) => {
      if (message.type === 'snapshot-begin' || message.type === 'snapshot-chunk') {
        this.receiver.step(from, message, this.scheduler.now);
      }
    });
  }

  /** Power loss: the process, its unsynced writes and its links are gone. */
  crash(): void {
    this.network.crash('replica');
    this.disk.crash();
    this.device.crash();
  }
}

/** The primary's side: a transport and the current sender, restarted on failure. */
class Primary {
  readonly transport: Transport;
  sender: SnapshotSender | null = null;
  senders = 0;
  acks = 0;
  finished: SnapshotSender[] = [];

  constructor(
    readonly scheduler: SimScheduler,
    network: SimNetwork,
    public source: SnapshotSource,
    readonly options: Partial<FullSyncOptions>,
  ) {
    this.transport = network.transport('primary');
    this.transport.onMessage((_from, message: PeerMessage) => {
      if (message.type !== 'snapshot-ack' || this.sender === null) return;
      this.acks += 1;
      this.sender.step(message, this.scheduler.now);
    });
    this.transport.onPeer((event) => {
      if (event.peer !== 'replica' || event.direction !== 'outbound') return;
      if (!event.up) this.sender?.cancel('link down');
      else if (this.sender === null || this.sender.state === 'failed') this.start();
    });
  }

  start(): void {
    this.senders += 1;
    this.sender = new SnapshotSender({
      transport: this.transport,
      nodeId: 'primary',
      peer: 'replica',
      term: 3,
      snapshotId: 100 + this.senders,
      source: this.source,
      now: this.scheduler.now,
      options: this.options,
    });
  }

  /** Ticks the sender every `tickMs` until `until()`; a failed sender is replaced. */
  tickUntil(until: () => boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const tick = (): void => {
        if (until()) {
          resolve();
          return;
        }
        const sender = this.sender;
        if (sender !== null && sender.state === 'failed') {
          this.finished.push(sender);
          if (this.transport.isConnected('replica')) this.start();
        }
        this.sender?.tick(this.scheduler.now);
        this.scheduler.schedule(tickMs, tick);
      };
      this.scheduler.schedule(tickMs, tick);
    });
  }
}

async function expectInstalled(replica: Replica, state: ReturnType<typeof makeState>, seed = 0) {
  const { scheduler, log } = replica;
  const loaded = await scheduler.drive(replica.store.load());
  expect(loaded.appliedLsn, `seed ${seed}`).toBe(1_000);
  expect(loaded.logBase, `seed ${seed}`).toEqual({ lsn: 1_000, checksum: 0xfeedf00d, term: 3 });
  expect(loaded.entries.length, `seed ${seed}`).toBe(state.keys.length);
  let mismatches = 0;
  loaded.entries.forEach((entry, index) => {
    const key = Buffer.from(entry.key).toString('latin1');
    const value = Buffer.from(entry.value).toString('latin1');
    if (key !== state.keys[index] || value !== state.values[index]) mismatches += 1;
  });
  expect(mismatches, `seed ${seed}`).toBe(0);
  expect(loaded.requestIds, `seed ${seed}`).toEqual(state.requestIds);
  expect([log.firstLsn, log.lastLsn, log.lastTerm, log.lastChecksum], `seed ${seed}`).toEqual([
    1_001, 1_000, 3, 0xfeedf00d,
  ]);
}

async function oldLog(replica: Replica, records: number): Promise<void> {
  for (let index = 0; index < records; index++) {
    const payload = Uint8Array.of(index & 0xff, 1, 2, 3);
    await replica.scheduler.drive(
      replica.log.append([{ type: RecordType.Intent, term: 1, payload }]),
    );
  }
}

function setUp(seed: number, faults: Partial<SimNetworkFaults>, extra = {}) {
  const scheduler = new SimScheduler();
  const network = new SimNetwork({ scheduler, seed, faults, ...extra });
  return { scheduler, network, random: new Random(seed) };
}

const lossy: Partial<SimNetworkFaults> = {
  dropProbability: 0.05,
  duplicateProbability: 0.05,
  reorderProbability: 0.1,
  reorderDelayMsMax: 30,
  delayMs: { min: 1, max: 4 },
};

describe('full sync over a lossy simulated network', () => {
  it('installs 20,000 keys through drops, duplicates and reordering', async () => {
    const { scheduler, network, random } = setUp(11, lossy);
    const state = makeState(random, 20_000);
    const replica = new Replica(scheduler, network, 11);
    await replica.start();
    await oldLog(replica, 30);
    const options = { streams: 4, chunkBytes: 16 * 1024, retransmitMs: 50 };
    const primary = new Primary(scheduler, network, sourceOf(state), options);
    const samples: FullSyncProgress[] = [];
    let ticks = 0;
    const done = primary.tickUntil(() => {
      const sender = primary.sender;
      ticks += 1;
      if (sender !== null && sender.state === 'streaming' && ticks % 4 === 0) {
        samples.push(sender.progress(scheduler.now));
      }
      return sender?.state === 'done';
    });
    await scheduler.drive(done);
    expect(primary.senders).toBe(1);
    expect(replica.installed.map((each) => each.lsn)).toEqual([1_000]);
    expect(replica.failures).toEqual([]);
    await expectInstalled(replica, state);
    const sender = primary.sender!;
    const final = sender.progress(scheduler.now);
    const bytes =
      state.keys.reduce((sum, key) => sum + key.length, 0) +
      state.values.reduce((sum, value) => sum + value.length, 0);
    expect(final).toMatchObject({ state: 'done', keysDone: 20_000, bytesDone: bytes, etaMs: 0 });
    expect(final.keysTotal).toBe(20_000);
    expect(final.bytesPerSec).toBeGreaterThan(0);
    expect(final.retransmits).toBeGreaterThan(0);
    // Mid-transfer figures move forward, with a rate and an ETA once bytes are acknowledged.
    const middle = samples.filter((each) => each.bytesDone > 0 && each.bytesDone < bytes);
    expect(middle.length).toBeGreaterThan(2);
    for (const sample of middle) expect(sample.etaMs).toBeGreaterThan(0);
    for (let index = 1; index < samples.length; index++) {
      expect(samples[index]!.bytesDone).toBeGreaterThanOrEqual(samples[index - 1]!.bytesDone);
    }
    const receiving = replica.receiver.progress(scheduler.now);
    expect(receiving).toMatchObject({ state: 'done', keysDone: 20_000, bytesDone: bytes });
    const counters = network.counters;
    expect(counters.dropped).toBeGreaterThan(0);
    expect(counters.duplicated).toBeGreaterThan(0);
    expect(counters.reordered).toBeGreaterThan(0);
    // The replica's log continues after the snapshot: the primary's next record fits it.
    await scheduler.drive(
      replica.log.append([{ type: RecordType.Intent, term: 3, payload: Uint8Array.of(9) }]),
    );
    expect(replica.log.lastLsn).toBe(1_001);
  });

  it('installs with 1 stream and with 8, over 5 seeds each', async () => {
    for (const streams of [1, 8]) {
      for (let seed = 20; seed < 25; seed++) {
        const { scheduler, network, random } = setUp(seed, lossy);
        const state = makeState(random, random.range(0, 3_000));
        const replica = new Replica(scheduler, network, seed);
        await replica.start();
        const options = {
          streams,
          chunkBytes: 4 * 1024,
          windowChunks: random.range(1, 6),
          retransmitMs: 40,
        };
        const primary = new Primary(scheduler, network, sourceOf(state), options);
        await scheduler.drive(primary.tickUntil(() => primary.sender?.state === 'done'));
        await expectInstalled(replica, state, seed);
      }
    }
  });

  it('holds back under transport back-pressure and loses nothing', async () => {
    const { scheduler, network, random } = setUp(
      31,
      { delayMs: { min: 5, max: 5 } },
      {
        sendQueueBytesMax: 20 * 1024,
      },
    );
    const state = makeState(random, 5_000);
    const replica = new Replica(scheduler, network, 31);
    await replica.start();
    const options = { streams: 4, chunkBytes: 8 * 1024, windowChunks: 8, queuedBytesMax: 1 << 30 };
    const primary = new Primary(scheduler, network, sourceOf(state), options);
    await scheduler.drive(primary.tickUntil(() => primary.sender?.state === 'done'));
    expect(network.counters.overflowed).toBeGreaterThan(0);
    expect(primary.sender!.progress(scheduler.now).retransmits).toBe(0);
    await expectInstalled(replica, state);
  });
});

describe('full sync: a replica that crashes mid-transfer', () => {
  it('starts over with a new snapshot id and ends with identical state (10 seeds)', async () => {
    let crashedStaging = 0;
    let crashedInstalling = 0;
    for (let seed = 40; seed < 50; seed++) {
      const { scheduler, network, random } = setUp(seed, { ...lossy, dropProbability: 0.02 });
      const state = makeState(random, 8_000);
      const replica = new Replica(scheduler, network, seed);
      await replica.start();
      await oldLog(replica, 20);
      const options = { chunkBytes: 8 * 1024, retransmitMs: 50, stallMs: 2_000 };
      const primary = new Primary(scheduler, network, sourceOf(state), options);
      // Crash once, at a seeded moment of the first transfer (possibly during the install).
      const crashAt = random.range(10, 150);
      await scheduler.drive(
        primary.tickUntil(() => scheduler.now >= crashAt || primary.sender?.state === 'done'),
      );
      if (primary.sender?.state !== 'done') {
        const phase = replica.receiver.state;
        replica.crash();
        if (phase === 'installing') crashedInstalling += 1;
        else crashedStaging += 1;
        await replica.start();
        // What a restarted engine does at open (src/engine/open.ts, to be wired): a checkpoint
        // committed ahead of the log's reset finishes the reset from its log base.
        const loaded = await scheduler.drive(replica.store.load());
        const base = loaded.logBase;
        if (base !== undefined && replica.log.firstLsn !== base.lsn + 1) {
          await scheduler.drive(replica.log.resetTo(base));
        }
        const consistent =
          (loaded.appliedLsn === 0 && replica.log.lastLsn === 20) ||
          (loaded.appliedLsn === 1_000 && replica.log.firstLsn === 1_001);
        expect(consistent, `seed ${seed}: checkpoint and log agree after the crash`).toBe(true);
      }
      await scheduler.drive(primary.tickUntil(() => primary.sender?.state === 'done'));
      await expectInstalled(replica, state, seed);
      if (replica.installed.length === 0) continue;
      expect(replica.installed.at(-1)!.snapshotId, `seed ${seed}`).toBe(100 + primary.senders);
    }
    expect(crashedStaging).toBeGreaterThan(2);
    expect(crashedStaging + crashedInstalling).toBeGreaterThanOrEqual(8);
  });

  it('survives a crash at every step of the install (commit, log reset, report)', async () => {
    const outcomes = { old: 0, installed: 0 };
    // Steps 0 to 19 after the commit is issued, each with three seeds: the commit completes
    // within the first steps (a crash before may keep it or not), the log reset takes the rest.
    for (let run = 0; run < 60; run++) {
      const steps = run % 20;
      const seed = 80 + run;
      const { scheduler, network, random } = setUp(seed, {});
      const state = makeState(random, 600);
      const replica = new Replica(scheduler, network, seed);
      await replica.start();
      await oldLog(replica, 20);
      const primary = new Primary(scheduler, network, sourceOf(state), { chunkBytes: 4 * 1024 });
      let committing = false;
      const commit = new Promise<void>((resolve) => {
        replica.onCommit = () => {
          committing = true;
          resolve();
        };
      });
      void primary.tickUntil(() => committing);
      await scheduler.drive(commit);
      for (let step = 0; step < steps; step++) await scheduler.step();
      const reported = replica.installed.length > 0;
      replica.crash();
      await replica.start();
      const loaded = await scheduler.drive(replica.store.load());
      const base = loaded.logBase;
      if (base !== undefined && replica.log.firstLsn !== base.lsn + 1) {
        await scheduler.drive(replica.log.resetTo(base));
      }
      if (loaded.appliedLsn === 0) {
        expect(reported, `steps ${steps}: an install reported done was lost`).toBe(false);
        expect([replica.log.firstLsn, replica.log.lastLsn], `steps ${steps}`).toEqual([1, 20]);
        outcomes.old += 1;
      } else {
        await expectInstalled(replica, state, steps);
        outcomes.installed += 1;
      }
    }
    expect(outcomes.old).toBeGreaterThan(0);
    expect(outcomes.installed).toBeGreaterThan(40);
  });

  it('a receiver that forgot the snapshot (no link event): sender fails, restarts', async () => {
    const { scheduler, network, random } = setUp(61, {});
    const state = makeState(random, 3_000);
    const replica = new Replica(scheduler, network, 61);
    await replica.start();
    const primary = new Primary(scheduler, network, sourceOf(state), {
      chunkBytes: 4 * 1024,
      windowChunks: 1,
      retransmitMs: 20,
      stallMs: 500,
    });
    await scheduler.drive(
      primary.tickUntil(() => (primary.sender?.progress(scheduler.now).chunks ?? 0) > 6),
    );
    // A new receiver on the same store: it knows nothing of the snapshot in progress.
    const forgetful = new SnapshotReceiver({
      transport: replica.transport,
      nodeId: 'replica',
      store: replica.store,
      log: replica.log,
      onInstalled: (installed) => {
        replica.installed.push(installed);
      },
    });
    await scheduler.drive(replica.receiver.close());
    replica.transport.onMessage((from, message) => {
      if (message.type === 'snapshot-begin' || message.type === 'snapshot-chunk') {
        forgetful.step(from, message, scheduler.now);
      }
    });
    replica.receiver = forgetful;
    await scheduler.drive(primary.tickUntil(() => primary.sender?.state === 'done'));
    expect(primary.finished.map((sender) => sender.failure)).toEqual([
      expect.stringMatching(/^no progress for/),
    ]);
    expect(primary.senders).toBe(2);
    await expectInstalled(replica, state);
  });
});

describe('full sync: the receiver', () => {
  it('starts over when a Begin with another snapshot id arrives mid-transfer', async () => {
    const { scheduler, network, random } = setUp(71, {
      reorderProbability: 0.2,
      reorderDelayMsMax: 20,
    });
    const state = makeState(random, 4_000);
    const replica = new Replica(scheduler, network, 71);
    await replica.start();
    const other = makeState(new Random(72), 3_000);
    const primary = new Primary(scheduler, network, sourceOf(other), { chunkBytes: 4 * 1024 });
    await scheduler.drive(
      primary.tickUntil(() => (replica.receiver.progress(scheduler.now)?.keysDone ?? 0) > 500),
    );
    // The primary moves to another snapshot (say it restarted): the old staging is dropped.
    primary.sender!.cancel('test');
    primary.source = sourceOf(state);
    primary.start();
    await scheduler.drive(primary.tickUntil(() => primary.sender?.state === 'done'));
    expect(replica.installed.map((each) => each.snapshotId)).toEqual([102]);
    await expectInstalled(replica, state);
  });

  it('fails a malformed chunk with INVALID, acks nothing of it, and answers no more', async () => {
    const sent: PeerMessage[] = [];
    const failures: string[] = [];
    const device = new SimCheckpointDevice({ seed: 1 });
    const disk = new SimDisk({ seed: 1 });
    const log = await Log.open(disk, { dir: replicaDir, segmentSizeBytes: 64 * 1024 });
    const receiver = new SnapshotReceiver({
      transport: { send: (_to, message) => sent.push(message) > 0 },
      nodeId: 'replica',
      store: device.open(),
      log,
      onInstalled: () => undefined,
      onFailed: (error) => failures.push(error.code),
    });
    const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
    const common = { term: 1, from: 'primary', snapshotId: 5 };
    const begin = {
      type: 'snapshot-begin' as const,
      ...common,
      snapshotLsn: 10,
      snapshotTerm: 1,
      snapshotChecksum: 0,
      streams: 1,
      keys: 1,
      bytes: 2,
    };
    receiver.step('primary', begin, 0);
    await settle();
    expect(sent).toEqual([
      expect.objectContaining({ type: 'snapshot-ack', stream: 0, seq: 0, installed: false }),
    ]);
    const garbage = Uint8Array.of(9, 0, 0, 0, 1);
    const chunk = { type: 'snapshot-chunk' as const, ...common, stream: 0, seq: 1, done: true };
    receiver.step('primary', { ...chunk, entries: garbage }, 1);
    await settle();
    expect(failures).toEqual(['INVALID']);
    expect(receiver.state).toBe('failed');
    receiver.step('primary', begin, 2);
    receiver.step('primary', { ...chunk, entries: new Uint8Array(0) }, 3);
    await settle();
    expect(sent).toHaveLength(1);
    // Another snapshot is welcome after a failure.
    receiver.step('primary', { ...begin, snapshotId: 6 }, 4);
    await settle();
    expect(sent).toHaveLength(2);
    await receiver.close();
    await log.close();
  });
});
