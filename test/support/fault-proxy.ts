/**
 * FaultProxy: a TCP proxy for tests that puts faults between real processes. It listens on
 * 127.0.0.1 (port 0 by default: `port` tells which) and forwards every connection to a target.
 * What it does to the bytes can be changed at any time, per direction:
 *
 * - `pass`: forward (with back-pressure: a slow receiver slows the sender);
 * - `drop`: read and discard, the connection stays up (packets lost on an open connection);
 * - `delay`: forward after `ms` milliseconds, keeping the order;
 * - `blackhole`: stop reading: bytes pile up in the sender's socket buffers and nothing is
 *   forwarded until the direction passes again (a network that stopped carrying packets).
 *
 * and for new connections (`setAccept`):
 *
 * - `forward`: connect to the target and forward;
 * - `blackhole`: accept but never connect to the target or read (a peer that hangs);
 * - `reset`: accept and reset at once (RST);
 * - `refuse`: stop listening, so connecting fails with ECONNREFUSED; any other mode listens
 *   again on the same port.
 *
 * `reset()` resets every open connection. `close()` closes everything and resolves once every
 * socket and the listener are closed. Counters, and `until` to wait for them, tell a test what
 * happened without sleeping.
 */
import net from 'node:net';

export type ProxyFault =
  { kind: 'pass' } | { kind: 'drop' } | { kind: 'delay'; ms: number } | { kind: 'blackhole' };

/** `toTarget`: bytes the client sends; `toClient`: bytes the target sends back. */
export type ProxyDirection = 'toTarget' | 'toClient';

export type ProxyAcceptMode = 'forward' | 'blackhole' | 'reset' | 'refuse';

export interface ProxyCounters {
  accepted: number;
  forwardedBytes: Record<ProxyDirection, number>;
  droppedBytes: Record<ProxyDirection, number>;
  /** Connections closed by the proxy (reset, refused at accept, close). */
  resets: number;
}

interface Pair {
  client: net.Socket;
  /** null for a blackholed accept (never connected to the target). */
  target: net.Socket | null;
  /** When the last delayed chunk of each direction is released (keeps delayed bytes ordered). */
  releaseMs: Record<ProxyDirection, number>;
  timers: Set<NodeJS.Timeout>;
}

const host = '127.0.0.1';

