import { assert } from '../core/assert.js';
import { protocolVersion } from '../core/consensus/messages.js';
import type { Hello, PeerMessage } from '../core/consensus/messages.js';
import {
  decodeWireMessage,
  encodeWireMessage,
  isHandshakeMessage,
} from '../core/consensus/wire.js';
import { peerSendQueueBytesDefault } from '../core/limits.js';
import type { HelloSource, PeerEvent, Transport } from '../ports/transport.js';
import { Random } from './random.js';
import type { SimScheduler } from './scheduler.js';

/**
 * SimNetwork: a seeded, fault-injecting network in virtual time (DESIGN §7). Each node gets a
 * Transport from `transport(nodeId)`; every pair of live nodes is connected both ways, each
 * direction a link of its own (as TcpTransport's two connections per pair). Every message is
 * encoded and decoded by the wire codec on its way, so simulations exercise the codec too.
 *
 * A link from A to B comes up `connectDelayMs` after both nodes exist and the link is not set
 * down; both sides then get `onPeer` up (A outbound, B inbound) with the other's Hello (also
 * through the codec). On a link that is up, messages are delivered after `delayMs`, in order,
 * unless a fault says otherwise. All faults are drawn from one seeded Random in the order
 * events happen, so the same seed and the same calls give the same trace; all can be changed
 * while running:
 *
 * - `dropProbability`: a sent message is lost (send still returned true, as over TCP).
 * - `duplicateProbability`: a message is delivered twice, the copy later.
 * - `reorderProbability` / `reorderDelayMsMax`: a message gets an extra random delay and may be
 *   overtaken (without it, delivery on a link is FIFO).
 * - `block(A, B)` / `partition(groupA, groupB)`: messages from A to B (or between the groups,
 *   both ways) are silently lost while the block lasts, including those already in flight. The
 *   links stay up, as a TCP connection does when packets stop flowing: noticing is the
 *   protocol's job (heartbeats, timeouts).
 * - `setLink(A, B, false)`: the connection from A to B breaks: both sides get `onPeer` down,
 *   messages in flight on it are lost, and it stays down until `setLink(A, B, true)`.
 * - `crash(A)`: A's transport dies at once (as its process would): every link of A goes down,
 *   its in-flight messages are lost, its peers get `onPeer` down, and A's handlers are never
 *   called again. A restarted node calls `transport(A)` again.
 *
 * Counters record what happened, for coverage checks. State changes take effect at once;
 * `onPeer` and `onMessage` handlers only ever run from scheduler events, never inside a call
 * to the network or a transport.
 */

export interface SimNetworkFaults {
  dropProbability: number;
  duplicateProbability: number;
  reorderProbability: number;
  reorderDelayMsMax: number;
  delayMs: { min: number; max: number };
  /** Time from "both ends exist" (or `setLink(..., true)`) to the link being up. */
  connectDelayMs: { min: number; max: number };
}

export interface SimNetworkOptions {
  scheduler: SimScheduler;
  seed: number;
  /** The shard id in every Hello; default 'sim'. */
  shardId?: string;
  faults?: Partial<SimNetworkFaults>;
  /** Per link; bytes sent and not yet delivered. Default `peerSendQueueBytesDefault`. */
  sendQueueBytesMax?: number;
  /** Records a trace of every message event (see `trace`); default false. */
  trace?: boolean;
}

export interface SimNetworkCounters {
  /** Accepted by `send`. */
  sent: number;
  /** Refused by `send`: the link was not up (or the sender was dead). */
  refused: number;
  /** Refused by `send`: the link's queue was over its bound. */
  overflowed: number;
  delivered: number;
  /** Lost to `dropProbability`. */
  dropped: number;
  /** Lost to a block or partition. */
  blocked: number;
  /** In flight on a link that went down (setLink, crash, close). */
  lost: number;
  duplicated: number;
  reordered: number;
  linksUp: number;
  linksDown: number;
}

export interface SimTransportOptions {
  hello?: HelloSource;
}

const noFaults: SimNetworkFaults = {
  dropProbability: 0,
  duplicateProbability: 0,
  reorderProbability: 0,
  reorderDelayMsMax: 0,
  delayMs: { min: 1, max: 1 },
  connectDelayMs: { min: 1, max: 1 },
};

/** The trace keeps at most this many entries; later ones are counted in `traceDropped`. */
const traceEntriesMax = 1_000_000;

