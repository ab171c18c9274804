import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWireMessage } from '../../src/core/consensus/wire.js';
import { WireReader } from '../../src/core/consensus/wire.js';
import type { WireMessage } from '../../src/core/consensus/wire.js';
import { peerFrameHeaderBytes } from '../../src/core/limits.js';
import { TcpTransport } from '../../src/node/transport.js';
import type {
  PeerAddress,
  TcpTransportOptions,
  TcpTransportTls,
} from '../../src/node/transport.js';
import type { LogFields, Logger } from '../../src/ports/logger.js';
import type { HelloSource } from '../../src/ports/transport.js';
import { Recorder, allUp, heartbeat, transportConformanceSuite } from './transport.suite.js';
import type { ClusterOptions, TransportCluster } from './transport.suite.js';

const host = '127.0.0.1';
const settleTimeoutMs = 15_000;

/** Waits for `promise`, rejecting after a bound (never a sleep: the timer only bounds it). */
async function within<T>(promise: Promise<T>, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${label}: not settled in ${settleTimeoutMs} ms`)),
      settleTimeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface LogEntry {
  level: string;
  event: string;
  fields: LogFields;
}

/** A logger that keeps every entry and lets a test wait for one. */
class RecordingLogger implements Logger {
  readonly entries: LogEntry[] = [];
  #waiters: { check: (entry: LogEntry) => boolean; resolve: (entry: LogEntry) => void }[] = [];

  debug(event: string, fields: LogFields = {}): void {
    this.#add({ level: 'debug', event, fields });
  }
  info(event: string, fields: LogFields = {}): void {
    this.#add({ level: 'info', event, fields });
  }
  warn(event: string, fields: LogFields = {}): void {
    this.#add({ level: 'warn', event, fields });
  }
  error(event: string, fields: LogFields = {}): void {
    this.#add({ level: 'error', event, fields });
  }

  /** Resolves with the first entry (already logged or to come) that `check` accepts. */
  waitFor(check: (entry: LogEntry) => boolean, label: string): Promise<LogEntry> {
    const found = this.entries.find(check);
    if (found !== undefined) return Promise.resolve(found);
    return within(new Promise((resolve) => this.#waiters.push({ check, resolve })), label);
  }

  warnings(event: string): LogEntry[] {
    return this.entries.filter((entry) => entry.level === 'warn' && entry.event === event);
  }

  #add(entry: LogEntry): void {
    this.entries.push(entry);
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (waiter.check(entry)) waiter.resolve(entry);
      else this.#waiters.push(waiter);
    }
  }
}

interface NodeConfig {
  shardId?: string;
  handshakeTimeoutMs?: number;
  secret?: string;
  tls?: TcpTransportTls;
  /** Overrides of the peer list: this node's entry for a peer dials another's port. */
  peerPortOverride?: (peer: string) => string;
}

interface TcpCluster extends TransportCluster {
  loggers: Map<string, RecordingLogger>;
  transport(id: string): TcpTransport;
}

function tcpCluster(options: ClusterOptions, configs: Record<string, NodeConfig> = {}): TcpCluster {
  const nodes = new Map<string, TcpTransport>();
  const ports = new Map<string, number>();
  const hellos = new Map<string, HelloSource>();
  const loggers = new Map<string, RecordingLogger>();
  const peersOf = (id: string): PeerAddress[] =>
    [...ports.keys()]
      .filter((other) => other !== id)
      .map((other) => {
        const target = configs[id]?.peerPortOverride?.(other) ?? other;
        return { id: other, host, port: ports.get(target)! };
      });
  const startOne = async (
    id: string,
    port: number,
    peers: PeerAddress[],
  ): Promise<TcpTransport> => {
    const config = configs[id] ?? {};
    const logger = loggers.get(id) ?? new RecordingLogger();
    loggers.set(id, logger);
    const transportOptions: TcpTransportOptions = {
      nodeId: id,
      shardId: config.shardId ?? 'shard-1',
      secret: config.secret ?? 'shard secret for tests',
      listen: { host, port },
      peers,
      hello: hellos.get(id)!,
      logger,
      tls: config.tls,
      limits: {
        sendQueueBytesMax: options.sendQueueBytesMax,
        handshakeTimeoutMs: config.handshakeTimeoutMs ?? 5_000,
      },
      backoff: { initialMs: 5, maxMs: 100 },
    };
    const transport = await TcpTransport.start(transportOptions);
    nodes.set(id, transport);
    ports.set(id, transport.port);
    return transport;
  };
  return {
    shardId: 'shard-1',
    loggers,
    transport: (id) => nodes.get(id)!,
    start: async (ids, hello) => {
      const started: TcpTransport[] = [];
      for (const id of ids) {
        hellos.set(id, hello(id));
        started.push(await startOne(id, 0, []));
      }
      for (const transport of started) transport.setPeers(peersOf(transport.nodeId));
      return started;
    },
    restart: async (id) => {
      await nodes.get(id)?.close();
      return startOne(id, ports.get(id)!, peersOf(id));
    },
    stop: async (id) => {
      await nodes.get(id)?.close();
    },
    settle: within,
    cleanup: async () => {
      for (const transport of nodes.values()) await transport.close();
    },
  };
}

transportConformanceSuite('TcpTransport', async (options) => tcpCluster(options));

// ---------------------------------------------------------------------------------------------
// TCP only: authentication, hostile bytes, TLS.

const quiet: HelloSource = () => ({ term: 0, lastLsn: 0, lastTerm: 0 });

async function startedPair(
  configs: Record<string, NodeConfig> = {},
): Promise<{ cluster: TcpCluster; a: Recorder; b: Recorder }> {
  const cluster = tcpCluster({}, configs);
  const [a, b] = (await cluster.start(['a', 'b'], () => quiet)).map((t) => new Recorder(t));
  return { cluster, a: a!, b: b! };
}

/** Proves the pair still works: one message each way arrives. */
async function roundTrip(cluster: TcpCluster, a: Recorder, b: Recorder): Promise<void> {
  await allUp(cluster, [a, b]);
  const before = [a.messages.length, b.messages.length];
  expect(a.transport.send('b', heartbeat('a', 99))).toBe(true);
  expect(b.transport.send('a', heartbeat('b', 99))).toBe(true);
  await within(
    b.until(() => b.messages.length === before[1]! + 1),
    'b receives',
  );
  await within(
    a.until(() => a.messages.length === before[0]! + 1),
    'a receives',
  );
}

interface RawResult {
  received: Buffer;
  closed: boolean;
}

/** Connects a raw socket, writes `bytes`, and resolves with what came back once it closed. */
async function rawExchange(port: number, bytes: Uint8Array): Promise<RawResult> {
  const socket = net.connect({ host, port });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(bytes);
  await within(closed, 'the transport closes the raw connection');
  return { received: Buffer.concat(chunks), closed: true };
}

function decodeAll(bytes: Uint8Array): WireMessage[] {
  const reader = new WireReader();
  reader.push(bytes);
  const messages: WireMessage[] = [];
  for (let result = reader.next(); result.kind === 'ok'; result = reader.next()) {
    messages.push(result.message);
  }
  return messages;
}

function challenge(overrides: Partial<WireMessage & { type: 'auth-challenge' }> = {}): Uint8Array {
  return encodeWireMessage({
    type: 'auth-challenge',
    shardId: 'shard-1',
    from: 'mallory',
    to: 'a',
    nonce: new Uint8Array(32),
    ...overrides,
  });
}

describe('TcpTransport: authentication', () => {
  it('refuses a peer with the wrong secret, logs why, and never reports it up', async () => {
    const { cluster, a, b } = await startedPair({ b: { secret: 'another secret' } });
    try {
      const refusing = await cluster.loggers
        .get('a')!
        .waitFor(
          (entry) => entry.event === 'peer.refused' && entry.fields['peer'] === 'b',
          'a refuses b',
        );
      expect(refusing.level).toBe('warn');
      expect(String(refusing.fields['reason'])).toMatch(/authentication failed/);
      await cluster.loggers
        .get('b')!
        .waitFor(
          (entry) =>
            entry.event === 'peer.refused' &&
            /refused by the peer/.test(String(entry.fields['reason'])),
          'b is told it was refused',
        );
      expect(a.peerEvents.filter((event) => event.up)).toEqual([]);
      expect(b.peerEvents.filter((event) => event.up)).toEqual([]);
      expect(a.transport.send('b', heartbeat('a', 1))).toBe(false);
    } finally {
      await cluster.cleanup();
    }
  });

  it('refuses a peer of another shard', async () => {
    const { cluster, a, b } = await startedPair({ b: { shardId: 'shard-2' } });
    try {
      const entry = await cluster.loggers
        .get('a')!
        .waitFor(
          (logged) =>
            logged.event === 'peer.refused' && /wrong shard/.test(String(logged.fields['reason'])),
          'a refuses the other shard',
        );
      expect(entry.level).toBe('warn');
      expect(a.peerEvents.filter((event) => event.up)).toEqual([]);
      expect(b.peerEvents.filter((event) => event.up)).toEqual([]);
    } finally {
      await cluster.cleanup();
    }
  });

  it('refuses a dialed node that is not the peer it expected', async () => {
    // a's entry for b points at c's port: c answers, and is not b.
    const cluster = tcpCluster(
      {},
      { a: { peerPortOverride: (peer) => (peer === 'b' ? 'c' : peer) } },
    );
    try {
      const [a] = (await cluster.start(['a', 'b', 'c'], () => quiet)).map((t) => new Recorder(t));
      const entry = await cluster.loggers
        .get('c')!
        .waitFor(
          (logged) =>
            logged.event === 'peer.refused' &&
            /addressed to "b"/.test(String(logged.fields['reason'])),
          'c refuses a challenge meant for b',
        );
      expect(entry.fields['peer']).toBe(null);
      await within(
        a!.until(() => a!.isUp('c', 'outbound')),
        'a reaches c itself',
      );
      expect(a!.isUp('b', 'outbound')).toBe(false);
    } finally {
      await cluster.cleanup();
    }
  });

  it('tells a refused peer nothing but a short refusal', async () => {
    const { cluster, a, b } = await startedPair();
    try {
      const port = cluster.transport('a').port;
      for (const bytes of [challenge({ shardId: 'shard-9' }), challenge({ to: 'zz' })]) {
        const result = await rawExchange(port, bytes);
        expect(decodeAll(result.received)).toEqual([{ type: 'auth-refused' }]);
        expect(result.received.length).toBe(peerFrameHeaderBytes);
      }
      // A proof that is wrong: the challenge passes, so the node answers with its own first.
      const socket = net.connect({ host, port });
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        const messages = decodeAll(Buffer.concat(chunks));
        if (messages.length === 1 && messages[0]!.type === 'auth-challenge') {
          socket.write(encodeWireMessage({ type: 'auth-proof', proof: new Uint8Array(32) }));
        }
      });
      socket.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.write(challenge());
      await within(closed, 'the transport closes the forger');
      const types = decodeAll(Buffer.concat(chunks)).map((message) => message.type);
      expect(types).toEqual(['auth-challenge', 'auth-refused']);
      await cluster.loggers
        .get('a')!
        .waitFor(
          (entry) => entry.event === 'peer.refused' && entry.fields['peer'] === 'mallory',
          'a logs the forger',
        );
      await roundTrip(cluster, a, b);
    } finally {
      await cluster.cleanup();
    }
  });
});

describe('TcpTransport: options and membership', () => {
  const base: TcpTransportOptions = {
    nodeId: 'a',
    shardId: 'shard-1',
    secret: 'secret',
    listen: { host, port: 0 },
    peers: [],
    hello: quiet,
  };

  it('refuses invalid options with INVALID, naming the field', async () => {
    const cases: [Partial<TcpTransportOptions>, RegExp][] = [
      [{ secret: '' }, /secret/],
      [{ nodeId: '' }, /nodeId/],
      [{ shardId: 'x'.repeat(256) }, /shardId/],
      [{ listen: { host, port: 70_000 } }, /listen.port/],
      [{ peers: [{ id: 'a', host, port: 1 }] }, /peers\[0\].id/],
      [
        {
          peers: [
            { id: 'b', host, port: 1 },
            { id: 'b', host, port: 2 },
          ],
        },
        /listed twice/,
      ],
      [{ limits: { sendQueueBytesMax: 0 } }, /sendQueueBytesMax/],
      [{ backoff: { initialMs: 100, maxMs: 10 } }, /backoff.maxMs/],
    ];
    for (const [override, message] of cases) {
      await expect(TcpTransport.start({ ...base, ...override })).rejects.toMatchObject({
        code: 'INVALID',
        message,
      });
    }
  });

  it('replaces the peer list at run time', async () => {
    const { cluster, a, b } = await startedPair();
    try {
      await allUp(cluster, [a, b]);
      const transport = cluster.transport('a');
      transport.setPeers([]);
      await within(
        a.until(() => !a.isUp('b', 'outbound')),
        'a drops its link to b',
      );
      // b still dials a: the inbound direction is b's to decide.
      expect(a.isUp('b', 'inbound')).toBe(true);
      expect(transport.send('b', heartbeat('a', 1))).toBe(false);
      transport.setPeers([{ id: 'b', host, port: cluster.transport('b').port }]);
      await within(
        a.until(() => a.isUp('b', 'outbound')),
        'a dials b again',
      );
      await roundTrip(cluster, a, b);
    } finally {
      await cluster.cleanup();
    }
  });
});

describe('TcpTransport: hostile bytes close only their connection', () => {
  const header = (bodyBytes: number): Uint8Array => {
    const bytes = challenge().slice(0, peerFrameHeaderBytes);
    new DataView(bytes.buffer).setUint32(0, bodyBytes, true);
    return bytes;
  };
  const badChecksum = (): Uint8Array => {
    const bytes = challenge();
    bytes[bytes.length - 1]! ^= 0x40;
    return bytes;
  };
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['garbage', () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /bad frame/],
    ['an oversized length', () => header(0xffffffff), /oversized/],
    ['a length over the handshake bound', () => header(100_000), /oversized/],
    ['a bad checksum', badChecksum, /checksum/],
    [
      'a message before the handshake',
      () => encodeWireMessage(heartbeat('b', 1)),
      /unexpected heartbeat/,
    ],
  ];

  for (const [label, bytes, reason] of cases) {
    it(`closes a connection that sends ${label}`, async () => {
      const { cluster, a, b } = await startedPair();
      try {
        await allUp(cluster, [a, b]);
        const result = await rawExchange(cluster.transport('a').port, bytes());
        expect(result.received.length).toBe(0);
        const entry = await cluster.loggers
          .get('a')!
          .waitFor(
            (logged) =>
              logged.event === 'peer.protocol-error' &&
              reason.test(String(logged.fields['reason'])),
            `a logs ${label}`,
          );
        expect(entry.level).toBe('warn');
        await roundTrip(cluster, a, b);
        expect(a.peerEvents.filter((event) => !event.up)).toEqual([]);
      } finally {
        await cluster.cleanup();
      }
    });
  }

  it('closes a connection that never finishes its handshake', async () => {
    const { cluster, a, b } = await startedPair({ a: { handshakeTimeoutMs: 200 } });
    try {
      const socket = net.connect({ host, port: cluster.transport('a').port });
      socket.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await within(closed, 'the silent connection is cut');
      await cluster.loggers
        .get('a')!
        .waitFor(
          (entry) => /handshake timed out/.test(String(entry.fields['reason'])),
          'a logs the timeout',
        );
      await roundTrip(cluster, a, b);
    } finally {
      await cluster.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// TLS.

const run = promisify(execFile);

/** A self-signed certificate for 127.0.0.1 made with openssl, or null if openssl is missing. */
async function selfSigned(directory: string): Promise<TcpTransportTls | null> {
  const key = join(directory, 'key.pem');
  const cert = join(directory, 'cert.pem');
  try {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=syncwal-test',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ]);
  } catch (error: unknown) {
    console.log(`TLS transport test skipped: openssl failed (${String(error)})`);
    return null;
  }
  const certPem = await readFile(cert);
  return { cert: certPem, key: await readFile(key), ca: certPem };
}

describe('TcpTransport over TLS', () => {
  let directory = '';
  let credentials: TcpTransportTls | null = null;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'syncwal-tls-'));
    credentials = await selfSigned(directory);
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('authenticates, exchanges Hellos and carries messages over TLS', async (context) => {
    if (credentials === null) {
      context.skip();
      return;
    }
    const tls = credentials;
    const { cluster, a, b } = await startedPair({ a: { tls }, b: { tls } });
    try {
      await roundTrip(cluster, a, b);
      // A plain TCP client cannot speak to a TLS transport: refused, and the node keeps going.
      const plain = await rawExchange(cluster.transport('a').port, challenge());
      expect(decodeAll(plain.received)).toEqual([]);
      await roundTrip(cluster, a, b);
    } finally {
      await cluster.cleanup();
    }
  });

  it('refuses a TLS peer whose certificate it does not trust', async (context) => {
    if (credentials === null) {
      context.skip();
      return;
    }
    const otherDirectory = await mkdtemp(join(tmpdir(), 'syncwal-tls-'));
    const untrusted = await selfSigned(otherDirectory);
    await rm(otherDirectory, { recursive: true, force: true });
    if (untrusted === null) return;
    const { cluster, a, b } = await startedPair({ a: { tls: credentials }, b: { tls: untrusted } });
    try {
      await cluster.loggers
        .get('a')!
        .waitFor(
          (entry) =>
            entry.level === 'warn' && /tls|certificate/i.test(String(entry.fields['reason'])),
          'a refuses the untrusted certificate',
        );
      expect(a.peerEvents.filter((event) => event.up)).toEqual([]);
      expect(b.peerEvents.filter((event) => event.up)).toEqual([]);
    } finally {
      await cluster.cleanup();
    }
  });
});
