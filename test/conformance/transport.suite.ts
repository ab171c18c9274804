/**
 * The transport port's conformance suite (the abstract-level pattern, as disk.suite.ts): the
 * TCP transport and the simulated network run these cases, so they agree on what the port
 * (src/ports/transport.ts) promises:
 *
 * - each direction of a pair comes up on its own, with `onPeer` up carrying the peer's Hello
 *   (outbound on the dialing side, inbound on the other);
 * - messages on one link arrive in order, complete, with the sender's id;
 * - `send` returns false for an unknown peer, for a peer that is down, and while the peer's
 *   queue is over its bound (and every message it accepted still arrives, in order);
 * - a peer that restarts is reported down, then up again, and messages reach the new one;
 * - `close` reports the node down to its peers, makes `send` return false, stops every handler
 *   of the closed transport, and may be called twice.
 *
 * Nothing here sleeps: every wait is on an event, bounded by the cluster's `settle`.
 */
import { describe, expect, it } from 'vitest';
import { protocolVersion } from '../../src/core/consensus/messages.js';
import type { Heartbeat, PeerMessage } from '../../src/core/consensus/messages.js';
import type { HelloSource, PeerEvent, Transport } from '../../src/ports/transport.js';

export interface ClusterOptions {
  /** Per link; undefined = the implementation's default. */
  sendQueueBytesMax?: number;
}

/** A set of transports connected to each other, and the means to wait on them. */
export interface TransportCluster {
  readonly shardId: string;
  /** Starts one transport per id, each with every other id as a peer. */
  start(ids: readonly string[], hello: (id: string) => HelloSource): Promise<Transport[]>;
  /** Closes a node's transport and starts a new one for it (same address). */
  restart(id: string): Promise<Transport>;
  /** Closes a node's transport. */
  stop(id: string): Promise<void>;
  /** Waits for `promise`, moving (virtual or real) time; rejects, naming `label`, after a bound. */
  settle<T>(promise: Promise<T>, label: string): Promise<T>;
  /** Closes everything still open. */
  cleanup(): Promise<void>;
}

export type ClusterFactory = (options: ClusterOptions) => Promise<TransportCluster>;

/** Records a transport's events and lets a test wait for a condition over them. */
export class Recorder {
  readonly transport: Transport;
  readonly messages: { from: string; message: PeerMessage }[] = [];
  readonly peerEvents: PeerEvent[] = [];
  #waiters: { check: () => boolean; resolve: () => void }[] = [];

  constructor(transport: Transport) {
    this.transport = transport;
    transport.onMessage((from, message) => {
      this.messages.push({ from, message });
      this.#wake();
    });
    transport.onPeer((event) => {
      this.peerEvents.push(event);
      this.#wake();
    });
  }

  /** The latest event of `peer` in `direction` says it is up. */
  isUp(peer: string, direction: PeerEvent['direction']): boolean {
    const events = this.peerEvents.filter((e) => e.peer === peer && e.direction === direction);
    return events.at(-1)?.up ?? false;
  }

  /** Resolves once `check()` holds (checked now and after every event). */
  until(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ check, resolve }));
  }

  messagesFrom(from: string): PeerMessage[] {
    return this.messages.filter((entry) => entry.from === from).map((entry) => entry.message);
  }

  #wake(): void {
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiting) {
      if (waiter.check()) waiter.resolve();
      else this.#waiters.push(waiter);
    }
  }
}

export function heartbeat(from: string, seq: number): Heartbeat {
  return { type: 'heartbeat', term: 1, from, seq, commitLsn: seq, lastLsn: seq, eligible: [] };
}

function helloFor(id: string): HelloSource {
  const index = id.charCodeAt(id.length - 1);
  return () => ({ term: 3, lastLsn: 100 + index, lastTerm: 2 });
}

/** Waits until every pair of the recorders is up in both directions. */
export async function allUp(cluster: TransportCluster, recorders: Recorder[]): Promise<void> {
  for (const recorder of recorders) {
    for (const other of recorders) {
      if (other === recorder) continue;
      const peer = other.transport.nodeId;
      await cluster.settle(
        recorder.until(() => recorder.isUp(peer, 'outbound') && recorder.isUp(peer, 'inbound')),
        `${recorder.transport.nodeId} sees ${peer} up both ways`,
      );
    }
  }
}

type Body = (cluster: TransportCluster) => Promise<void>;

