/**
 * The Prometheus endpoint (`syncwal serve --metrics-port`): the measured disk counts exactly
 * what the log writes, the registry reports the node and server state, and real `syncwal
 * serve` processes answer GET /metrics with values that move by exactly the writes made, a
 * bad metrics port fails like any other port, and a 3-node shard shows each replica's lag.
 *
 * Processes run the TypeScript sources through tsx, listen on 127.0.0.1 (client and metrics
 * ports picked by the OS), and are stopped by pid; every wait is bounded.
 */
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Histogram, Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, RecordType } from '../../src/core/format/frame.js';
import { SyncwalMetrics } from '../../src/server/metrics.js';
import { BucketHistogram } from '../../src/server/metrics-histogram.js';
import {
  logWriteSample,
  MeasuredDisk,
  type LogWriteSample,
} from '../../src/server/metrics-disk.js';
import { MetricsEndpoint } from '../../src/server/metrics-endpoint.js';
import { SimDisk } from '../../src/sim/disk.js';
import type { Log } from '../../src/storage/log.js';
import { intent, openLog } from '../storage/helpers.js';
import { FakeBackend } from './fake-backend.js';
import { client, startBackendServer } from './helpers.js';
import {
  directory as processDirectory,
  exitCode,
  logged,
  redisOn,
  removeDirectories,
  stopStarted,
  syncwal,
  type Started,
} from './processes.js';

// ---------------------------------------------------------------------------------------------
// The exposition format, parsed

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const labelPair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = sampleLine.exec(line);
    if (match === null) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(labelPair)) labels[pair[1]!] = pair[2]!;
    const raw = match[3]!;
    // Prometheus parses values as Go's ParseFloat does: NaN in any case (prom-client prints
    // `Nan` for an event loop lag not measured yet), and signed Inf.
    const value = /^nan$/i.test(raw)
      ? NaN
      : raw === '+Inf'
        ? Infinity
        : raw === '-Inf'
          ? -Infinity
          : Number(raw);
    if (Number.isNaN(value) && !/^nan$/i.test(raw)) throw new Error(`bad value: ${line}`);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/** The one sample with this name and exactly these labels, or undefined. */
function find(samples: Sample[], name: string, labels: Record<string, string> = {}) {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  const matches = samples.filter(
    (sample) =>
      sample.name === name && JSON.stringify(Object.entries(sample.labels).sort()) === wanted,
  );
  if (matches.length > 1) throw new Error(`${name} ${wanted} appears ${matches.length} times`);
  return matches[0]?.value;
}

