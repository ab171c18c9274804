import type { Hello, PeerMessage } from '../core/consensus/messages.js';

/**
 * The peer network as the replication layer sees it (DESIGN §4, STYLE "ports").
 *
 * Messages are datagram-like: a transport may drop any message (overflowing send queue,
 * broken connection, a simulated fault) and the protocol recovers by retransmitting on its own
 * ticks. It never delivers a message corrupted, and on one link it delivers in order unless it
 * is a simulated network told to reorder. Messages from A to B always travel on the connection A
 * dialed to B (two connections per pair), so there is no dial race to resolve.
 *
 * A peer counts as up once the handshake passed: the HMAC challenge with the shard secret, then
 * the Hello exchange (same shard, same protocol version). `onPeer` reports every up and down
 * transition of either direction of a link, with the peer's Hello when it comes up.
 */
export interface Transport {
  /** This node's id. */
  readonly nodeId: string;

  /**
   * Queues `message` for `to`. Returns false if it was dropped at once: the peer is unknown or
   * not connected, or its send queue is over its byte bound (back-pressure: retry later).
   */
  send(to: string, message: PeerMessage): boolean;

  /** True if an outbound connection to `to` is up (handshake done). */
  isConnected(to: string): boolean;

  /** Bytes queued for `to` and not yet handed to the OS (0 if unknown). */
  queuedBytes(to: string): number;

  /** Sets the handler of every message that arrives (one handler; a later call replaces it). */
  onMessage(handler: (from: string, message: PeerMessage) => void): void;

  /** Sets the handler of peer up/down transitions (one handler; a later call replaces it). */
  onPeer(handler: (event: PeerEvent) => void): void;

  /** Stops dialing and listening and closes every connection. */
  close(): Promise<void>;
}

export interface PeerEvent {
  peer: string;
  up: boolean;
  /** 'outbound' = the connection this node dialed; 'inbound' = the peer's. */
  direction: 'outbound' | 'inbound';
  /** The peer's Hello, when `up`. */
  hello?: Hello;
  /** Why the connection went down, when `!up` (for the log). */
  reason?: string;
}

/** What this node says in its Hello; asked at each handshake, so it is current. */
export type HelloSource = () => Omit<Hello, 'type' | 'protocolVersion' | 'shardId' | 'from'>;
