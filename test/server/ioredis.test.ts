/**
 * ioredis (the cluster-less client) against the server: every supported command through its
 * API, pipelines, scanStream, errors surfaced as ioredis ReplyErrors with the right prefix
 * (from a fake backend that fails with every engine error code), and the replication hooks.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeBackend } from './fake-backend.js';
import { startBackendServer, startNodeServer, type Running, type RunningNode } from './helpers.js';

const clientOptions: RedisOptions = {
  host: '127.0.0.1',
  lazyConnect: true,
  retryStrategy: () => null,
  maxRetriesPerRequest: 0,
};

async function connect(port: number, options: RedisOptions = {}): Promise<Redis> {
  const redis = new Redis({ ...clientOptions, port, ...options });
  await redis.connect();
  return redis;
}

async function replyError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error: unknown) {
    expect((error as Error).name).toBe('ReplyError');
    return (error as Error).message;
  }
  throw new Error('expected a ReplyError');
}

describe('ioredis against a real node', () => {
  let running: RunningNode;
  let redis: Redis;

  beforeAll(async () => {
    running = await startNodeServer();
    redis = await connect(running.port, { connectionName: 'ioredis-test' });
  });

  afterAll(async () => {
    redis.disconnect();
    await running.stop();
  });

  it('runs every key-value command', async () => {
    expect(await redis.set('a', '1')).toBe('OK');
    expect(await redis.get('a')).toBe('1');
    expect(await redis.getBuffer('a')).toEqual(Buffer.from('1'));
    expect(await redis.set('a', '2', 'NX')).toBeNull();
    expect(await redis.exists('a', 'b')).toBe(1);
    expect(await redis.mset({ b: 'x', c: 'y' })).toBe('OK');
    expect(await redis.mget('a', 'b', 'c', 'd')).toEqual(['1', 'x', 'y', null]);
    expect(await redis.incr('n')).toBe(1);
    expect(await redis.incrby('n', 9)).toBe(10);
    expect(await redis.decr('n')).toBe(9);
    expect(await redis.decrby('n', 4)).toBe(5);
    expect(await redis.type('n')).toBe('string');
    expect(await redis.dbsize()).toBe(4);
    expect(await redis.del('b', 'c', 'zzz')).toBe(2);
    expect(await redis.unlink('n')).toBe(1);
    expect(await redis.dbsize()).toBe(1);
  });

  it('scans with scanStream', async () => {
    await redis.mset(Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`s:${i}`, 'v'])));
    const keys: string[] = [];
    const stream = redis.scanStream({ match: 's:*', count: 7 });
    for await (const batch of stream) keys.push(...(batch as string[]));
    expect(keys.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `s:${i}`).sort());
  });

  it('pipelines, in order', async () => {
    const pipeline = redis.pipeline();
    for (let index = 0; index < 100; index++) {
      pipeline.set(`pl:${index}`, String(index)).get(`pl:${index}`).incr('pl:count');
    }
    const results = await pipeline.exec();
    expect(results).toHaveLength(300);
    for (let index = 0; index < 100; index++) {
      expect(results![index * 3]).toEqual([null, 'OK']);
      expect(results![index * 3 + 1]).toEqual([null, String(index)]);
      expect(results![index * 3 + 2]).toEqual([null, index + 1]);
    }
  });

  it('runs the connection and server commands', async () => {
    expect(await redis.ping()).toBe('PONG');
    expect(await redis.echo('hi')).toBe('hi');
    expect(await redis.select(0)).toBe('OK');
    expect(await redis.client('GETNAME')).toBe('ioredis-test');
    expect(typeof (await redis.client('ID'))).toBe('number');
    expect(await redis.info('replication')).toMatch(/^# Replication\r\nrole:master\r\n/);
    expect(await redis.role()).toEqual(['master', expect.any(Number), []]);
    expect(await redis.wait(0, 10)).toBe(0);
    expect(await redis.config('GET', 'acks')).toEqual(['acks', 'quorum']);
    expect(await redis.call('STATUS', 'none')).toEqual(['status', 'unknown']);
    expect(await redis.call('CHECKPOINT')).toEqual(expect.any(Number));
    expect(await redis.command('COUNT')).toEqual(expect.any(Number));
    expect(await redis.call('RID', 'io-1', 'SET', 'rid', 'v')).toBe('OK');
    expect(await redis.call('STATUS', 'io-1')).toEqual([
      'status',
      'committed',
      'lsn',
      expect.any(Number),
    ]);
    expect(await replyError(redis.call('FAILOVER'))).toMatch(/^ERR FAILOVER is not supported/);
    expect(await replyError(redis.call('NOPE'))).toMatch(/^ERR unknown command 'NOPE'/);
    // Transactions are not supported (MSET is the atomic multi-key write).
    expect(await replyError(redis.multi().set('x', '1').exec())).toMatch(/unknown command/);
  });
});

describe('ioredis and the engine error codes', () => {
  let running: Running;
  let backend: FakeBackend;
  let redis: Redis;

  beforeAll(async () => {
    backend = new FakeBackend();
    running = await startBackendServer(backend);
    redis = await connect(running.port);
  });

  afterAll(async () => {
    redis.disconnect();
    await running.stop();
  });

  it('maps every code to its RESP prefix', async () => {
    const expected: Record<string, RegExp> = {
      noreplicas: /^NOREPLICAS the policy needs 2 eligible replicas/,
      unknown: /^UNKNOWN commit timed out/,
      notprimary:
        /^READONLY You can't write against a read only replica\. The primary is 127\.0\.0\.1:7001/,
      ioerr: /^IOERR fdatasync: EIO$/,
      nospace: /^NOSPACE no space left on device$/,
      closed: /^CLOSED node is closed$/,
      corrupt: /^CORRUPT bad frame$/,
      invalid: /^ERR value too large$/,
      bug: /^ERR internal error/,
    };
    for (const [key, message] of Object.entries(expected)) {
      expect(await replyError(redis.set(key, 'v')), key).toMatch(message);
    }
    expect(await replyError(redis.get('unknown'))).toMatch(/^UNKNOWN/);
    expect(await replyError(redis.incr('noreplicas'))).toMatch(/^NOREPLICAS/);
    expect(await replyError(redis.mset('ok', '1', 'ioerr', '2'))).toMatch(/^IOERR/);
    // The connection is still usable after errors.
    expect(await redis.set('fine', 'v')).toBe('OK');
  });

  it('reports replication through the hooks: INFO, ROLE, WAIT, CONFIG SET, FAILOVER', async () => {
    const base = backend.replicationState();
    backend.fakeReplication = {
      ...base,
      lastLsn: 50,
      replicas: [
        {
          id: 'n2',
          address: '127.0.0.1:7002',
          connected: true,
          eligible: true,
          ackedLsn: 50,
          lastAckAgoMs: 20,
        },
        {
          id: 'n3',
          address: null,
          connected: false,
          eligible: false,
          ackedLsn: 10,
          lastAckAgoMs: null,
        },
      ],
    };
    const info = await redis.info('replication');
    expect(info).toContain('connected_slaves:1\r\n');
    expect(info).toContain(
      'slave0:id=n2,ip=127.0.0.1,port=7002,state=online,offset=50,lag=0,eligible=1,lag_lsn=0\r\n',
    );
    expect(info).toContain('slave1:id=n3,ip=,port=,state=offline,offset=10,lag=-1,eligible=0');
    expect(await redis.role()).toEqual([
      'master',
      50,
      [
        ['127.0.0.1', '7002', '50'],
        ['', '', '10'],
      ],
    ]);
    backend.lsn = 20;
    await redis.set('w', '1'); // LSN 21: n2 (acked 50) holds it, n3 (acked 10) does not.
    expect(await redis.wait(2, 0)).toBe(1);
    expect(await redis.config('SET', 'acks', 'all', 'min-replicas', '2')).toBe('OK');
    expect(backend.policy).toMatchObject({ acks: 'all', minReplicas: 2 });
    expect(await redis.config('GET', 'min-replicas')).toEqual(['min-replicas', '2']);
    expect(await replyError(redis.config('SET', 'min-replicas', '3'))).toMatch(
      /^ERR option minReplicas/,
    );
    expect(await redis.call('FAILOVER', 'TO', 'n2', 'TIMEOUT', '500')).toBe('OK');
    expect(backend.failovers).toEqual([{ target: 'n2', force: false, timeoutMs: 500 }]);
    expect(await redis.info('persistence')).toMatch(
      /log_segments:2\r\nfsync_latency_p99_usec:1200/,
    );
    backend.fakeReplication = {
      ...base,
      role: 'replica',
      primaryId: 'n2',
      primaryAddress: '127.0.0.1:7002',
      linkUp: false,
      eligible: false,
    };
    expect(await redis.role()).toEqual(['slave', '127.0.0.1', 7002, 'connect', expect.any(Number)]);
    const replica = await redis.info('replication');
    expect(replica).toMatch(/role:slave\r\nsyncwal_role:replica\r\n/);
    expect(replica).toMatch(
      /master_host:127\.0\.0\.1\r\nmaster_port:7002\r\nmaster_link_status:down/,
    );
    backend.fakeReplication = null;
  });
});

describe('ioredis with a password', () => {
  let running: RunningNode;

  beforeAll(async () => {
    running = await startNodeServer({ password: 's3cret' });
  });

  afterAll(async () => {
    await running.stop();
  });

  it('gets NOAUTH without AUTH, WRONGPASS with a wrong one, works with the right one', async () => {
    const anonymous = new Redis({ ...clientOptions, port: running.port, enableReadyCheck: false });
    await anonymous.connect();
    expect(await replyError(anonymous.get('a'))).toBe('NOAUTH Authentication required.');
    expect(await replyError(anonymous.ping())).toBe('NOAUTH Authentication required.');
    expect(await replyError(anonymous.call('HELLO', '3'))).toMatch(/^NOAUTH HELLO must be called/);
    expect(await replyError(anonymous.auth('wrong'))).toMatch(/^WRONGPASS/);
    expect(await replyError(anonymous.auth('nobody', 's3cret'))).toMatch(/^WRONGPASS/);
    expect(await anonymous.auth('default', 's3cret')).toBe('OK');
    expect(await anonymous.set('a', '1')).toBe('OK');
    anonymous.disconnect();
    const authed = await connect(running.port, { password: 's3cret' });
    expect(await authed.get('a')).toBe('1');
    authed.disconnect();
    const hello = await connect(running.port, { enableReadyCheck: false });
    const reply = (await hello.call('HELLO', '2', 'AUTH', 'default', 's3cret')) as unknown[];
    expect(reply).toContain('proto');
    expect(await hello.get('a')).toBe('1');
    hello.disconnect();
  });

  it('refuses AUTH when no password is configured', async () => {
    const open = await startNodeServer();
    const redis = await connect(open.port);
    expect(await replyError(redis.auth('x'))).toMatch(/^ERR AUTH <password> called without/);
    redis.disconnect();
    await open.stop();
  });
});
