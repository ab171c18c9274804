/**
 * TLS on the client port: a self-signed certificate made with openssl (skipped, with a
 * notice, if openssl is missing); ioredis and the small RESP client speak TLS to it, and a
 * plain-text client gets nothing served.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RespClient } from '../../src/server/resp/client.js';
import {
  rawSocket,
  readUntilClosed,
  removeTemporary,
  startNodeServer,
  temporaryDirectory,
  type RunningNode,
} from './helpers.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
if (!hasOpenssl) console.log('notice: openssl is not installed; the TLS tests are skipped');

describe.skipIf(!hasOpenssl)('TLS', () => {
  let dir: string;
  let running: RunningNode;

  beforeAll(async () => {
    dir = temporaryDirectory('tls');
    const made = spawnSync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]);
    expect(made.status).toBe(0);
    const tls = {
      cert: readFileSync(join(dir, 'cert.pem')),
      key: readFileSync(join(dir, 'key.pem')),
    };
    running = await startNodeServer({ tls, password: 'pw' });
  });

  afterAll(async () => {
    await running.stop();
    removeTemporary(dir);
  });

  it('serves ioredis and the RESP client over TLS', async () => {
    const redis = new Redis({
      host: '127.0.0.1',
      port: running.port,
      password: 'pw',
      tls: { rejectUnauthorized: false },
      lazyConnect: true,
      retryStrategy: () => null,
    });
    await redis.connect();
    expect(await redis.set('secure', 'yes')).toBe('OK');
    expect(await redis.info('server')).toMatch(/\r\ntls:1\r\n/);
    redis.disconnect();
    const client = await RespClient.connect({ host: '127.0.0.1', port: running.port, tls: true });
    expect(await client.call('AUTH', 'pw')).toBe('OK');
    expect(String(await client.call('GET', 'secure'))).toBe('yes');
    client.close();
  });

  it('serves nothing to a plain-text client', async () => {
    const socket = await rawSocket(running.port);
    const closed = readUntilClosed(socket);
    socket.write('*1\r\n$4\r\nPING\r\n');
    expect((await closed).toString()).not.toContain('PONG');
  });
});
