/**
 * Every command through a raw RESP connection to a server over a real node in a temporary
 * directory: replies, error spellings, pipelining order, RESP3 after HELLO 3, request ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeCommand,
  parseReply,
  RespErrorReply,
  type RespClient,
  type RespValue,
} from '../../src/server/resp/client.js';
import { client, rawSocket, readBytes, startNodeServer, type RunningNode } from './helpers.js';

let running: RunningNode;
let connection: RespClient;

beforeAll(async () => {
  running = await startNodeServer();
  connection = await client(running.port);
});

afterAll(async () => {
  connection.close();
  await running.stop();
});

const call = (...args: string[]): Promise<RespValue> => connection.call(...args);
const text = (value: RespValue): string | null =>
  Buffer.isBuffer(value) ? value.toString() : (value as string | null);
const errorOf = (value: RespValue): string =>
  value instanceof RespErrorReply ? value.message : `not an error: ${String(value)}`;

describe('key-value commands', () => {
  it('GET, SET, DEL, EXISTS, TYPE, DBSIZE', async () => {
    expect(await call('SET', 'k1', 'v1')).toBe('OK');
    expect(text(await call('GET', 'k1'))).toBe('v1');
    expect(await call('GET', 'missing')).toBeNull();
    expect(await call('EXISTS', 'k1', 'missing', 'k1')).toBe(2n);
    expect(await call('TYPE', 'k1')).toBe('string');
    expect(await call('TYPE', 'missing')).toBe('none');
    expect(await call('SET', 'k2', '')).toBe('OK');
    expect(text(await call('GET', 'k2'))).toBe('');
    expect(await call('DBSIZE')).toBe(2n);
    expect(await call('DEL', 'k1', 'k2', 'missing')).toBe(2n);
    expect(await call('UNLINK', 'k1')).toBe(0n);
    expect(await call('DBSIZE')).toBe(0n);
  });

  it('is binary safe', async () => {
    const key = Buffer.from([0, 255, 13, 10]);
    const value = Buffer.from([10, 13, 0, 1, 2]);
    expect(await connection.call('SET', key, value)).toBe('OK');
    expect(await connection.call('GET', key)).toEqual(value);
    expect(await connection.call('DEL', key)).toBe(1n);
  });

  it('SET NX, and refuses the options it does not support', async () => {
    expect(await call('SET', 'nx', 'a', 'NX')).toBe('OK');
    expect(await call('SET', 'nx', 'b', 'nx')).toBeNull();
    expect(text(await call('GET', 'nx'))).toBe('a');
    expect(errorOf(await call('SET', 'nx', 'b', 'XX'))).toBe(
      'ERR SET XX is not supported by syncwal',
    );
    expect(errorOf(await call('SET', 'nx', 'b', 'EX', '10'))).toMatch(/^ERR key expiry/);
    expect(errorOf(await call('SET', 'nx', 'b', 'BOGUS'))).toBe('ERR syntax error');
  });

  it('MSET is atomic and MGET reads many', async () => {
    expect(await call('MSET', 'm1', 'a', 'm2', 'b', 'm1', 'c')).toBe('OK');
    const values = (await call('MGET', 'm1', 'm2', 'm3')) as RespValue[];
    expect(values.map(text)).toEqual(['c', 'b', null]);
    expect(errorOf(await call('MSET', 'm1', 'a', 'm2'))).toBe(
      "ERR wrong number of arguments for 'mset' command",
    );
  });

  it('INCR, INCRBY, DECR, DECRBY over signed 64-bit integers', async () => {
    expect(await call('INCR', 'n')).toBe(1n);
    expect(await call('INCRBY', 'n', '41')).toBe(42n);
    expect(await call('DECR', 'n')).toBe(41n);
    expect(await call('DECRBY', 'n', '-9')).toBe(50n);
    expect(await call('SET', 'n', '9223372036854775806')).toBe('OK');
    expect(await call('INCR', 'n')).toBe(9223372036854775807n);
    expect(errorOf(await call('INCR', 'n'))).toBe('ERR increment or decrement would overflow');
    expect(errorOf(await call('INCRBY', 'n', '1.5'))).toBe(
      'ERR value is not an integer or out of range',
    );
    expect(errorOf(await call('DECRBY', 'n', '-9223372036854775808'))).toBe(
      'ERR decrement would overflow',
    );
    expect(await call('SET', 'word', 'abc')).toBe('OK');
    expect(errorOf(await call('INCR', 'word'))).toBe('ERR value is not an integer or out of range');
  });

  it('SCAN walks every key once, with MATCH and COUNT', async () => {
    const keys = Array.from({ length: 25 }, (_, index) => `scan:${String(index).padStart(2, '0')}`);
    await call('MSET', ...keys.flatMap((key) => [key, 'x']), 'other', 'y');
    const seen: string[] = [];
    let cursor = '0';
    for (let round = 0; round < 100; round++) {
      const [next, batch] = (await call('SCAN', cursor, 'MATCH', 'scan:*', 'COUNT', '7')) as [
        Buffer,
        Buffer[],
      ];
      seen.push(...batch.map((key) => key.toString()));
      cursor = next.toString();
      if (cursor === '0') break;
    }
    expect(cursor).toBe('0');
    expect(seen).toEqual(keys);
    const filtered = (await call('SCAN', '0', 'MATCH', 'scan:1?', 'COUNT', '1000')) as RespValue[];
    expect((filtered[1] as Buffer[]).map(String)).toEqual(keys.slice(10, 20));
    const none = (await call('SCAN', '0', 'TYPE', 'hash', 'COUNT', '1000')) as RespValue[];
    expect(none[1]).toEqual([]);
    expect(errorOf(await call('SCAN', '999999'))).toBe('ERR invalid cursor');
    expect(errorOf(await call('SCAN', 'abc'))).toBe('ERR invalid cursor');
    expect(errorOf(await call('SCAN', '0', 'COUNT', '0'))).toBe('ERR syntax error');
  });
});

describe('request ids', () => {
  it('SET ... RID and the RID prefix are applied once, and STATUS answers', async () => {
    expect(await call('SET', 'r', 'one', 'RID', 'req-1')).toBe('OK');
    expect(await call('SET', 'r', 'two', 'RID', 'req-1')).toBe('OK');
    expect(text(await call('GET', 'r'))).toBe('one');
    expect(await call('RID', 'req-2', 'INCR', 'counter')).toBe(1n);
    expect(await call('RID', 'req-2', 'INCR', 'counter')).toBe(1n);
    expect(await call('INCR', 'counter')).toBe(2n);
    const status = (await call('STATUS', 'req-2')) as RespValue[];
    expect(text(status[0]!)).toBe('status');
    expect(text(status[1]!)).toBe('committed');
    expect(typeof status[3]).toBe('bigint');
    expect(((await call('STATUS', 'never')) as RespValue[]).map(text)).toEqual([
      'status',
      'unknown',
    ]);
    expect(errorOf(await call('RID', 'req-3', 'GET', 'r'))).toMatch(/RID does not apply to 'get'/);
    expect(errorOf(await call('RID', 'req-3', 'DEL', 'a', 'b'))).toMatch(/single key/);
    expect(errorOf(await call('RID', 'x'))).toMatch(/wrong number of arguments for 'rid'/);
  });
});

describe('connection and server commands', () => {
  it('PING, ECHO, SELECT, CLIENT, TIME, COMMAND', async () => {
    expect(await call('PING')).toBe('PONG');
    expect(text(await call('PING', 'hi'))).toBe('hi');
    expect(text(await call('ECHO', 'hello'))).toBe('hello');
    expect(await call('SELECT', '0')).toBe('OK');
    expect(errorOf(await call('SELECT', '1'))).toBe('ERR DB index is out of range');
    expect(await call('CLIENT', 'SETNAME', 'tester')).toBe('OK');
    expect(text(await call('CLIENT', 'GETNAME'))).toBe('tester');
    expect(typeof (await call('CLIENT', 'ID'))).toBe('bigint');
    expect(errorOf(await call('CLIENT', 'SETNAME', 'a b'))).toMatch(/cannot contain spaces/);
    expect(text(await call('CLIENT', 'LIST'))).toMatch(/name=tester/);
    expect(await call('CLIENT', 'SETINFO', 'LIB-NAME', 'raw')).toBe('OK');
    expect(((await call('TIME')) as RespValue[]).length).toBe(2);
    const count = (await call('COMMAND', 'COUNT')) as bigint;
    expect(count).toBeGreaterThan(25n);
    const info = (await call('COMMAND', 'INFO', 'get', 'nope')) as RespValue[];
    expect(text((info[0] as RespValue[])[0]!)).toBe('get');
    expect(info[1]).toBeNull();
    expect(((await call('COMMAND')) as RespValue[]).length).toBe(Number(count));
    expect(((await call('COMMAND', 'DOCS', 'set')) as RespValue[]).length).toBe(2);
    expect(errorOf(await call('NOPE', 'a'))).toBe(
      "ERR unknown command 'NOPE', with args beginning with: 'a'",
    );
    expect(errorOf(await call('GET'))).toBe("ERR wrong number of arguments for 'get' command");
  });

  it('INFO has every section, ROLE and WAIT answer as a lone primary', async () => {
    await call('SET', 'info', 'x');
    const info = text(await call('INFO')) ?? '';
    for (const section of ['Server', 'Clients', 'Replication', 'Persistence', 'Stats']) {
      expect(info).toContain(`# ${section}\r\n`);
    }
    expect(info).toMatch(/\r\nrole:master\r\n/);
    expect(info).toMatch(/\r\nloading:0\r\n/);
    expect(info).toMatch(/\r\ncommit_latency_p99_usec:\d+\r\n/);
    expect(info).toMatch(/\r\ninstantaneous_ops_per_sec:\d+\r\n/);
    const replication = text(await call('INFO', 'replication')) ?? '';
    expect(replication.startsWith('# Replication\r\n')).toBe(true);
    expect(replication).not.toContain('# Server');
    const role = (await call('ROLE')) as RespValue[];
    expect(text(role[0]!)).toBe('master');
    expect(typeof role[1]).toBe('bigint');
    expect(role[2]).toEqual([]);
    expect(await call('WAIT', '1', '100')).toBe(0n);
    expect(errorOf(await call('WAIT', 'x', '0'))).toMatch(/not an integer/);
  });

  it('CONFIG GET reports the policy; CONFIG SET of it is refused on a single node', async () => {
    const all = (await call('CONFIG', 'GET', '*')) as RespValue[];
    const pairs = new Map<string, string>();
    for (let index = 0; index < all.length; index += 2) {
      pairs.set(text(all[index]!)!, text(all[index + 1]!)!);
    }
    expect(pairs.get('acks')).toBe('quorum');
    expect(pairs.get('appendonly')).toBe('yes');
    expect(pairs.has('requirepass')).toBe(false);
    const two = (await call('CONFIG', 'GET', 'save', 'appendonly')) as RespValue[];
    expect(two.map(text)).toEqual(['appendonly', 'yes', 'save', '']);
    expect(errorOf(await call('CONFIG', 'SET', 'acks', 'all'))).toBe(
      'ERR CONFIG SET of the durability policy is not supported on a single node (no replication)',
    );
    expect(errorOf(await call('CONFIG', 'SET', 'acks', 'some'))).toMatch(/Invalid argument/);
    expect(errorOf(await call('CONFIG', 'SET', 'port', '1'))).toMatch(/read-only/);
    expect(errorOf(await call('CONFIG', 'SET', 'nope', '1'))).toMatch(/Unknown option/);
    expect(await call('CONFIG', 'RESETSTAT')).toBe('OK');
  });

  it('CHECKPOINT returns the LSN; FAILOVER is refused on a single node', async () => {
    await call('SET', 'cp', '1');
    const lsn = (await call('CHECKPOINT')) as bigint;
    expect(lsn).toBeGreaterThan(0n);
    const persistence = text(await call('INFO', 'persistence')) ?? '';
    expect(persistence).toMatch(new RegExp(`\\r\\ncheckpoint_lsn:${lsn}\\r\\n`));
    expect(persistence).not.toMatch(/last_checkpoint_time:-1/);
    expect(errorOf(await call('FAILOVER'))).toBe(
      'ERR FAILOVER is not supported on a single node (no replication)',
    );
    expect(errorOf(await call('FAILOVER', 'BOGUS'))).toBe('ERR syntax error');
  });

  it('HELLO 3 switches to RESP3 and HELLO 2 back', async () => {
    const other = await client(running.port);
    try {
      const hello = await other.call('HELLO', '3', 'SETNAME', 'three');
      expect(hello).toBeInstanceOf(Map);
      const map = hello as Map<string, RespValue>;
      expect(map.get('proto')).toBe(3n);
      expect(text(map.get('role')!)).toBe('master');
      expect(await other.call('GET', 'missing')).toBeNull();
      expect(await other.call('CONFIG', 'GET', 'acks')).toEqual(
        new Map([['acks', Buffer.from('quorum')]]),
      );
      expect(typeof (await other.call('INFO', 'server'))).toBe('string'); // verbatim
      expect(text(await other.call('CLIENT', 'GETNAME'))).toBe('three');
      expect(errorOf(await other.call('HELLO', '4'))).toBe('NOPROTO unsupported protocol version');
      expect(Array.isArray(await other.call('HELLO', '2'))).toBe(true);
    } finally {
      other.close();
    }
  });

  it('QUIT answers OK and closes', async () => {
    const socket = await rawSocket(running.port);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write(encodeCommand(['QUIT']));
    expect((await readBytes(socket, 5)).toString()).toBe('+OK\r\n');
    await closed;
  });
});

describe('pipelining', () => {
  it('replies in order, and a read sees the writes sent before it', async () => {
    const socket = await rawSocket(running.port);
    const commands: string[][] = [];
    for (let index = 0; index < 200; index++) {
      commands.push(['SET', `p${index}`, `v${index}`], ['GET', `p${index}`], ['INCR', 'pcount']);
    }
    const expected = commands.map((command, index) => {
      if (command[0] === 'SET') return 'OK';
      if (command[0] === 'GET') return `v${Math.floor(index / 3)}`;
      return String(Math.floor(index / 3) + 1);
    });
    const chunks: Buffer[] = [];
    const replies: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('pipeline timed out')), 20_000);
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        let buffer = Buffer.concat(chunks);
        for (let parsed = parseReply(buffer, 0); parsed !== null; parsed = parseReply(buffer, 0)) {
          const value = parsed.value;
          replies.push(typeof value === 'bigint' ? String(value) : String(text(value)));
          buffer = buffer.subarray(parsed.next);
        }
        chunks.length = 0;
        if (buffer.length > 0) chunks.push(buffer);
        if (replies.length === expected.length) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    socket.write(Buffer.concat(commands.map((command) => encodeCommand(command))));
    await done;
    socket.destroy();
    expect(replies).toEqual(expected);
  });
});
