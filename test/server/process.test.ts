/**
 * Real processes: `syncwal serve` (SIGTERM shuts it down gracefully and every acknowledged
 * write survives the restart; bad config, a port in use, a locked or corrupt data directory
 * give one line on stderr and a distinct exit code), `syncwal status` against it, and
 * `syncwal cluster` (starts, restarts a killed node, stops every child on SIGTERM).
 *
 * The processes run the TypeScript sources through tsx (no build needed); every one is
 * stopped by its pid, and every wait is an event with a bounded timeout.
 */
import { openSync, readdirSync, readSync, closeSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openNode } from '../../src/index.js';
import {
  directory as processDirectory,
  exitCode,
  redisOn,
  removeDirectories,
  stopStarted,
  syncwal,
  type Started,
} from './processes.js';

async function listeningPort(process: Started): Promise<number> {
  const line = await process.line(/"event":"server\.listening"/);
  return (JSON.parse(line) as { port: number }).port;
}

const directory = () => processDirectory('process');

afterEach(stopStarted);
afterAll(removeDirectories);

describe('syncwal serve', () => {
  it('shuts down gracefully on SIGTERM; acknowledged writes survive a restart', async () => {
    const dataDir = join(directory(), 'n1');
    const args = ['serve', '--data-dir', dataDir, '--port', '0', '--log-format', 'json'];
    const first = syncwal(args);
    const port = await listeningPort(first);
    const redis = await redisOn(port);
    expect(await redis.set('before', 'stop')).toBe('OK');
    // Writes in flight when the signal arrives: each one answered OK must survive.
    const writes = Array.from({ length: 200 }, (_, index) =>
      redis.set(`inflight:${index}`, String(index)).then(
        () => index,
        () => null,
      ),
    );
    first.child.kill('SIGTERM');
    const acknowledged = (await Promise.all(writes)).filter((index) => index !== null);
    expect(await exitCode(first)).toBe(0);
    redis.disconnect();
    const events = first.stdout.map((line) => (JSON.parse(line) as { event: string }).event);
    expect(events).toEqual(expect.arrayContaining(['server.stopping', 'server.stopped']));
    expect(first.stderr).toEqual([]);

    const second = syncwal(args);
    const again = await listeningPort(second);
    const check = new Redis({ host: '127.0.0.1', port: again, lazyConnect: true });
    await check.connect();
    expect(await check.get('before')).toBe('stop');
    for (const index of acknowledged)
      expect(await check.get(`inflight:${index}`)).toBe(String(index));
    check.disconnect();
    second.child.kill('SIGINT');
    expect(await exitCode(second)).toBe(0);
  });

  it('`syncwal status` prints the node as a table', async () => {
    const dataDir = join(directory(), 'n1');
    const server = syncwal(
      ['serve', '--data-dir', dataDir, '--port', '0', '--log-format', 'json', '--node-id', 'alpha'],
      { SYNCWAL_PASSWORD: 'pw' },
    );
    const port = await listeningPort(server);
    const status = syncwal(['status', '--port', String(port), '--password', 'pw']);
    expect(await exitCode(status)).toBe(0);
    expect(status.stdout[0]).toMatch(/^NODE\s+ROLE\s+TERM/);
    expect(status.stdout[1]).toMatch(/^alpha\s+primary\s+1\s+\d+\s+\d+/);
    const denied = syncwal(['status', '--port', String(port)]);
    expect(await exitCode(denied)).toBe(77);
    expect(denied.stderr.join('\n')).toMatch(/NOAUTH/);
    server.child.kill('SIGTERM');
    expect(await exitCode(server)).toBe(0);
  });

  it('refuses bad configuration with one line and exit 64', async () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [
        ['serve', '--port', 'abc'],
        {},
        /^syncwal serve: INVALID: --port 'abc': must be an integer$/,
      ],
      [['serve'], { SYNCWAL_ACKS: 'some' }, /SYNCWAL_ACKS 'some': must be one of quorum, all/],
      [['serve', '--config', 'no/such/file.json'], {}, /^syncwal serve: config file no\/such/],
    ];
    for (const [args, env, message] of cases) {
      const run = syncwal(args, env);
      expect(await exitCode(run), args.join(' ')).toBe(64);
      expect(run.stderr).toHaveLength(1);
      expect(run.stderr[0]).toMatch(message);
    }
  });

  it('refuses a port in use (69), a locked dir (75), peers before replication (78)', async () => {
    const dir = directory();
    const occupied: Server = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
    const taken = (occupied.address() as { port: number }).port;
    try {
      const busy = syncwal(['serve', '--data-dir', join(dir, 'a'), '--port', String(taken)]);
      expect(await exitCode(busy)).toBe(69);
      const where = `127.0.0.1:${taken}`;
      expect(busy.stderr).toEqual([
        `syncwal serve: cannot listen on ${where}: port ${where} is already in use`,
      ]);
    } finally {
      occupied.close();
    }
    const owner = syncwal([
      'serve',
      '--data-dir',
      join(dir, 'b'),
      '--port',
      '0',
      '--log-format',
      'json',
    ]);
    await listeningPort(owner);
    const second = syncwal(['serve', '--data-dir', join(dir, 'b'), '--port', '0']);
    expect(await exitCode(second)).toBe(75);
    expect(second.stderr).toHaveLength(1);
    expect(second.stderr[0]).toMatch(/^syncwal serve: LOCKED: .* is locked by another process$/);
    owner.child.kill('SIGTERM');
    expect(await exitCode(owner)).toBe(0);
  });

  it('refuses a corrupt data directory with one line and exit 65', async () => {
    const dataDir = join(directory(), 'n1');
    const node = await openNode({
      dir: dataDir,
      segmentSizeBytes: 16 * 1024,
      checkpointLogBytes: 0,
    });
    for (let index = 0; index < 400; index++) await node.put(`key:${index}`, 'v'.repeat(100));
    await node.close();
    const wal = join(dataDir, 'wal');
    const first = readdirSync(wal)
      .filter((name) => name.endsWith('.wal'))
      .sort()[0]!;
    flipBit(join(wal, first), 64 + 32 + 40);
    const run = syncwal(['serve', '--data-dir', dataDir, '--port', '0']);
    expect(await exitCode(run)).toBe(65);
    expect(run.stderr).toHaveLength(1);
    expect(run.stderr[0]).toMatch(/^syncwal serve: CORRUPT: .*segment .*offset .*lsn/);
  });
});