interface Link {
  from: string;
  to: string;
  up: boolean;
  /** Set down by `setLink`; stays down until set up. */
  disabled: boolean;
  /** A connect event is scheduled. */
  connecting: boolean;
  /** Bumped whenever the link goes down, so messages of an older connection are lost. */
  epoch: number;
  inflightBytes: number;
  /** Delivery time of the last in-order message: the next one may not arrive earlier. */
  deliveryMsLast: number;
}

export class SimNetwork {
  readonly #scheduler: SimScheduler;
  readonly #random: Random;
  readonly #shardId: string;
  readonly #sendQueueBytesMax: number;
  readonly #nodes = new Map<string, SimTransport>();
  readonly #links = new Map<string, Link>();
  readonly #blocked = new Set<string>();
  readonly #counters: SimNetworkCounters = {
    sent: 0,
    refused: 0,
    overflowed: 0,
    delivered: 0,
    dropped: 0,
    blocked: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    linksUp: 0,
    linksDown: 0,
  };
  #faults: SimNetworkFaults = noFaults;
  readonly #trace: string[] | null;
  #traceDropped = 0;

  constructor(options: SimNetworkOptions) {
    this.#scheduler = options.scheduler;
    this.#random = new Random(options.seed);
    this.#shardId = options.shardId ?? 'sim';
    this.#sendQueueBytesMax = options.sendQueueBytesMax ?? peerSendQueueBytesDefault;
    assert(this.#sendQueueBytesMax > 0, 'SimNetwork: sendQueueBytesMax must be positive');
    this.#trace = options.trace === true ? [] : null;
    this.setFaults(options.faults ?? {});
  }

  /** A copy of the counters. */
  get counters(): SimNetworkCounters {
    return { ...this.#counters };
  }

  /** Every message event so far, one line each (`time event from->to type`), if tracing. */
  get trace(): readonly string[] {
    return this.#trace ?? [];
  }

  get traceDropped(): number {
    return this.#traceDropped;
  }

  get faults(): SimNetworkFaults {
    return { ...this.#faults };
  }

  /** Changes some faults; the others keep their values. */
  setFaults(faults: Partial<SimNetworkFaults>): void {
    const next = { ...this.#faults, ...faults };
    for (const name of ['dropProbability', 'duplicateProbability', 'reorderProbability'] as const) {
      assert(next[name] >= 0 && next[name] <= 1, `SimNetwork: ${name} must be in [0, 1]`);
    }
    assert(next.reorderDelayMsMax >= 0, 'SimNetwork: reorderDelayMsMax must not be negative');
    for (const name of ['delayMs', 'connectDelayMs'] as const) {
      const range = next[name];
      assert(range.min >= 0 && range.min <= range.max, `SimNetwork: ${name} must be a range`);
    }
    this.#faults = next;
  }

  /** A transport for a node. A node whose transport crashed or closed may get a new one. */
  transport(nodeId: string, options: SimTransportOptions = {}): Transport {
    assert(nodeId.length > 0, 'SimNetwork.transport: node id must not be empty');
    const existing = this.#nodes.get(nodeId);
    assert(existing === undefined, `SimNetwork.transport: ${nodeId} already has a transport`);
    const hello = options.hello ?? (() => ({ term: 0, lastLsn: 0, lastTerm: 0 }));
    const transport = new SimTransport(this.#host, nodeId, hello);
    this.#nodes.set(nodeId, transport);
    for (const other of this.#nodes.keys()) {
      if (other === nodeId) continue;
      this.#reconcile(this.#link(nodeId, other));
      this.#reconcile(this.#link(other, nodeId));
    }
    return transport;
  }

  /** Loses messages from `from` to `to` (one direction) until unblocked. */
  block(from: string, to: string): void {
    this.#blocked.add(linkKey(from, to));
  }

  unblock(from: string, to: string): void {
    this.#blocked.delete(linkKey(from, to));
  }

  /** Blocks both directions between every node of `groupA` and every node of `groupB`. */
  partition(groupA: readonly string[], groupB: readonly string[]): void {
    for (const a of groupA) {
      for (const b of groupB) {
        this.block(a, b);
        this.block(b, a);
      }
    }
  }

  /** Removes every block and partition. */
  heal(): void {
    this.#blocked.clear();
  }

  /** Takes the link from `from` to `to` down (a broken connection) or lets it come up again. */
  setLink(from: string, to: string, up: boolean): void {
    const link = this.#link(from, to);
    link.disabled = !up;
    this.#reconcile(link);
  }

  /** Kills a node's transport at once (see the class comment). */
  crash(nodeId: string): void {
    const transport = this.#nodes.get(nodeId);
    if (transport === undefined) return;
    this.#remove(transport, 'crashed');
  }

  /** True if the link is up (for tests and the harness). */
  isUp(from: string, to: string): boolean {
    return this.#links.get(linkKey(from, to))?.up ?? false;
  }

  // -------------------------------------------------------------------------------------------
  // What SimTransport uses (kept off the public surface).

  readonly #host: SimTransportHost = {
    send: (from, to, message) => this.#send(from, to, message),
    link: (from, to) => this.#links.get(linkKey(from, to)),
    remove: (transport, reason) => {
      if (this.#nodes.get(transport.nodeId) === transport) this.#remove(transport, reason);
    },
  };

  #send(from: string, to: string, message: PeerMessage): boolean {
    const link = this.#links.get(linkKey(from, to));
    if (link === undefined || !link.up) {
      this.#counters.refused++;
      return false;
    }
    const frame = encodeWireMessage(message);
    const queued = link.inflightBytes;
    if (queued > 0 && queued + frame.length > this.#sendQueueBytesMax) {
      this.#counters.overflowed++;
      return false;
    }
    this.#counters.sent++;
    this.#record('send', link, message.type);
    if (this.#random.bool(this.#faults.dropProbability)) {
      this.#counters.dropped++;
      this.#record('drop', link, message.type);
      return true;
    }
    link.inflightBytes += frame.length;
    this.#scheduleDelivery(link, frame, true);
    if (this.#random.bool(this.#faults.duplicateProbability)) {
      this.#counters.duplicated++;
      this.#scheduleDelivery(link, frame, false);
    }
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Links.

  #link(from: string, to: string): Link {
    const key = linkKey(from, to);
    let link = this.#links.get(key);
    if (link === undefined) {
      link = {
        from,
        to,
        up: false,
        disabled: false,
        connecting: false,
        epoch: 0,
        inflightBytes: 0,
        deliveryMsLast: 0,
      };
      this.#links.set(key, link);
    }
    return link;
  }

  #wanted(link: Link): boolean {
    return !link.disabled && this.#nodes.has(link.from) && this.#nodes.has(link.to);
  }

  /** Brings a link's state in line with what it should be: down now, or up after a delay. */
  #reconcile(link: Link): void {
    const wanted = this.#wanted(link);
    if (!wanted && link.up) this.#down(link);
    if (!wanted || link.up || link.connecting) return;
    link.connecting = true;
    const { min, max } = this.#faults.connectDelayMs;
    this.#scheduler.schedule(this.#random.range(min, max), () => {
      link.connecting = false;
      if (link.up || !this.#wanted(link)) return;
      this.#up(link);
    });
  }

  #up(link: Link): void {
    const source = this.#nodes.get(link.from);
    const target = this.#nodes.get(link.to);
    assert(source !== undefined && target !== undefined, 'a link comes up between live nodes');
    link.up = true;
    link.inflightBytes = 0;
    link.deliveryMsLast = this.#scheduler.now;
    this.#counters.linksUp++;
    this.#record('up', link, '-');
    const helloTarget = this.#helloOf(target);
    const helloSource = this.#helloOf(source);
    source.emitPeer({ peer: link.to, up: true, direction: 'outbound', hello: helloTarget });
    // The source's handler may have crashed or closed a node: report only what still holds.
    if (link.up && this.#nodes.get(link.to) === target) {
      target.emitPeer({ peer: link.from, up: true, direction: 'inbound', hello: helloSource });
    }
  }

  #down(link: Link, reason = 'link down'): void {
    link.up = false;
    link.epoch++;
    link.inflightBytes = 0;
    this.#counters.linksDown++;
    this.#record('down', link, '-');
    const source = this.#nodes.get(link.from);
    const target = this.#nodes.get(link.to);
    this.#scheduler.schedule(0, () => {
      source?.emitPeer({ peer: link.to, up: false, direction: 'outbound', reason });
      target?.emitPeer({ peer: link.from, up: false, direction: 'inbound', reason });
    });
  }

  /** A node's Hello, through the codec like every message. */
  #helloOf(transport: SimTransport): Hello {
    const hello: Hello = {
      ...transport.helloSource(),
      type: 'hello',
      protocolVersion,
      shardId: this.#shardId,
      from: transport.nodeId,
    };
    const decoded = decodeWireMessage(encodeWireMessage(hello));
    assert(decoded.kind === 'ok' && decoded.message.type === 'hello', 'a Hello round-trips');
    return decoded.message;
  }

  #remove(transport: SimTransport, reason: string): void {
    this.#nodes.delete(transport.nodeId);
    transport.kill();
    for (const link of this.#links.values()) {
      if (link.up && (link.from === transport.nodeId || link.to === transport.nodeId)) {
        this.#down(link, `${transport.nodeId} ${reason}`);
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Messages.

  #scheduleDelivery(link: Link, frame: Uint8Array, original: boolean): void {
    const now = this.#scheduler.now;
    const faults = this.#faults;
    let deliveryMs = now + this.#random.range(faults.delayMs.min, faults.delayMs.max);
    if (!original) {
      // A duplicate trails its original by a random extra delay.
      deliveryMs += this.#random.range(0, faults.reorderDelayMsMax);
    } else if (this.#random.bool(faults.reorderProbability)) {
      this.#counters.reordered++;
      deliveryMs += this.#random.range(0, faults.reorderDelayMsMax);
    } else {
      // In order: never before the previous in-order message of this link.
      deliveryMs = Math.max(deliveryMs, link.deliveryMsLast);
      link.deliveryMsLast = deliveryMs;
    }
    const epoch = link.epoch;
    this.#scheduler.schedule(deliveryMs - now, () => this.#deliver(link, epoch, frame, original));
  }

  #deliver(link: Link, epoch: number, frame: Uint8Array, original: boolean): void {
    const decoded = decodeWireMessage(frame);
    assert(decoded.kind === 'ok', 'SimNetwork: a frame it encoded decodes');
    assert(decoded.bytesConsumed === frame.length, 'SimNetwork: one frame per message');
    const message = decoded.message;
    assert(!isHandshakeMessage(message), 'SimNetwork: only peer messages travel');
    if (link.epoch !== epoch) {
      this.#counters.lost++;
      this.#record('lost', link, message.type);
      return;
    }
    if (original) link.inflightBytes -= frame.length;
    assert(link.inflightBytes >= 0, 'SimNetwork: in-flight bytes never go negative');
    if (this.#blocked.has(linkKey(link.from, link.to))) {
      this.#counters.blocked++;
      this.#record('block', link, message.type);
      return;
    }
    const target = this.#nodes.get(link.to);
    assert(target !== undefined, 'an up link leads to a live node');
    this.#counters.delivered++;
    this.#record(original ? 'deliver' : 'deliver-copy', link, message.type);
    target.emitMessage(link.from, message);
  }

  #record(event: string, link: Link, type: string): void {
    if (this.#trace === null) return;
    if (this.#trace.length >= traceEntriesMax) {
      this.#traceDropped++;
      return;
    }
    this.#trace.push(`${this.#scheduler.now} ${event} ${link.from}->${link.to} ${type}`);
  }
}