/** Like `find`, but the sample must be there. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const value = find(samples, name, labels);
  if (value === undefined) throw new Error(`no sample ${name} ${JSON.stringify(labels)}`);
  return value;
}

interface HttpAnswer {
  status: number;
  contentType: string;
  body: string;
}

function http(port: number, path = '/metrics', method = 'GET'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, method, timeout: 20_000 });
    outgoing.on('timeout', () => outgoing.destroy(new Error(`${method} ${path}: timed out`)));
    outgoing.on('error', reject);
    outgoing.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          contentType: String(response.headers['content-type'] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    outgoing.end();
  });
}

async function scrape(port: number): Promise<Sample[]> {
  const answer = await http(port);
  expect(answer.status).toBe(200);
  expect(answer.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(answer.body);
}

// ---------------------------------------------------------------------------------------------
// In process: the measured disk and the registry

describe('measured disk', () => {
  it('reports exactly the records, intents and writes the log made, and times fsyncs', async () => {
    const samples: LogWriteSample[] = [];
    const syncs: number[] = [];
    let now = 0;
    const disk = new MeasuredDisk({
      disk: new SimDisk({ seed: 11 }),
      observer: { logWrite: (sample) => samples.push(sample), logSync: (s) => syncs.push(s) },
      // Every reading is 3 ms after the last: each fsync measures exactly 3 ms.
      monotonicMs: () => (now += 3),
    });
    const log: Log = await openLog(disk, 8 * 1024);
    let intents = 0;
    for (let round = 0; round < 30; round++) {
      const appends: Promise<number>[] = [];
      // Concurrent appends share a write (group commit); some carry a COMMIT as well.
      for (let writer = 0; writer <= round % 5; writer++) {
        const records = [intent(`r${round}w${writer}`, 40 + round * 7)];
        if (writer % 2 === 1) {
          records.push({ type: RecordType.Commit, term: 1, payload: new Uint8Array(24) });
        }
        intents += 1;
        appends.push(log.append(records));
      }
      await Promise.all(appends);
    }
    const stats = log.stats();
    expect(stats.rotations).toBeGreaterThan(0);
    expect(samples).toHaveLength(stats.writes);
    expect(samples.reduce((sum, sample) => sum + sample.intents, 0)).toBe(intents);
    expect(samples.reduce((sum, sample) => sum + sample.records, 0)).toBe(stats.records);
    // The log counts bytes from its first record; a write also carries the SEAL before it.
    const bytes = samples.reduce((sum, sample) => sum + sample.bytes, 0);
    expect(bytes).toBeGreaterThanOrEqual(stats.bytesWritten);
    const sealBytes = 32;
    expect((bytes - stats.bytesWritten) % sealBytes).toBe(0);
    expect(bytes - stats.bytesWritten).toBeLessThanOrEqual(sealBytes * stats.writes);
    expect(syncs.length).toBeGreaterThanOrEqual(stats.syncs);
    expect(syncs.every((seconds) => seconds === 0.003)).toBe(true);
    await log.close();
  });

  it('counts only whole frames: zeros, garbage and a lone SEAL are not group commits', () => {
    const frame = (type: RecordType, lsn: number) =>
      encodeFrame({ type, term: 1, lsn, prevChecksum: 0, payload: new Uint8Array(13) }).bytes;
    const seal = frame(RecordType.Seal, 3);
    const body = [frame(RecordType.Intent, 4), frame(RecordType.Commit, 5)];
    expect(logWriteSample([seal, ...body])).toEqual({
      intents: 1,
      records: 2,
      bytes: seal.length + body[0]!.length + body[1]!.length,
    });
    expect(logWriteSample([seal])).toBeNull();
    expect(logWriteSample([new Uint8Array(4096)])).toBeNull();
    const truncated = body[0]!.subarray(0, body[0]!.length - 8);
    expect(logWriteSample([truncated])).toBeNull();
    const garbage = Uint8Array.from({ length: 64 }, (_, index) => (index * 37 + 11) & 0xff);
    expect(logWriteSample([garbage])).toBeNull();
  });
});

describe('bucket histogram', () => {
  it('renders what prom-client renders for the same observations', async () => {
    const buckets = [0.001, 0.01, 0.1, 1];
    const ours = new BucketHistogram({ name: 'h_seconds', help: 'test', buckets });
    const registry = new Registry();
    const theirs = new Histogram({
      name: 'h_seconds',
      help: 'test',
      buckets,
      registers: [registry],
    });
    // Seeded values, exact bounds included (a bucket's bound is inclusive) and some past +Inf.
    let seed = 7;
    const values = [0, 0.001, 0.01, 0.1, 1, 1.5];
    for (let index = 0; index < 200; index++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      values.push((seed % 3000) / 1000);
    }
    for (const value of values) {
      ours.observe(value);
      theirs.observe(value);
    }
    const mine = parseExposition(ours.render());
    expect(mine).toEqual(parseExposition(await registry.metrics()));
    expect(valueOf(mine, 'h_seconds_bucket', { le: '0.001' })).toBe(2);
    expect(valueOf(mine, 'h_seconds_bucket', { le: '+Inf' })).toBe(values.length);
    expect(ours.count).toBe(values.length);
  });
});

describe('metrics registry', () => {
  it('reports replicas with their lag, the role, and counters RESETSTAT leaves alone', async () => {
    const backend = new FakeBackend();
    const running = await startBackendServer(backend);
    const metrics = new SyncwalMetrics({ processMetrics: false });
    metrics.attach(running.server.context);
    const endpoint = new MetricsEndpoint({ metrics, host: '127.0.0.1', port: 0 });
    const { port } = await endpoint.listen();
    const connection = await client(running.port);
    try {
      for (let index = 0; index < 7; index++) await connection.call('SET', `k${index}`, 'v');
      await connection.call('GET', 'k1');
      await connection.call('NOSUCHCOMMAND');
      backend.fakeReplication = {
        role: 'primary',
        term: 4,
        primaryId: 'n1',
        primaryAddress: null,
        linkUp: true,
        eligible: true,
        commitLsn: 7,
        lastLsn: 9,
        appliedLsn: 7,
        replicas: [
          {
            id: 'n2',
            address: null,
            connected: true,
            eligible: true,
            ackedLsn: 9,
            lastAckAgoMs: 250,
          },
          {
            id: 'n3',
            address: null,
            connected: false,
            eligible: false,
            ackedLsn: 2,
            lastAckAgoMs: null,
          },
        ],
      };
      const first = await scrape(port);
      expect(valueOf(first, 'syncwal_commands_total', { command: 'set' })).toBe(7);
      expect(valueOf(first, 'syncwal_commands_total', { command: 'get' })).toBe(1);
      expect(valueOf(first, 'syncwal_commands_total', { command: 'unknown' })).toBe(1);
      expect(valueOf(first, 'syncwal_writes_committed_total')).toBe(7);
      expect(valueOf(first, 'syncwal_commit_latency_seconds_count')).toBe(7);
      expect(valueOf(first, 'syncwal_error_replies_total')).toBe(1);
      expect(valueOf(first, 'syncwal_connected_clients')).toBe(1);
      expect(valueOf(first, 'syncwal_role', { role: 'primary' })).toBe(1);
      expect(valueOf(first, 'syncwal_role', { role: 'replica' })).toBe(0);
      expect(valueOf(first, 'syncwal_term')).toBe(4);
      expect(valueOf(first, 'syncwal_commit_lsn')).toBe(7);
      expect(valueOf(first, 'syncwal_last_lsn')).toBe(9);
      expect(valueOf(first, 'syncwal_replicas_connected')).toBe(1);
      expect(valueOf(first, 'syncwal_replicas_eligible')).toBe(1);
      expect(valueOf(first, 'syncwal_replica_lag_records', { replica: 'n2' })).toBe(0);
      expect(valueOf(first, 'syncwal_replica_lag_records', { replica: 'n3' })).toBe(7);
      expect(valueOf(first, 'syncwal_replica_lag_seconds', { replica: 'n2' })).toBe(0.25);
      expect(find(first, 'syncwal_replica_lag_seconds', { replica: 'n3' })).toBeUndefined();
      expect(valueOf(first, 'syncwal_replica_connected', { replica: 'n3' })).toBe(0);
      expect(valueOf(first, 'syncwal_replica_acked_lsn', { replica: 'n3' })).toBe(2);
      expect(valueOf(first, 'syncwal_info', { node_id: 'n1', version: 'test' })).toBe(1);
      // No process metrics were asked for.
      expect(first.some((sample) => sample.name.startsWith('process_'))).toBe(false);

      expect(await connection.call('CONFIG', 'RESETSTAT')).toBe('OK');
      await connection.call('SET', 'after', 'reset');
      backend.fakeReplication = {
        ...backend.fakeReplication,
        role: 'replica',
        eligible: false,
        linkUp: false,
        replicas: [],
      };
      const second = await scrape(port);
      expect(valueOf(second, 'syncwal_commands_total', { command: 'set' })).toBe(8);
      expect(valueOf(second, 'syncwal_commands_total', { command: 'config' })).toBe(1);
      expect(valueOf(second, 'syncwal_writes_committed_total')).toBe(8);
      expect(valueOf(second, 'syncwal_error_replies_total')).toBe(1);
      expect(valueOf(second, 'syncwal_commit_latency_seconds_count')).toBe(8);
      expect(valueOf(second, 'syncwal_role', { role: 'primary' })).toBe(0);
      expect(valueOf(second, 'syncwal_role', { role: 'replica' })).toBe(1);
      expect(valueOf(second, 'syncwal_primary_link_up')).toBe(0);
      expect(valueOf(second, 'syncwal_eligible')).toBe(0);
      expect(second.some((sample) => sample.name.startsWith('syncwal_replica_lag'))).toBe(false);

      expect((await http(port, '/')).status).toBe(404);
      const post = await http(port, '/metrics', 'POST');
      expect(post.status).toBe(405);
    } finally {
      connection.close();
      metrics.detach();
      await endpoint.close();
      await running.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Real processes

async function ports(process: Started): Promise<{ client: number; metrics: number }> {
  const metrics = await logged(process, 'metrics.listening');
  const server = await logged(process, 'server.listening');
  return { client: server['port'] as number, metrics: metrics['port'] as number };
}

const directory = () => processDirectory('metrics');

afterEach(stopStarted);
afterAll(removeDirectories);

describe('syncwal serve --metrics-port', () => {
  it('serves metrics that move by exactly the writes made', async () => {
    const dataDir = join(directory(), 'n1');
    const node = syncwal(['serve', '--data-dir', dataDir, '--port', '0', '--log-format', 'json'], {
      SYNCWAL_METRICS_PORT: '0',
    });
    const { client: clientPort, metrics: metricsPort } = await ports(node);
    const redis = await redisOn(clientPort);
    const before = await scrape(metricsPort);
    const counter = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
      find(samples, name, labels) ?? 0;

    // One at a time: each write command is one INTENT and gets its own log write.
    const sequential = 20;
    for (let index = 0; index < sequential; index++) {
      expect(await redis.set(`seq:${index}`, 'v')).toBe('OK');
    }
    expect(await redis.mset('m:1', 'a', 'm:2', 'b', 'm:3', 'c')).toBe('OK');
    const middle = await scrape(metricsPort);
    // Pipelined: the server may batch plain SETs of one turn into one INTENT.
    const pipelined = 100;
    const pipeline = redis.pipeline();
    for (let index = 0; index < pipelined; index++) pipeline.set(`pipe:${index}`, 'v');
    const results = await pipeline.exec();
    expect(results?.every(([error]) => error === null)).toBe(true);
    expect(await redis.get('seq:3')).toBe('v');
    const replication = await redis.info('replication');
    const after = await scrape(metricsPort);

    const delta = (from: Sample[], to: Sample[], name: string, labels = {}) =>
      counter(to, name, labels) - counter(from, name, labels);
    const writes = sequential + 1 + pipelined;
    expect(delta(before, after, 'syncwal_commands_total', { command: 'set' })).toBe(
      sequential + pipelined,
    );
    expect(delta(before, after, 'syncwal_commands_total', { command: 'mset' })).toBe(1);
    expect(delta(before, after, 'syncwal_commands_total', { command: 'get' })).toBe(1);
    expect(delta(before, after, 'syncwal_writes_committed_total')).toBe(writes);
    expect(delta(before, after, 'syncwal_commit_latency_seconds_count')).toBe(writes);
    const inf = { le: '+Inf' };
    expect(delta(before, after, 'syncwal_commit_latency_seconds_bucket', inf)).toBe(writes);

    expect(delta(before, middle, 'syncwal_log_write_intents_sum')).toBe(sequential + 1);
    const sequentialWrites = delta(before, middle, 'syncwal_log_write_intents_count');
    expect(sequentialWrites).toBeGreaterThanOrEqual(sequential + 1);
    const pipelinedIntents = delta(middle, after, 'syncwal_log_write_intents_sum');
    expect(pipelinedIntents).toBeGreaterThanOrEqual(1);
    expect(pipelinedIntents).toBeLessThanOrEqual(pipelined);
    // Each log write is made durable by an fdatasync of its own.
    const logWrites = delta(before, after, 'syncwal_log_write_intents_count');
    expect(delta(before, after, 'syncwal_log_fsync_seconds_count')).toBeGreaterThanOrEqual(
      logWrites,
    );
    expect(delta(before, after, 'syncwal_log_records_written_total')).toBeGreaterThanOrEqual(
      sequential + 1 + pipelinedIntents,
    );

    expect(valueOf(after, 'syncwal_role', { role: 'primary' })).toBe(1);
    expect(valueOf(after, 'syncwal_role', { role: 'replica' })).toBe(0);
    expect(valueOf(after, 'syncwal_term')).toBe(Number(/\bterm:(\d+)/.exec(replication)![1]));
    expect(valueOf(after, 'syncwal_term')).toBe(1);
    expect(valueOf(after, 'syncwal_commit_lsn')).toBe(
      Number(/\bcommit_lsn:(\d+)/.exec(replication)![1]),
    );
    expect(valueOf(after, 'syncwal_last_lsn')).toBe(
      Number(/\blast_lsn:(\d+)/.exec(replication)![1]),
    );
    expect(valueOf(after, 'syncwal_keys')).toBe(sequential + 3 + pipelined);
    expect(valueOf(after, 'syncwal_connected_clients')).toBe(1);
    expect(valueOf(after, 'syncwal_replicas_connected')).toBe(0);
    // prom-client's process metrics are there too.
    expect(valueOf(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(find(after, 'nodejs_eventloop_lag_seconds')).toBeDefined();

    redis.disconnect();
    node.child.kill('SIGTERM');
    expect(await exitCode(node)).toBe(0);
    expect(node.stderr).toEqual([]);
  });

  it('refuses a bad metrics port with one line, like the other ports', async () => {
    const dir = directory();
    const occupied: Server = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
    const taken = (occupied.address() as { port: number }).port;
    try {
      const busy = syncwal([
        'serve',
        '--data-dir',
        join(dir, 'a'),
        '--port',
        '0',
        '--metrics-port',
        String(taken),
      ]);
      expect(await exitCode(busy)).toBe(69);
      const where = `127.0.0.1:${taken}`;
      expect(busy.stderr).toEqual([
        `syncwal serve: cannot listen on ${where}: port ${where} is already in use`,
      ]);
    } finally {
      occupied.close();
    }
    const cases: [string[], NodeJS.ProcessEnv, string][] = [
      [
        ['--metrics-port', '70000'],
        {},
        "syncwal serve: INVALID: --metrics-port '70000': must be in [0, 65535]",
      ],
      [
        [],
        { SYNCWAL_METRICS_PORT: '-1' },
        "syncwal serve: INVALID: SYNCWAL_METRICS_PORT '-1': must be an integer",
      ],
      [
        ['--port', '7301', '--metrics-port', '7301'],
        {},
        'syncwal serve: INVALID: --metrics-port and --port are both 7301',
      ],
    ];
    for (const [args, env, message] of cases) {
      const run = syncwal(['serve', '--data-dir', join(dir, 'b'), ...args], env);
      expect(await exitCode(run), args.join(' ')).toBe(64);
      expect(run.stderr).toEqual([message]);
    }
  });

  it('shows each replica of a 3-node shard with its lag, and the roles', async () => {
    // Peer ports from the test's pid keep parallel runs apart (peers need fixed ports);
    // client and metrics ports are picked by the OS.
    const base = 10_000 + (process.pid % 1_000) * 10;
    const peerPort = (index: number) => base + index;
    const ids = ['n1', 'n2', 'n3'];
    const data = directory();
    const nodes = ids.map((id, index) => {
      const peers = ids
        .map((other, position) => [other, position] as const)
        .filter(([other]) => other !== id)
        .map(([other, position]) => `${other}=127.0.0.1:${peerPort(position)}`);
      return syncwal(
        [
          'serve',
          ...['--node-id', id, '--data-dir', join(data, id), '--port', '0'],
          ...['--peer-port', String(peerPort(index)), '--peers', peers.join(',')],
          ...['--primary-id', 'n1', '--metrics-port', '0', '--log-format', 'json'],
        ],
        { SYNCWAL_SHARD_SECRET: 'metrics-test-secret-0123456789' },
      );
    });
    const addresses = await Promise.all(nodes.map((node) => ports(node)));
    const primary = await redisOn(addresses[0]!.client);
    // Bounded by time (each round is one scrape, no sleeping): replicas connect and ack on
    // their own schedule.
    const scrapeUntil = async (port: number, check: (samples: Sample[]) => boolean) => {
      const deadline = Date.now() + 30_000;
      let samples = await scrape(port);
      while (!check(samples)) {
        if (Date.now() > deadline) {
          const replicas = samples.filter((sample) => sample.name.startsWith('syncwal_replica'));
          throw new Error(`metrics never matched: ${JSON.stringify(replicas)}`);
        }
        samples = await scrape(port);
      }
      return samples;
    };
    // Writes need the replicas connected (else NOREPLICAS before logging).
    await scrapeUntil(
      addresses[0]!.metrics,
      (samples) => find(samples, 'syncwal_replicas_connected') === 2,
    );
    for (let index = 0; index < 10; index++) expect(await primary.set(`k${index}`, 'v')).toBe('OK');
    const caughtUp = await scrapeUntil(addresses[0]!.metrics, (samples) =>
      ['n2', 'n3'].every(
        (replica) =>
          find(samples, 'syncwal_replica_acked_lsn', { replica }) ===
          find(samples, 'syncwal_last_lsn'),
      ),
    );
    expect(valueOf(caughtUp, 'syncwal_role', { role: 'primary' })).toBe(1);
    expect(valueOf(caughtUp, 'syncwal_replicas_connected')).toBe(2);
    for (const replica of ['n2', 'n3']) {
      expect(valueOf(caughtUp, 'syncwal_replica_connected', { replica })).toBe(1);
      expect(valueOf(caughtUp, 'syncwal_replica_lag_records', { replica })).toBe(0);
      expect(valueOf(caughtUp, 'syncwal_replica_lag_seconds', { replica })).toBeGreaterThanOrEqual(
        0,
      );
    }
    const replicaView = await scrape(addresses[1]!.metrics);
    expect(valueOf(replicaView, 'syncwal_role', { role: 'replica' })).toBe(1);
    expect(valueOf(replicaView, 'syncwal_role', { role: 'primary' })).toBe(0);
    expect(valueOf(replicaView, 'syncwal_term')).toBe(valueOf(caughtUp, 'syncwal_term'));
    expect(find(replicaView, 'syncwal_replica_lag_records', { replica: 'n3' })).toBeUndefined();

    // n3 goes away: the primary keeps writing with n2; n3's lag in records grows.
    nodes[2]!.child.kill('SIGKILL');
    await nodes[2]!.exited;
    const gone = await scrapeUntil(
      addresses[0]!.metrics,
      (samples) => find(samples, 'syncwal_replica_connected', { replica: 'n3' }) === 0,
    );
    const ackedBefore = valueOf(gone, 'syncwal_replica_acked_lsn', { replica: 'n3' });
    for (let index = 0; index < 5; index++)
      expect(await primary.set(`late${index}`, 'v')).toBe('OK');
    const behind = await scrape(addresses[0]!.metrics);
    const lastLsn = valueOf(behind, 'syncwal_last_lsn');
    expect(valueOf(behind, 'syncwal_replica_acked_lsn', { replica: 'n3' })).toBe(ackedBefore);
    expect(valueOf(behind, 'syncwal_replica_lag_records', { replica: 'n3' })).toBe(
      lastLsn - ackedBefore,
    );
    expect(lastLsn - ackedBefore).toBeGreaterThanOrEqual(5);
    expect(valueOf(behind, 'syncwal_replicas_connected')).toBe(1);
    primary.disconnect();
    for (const node of nodes.slice(0, 2)) node.child.kill('SIGTERM');
    for (const node of nodes.slice(0, 2)) expect(await exitCode(node)).toBe(0);
  });
});