function flipBit(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, offset);
    byte[0]! ^= 0x10;
    writeSync(fd, byte, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

describe('syncwal cluster', () => {
  it('starts a node, restarts it when it is killed, and stops it on SIGTERM', async () => {
    const data = directory();
    const cluster = syncwal(['cluster', '--nodes', '1', '--port', '0', '--data', data]);
    const connect = await cluster.line(/^connect: redis-cli -p \d+/);
    const port = Number(/-p (\d+)/.exec(connect)![1]);
    const row = await cluster.line(/^ {2}n1 {2}primary/);
    const pid = Number(/pid (\d+)/.exec(row)![1]);
    const redis = await redisOn(port);
    expect(await redis.set('cluster', 'yes')).toBe('OK');
    redis.disconnect();
    process.kill(pid, 'SIGKILL');
    const again = await cluster.line(
      /^syncwal cluster: n1 is up again: client 127\.0\.0\.1:\d+, pid \d+$/,
    );
    const restartedPid = Number(/pid (\d+)$/.exec(again)![1]);
    expect(restartedPid).not.toBe(pid);
    const restartedPort = Number(/:(\d+), pid/.exec(again)![1]);
    const after = new Redis({ host: '127.0.0.1', port: restartedPort, lazyConnect: true });
    await after.connect();
    expect(await after.get('cluster')).toBe('yes');
    after.disconnect();
    expect(cluster.stderr.join('\n')).toMatch(
      /n1 exited with signal SIGKILL; restarting in \d+ ms/,
    );
    cluster.child.kill('SIGTERM');
    expect(await exitCode(cluster)).toBe(0);
    expect(cluster.stdout.at(-1)).toBe('syncwal cluster: stopped');
    expect(() => process.kill(restartedPid, 0)).toThrow();
  });

  it('runs a 3-node shard: replicas get the primary writes; a killed one returns', async () => {
    // Ports from the test's pid keep parallel runs apart (the shard needs fixed ports).
    const base = 20_000 + (process.pid % 2_000) * 10;
    const cluster = syncwal([
      'cluster',
      '--port',
      String(base),
      '--peer-port',
      String(base + 5),
      '--data',
      directory(),
    ]);
    await cluster.line(/^connect: redis-cli -p \d+/);
    const replicaRow = await cluster.line(/^ {2}n3 {2}replica/);
    const replicaPid = Number(/pid (\d+)/.exec(replicaRow)![1]);
    const connect = async (port: number) => {
      const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
      await redis.connect();
      return redis;
    };
    const primary = await connect(base);
    // Bounded by time as well as count: an idle machine does 200 round trips well inside one
    // heartbeat interval, so a count alone would give up before what it waits for happens.
    const pollUntil = async (check: () => Promise<boolean>) => {
      const deadline = Date.now() + 20_000;
      for (let attempt = 0; attempt < 200_000 && Date.now() < deadline; attempt++) {
        if (await check()) return true;
        await primary.ping();
      }
      return false;
    };
    // Both replicas connect in their own time after start-up (a write before any has is
    // refused NOREPLICAS before it is logged).
    const bothConnected = async () => /connected_slaves:2/.test(await primary.info('replication'));
    expect(await pollUntil(bothConnected)).toBe(true);
    expect(await primary.call('SET', 'shard', 'one', 'RID', 'r-1')).toBe('OK');
    const replica = await connect(base + 1);
    await expect(replica.set('shard', 'two')).rejects.toThrow(/^READONLY/);
    // Replicas apply once the commit point reaches them (heartbeats carry it).
    const replicated = (key: string, value: string) =>
      pollUntil(async () => (await replica.get(key)) === value);
    expect(await replicated('shard', 'one')).toBe(true);
    process.kill(replicaPid, 'SIGKILL');
    await cluster.line(/^syncwal cluster: n3 is up again/);
    expect(await primary.set('after', 'restart')).toBe('OK');
    // The primary logs the grant once the restarted replica holds its whole log (LSN 3 on).
    await cluster.line(/^n1 \| .*eligibility-granted peer=n3 reason="caught up at ([3-9]|\d\d+)"/);
    const third = await connect(base + 2);
    expect(await pollUntil(async () => (await third.get('after')) === 'restart')).toBe(true);
    for (const client of [primary, replica, third]) client.disconnect();
    cluster.child.kill('SIGTERM');
    expect(await exitCode(cluster)).toBe(0);
  });
});
