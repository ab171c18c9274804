import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy } from './fault-proxy.js';

const host = '127.0.0.1';
const boundMs = 10_000;

async function within<T>(promise: Promise<T>, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: not settled in ${boundMs} ms`)), boundMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** An echo server that counts what it received. */
class EchoServer {
  readonly server = net.createServer((socket) => this.#accept(socket));
  readonly sockets = new Set<net.Socket>();
  received = 0;
  accepted = 0;

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen({ host, port: 0 }, resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  #accept(socket: net.Socket): void {
    this.accepted++;
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      socket.write(chunk);
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A client that collects what it reads and can wait for a given text. */
class Client {
  readonly socket: net.Socket;
  text = '';
  readonly closed: Promise<void>;
  readonly connected: Promise<void>;
  error: Error | null = null;
  #waiters: { text: string; resolve: () => void }[] = [];

  constructor(port: number) {
    this.socket = net.connect({ host, port });
    this.connected = new Promise((resolve) => this.socket.once('connect', () => resolve()));
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('error', (error: Error) => {
      this.error = error;
    });
    this.socket.on('data', (chunk: Buffer) => {
      this.text += chunk.toString('utf8');
      this.#waiters = this.#waiters.filter((waiter) => {
        if (!this.text.includes(waiter.text)) return true;
        waiter.resolve();
        return false;
      });
    });
  }

  read(text: string): Promise<void> {
    if (this.text.includes(text)) return Promise.resolve();
    return within(new Promise((resolve) => this.#waiters.push({ text, resolve })), `read ${text}`);
  }
}

describe('FaultProxy', () => {
  let echo: EchoServer;
  let proxy: FaultProxy;
  const clients: Client[] = [];
  const connect = (port = proxy.port): Client => {
    const client = new Client(port);
    clients.push(client);
    return client;
  };
  /** A round trip through the echo server on a direct connection: lets pending I/O run. */
  const barrier = async (): Promise<void> => {
    const direct = connect((echo.server.address() as net.AddressInfo).port);
    direct.socket.write('barrier');
    await direct.read('barrier');
    direct.socket.destroy();
  };

  beforeEach(async () => {
    echo = new EchoServer();
    const port = await echo.listen();
    proxy = await FaultProxy.start({ host, port });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.destroy();
    await proxy.close();
    await echo.close();
  });

  it('forwards both ways', async () => {
    const client = connect();
    client.socket.write('hello');
    await client.read('hello');
    expect(proxy.counters.forwardedBytes).toEqual({ toTarget: 5, toClient: 5 });
    expect(proxy.connections).toBe(1);
  });

  it('drops bytes in one direction and keeps the connection', async () => {
    const client = connect();
    client.socket.write('a');
    await client.read('a');
    proxy.set('toTarget', { kind: 'drop' });
    client.socket.write('x');
    await within(
      proxy.until((c) => c.droppedBytes.toTarget === 1),
      'x dropped',
    );
    proxy.set('toTarget', { kind: 'pass' });
    proxy.set('toClient', { kind: 'drop' });
    client.socket.write('y');
    await within(
      proxy.until((c) => c.droppedBytes.toClient === 1),
      'echo of y dropped',
    );
    proxy.set('toClient', { kind: 'pass' });
    client.socket.write('z');
    await client.read('z');
    expect(client.text).toBe('az');
  });

  it('delays a direction, in order', async () => {
    const client = connect();
    client.socket.write('0');
    await client.read('0');
    proxy.set('toTarget', { kind: 'delay', ms: 150 });
    const startMs = performance.now();
    client.socket.write('1');
    client.socket.write('2');
    await client.read('12');
    expect(performance.now() - startMs).toBeGreaterThanOrEqual(140);
    expect(client.text).toBe('012');
  });

  it('blackholes a direction until it passes again', async () => {
    const client = connect();
    client.socket.write('a');
    await client.read('a');
    proxy.set('toTarget', { kind: 'blackhole' });
    client.socket.write('held');
    await barrier();
    // 'a', then the barrier's own bytes: nothing of 'held'.
    expect(echo.received).toBe(1 + 'barrier'.length);
    proxy.set('toTarget', { kind: 'pass' });
    await client.read('held');
  });

  it('resets open connections', async () => {
    const client = connect();
    client.socket.write('a');
    await client.read('a');
    proxy.reset();
    await within(client.closed, 'client closed by the reset');
    expect(client.error?.message).toMatch(/ECONNRESET/);
    expect(proxy.connections).toBe(0);
  });

  it('blackholes, resets or refuses new connections', async () => {
    await proxy.setAccept('blackhole');
    const held = connect();
    await within(held.connected, 'the blackholed client connects');
    held.socket.write('lost');
    await within(
      proxy.until((c) => c.accepted === 1),
      'accepted',
    );
    await barrier();
    expect(echo.accepted).toBe(1); // the barrier's own connection only

    await proxy.setAccept('reset');
    const reset = connect();
    await within(reset.closed, 'reset at accept');

    await proxy.setAccept('refuse');
    const refused = connect();
    await within(refused.closed, 'refused');
    expect(refused.error?.message).toMatch(/ECONNREFUSED/);

    await proxy.setAccept('forward');
    const again = connect();
    again.socket.write('back');
    await again.read('back');
  });

  it('closes every connection on close()', async () => {
    const client = connect();
    client.socket.write('a');
    await client.read('a');
    await proxy.setAccept('blackhole');
    const held = connect();
    await within(held.connected, 'held connects');
    await within(
      proxy.until((c) => c.accepted === 2),
      'both accepted',
    );
    await proxy.close();
    await within(Promise.all([client.closed, held.closed]), 'clients closed');
  });
});