export class FaultProxy {
  readonly #target: { host: string; port: number };
  #server: net.Server;
  #port = 0;
  #accept: ProxyAcceptMode = 'forward';
  readonly #faults: Record<ProxyDirection, ProxyFault> = {
    toTarget: { kind: 'pass' },
    toClient: { kind: 'pass' },
  };
  readonly #pairs = new Set<Pair>();
  readonly #sockets = new Set<net.Socket>();
  readonly #counters: ProxyCounters = {
    accepted: 0,
    forwardedBytes: { toTarget: 0, toClient: 0 },
    droppedBytes: { toTarget: 0, toClient: 0 },
    resets: 0,
  };
  #waiters: { check: (counters: ProxyCounters) => boolean; resolve: () => void }[] = [];

  static async start(target: { host: string; port: number }, port = 0): Promise<FaultProxy> {
    const proxy = new FaultProxy(target);
    await proxy.#listen(port);
    return proxy;
  }

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = this.#newServer();
  }

  get port(): number {
    return this.#port;
  }

  get counters(): ProxyCounters {
    return structuredClone(this.#counters);
  }

  /** Open connections (accepted and not yet closed). */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Resolves once `check` holds for the counters (checked now and after every change). */
  until(check: (counters: ProxyCounters) => boolean): Promise<void> {
    if (check(this.#counters)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ check, resolve }));
  }

  set(direction: ProxyDirection, fault: ProxyFault): void {
    this.#faults[direction] = fault;
    for (const pair of this.#pairs) this.#applyFlow(pair);
  }

  async setAccept(mode: ProxyAcceptMode): Promise<void> {
    const previous = this.#accept;
    this.#accept = mode;
    if (mode === 'refuse' && previous !== 'refuse') {
      // Stops listening at once; open connections are not touched.
      this.#server.close();
    } else if (mode !== 'refuse' && previous === 'refuse') {
      this.#server = this.#newServer();
      await this.#listen(this.#port);
    }
  }

  /** Resets every open connection (both sockets of each pair). */
  reset(): void {
    for (const pair of [...this.#pairs]) this.#resetPair(pair);
  }

  async close(): Promise<void> {
    this.#accept = 'refuse';
    const serverClosed = new Promise<void>((resolve) => {
      if (!this.#server.listening) resolve();
      else this.#server.close(() => resolve());
    });
    const sockets = [...this.#sockets];
    for (const pair of [...this.#pairs]) this.#resetPair(pair);
    for (const socket of sockets) socket.destroy();
    await Promise.all([
      serverClosed,
      ...sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.closed) resolve();
            else socket.once('close', () => resolve());
          }),
      ),
    ]);
  }

  #newServer(): net.Server {
    const server = net.createServer((socket) => this.#onConnection(socket));
    server.on('error', () => undefined);
    return server;
  }

  async #listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const address = this.#server.address();
    if (address === null || typeof address !== 'object') throw new Error('proxy has no port');
    this.#port = address.port;
  }

  #track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #changed(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (waiter.check(this.#counters)) waiter.resolve();
      else this.#waiters.push(waiter);
    }
  }

  #onConnection(client: net.Socket): void {
    this.#track(client);
    this.#counters.accepted++;
    if (this.#accept === 'reset' || this.#accept === 'refuse') {
      this.#counters.resets++;
      client.resetAndDestroy();
      this.#changed();
      return;
    }
    const pair: Pair = {
      client,
      target: null,
      releaseMs: { toTarget: 0, toClient: 0 },
      timers: new Set(),
    };
    this.#pairs.add(pair);
    client.once('close', () => this.#closePair(pair));
    if (this.#accept === 'blackhole') {
      client.pause();
      this.#changed();
      return;
    }
    client.pause();
    const target = net.connect({ host: this.#target.host, port: this.#target.port });
    this.#track(target);
    pair.target = target;
    target.once('close', () => this.#closePair(pair));
    target.once('connect', () => {
      client.on('data', (chunk: Buffer) => this.#onData(pair, 'toTarget', chunk));
      target.on('data', (chunk: Buffer) => this.#onData(pair, 'toClient', chunk));
      this.#applyFlow(pair);
    });
    this.#changed();
  }

  /** Pauses the reading side of each blackholed direction, resumes the others. */
  #applyFlow(pair: Pair): void {
    if (pair.target === null || pair.target.connecting) return;
    const sources: [ProxyDirection, net.Socket][] = [
      ['toTarget', pair.client],
      ['toClient', pair.target],
    ];
    for (const [direction, source] of sources) {
      if (this.#faults[direction].kind === 'blackhole') source.pause();
      else source.resume();
    }
  }

  #onData(pair: Pair, direction: ProxyDirection, chunk: Buffer): void {
    const fault = this.#faults[direction];
    const destination = direction === 'toTarget' ? pair.target : pair.client;
    if (destination === null) return;
    if (fault.kind === 'drop') {
      this.#counters.droppedBytes[direction] += chunk.length;
      this.#changed();
      return;
    }
    const now = Date.now();
    const delayMs = fault.kind === 'delay' ? fault.ms : 0;
    const releaseMs = Math.max(now + delayMs, pair.releaseMs[direction]);
    pair.releaseMs[direction] = releaseMs;
    if (releaseMs <= now) {
      this.#forward(pair, direction, destination, chunk);
      return;
    }
    const timer = setTimeout(() => {
      pair.timers.delete(timer);
      this.#forward(pair, direction, destination, chunk);
    }, releaseMs - now);
    pair.timers.add(timer);
  }

  #forward(pair: Pair, direction: ProxyDirection, destination: net.Socket, chunk: Buffer): void {
    if (destination.destroyed) return;
    this.#counters.forwardedBytes[direction] += chunk.length;
    if (!destination.write(chunk)) {
      // Back-pressure: stop reading the source until the destination drains.
      const source = direction === 'toTarget' ? pair.client : pair.target;
      source?.pause();
      destination.once('drain', () => this.#applyFlow(pair));
    }
    this.#changed();
  }

  #resetPair(pair: Pair): void {
    this.#counters.resets++;
    for (const socket of [pair.client, pair.target]) {
      if (socket !== null && !socket.destroyed) socket.resetAndDestroy();
    }
    this.#closePair(pair);
  }

  #closePair(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    for (const timer of pair.timers) clearTimeout(timer);
    pair.timers.clear();
    // One side closed: close the other, as a proxy in the path would.
    pair.client.destroy();
    pair.target?.destroy();
    this.#changed();
  }
}
