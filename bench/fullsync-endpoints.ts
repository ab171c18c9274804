/**
 * The two ends of the `fullsync` bench (bench/fullsync.ts): a primary that sends a snapshot with
 * SnapshotSender, and a replica that installs it with SnapshotReceiver, each on its own real
 * TcpTransport on 127.0.0.1. The replica end runs in the bench's process or in a child process
 * (bench/fullsync-replica.ts), so the two event loops can run on two cores.
 */
import { performance } from 'node:perf_hooks';
import { SnapshotReceiver, SnapshotSender } from '../src/engine/full-sync.js';
import { latin1SnapshotSource, type SnapshotSource } from '../src/engine/full-sync-source.js';
import { openSqliteCheckpoint } from '../src/node/checkpoint-sqlite.js';
import { NodeDisk } from '../src/node/disk.js';
import { TcpTransport } from '../src/node/transport.js';
import type { CheckpointStore } from '../src/ports/checkpoint.js';
import { Random } from '../src/sim/random.js';
import { Log } from '../src/storage/log.js';

export const host = '127.0.0.1';
const shard = { shardId: 'bench', secret: 'fullsync-bench-secret' };
const hello = () => ({ term: 1, lastLsn: 0, lastTerm: 0 });
/** FULLSYNC_BENCH_DEBUG=1 prints the transports' events on stderr. */
const say = (level: string) => (event: string, fields?: object) =>
  process.stderr.write(`${process.pid} ${level} ${event} ${JSON.stringify(fields ?? {})}\n`);
const logger =
  process.env.FULLSYNC_BENCH_DEBUG === '1'
    ? { debug: say('debug'), info: say('info'), warn: say('warn'), error: say('error') }
    : undefined;
export const snapshotLsn = 1_000_000;

/** What the replica writes into: the real SQLite checkpoint and log, or nothing at all. */
export type ReplicaStore = 'sqlite' | 'null';

/** `keys` keys of 13 bytes with `valueBytes`-byte values, as a snapshot (seeded, sorted). */
export function benchSource(keys: number, valueBytes: number): SnapshotSource {
  const random = new Random(7);
  const pool = Buffer.allocUnsafe(keys * valueBytes);
  for (let offset = 0; offset + 4 <= pool.length; offset += 4) {
    pool.writeUInt32LE(random.uint32(), offset);
  }
  const keyList: string[] = [];
  const valueList: string[] = [];
  for (let index = 0; index < keys; index++) {
    keyList.push(`key:${String(index).padStart(9, '0')}`);
    valueList.push(pool.toString('latin1', index * valueBytes, (index + 1) * valueBytes));
  }
  return latin1SnapshotSource({
    lsn: snapshotLsn,
    term: 1,
    checksum: 0x1234abcd,
    keys: keyList,
    values: valueList,
    requestIds: [],
  });
}

/** A store that takes everything and keeps nothing (measures the transfer alone). */
function nullStore(): CheckpointStore {
  const done = async () => undefined;
  return {
    load: async () => ({ appliedLsn: 0, entries: [], requestIds: [] }),
    apply: done,
    close: done,
    beginReplace: done,
    addReplace: done,
    commitReplace: done,
  };
}

async function waitConnected(transport: TcpTransport, peer: string): Promise<void> {
  for (let attempt = 0; attempt < 500 && !transport.isConnected(peer); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (!transport.isConnected(peer)) throw new Error(`${transport.nodeId}: ${peer} never came up`);
}

export interface ReplicaEnd {
  port: number;
  /** Resolves once the snapshot is installed (checkpoint committed, log reset). */
  installed: Promise<void>;
  close(): Promise<void>;
}

/** Starts the replica: transport 'replica' dialing the primary, a receiver into `store`. */
export async function startReplica(options: {
  dir: string;
  store: ReplicaStore;
  primaryPort: number;
}): Promise<ReplicaEnd> {
  const transport = await TcpTransport.start({
    nodeId: 'replica',
    ...shard,
    listen: { host, port: 0 },
    peers: [{ id: 'primary', host, port: options.primaryPort }],
    hello,
    logger,
  });
  const real = options.store === 'sqlite';
  const log = real
    ? await Log.open(new NodeDisk(), { dir: options.dir })
    : { resetTo: async () => undefined, close: async () => undefined };
  const store = real ? await openSqliteCheckpoint(options.dir) : nullStore();
  let resolveInstalled: () => void = () => undefined;
  let rejectInstalled: (error: Error) => void = () => undefined;
  const installed = new Promise<void>((resolve, reject) => {
    resolveInstalled = resolve;
    rejectInstalled = reject;
  });
  const receiver = new SnapshotReceiver({
    transport,
    nodeId: 'replica',
    store,
    log,
    onInstalled: () => resolveInstalled(),
    onFailed: (error) => rejectInstalled(error),
  });
  transport.onMessage((from, message) => {
    if (message.type === 'snapshot-begin' || message.type === 'snapshot-chunk') {
      receiver.step(from, message, performance.now());
    }
  });
  return {
    port: transport.port,
    installed,
    close: async () => {
      await receiver.close();
      await store.close();
      await log.close();
      await transport.close();
    },
  };
}

export interface PrimaryEnd {
  port: number;
  transport: TcpTransport;
  /** Sends `source` in `streams` streams; resolves with the wall time once it is installed. */
  send(
    source: SnapshotSource,
    streams: number,
  ): Promise<{ elapsedMs: number; retransmits: number }>;
  close(): Promise<void>;
}

export async function startPrimary(): Promise<PrimaryEnd> {
  const transport = await TcpTransport.start({
    nodeId: 'primary',
    ...shard,
    listen: { host, port: 0 },
    peers: [],
    hello,
    logger,
  });
  let snapshotId = 0;
  return {
    port: transport.port,
    transport,
    send: (source, streams) => sendSnapshot(transport, source, streams, ++snapshotId),
    close: () => transport.close(),
  };
}

async function sendSnapshot(
  transport: TcpTransport,
  source: SnapshotSource,
  streams: number,
  snapshotId: number,
): Promise<{ elapsedMs: number; retransmits: number }> {
  await waitConnected(transport, 'replica');
  const start = performance.now();
  const sender = new SnapshotSender({
    transport,
    nodeId: 'primary',
    peer: 'replica',
    term: 1,
    snapshotId,
    source,
    now: start,
    options: { streams, retransmitMs: 10_000, stallMs: 600_000 },
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (sender.state === 'done') resolve();
        if (sender.state === 'failed') reject(new Error(`full sync failed: ${sender.failure}`));
      };
      transport.onMessage((_from, message) => {
        if (message.type !== 'snapshot-ack') return;
        sender.step(message, performance.now());
        check();
      });
      timer = setInterval(() => {
        sender.tick(performance.now());
        check();
      }, 5);
    });
  } finally {
    clearInterval(timer);
  }
  return {
    elapsedMs: performance.now() - start,
    retransmits: sender.progress(performance.now()).retransmits,
  };
}
