/**
 * TcpTransport: the Transport port (ports/transport.ts) over node:net, or node:tls when
 * `tls` is given. It passes the same conformance suite as the simulated network
 * (test/conformance/transport.suite.ts).
 *
 * Two connections per pair of nodes: each node dials every peer in its list and sends its
 * messages only on the connection it dialed; it receives on the connections its peers dialed.
 * So there is no dial race to resolve, and each direction comes up and goes down on its own.
 *
 * Every connection starts with a handshake (class `Connection` below), framed by the wire codec
 * (core/consensus/wire.ts) like everything after it:
 *
 * ```
 *   dialer D                                          listener L
 *     auth-challenge {shard, from D, to L, nonce nD} ->
 *                                       checks shard and `to`; else auth-refused, close
 *                  <- auth-challenge {shard, from L, to D, nonce nL}
 *   checks shard, `from` is the peer it dialed, `to`
 *     auth-proof HMAC(secret, "dialer" | shard | D | L | nD | nL) ->
 *                                       verifies (timingSafeEqual); else auth-refused, close
 *                  <- auth-proof HMAC(secret, "listener" | shard | D | L | nD | nL)
 *                  <- hello
 *   verifies L's proof; else auth-refused, close
 *     hello ->
 *   L's hello checked: outbound up                    D's hello checked: inbound up
 * ```
 *
 * The dialer proves first, so a listener never computes a proof for a peer that has not shown
 * it knows the secret. The role is part of what each proof covers, so one side's proof cannot
 * be reflected back as the other's, and both fresh nonces are, so no proof can be replayed. A
 * refused peer learns only that it was refused: the reason goes to this node's log.
 *
 * A frame that is garbage, oversized, has a bad checksum, or comes out of order (a message
 * before the handshake, a second Hello, anything sent back on a connection this node dialed)
 * closes that connection with the reason logged. It never throws out of the transport.
 *
 * Inbound connections are accepted from any node that passes the handshake, listed or not (the
 * shard secret decides who belongs); a node that reconnects replaces its older connection.
 * Handlers run inside socket events; an exception from a handler is not caught here.
 *
 * Sending: `send` encodes at once and writes to the socket; node's socket buffer is the queue,
 * bounded per peer by `sendQueueBytesMax` (a message is refused when the bytes still queued
 * plus its own would exceed the bound; an empty queue always takes one message, so a message
 * larger than the bound is never refused forever).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { assert } from '../core/assert.js';
import { protocolVersion } from '../core/consensus/messages.js';
import type { Hello, PeerMessage } from '../core/consensus/messages.js';
import { WireReader, encodeWireMessage, isHandshakeMessage } from '../core/consensus/wire.js';
import type { AuthChallenge, WireMessage } from '../core/consensus/wire.js';
import { InvalidError } from '../core/errors.js';
import {
  peerAuthNonceBytes,
  peerHandshakeBodyBytesMax,
  peerHandshakeTimeoutMsDefault,
  peerHandshakesPendingMax,
  peerIdBytesMax,
  peerReconnectDelayMsInitial,
  peerReconnectDelayMsMax,
  peerSendQueueBytesDefault,
} from '../core/limits.js';
import type { LogFields, Logger } from '../ports/logger.js';
import { silentLogger } from '../ports/logger.js';
import type { HelloSource, PeerEvent, Transport } from '../ports/transport.js';

export interface PeerAddress {
  id: string;
  host: string;
  port: number;
}

export interface TcpTransportTls {
  cert: string | Buffer;
  key: string | Buffer;
  /** Trusted CAs for both directions (peers present certificates too); default: the system's. */
  ca?: string | Buffer | undefined;
}

export interface TcpTransportOptions {
  nodeId: string;
  shardId: string;
  /** The shard secret every node of the shard shares (HMAC-SHA256 key of the handshake). */
  secret: string | Uint8Array;
  /** Where to listen. Port 0 picks a free port; `port` tells which. */
  listen: { host: string; port: number };
  peers: readonly PeerAddress[];
  hello: HelloSource;
  logger?: Logger | undefined;
  tls?: TcpTransportTls | undefined;
  limits?:
    | {
        /** Per peer; default `peerSendQueueBytesDefault`. */
        sendQueueBytesMax?: number | undefined;
        /** From connect or accept until the peer's Hello; default 5 s. */
        handshakeTimeoutMs?: number | undefined;
      }
    | undefined;
  backoff?:
    | {
        initialMs?: number | undefined;
        maxMs?: number | undefined;
        /** Uniform in [0, 1); default Math.random. Each delay is scaled by 0.5 + random() / 2. */
        random?: (() => number) | undefined;
      }
    | undefined;
}