export function transportConformanceSuite(name: string, factory: ClusterFactory): void {
  const withCluster =
    (body: Body, options: ClusterOptions = {}) =>
    async (): Promise<void> => {
      const cluster = await factory(options);
      try {
        await body(cluster);
      } finally {
        await cluster.cleanup();
      }
    };

  describe(`${name}: transport conformance`, () => {
    it("brings each direction up with the peer's Hello", withCluster(helloCase));
    it('delivers messages in order on each link', withCluster(orderCase));
    it('carries bulk bytes intact', withCluster(bulkCase));
    it('refuses to send to unknown or disconnected peers', withCluster(disconnectedCase));
    it('reconnects after the peer restarts', withCluster(restartCase));
    it('closes: peers see it down, nothing is sent or reported', withCluster(closeCase));
    it(
      'refuses to send over the queue bound and still delivers what it accepted',
      withCluster(backPressureCase, { sendQueueBytesMax: 64 * 1024 }),
    );
  });
}

async function startRecorded(cluster: TransportCluster, ids: string[]): Promise<Recorder[]> {
  const transports = await cluster.start(ids, helloFor);
  const recorders = transports.map((transport) => new Recorder(transport));
  await allUp(cluster, recorders);
  return recorders;
}

async function helloCase(cluster: TransportCluster): Promise<void> {
  const [a, b] = await startRecorded(cluster, ['a', 'b']);
  for (const [recorder, peer] of [
    [a!, 'b'],
    [b!, 'a'],
  ] as const) {
    expect(recorder.transport.isConnected(peer)).toBe(true);
    const ups = recorder.peerEvents.filter((event) => event.up);
    expect(ups.map((event) => event.direction).sort()).toEqual(['inbound', 'outbound']);
    for (const event of ups) {
      expect(event.peer).toBe(peer);
      expect(event.hello).toEqual({
        type: 'hello',
        protocolVersion,
        shardId: cluster.shardId,
        from: peer,
        ...helloFor(peer)(),
      });
    }
  }
}

async function orderCase(cluster: TransportCluster): Promise<void> {
  const [a, b, c] = await startRecorded(cluster, ['a', 'b', 'c']);
  const count = 300;
  for (let seq = 0; seq < count; seq++) {
    expect(a!.transport.send('b', heartbeat('a', seq))).toBe(true);
    expect(c!.transport.send('b', heartbeat('c', seq))).toBe(true);
    if (seq % 3 === 0) expect(b!.transport.send('a', heartbeat('b', seq))).toBe(true);
  }
  await cluster.settle(
    b!.until(() => b!.messages.length === 2 * count),
    'b receives every message',
  );
  await cluster.settle(
    a!.until(() => a!.messages.length === count / 3),
    'a receives',
  );
  const seqs = (messages: PeerMessage[]): number[] =>
    messages.map((message) => (message as Heartbeat).seq);
  const expected = Array.from({ length: count }, (_, seq) => seq);
  expect(seqs(b!.messagesFrom('a'))).toEqual(expected);
  expect(seqs(b!.messagesFrom('c'))).toEqual(expected);
  expect(seqs(a!.messagesFrom('b'))).toEqual(expected.filter((seq) => seq % 3 === 0));
  expect(b!.messages.every((entry) => entry.message.from === entry.from)).toBe(true);
}

function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed;
  for (let index = 0; index < length; index++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[index] = state >>> 24;
  }
  return bytes;
}

async function bulkCase(cluster: TransportCluster): Promise<void> {
  const [a, b] = await startRecorded(cluster, ['a', 'b']);
  const sizes = [0, 1, 65_537, 1024 * 1024];
  for (const [index, size] of sizes.entries()) {
    const frames = pseudoRandomBytes(size, index + 1);
    const sent = a!.transport.send('b', {
      type: 'append',
      term: 2,
      from: 'a',
      prevLsn: index,
      prevTerm: 1,
      prevChecksum: 0xabcdef01,
      lastLsn: index + 1,
      commitLsn: index,
      frames,
    });
    expect(sent).toBe(true);
  }
  await cluster.settle(
    b!.until(() => b!.messages.length === sizes.length),
    'b receives',
  );
  for (const [index, size] of sizes.entries()) {
    const message = b!.messages[index]!.message;
    expect(message.type).toBe('append');
    if (message.type !== 'append') continue;
    expect(message.prevLsn).toBe(index);
    expect(Buffer.from(message.frames).equals(pseudoRandomBytes(size, index + 1))).toBe(true);
  }
}

