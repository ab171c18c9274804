/**
 * When commands start and when replies go out, with writes held pending by a fake backend:
 * a read waits for earlier writes, a command touching no data does not (its reply still waits
 * its turn), and a graceful close lets a pending write finish and be answered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeCommand } from '../../src/server/resp/client.js';
import { FakeBackend } from './fake-backend.js';
import {
  rawSocket,
  readBytes,
  readUntilClosed,
  startBackendServer,
  until,
  type Running,
} from './helpers.js';

let running: Running | null = null;

afterEach(async () => {
  await running?.stop();
  running = null;
});

describe('ordering within a connection', () => {
  it('starts PING at once, holds GET until the write before it completed', async () => {
    const backend = new FakeBackend();
    running = await startBackendServer(backend);
    const stats = running.server.context.stats;
    const socket = await rawSocket(running.port);
    const before = stats.commandsProcessed;
    const expected = '+OK\r\n+PONG\r\n$1\r\n1\r\n:1\r\n';
    const replies = readBytes(socket, expected.length);
    socket.write(
      Buffer.concat([
        encodeCommand(['SET', 'slow:a', '1']),
        encodeCommand(['PING']),
        encodeCommand(['GET', 'slow:a']),
        encodeCommand(['INCR', 'n']),
      ]),
    );
    await until(() => backend.released.length === 1 && stats.commandsProcessed === before + 2);
    expect(backend.data.has('slow:a')).toBe(false);
    backend.released.shift()!();
    expect((await replies).toString()).toBe(expected);
    expect(stats.commandsProcessed).toBe(before + 4);
    socket.destroy();
  });

  it('a graceful close lets a pending write finish and answers it before closing', async () => {
    const backend = new FakeBackend();
    running = await startBackendServer(backend);
    const server = running.server;
    const socket = await rawSocket(running.port);
    const received = readUntilClosed(socket);
    socket.write(encodeCommand(['SET', 'slow:b', '2']));
    await until(() => backend.released.length === 1);
    const closed = server.close();
    // Commands arriving after the close began are not run; the pending write still completes.
    socket.write(encodeCommand(['SET', 'after', 'close']));
    backend.released.shift()!();
    await closed;
    expect((await received).toString()).toBe('+OK\r\n');
    expect(backend.data.get('slow:b')?.toString()).toBe('2');
    expect(backend.data.has('after')).toBe(false);
    running = null;
  });
});