function linkKey(from: string, to: string): string {
  return `${from}\u0000${to}`;
}

interface SimTransportHost {
  send(from: string, to: string, message: PeerMessage): boolean;
  link(from: string, to: string): Link | undefined;
  remove(transport: SimTransport, reason: string): void;
}

/** One node's view of a SimNetwork. */
class SimTransport implements Transport {
  readonly nodeId: string;
  readonly helloSource: HelloSource;
  readonly #network: SimTransportHost;
  #alive = true;
  #onMessage: (from: string, message: PeerMessage) => void = () => undefined;
  #onPeer: (event: PeerEvent) => void = () => undefined;

  constructor(network: SimTransportHost, nodeId: string, helloSource: HelloSource) {
    this.#network = network;
    this.nodeId = nodeId;
    this.helloSource = helloSource;
  }

  send(to: string, message: PeerMessage): boolean {
    assert(message.type !== 'hello', 'send: the transport sends Hello itself');
    assert(message.from === this.nodeId, 'send: a message comes from this node');
    if (!this.#alive) return false;
    return this.#network.send(this.nodeId, to, message);
  }

  isConnected(to: string): boolean {
    return this.#alive && (this.#network.link(this.nodeId, to)?.up ?? false);
  }

  queuedBytes(to: string): number {
    if (!this.#alive) return 0;
    return this.#network.link(this.nodeId, to)?.inflightBytes ?? 0;
  }

  onMessage(handler: (from: string, message: PeerMessage) => void): void {
    this.#onMessage = handler;
  }

  onPeer(handler: (event: PeerEvent) => void): void {
    this.#onPeer = handler;
  }

  close(): Promise<void> {
    this.#network.remove(this, 'closed');
    return Promise.resolve();
  }

  /** The network removed this node: no handler runs again. */
  kill(): void {
    this.#alive = false;
  }

  emitPeer(event: PeerEvent): void {
    if (this.#alive) this.#onPeer(event);
  }

  emitMessage(from: string, message: PeerMessage): void {
    if (this.#alive) this.#onMessage(from, message);
  }
}
