/**
 * Plain SETs of one pipeline reach the backend as one batch (connection.ts), and each still
 * has its own reply and outcome: a batch refused as a whole (INVALID) runs its SETs one at a
 * time, in order, before anything sent after them; any other failure answers every SET of it;
 * SETs with options or request ids, or split by other commands, are not gathered together.
 * Each pipeline is one small socket write, which loopback delivers in one read.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { BackendKey, BackendOperation, BackendValue } from '../../src/server/backend.js';
import { encodeCommand } from '../../src/server/resp/client.js';
import { FakeBackend } from './fake-backend.js';
import {
  rawSocket,
  readBytes,
  startBackendServer,
  startNodeServer,
  until,
  type Running,
} from './helpers.js';

/** The FakeBackend, noting each write call it gets, in order. */
class RecordingBackend extends FakeBackend {
  readonly calls: string[] = [];

  override put(key: BackendKey, value: BackendValue) {
    this.calls.push(`put ${Buffer.from(key).toString()}`);
    return super.put(key, value);
  }

  override batch(operations: readonly BackendOperation[]) {
    const keys = operations.map((operation) => Buffer.from(operation.key).toString());
    this.calls.push(`batch ${keys.join(',')}`);
    return super.batch(operations);
  }

  override incrBy(key: BackendKey, delta: bigint) {
    this.calls.push(`incrby ${Buffer.from(key).toString()}`);
    return super.incrBy(key, delta);
  }
}

let running: Running | null = null;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await running?.stop();
  running = null;
});

/** Sends `commands` as one write and reads `expected.length` bytes of replies. */
async function exchange(port: number, commands: string[][], expected: string): Promise<string> {
  const socket = await rawSocket(port);
  sockets.push(socket);
  const replies = readBytes(socket, Buffer.byteLength(expected));
  socket.write(Buffer.concat(commands.map((command) => encodeCommand(command))));
  return (await replies).toString();
}

describe('plain SETs of a pipeline', () => {
  it('reach the backend as one batch, and each is answered', async () => {
    const backend = new RecordingBackend();
    running = await startBackendServer(backend);
    const commands = [0, 1, 2, 3, 4].map((index) => ['SET', `k${index}`, `v${index}`]);
    const expected = '+OK\r\n'.repeat(5);
    expect(await exchange(running.port, commands, expected)).toBe(expected);
    expect(backend.calls).toEqual(['batch k0,k1,k2,k3,k4']);
    expect(backend.data.get('k4')?.toString()).toBe('v4');
    const stats = running.server.context.stats;
    expect(stats.writesCommitted).toBe(5);
    expect(stats.commandsProcessed).toBe(5);
  });

  it('run one at a time, in order, when the batch is refused as INVALID', async () => {
    const backend = new RecordingBackend();
    running = await startBackendServer(backend);
    const commands = [
      ['SET', 'a', '1'],
      ['SET', 'invalid', 'x'],
      ['SET', 'b', '2'],
      ['INCR', 'n'],
      ['GET', 'a'],
    ];
    const expected = '+OK\r\n-ERR value too large\r\n+OK\r\n:1\r\n$1\r\n1\r\n';
    expect(await exchange(running.port, commands, expected)).toBe(expected);
    expect(backend.calls).toEqual([
      'batch a,invalid,b',
      'put a',
      'put invalid',
      'put b',
      'incrby n',
    ]);
  });

  it('answer every SET of a batch with the failure it had', async () => {
    const backend = new RecordingBackend();
    running = await startBackendServer(backend);
    const commands = [
      ['SET', 'noreplicas', '1'],
      ['SET', 'c', '2'],
    ];
    const error = '-NOREPLICAS the policy needs 2 eligible replicas, 1 connected\r\n';
    expect(await exchange(running.port, commands, error + error)).toBe(error + error);
    expect(backend.calls).toEqual(['batch noreplicas,c']);
    expect(backend.data.has('c')).toBe(false);
    expect(running.server.context.stats.errorReplies).toBe(2);
  });

  it('are not gathered with options, request ids, or across other commands', async () => {
    const backend = new RecordingBackend();
    running = await startBackendServer(backend);
    const commands = [
      ['SET', 'a', '1', 'NX'],
      ['RID', 'r1', 'SET', 'b', '2'],
      ['SET', 'c', '3'],
      ['PING'],
      ['SET', 'd', '4'],
      ['SET', 'e', '5'],
    ];
    const expected = '+OK\r\n+OK\r\n+OK\r\n+PONG\r\n+OK\r\n+OK\r\n';
    expect(await exchange(running.port, commands, expected)).toBe(expected);
    expect(backend.calls).toEqual(['put a', 'put b', 'put c', 'batch d,e']);
  });

  it('hold back later writes until the batch completed; PING still starts', async () => {
    const backend = new RecordingBackend();
    running = await startBackendServer(backend);
    const stats = running.server.context.stats;
    const socket = await rawSocket(running.port);
    sockets.push(socket);
    const expected = '+OK\r\n+OK\r\n+PONG\r\n:1\r\n';
    const replies = readBytes(socket, expected.length);
    const commands = [['SET', 'slow:a', '1'], ['SET', 'slow:b', '2'], ['PING'], ['INCR', 'n']];
    socket.write(Buffer.concat(commands.map((command) => encodeCommand(command))));
    await until(() => backend.released.length === 1 && stats.commandsProcessed === 3);
    expect(backend.calls).toEqual(['batch slow:a,slow:b']);
    backend.released.shift()!();
    await until(() => backend.released.length === 1);
    expect(backend.calls).toEqual(['batch slow:a,slow:b']);
    backend.released.shift()!();
    expect((await replies).toString()).toBe(expected);
    expect(backend.calls).toEqual(['batch slow:a,slow:b', 'incrby n']);
  });
});

describe('plain SETs on a real node', () => {
  it('give each SET its own outcome when the engine refuses the batch', async () => {
    const node = await startNodeServer();
    running = node;
    // 9 MiB is over the engine's valueBytesMax (8 MiB) and under the server's bulk limit.
    const big = Buffer.alloc(9 * 1024 * 1024, 0x78);
    const socket = await rawSocket(node.port);
    sockets.push(socket);
    const commands: (string | Buffer)[][] = [
      ['SET', 'a', '1'],
      ['SET', 'big', big],
      ['SET', 'b', '2'],
      ['MGET', 'a', 'big', 'b'],
    ];
    const error = '-ERR value of 9437184 bytes exceeds 8388608\r\n';
    const expected = `+OK\r\n${error}+OK\r\n*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n`;
    const replies = readBytes(socket, expected.length);
    socket.write(Buffer.concat(commands.map((command) => encodeCommand(command))));
    expect((await replies).toString()).toBe(expected);
  });
});