interface ResolvedOptions {
  nodeId: string;
  shardId: string;
  secret: Buffer;
  listen: { host: string; port: number };
  hello: HelloSource;
  logger: Logger;
  tls: TcpTransportTls | null;
  sendQueueBytesMax: number;
  handshakeTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  random: () => number;
}

function invalid(field: string, message: string): never {
  throw new InvalidError(`TcpTransport ${field}: ${message}`);
}

function checkId(field: string, value: unknown): string {
  if (typeof value !== 'string') invalid(field, 'must be a string');
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes < 1 || bytes > peerIdBytesMax) invalid(field, `must be 1-${peerIdBytesMax} bytes`);
  return value;
}

function checkInteger(field: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    invalid(field, `must be an integer in ${min}..${max}`);
  }
  return value;
}

function checkAddress(field: string, address: { host: string; port: number }): void {
  if (typeof address.host !== 'string' || address.host.length === 0) {
    invalid(`${field}.host`, 'must be a host name or address');
  }
  checkInteger(`${field}.port`, address.port, 0, 65_535);
}

function resolveOptions(options: TcpTransportOptions): ResolvedOptions {
  const secret = Buffer.from(options.secret);
  if (secret.length === 0) invalid('secret', 'must not be empty');
  checkAddress('listen', options.listen);
  const backoffInitialMs = options.backoff?.initialMs ?? peerReconnectDelayMsInitial;
  const backoffMaxMs = options.backoff?.maxMs ?? peerReconnectDelayMsMax;
  checkInteger('backoff.initialMs', backoffInitialMs, 1, 3_600_000);
  checkInteger('backoff.maxMs', backoffMaxMs, backoffInitialMs, 3_600_000);
  const sendQueueBytesMax = options.limits?.sendQueueBytesMax ?? peerSendQueueBytesDefault;
  const handshakeTimeoutMs = options.limits?.handshakeTimeoutMs ?? peerHandshakeTimeoutMsDefault;
  return {
    nodeId: checkId('nodeId', options.nodeId),
    shardId: checkId('shardId', options.shardId),
    secret,
    listen: { host: options.listen.host, port: options.listen.port },
    hello: options.hello,
    logger: options.logger ?? silentLogger,
    tls: options.tls ?? null,
    sendQueueBytesMax: checkInteger('limits.sendQueueBytesMax', sendQueueBytesMax, 1, 2 ** 40),
    handshakeTimeoutMs: checkInteger('limits.handshakeTimeoutMs', handshakeTimeoutMs, 1, 3.6e6),
    backoffInitialMs,
    backoffMaxMs,
    random: options.backoff?.random ?? Math.random,
  };
}

function checkPeers(nodeId: string, peers: readonly PeerAddress[]): PeerAddress[] {
  const seen = new Set<string>();
  return peers.map((peer, index) => {
    const id = checkId(`peers[${index}].id`, peer.id);
    if (id === nodeId) invalid(`peers[${index}].id`, 'must not be this node');
    if (seen.has(id)) invalid(`peers[${index}].id`, `${id} is listed twice`);
    seen.add(id);
    checkAddress(`peers[${index}]`, peer);
    return { id, host: peer.host, port: peer.port };
  });
}

// ---------------------------------------------------------------------------------------------
// One connection and its handshake.

type Role = 'dialer' | 'listener';
type ConnectionState = 'challenge' | 'proof' | 'hello' | 'open' | 'closed';

/** How a connection closed, which decides how loudly it is logged. */
type CloseKind = 'normal' | 'refused' | 'protocol';

