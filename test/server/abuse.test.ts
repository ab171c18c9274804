/**
 * Bad and heavy input: random bytes, truncated frames, a 512 MiB bulk length, 10,000
 * pipelined commands, 200 idle connections, a client that sends without reading, too many
 * clients. Each time the server stays up, other clients are unaffected, and nothing of a
 * malformed command is logged.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCommand, parseReply, type RespValue } from '../../src/server/resp/client.js';
import {
  client,
  rawSocket,
  readBytes,
  readUntilClosed,
  startNodeServer,
  until,
  type RunningNode,
} from './helpers.js';

let running: RunningNode;
let bystander: Redis;

beforeAll(async () => {
  running = await startNodeServer({ limits: { pipelineRepliesMax: 64 } });
  bystander = new Redis({ host: '127.0.0.1', port: running.port, lazyConnect: true });
  await bystander.connect();
  await bystander.set('bystander', 'present');
});

afterAll(async () => {
  bystander.disconnect();
  await running.stop();
});

/** The bystander (one long-lived connection) still reads and writes. */
async function bystanderWorks(): Promise<void> {
  expect(await bystander.get('bystander')).toBe('present');
  expect(await bystander.incr('bystander:count')).toBeGreaterThan(0);
}

/** xorshift32: deterministic "random" bytes. */
function randomBytes(seed: number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < length; index++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

describe('malformed input closes only that client', () => {
  it('answers a 512 MiB bulk length with a protocol error and closes', async () => {
    const socket = await rawSocket(running.port);
    const closed = readUntilClosed(socket);
    socket.write('*3\r\n$3\r\nSET\r\n$4\r\nhuge\r\n$536870912\r\n');
    socket.write(Buffer.alloc(64 * 1024, 0x61));
    expect((await closed).toString()).toBe('-ERR Protocol error: invalid bulk length\r\n');
    expect(await bystander.exists('huge')).toBe(0);
    await bystanderWorks();
  });

  it('answers earlier commands first, then the protocol error', async () => {
    const socket = await rawSocket(running.port);
    const closed = readUntilClosed(socket);
    socket.write(
      Buffer.concat([encodeCommand(['SET', 'before', '1']), Buffer.from('*1\r\n!x\r\n')]),
    );
    expect((await closed).toString()).toBe("+OK\r\n-ERR Protocol error: expected '$', got '!'\r\n");
    expect(await bystander.get('before')).toBe('1');
  });

  it('logs nothing of a truncated frame', async () => {
    const frame = encodeCommand(['MSET', 'cut:a', '1', 'cut:b', '2']);
    for (const cut of [1, 7, 20, frame.length - 5, frame.length - 1]) {
      const socket = await rawSocket(running.port);
      const closed = readUntilClosed(socket);
      socket.end(frame.subarray(0, cut));
      expect((await closed).length, `cut at ${cut}`).toBe(0);
    }
    expect(await bystander.exists('cut:a', 'cut:b')).toBe(0);
    await bystanderWorks();
  });

  it('survives random bytes', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const socket = await rawSocket(running.port);
      const closed = readUntilClosed(socket);
      socket.end(randomBytes(seed, 8 * 1024));
      const received = await closed;
      // Whatever came back is well-formed RESP: error replies, maybe a protocol error last.
      let offset = 0;
      for (let parsed = parseReply(received, offset); parsed !== null;) {
        offset = parsed.next;
        parsed = offset < received.length ? parseReply(received, offset) : null;
      }
      expect(offset, `seed ${seed}`).toBe(received.length);
    }
    await bystanderWorks();
    await until(() => running.server.clientCount === 1);
  });
});

describe('heavy but valid input', () => {
  it('answers 10,000 pipelined commands in order', async () => {
    const socket = await rawSocket(running.port);
    const total = 10_000;
    const commands = Array.from({ length: total }, (_, index) =>
      index % 2 === 0 ? encodeCommand(['INCR', 'pipelined']) : encodeCommand(['PING']),
    );
    let expectedBytes = 0;
    for (let index = 0; index < total; index++) {
      expectedBytes += index % 2 === 0 ? `:${index / 2 + 1}\r\n`.length : '+PONG\r\n'.length;
    }
    const replies = readBytes(socket, expectedBytes, 60_000);
    socket.write(Buffer.concat(commands));
    const received = await replies;
    socket.destroy();
    const values: RespValue[] = [];
    let offset = 0;
    for (let parsed = parseReply(received, 0); parsed !== null;) {
      values.push(parsed.value);
      offset = parsed.next;
      parsed = offset < received.length ? parseReply(received, offset) : null;
    }
    expect(values).toHaveLength(total);
    expect(values[total - 2]).toBe(BigInt(total / 2));
    expect(values[total - 1]).toBe('PONG');
    expect(await bystander.get('pipelined')).toBe(String(total / 2));
  });

  it('stops reading from a client that does not read its replies, then resumes', async () => {
    await bystander.set('big', Buffer.alloc(256 * 1024, 0x62));
    const socket = await rawSocket(running.port);
    socket.pause();
    const count = 400;
    const processedBefore = running.server.context.stats.commandsProcessed;
    socket.write(Buffer.concat(Array.from({ length: count }, () => encodeCommand(['GET', 'big']))));
    // 400 × 256 KiB = 100 MiB of replies: far more than the socket buffers hold.
    await bystanderWorks();
    const processed = running.server.context.stats.commandsProcessed - processedBefore;
    expect(processed).toBeLessThan(count);
    const replyBytes = count * (256 * 1024 + '$262144\r\n\r\n'.length);
    const all = readBytes(socket, replyBytes, 60_000);
    socket.resume();
    expect((await all).length).toBe(replyBytes);
    socket.destroy();
  });

  it('keeps 200 idle connections without affecting others', async () => {
    const idle = await Promise.all(Array.from({ length: 200 }, () => rawSocket(running.port)));
    await until(() => running.server.clientCount >= 201);
    await bystanderWorks();
    const info = await bystander.info('clients');
    expect(Number(/connected_clients:(\d+)/.exec(info)?.[1])).toBeGreaterThanOrEqual(201);
    const closed = idle.map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    for (const socket of idle) socket.destroy();
    await Promise.all(closed);
    await until(() => running.server.clientCount === 1);
  });
});

describe('max clients', () => {
  it('answers one more client with an error and closes it', async () => {
    const small = await startNodeServer({ limits: { clientsMax: 3 } });
    try {
      const clients = await Promise.all([1, 2, 3].map(() => client(small.port)));
      await until(() => small.server.clientCount === 3);
      const extra = await rawSocket(small.port);
      expect((await readUntilClosed(extra)).toString()).toBe(
        '-ERR max number of clients reached\r\n',
      );
      expect(await clients[0]!.call('PING')).toBe('PONG');
      expect(small.server.context.stats.connectionsRejected).toBe(1);
      for (const each of clients) each.close();
    } finally {
      await small.stop();
    }
  });
});