async function disconnectedCase(cluster: TransportCluster): Promise<void> {
  const [a] = await startRecorded(cluster, ['a', 'b']);
  expect(a!.transport.send('nobody', heartbeat('a', 1))).toBe(false);
  expect(a!.transport.isConnected('nobody')).toBe(false);
  expect(a!.transport.queuedBytes('nobody')).toBe(0);
  await cluster.stop('b');
  await cluster.settle(
    a!.until(() => !a!.isUp('b', 'outbound') && !a!.isUp('b', 'inbound')),
    'a sees b down both ways',
  );
  const downs = a!.peerEvents.filter((event) => !event.up);
  expect(downs.every((event) => event.peer === 'b' && event.hello === undefined)).toBe(true);
  expect(downs.every((event) => typeof event.reason === 'string')).toBe(true);
  expect(a!.transport.isConnected('b')).toBe(false);
  expect(a!.transport.send('b', heartbeat('a', 2))).toBe(false);
}

async function restartCase(cluster: TransportCluster): Promise<void> {
  const [a] = await startRecorded(cluster, ['a', 'b']);
  const eventsBefore = a!.peerEvents.length;
  const b2 = new Recorder(await cluster.restart('b'));
  await allUp(cluster, [a!, b2]);
  const transitions = a!.peerEvents
    .slice(eventsBefore)
    .filter((event) => event.direction === 'outbound')
    .map((event) => event.up);
  expect(transitions).toEqual([false, true]);
  expect(a!.transport.send('b', heartbeat('a', 7))).toBe(true);
  expect(b2.transport.send('a', heartbeat('b', 8))).toBe(true);
  await cluster.settle(
    b2.until(() => b2.messages.length === 1),
    'the new b receives',
  );
  await cluster.settle(
    a!.until(() => a!.messagesFrom('b').length === 1),
    'a receives',
  );
  expect((b2.messages[0]!.message as Heartbeat).seq).toBe(7);
}

async function closeCase(cluster: TransportCluster): Promise<void> {
  const [a, b] = await startRecorded(cluster, ['a', 'b']);
  const aEvents = a!.peerEvents.length;
  await cluster.stop('a');
  await a!.transport.close();
  expect(a!.transport.send('b', heartbeat('a', 1))).toBe(false);
  expect(a!.transport.isConnected('b')).toBe(false);
  await cluster.settle(
    b!.until(() => !b!.isUp('a', 'outbound') && !b!.isUp('a', 'inbound')),
    'b sees a down both ways',
  );
  expect(b!.transport.send('a', heartbeat('b', 2))).toBe(false);
  expect(a!.peerEvents.length).toBe(aEvents);
  expect(a!.messages).toEqual([]);
}

async function backPressureCase(cluster: TransportCluster): Promise<void> {
  const [a, b] = await startRecorded(cluster, ['a', 'b']);
  const frames = new Uint8Array(16 * 1024);
  let accepted = 0;
  // The OS takes what its socket buffers hold first; this many is far beyond any of them.
  const attemptsMax = 16_384;
  for (; accepted < attemptsMax; accepted++) {
    const message: PeerMessage = {
      type: 'append',
      term: 1,
      from: 'a',
      prevLsn: accepted,
      prevTerm: 1,
      prevChecksum: 0,
      lastLsn: accepted + 1,
      commitLsn: 0,
      frames,
    };
    if (!a!.transport.send('b', message)) break;
  }
  expect(accepted).toBeGreaterThan(0);
  expect(accepted).toBeLessThan(attemptsMax);
  expect(a!.transport.queuedBytes('b')).toBeGreaterThan(0);
  expect(a!.transport.queuedBytes('b')).toBeLessThanOrEqual(64 * 1024 + frames.length);
  await cluster.settle(
    b!.until(() => b!.messages.length === accepted),
    'b receives every accepted message',
  );
  const lsns = b!.messages.map((entry) => (entry.message as { prevLsn: number }).prevLsn);
  expect(lsns).toEqual(Array.from({ length: accepted }, (_, index) => index));
  await cluster.settle(
    b!.until(() => a!.transport.queuedBytes('b') === 0),
    'the queue drains',
  );
  expect(a!.transport.send('b', heartbeat('a', 1))).toBe(true);
}