/** What a connection needs from its transport. */
interface ConnectionHost {
  readonly options: ResolvedOptions;
  opened(connection: Connection, hello: Hello): void;
  received(connection: Connection, message: PeerMessage): void;
  closed(connection: Connection, reason: string, wasOpen: boolean): void;
}

/** How long a refused socket may take to flush its refusal before it is destroyed. */
const refusalLingerMs = 1_000;
/**
 * TCP keepalive probes start after this much idle time, so a peer that vanished (power loss,
 * cable) is noticed on an idle connection too; the protocol's heartbeats usually notice first.
 */
const keepAliveDelayMs = 10_000;

/**
 * One socket, dialed or accepted, from its first byte to its close. It runs the handshake, then
 * hands messages (inbound) to its host. `close` is idempotent and tells the host at once; the
 * socket's own 'close' event resolves `done`.
 */
class Connection {
  readonly role: Role;
  readonly socket: net.Socket;
  readonly done: Promise<void>;
  /** The peer's id: the one dialed, or (accepted) the one its challenge claims. */
  peerId: string | null;
  #state: ConnectionState = 'challenge';
  readonly #host: ConnectionHost;
  readonly #reader = new WireReader();
  readonly #nonceLocal = randomBytes(peerAuthNonceBytes);
  #nonceRemote: Uint8Array | null = null;
  #timer: NodeJS.Timeout | null;
  readonly #remote: string;
  #secure: boolean;

  /** `peer` is the peer dialed and its address, or null for an accepted socket. */
  constructor(host: ConnectionHost, socket: net.Socket, role: Role, peer: PeerAddress | null) {
    this.#host = host;
    this.socket = socket;
    this.role = role;
    this.peerId = peer?.id ?? null;
    this.#remote =
      peer === null ? `${socket.remoteAddress}:${socket.remotePort}` : `${peer.host}:${peer.port}`;
    this.done = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, keepAliveDelayMs);
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    // A TLS socket that fails before it is secure failed the TLS handshake: a refusal.
    this.#secure = !(socket instanceof tls.TLSSocket) || role === 'listener';
    socket.once('secureConnect', () => {
      this.#secure = true;
    });
    socket.on('error', (error: Error) => {
      if (this.#secure) this.close(`socket error: ${error.message}`, 'normal');
      else this.close(`tls: ${error.message}`, 'refused');
    });
    socket.on('end', () => this.close('connection ended by the peer', 'normal'));
    socket.on('close', () => {
      this.close('connection closed', 'normal');
      this.#clearTimer();
    });
    this.#timer = setTimeout(() => {
      // A dial that never connected is an unreachable peer, not a misbehaving one.
      if (socket.connecting) this.close('connect timed out', 'normal');
      else this.close('handshake timed out', 'protocol');
    }, host.options.handshakeTimeoutMs);
    if (role === 'dialer') this.#sendChallenge();
  }

  /** Not closed. (A getter, so TypeScript does not narrow the state across calls.) */
  get #live(): boolean {
    return this.#state !== 'closed';
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  get isHandshaking(): boolean {
    return this.#state !== 'open' && this.#state !== 'closed';
  }

  /** Writes one frame; false if closed. */
  write(frame: Uint8Array): boolean {
    if (this.#state === 'closed') return false;
    this.socket.write(frame);
    return true;
  }

  /**
   * Closes the connection and tells the host. With a `farewell` frame, the socket first flushes
   * it (ending gracefully) and is destroyed after `refusalLingerMs` at the latest.
   */
  close(reason: string, kind: CloseKind, farewell?: Uint8Array): void {
    if (this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    this.#clearTimer();
    if (farewell === undefined) {
      this.socket.destroy();
    } else {
      this.socket.end(farewell);
      this.#timer = setTimeout(() => this.socket.destroy(), refusalLingerMs);
    }
    this.#log(kind, reason);
    this.#host.closed(this, reason, wasOpen);
  }

  /** Destroys the socket now, even one still flushing a refusal. */
  destroy(): void {
    this.close('transport closed', 'normal');
    this.#clearTimer();
    this.socket.destroy();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #log(kind: CloseKind, reason: string): void {
    const fields: LogFields = {
      peer: this.peerId,
      remote: this.#remote,
      direction: this.role === 'dialer' ? 'outbound' : 'inbound',
      reason,
    };
    const logger = this.#host.options.logger;
    if (kind === 'refused') logger.warn('peer.refused', fields);
    else if (kind === 'protocol') logger.warn('peer.protocol-error', fields);
    else logger.debug('peer.connection-closed', fields);
  }

  /** Refuses the peer: a short refusal that says nothing about why, then the socket ends. */
  #refuse(reason: string): void {
    this.close(reason, 'refused', encodeWireMessage({ type: 'auth-refused' }));
  }

  #receive(chunk: Buffer): void {
    if (!this.#live) return;
    this.#reader.push(chunk);
    // Each pass consumes one whole frame, so the loop ends when the buffered bytes run out.
    while (this.#live) {
      const bound = this.#state === 'open' ? undefined : peerHandshakeBodyBytesMax;
      const result = this.#reader.next(bound);
      if (result.kind === 'more') return;
      if (result.kind === 'bad') {
        this.close(`bad frame (${result.fault}): ${result.reason}`, 'protocol');
        return;
      }
      this.#dispatch(result.message);
    }
  }

  #dispatch(message: WireMessage): void {
    if (message.type === 'auth-refused' && this.#state !== 'open') {
      this.close('refused by the peer', 'refused');
      return;
    }
    if (this.#state === 'challenge' && message.type === 'auth-challenge') {
      this.#onChallenge(message);
    } else if (this.#state === 'proof' && message.type === 'auth-proof') {
      this.#onProof(message.proof);
    } else if (this.#state === 'hello' && message.type === 'hello') {
      this.#onHello(message);
    } else if (this.#state === 'open' && this.role === 'listener' && !isHandshakeMessage(message)) {
      this.#onMessage(message);
    } else {
      const where = this.#state === 'open' ? `an open ${this.role} connection` : this.#state;
      this.close(`unexpected ${message.type} (expected: ${where})`, 'protocol');
    }
  }

  #onMessage(message: PeerMessage): void {
    if (message.type === 'hello') {
      this.close('a second hello', 'protocol');
      return;
    }
    if (message.from !== this.peerId) {
      this.close(`a ${message.type} claims to come from ${message.from}`, 'protocol');
      return;
    }
    this.#host.received(this, message);
  }

  #sendChallenge(): void {
    const { shardId, nodeId } = this.#host.options;
    assert(this.peerId !== null, 'a challenge names its addressee');
    const challenge: AuthChallenge = {
      type: 'auth-challenge',
      shardId,
      from: nodeId,
      to: this.peerId,
      nonce: this.#nonceLocal,
    };
    this.write(encodeWireMessage(challenge));
  }

  #onChallenge(challenge: AuthChallenge): void {
    const { shardId, nodeId } = this.#host.options;
    if (challenge.shardId !== shardId) {
      this.#refuse(`wrong shard ${JSON.stringify(challenge.shardId)} (this is ${shardId})`);
      return;
    }
    if (challenge.to !== nodeId) {
      this.#refuse(`challenge addressed to ${JSON.stringify(challenge.to)}, not this node`);
      return;
    }
    if (this.role === 'dialer' && challenge.from !== this.peerId) {
      this.#refuse(`dialed ${this.peerId} but ${JSON.stringify(challenge.from)} answered`);
      return;
    }
    if (challenge.from === nodeId) {
      this.#refuse("a peer claims this node's own id");
      return;
    }
    this.peerId = challenge.from;
    this.#nonceRemote = Uint8Array.from(challenge.nonce);
    this.#state = 'proof';
    if (this.role === 'listener') this.#sendChallenge();
    else this.write(encodeWireMessage({ type: 'auth-proof', proof: this.#proof('dialer') }));
  }

  #onProof(proof: Uint8Array): void {
    const peerRole: Role = this.role === 'dialer' ? 'listener' : 'dialer';
    const expected = this.#proof(peerRole);
    if (proof.length !== expected.length || !timingSafeEqual(proof, expected)) {
      this.#refuse('authentication failed: the peer does not know the shard secret');
      return;
    }
    this.#state = 'hello';
    if (this.role === 'listener') {
      this.write(encodeWireMessage({ type: 'auth-proof', proof: this.#proof('listener') }));
    }
    this.write(encodeWireMessage(this.#helloLocal()));
  }

  /** HMAC-SHA256 with the shard secret over the role, the shard, both ids and both nonces. */
  #proof(role: Role): Buffer {
    const { shardId, nodeId, secret } = this.#host.options;
    assert(this.peerId !== null && this.#nonceRemote !== null, 'proof after the challenges');
    const dialerId = this.role === 'dialer' ? nodeId : this.peerId;
    const listenerId = this.role === 'dialer' ? this.peerId : nodeId;
    const nonceDialer = this.role === 'dialer' ? this.#nonceLocal : this.#nonceRemote;
    const nonceListener = this.role === 'dialer' ? this.#nonceRemote : this.#nonceLocal;
    const hmac = createHmac('sha256', secret);
    hmac.update('syncwal-peer-auth-v1\0');
    for (const text of [role, shardId, dialerId, listenerId]) {
      const bytes = Buffer.from(text, 'utf8');
      const length = Buffer.alloc(2);
      length.writeUInt16LE(bytes.length);
      hmac.update(length).update(bytes);
    }
    hmac.update(nonceDialer).update(nonceListener);
    return hmac.digest();
  }

  #helloLocal(): Hello {
    const { shardId, nodeId, hello } = this.#host.options;
    return { ...hello(), type: 'hello', protocolVersion, shardId, from: nodeId };
  }

  #onHello(hello: Hello): void {
    const { shardId } = this.#host.options;
    let problem: string | null = null;
    if (hello.protocolVersion !== protocolVersion) {
      problem = `protocol version ${hello.protocolVersion}, expected ${protocolVersion}`;
    } else if (hello.shardId !== shardId) {
      problem = `hello from shard ${JSON.stringify(hello.shardId)} (this is ${shardId})`;
    } else if (hello.from !== this.peerId) {
      problem = `hello from ${JSON.stringify(hello.from)} on ${this.peerId}'s connection`;
    }
    if (problem !== null) {
      this.close(problem, 'refused');
      return;
    }
    this.#state = 'open';
    this.#clearTimer();
    this.#host.opened(this, hello);
  }
}

// ---------------------------------------------------------------------------------------------
// The transport.

interface OutboundLink {
  address: PeerAddress;
  connection: Connection | null;
  /** The connection finished its handshake and `onPeer` reported it up. */
  up: boolean;
  /** Failed dials since the last connection that came up (the backoff exponent). */
  attempts: number;
  timer: NodeJS.Timeout | null;
}

export class TcpTransport implements Transport {
  readonly nodeId: string;
  readonly #options: ResolvedOptions;
  readonly #server: net.Server;
  readonly #outbound = new Map<string, OutboundLink>();
  readonly #inbound = new Map<string, Connection>();
  /** Every connection until its socket has closed (a refused one may still be flushing). */
  readonly #connections = new Set<Connection>();
  /** Every accepted raw socket, including TLS ones still in their TLS handshake. */
  readonly #acceptedSockets = new Set<net.Socket>();
  #onMessage: (from: string, message: PeerMessage) => void = () => undefined;
  #onPeer: (event: PeerEvent) => void = () => undefined;
  #port = 0;
  #closed = false;
  #closing: Promise<void> | null = null;

  /** Starts listening, then dials every peer. Rejects if the address cannot be bound. */
  static async start(options: TcpTransportOptions): Promise<TcpTransport> {
    const transport = new TcpTransport(resolveOptions(options));
    await transport.#listen();
    transport.setPeers(options.peers);
    return transport;
  }

  private constructor(options: ResolvedOptions) {
    this.#options = options;
    this.nodeId = options.nodeId;
    const accept = (socket: net.Socket): void => this.#accept(socket);
    if (options.tls === null) {
      this.#server = net.createServer({ noDelay: true }, accept);
    } else {
      this.#server = tls.createServer(this.#tlsServerOptions(options.tls), accept);
      this.#server.on('tlsClientError', (error: Error, socket: tls.TLSSocket) => {
        const remote = `${socket.remoteAddress}:${socket.remotePort}`;
        options.logger.warn('peer.refused', { remote, reason: `tls: ${error.message}` });
      });
    }
    this.#server.on('connection', (socket: net.Socket) => {
      this.#acceptedSockets.add(socket);
      socket.once('close', () => this.#acceptedSockets.delete(socket));
    });
    this.#server.on('error', (error: Error) => {
      options.logger.error('transport.server-error', { reason: error.message });
    });
  }

  /** The port the transport listens on (the bound one when `listen.port` was 0). */
  get port(): number {
    return this.#port;
  }

  /** Both sides present certificates and verify the other's against `ca`. */
  #tlsServerOptions(options: TcpTransportTls): tls.TlsOptions {
    return {
      cert: options.cert,
      key: options.key,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      requestCert: true,
      rejectUnauthorized: true,
      handshakeTimeout: this.#options.handshakeTimeoutMs,
    };
  }

  #tlsClientOptions(options: TcpTransportTls, host: string): tls.ConnectionOptions {
    return {
      cert: options.cert,
      key: options.key,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      rejectUnauthorized: true,
      // SNI takes host names only; an IP address is checked against the certificate's IP SANs.
      ...(net.isIP(host) === 0 ? { servername: host } : {}),
    };
  }

  async #listen(): Promise<void> {
    const { host, port } = this.#options.listen;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.#server.once('error', onError);
      this.#server.listen({ host, port, exclusive: true }, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    const address = this.#server.address();
    assert(address !== null && typeof address === 'object', 'a TCP server has an address');
    this.#port = address.port;
    this.#options.logger.info('transport.listening', { host, port: this.#port });
  }

  /**
   * Replaces the peer list (membership changes). Peers no longer listed, or listed at another
   * address, have their outbound connection closed (reported down); new ones are dialed.
   * Inbound connections are not affected: who may connect is decided by the shard secret.
   */
  setPeers(peers: readonly PeerAddress[]): void {
    const checked = checkPeers(this.nodeId, peers);
    if (this.#closed) return;
    const wanted = new Map(checked.map((peer) => [peer.id, peer]));
    for (const [id, link] of this.#outbound) {
      const address = wanted.get(id);
      if (address?.host === link.address.host && address.port === link.address.port) continue;
      this.#outbound.delete(id);
      if (link.timer !== null) clearTimeout(link.timer);
      link.connection?.close('removed from the peer list', 'normal');
    }
    for (const address of checked) {
      if (this.#outbound.has(address.id)) continue;
      const link: OutboundLink = { address, connection: null, up: false, attempts: 0, timer: null };
      this.#outbound.set(address.id, link);
      this.#dial(link);
    }
  }

  send(to: string, message: PeerMessage): boolean {
    assert(message.type !== 'hello', 'send: the transport sends Hello itself');
    assert(message.from === this.nodeId, 'send: a message comes from this node');
    const connection = this.#outbound.get(to)?.connection;
    if (connection === null || connection === undefined || !connection.isOpen) return false;
    const frame = encodeWireMessage(message);
    const queued = connection.socket.writableLength;
    if (queued > 0 && queued + frame.length > this.#options.sendQueueBytesMax) return false;
    return connection.write(frame);
  }

  isConnected(to: string): boolean {
    return this.#outbound.get(to)?.connection?.isOpen ?? false;
  }

  queuedBytes(to: string): number {
    return this.#outbound.get(to)?.connection?.socket.writableLength ?? 0;
  }

  onMessage(handler: (from: string, message: PeerMessage) => void): void {
    this.#onMessage = handler;
  }

  onPeer(handler: (event: PeerEvent) => void): void {
    this.#onPeer = handler;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    for (const link of this.#outbound.values()) {
      if (link.timer !== null) clearTimeout(link.timer);
      link.timer = null;
    }
    const serverClosed = new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
    });
    const connections = [...this.#connections];
    for (const connection of connections) connection.destroy();
    const sockets = [...this.#acceptedSockets];
    for (const socket of sockets) socket.destroy();
    const socketsClosed = sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          if (socket.closed) resolve();
          else socket.once('close', () => resolve());
        }),
    );
    await Promise.all([serverClosed, ...connections.map((each) => each.done), ...socketsClosed]);
    this.#options.logger.info('transport.closed', { port: this.#port });
  }

  // -------------------------------------------------------------------------------------------
  // Dialing and accepting.

  #dial(link: OutboundLink): void {
    link.timer = null;
    if (this.#closed || this.#outbound.get(link.address.id) !== link) return;
    const { host, port } = link.address;
    const tlsOptions = this.#options.tls;
    const socket =
      tlsOptions === null
        ? net.connect({ host, port, noDelay: true })
        : tls.connect({ host, port, ...this.#tlsClientOptions(tlsOptions, host) });
    const connection = new Connection(this.#connectionHost(), socket, 'dialer', link.address);
    this.#track(connection);
    link.connection = connection;
  }

  #redial(link: OutboundLink): void {
    if (this.#closed || this.#outbound.get(link.address.id) !== link) return;
    const { backoffInitialMs, backoffMaxMs, random } = this.#options;
    // 2^20 times any initial delay is past any sensible cap: the exponent stops growing there.
    const exponent = Math.min(link.attempts, 20);
    const base = Math.min(backoffMaxMs, backoffInitialMs * 2 ** exponent);
    const delayMs = Math.round(base * (0.5 + random() / 2));
    link.attempts++;
    link.timer = setTimeout(() => this.#dial(link), delayMs);
    this.#options.logger.debug('peer.redial', { peer: link.address.id, delayMs });
  }

  #accept(socket: net.Socket): void {
    let pending = 0;
    for (const connection of this.#connections) {
      if (connection.role === 'listener' && connection.isHandshaking) pending++;
    }
    if (this.#closed || pending >= peerHandshakesPendingMax) {
      const remote = `${socket.remoteAddress}:${socket.remotePort}`;
      if (!this.#closed) this.#options.logger.warn('peer.refused', { remote, reason: 'busy' });
      socket.on('error', () => undefined);
      socket.destroy();
      return;
    }
    this.#track(new Connection(this.#connectionHost(), socket, 'listener', null));
  }

  #track(connection: Connection): void {
    this.#connections.add(connection);
    void connection.done.then(() => this.#connections.delete(connection));
  }

  #connectionHost(): ConnectionHost {
    return {
      options: this.#options,
      opened: (connection, hello) => this.#opened(connection, hello),
      received: (connection, message) => {
        if (this.#closed || connection.peerId === null) return;
        this.#onMessage(connection.peerId, message);
      },
      closed: (connection, reason, wasOpen) => this.#closedConnection(connection, reason, wasOpen),
    };
  }

  #opened(connection: Connection, hello: Hello): void {
    const peer = connection.peerId;
    assert(peer !== null, 'an open connection knows its peer');
    if (connection.role === 'dialer') {
      const link = this.#outbound.get(peer);
      assert(link?.connection === connection, 'an open outbound connection has its link');
      link.up = true;
      link.attempts = 0;
    } else {
      // A peer that reconnects replaces its old connection (which is likely dead already).
      this.#inbound.get(peer)?.close('replaced by a new connection from the peer', 'normal');
      this.#inbound.set(peer, connection);
    }
    const direction = connection.role === 'dialer' ? 'outbound' : 'inbound';
    this.#options.logger.info('peer.up', { peer, direction });
    if (!this.#closed) this.#onPeer({ peer, up: true, direction, hello });
  }

  #closedConnection(connection: Connection, reason: string, wasOpen: boolean): void {
    const peer = connection.peerId;
    let reportDown = false;
    if (connection.role === 'dialer') {
      const link = peer === null ? undefined : this.#outbound.get(peer);
      if (link?.connection === connection) {
        reportDown = link.up;
        link.connection = null;
        link.up = false;
        this.#redial(link);
      } else {
        reportDown = wasOpen;
      }
    } else if (peer !== null && this.#inbound.get(peer) === connection) {
      this.#inbound.delete(peer);
      reportDown = wasOpen;
    }
    if (!reportDown || peer === null) return;
    const direction = connection.role === 'dialer' ? 'outbound' : 'inbound';
    this.#options.logger.info('peer.down', { peer, direction, reason });
    if (!this.#closed) this.#onPeer({ peer, up: false, direction, reason });
  }
}
