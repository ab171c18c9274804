import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { silentLogger, type Logger } from '../ports/logger.js';
import type { DurabilityPolicy, ServerBackend } from './backend.js';
import { commandTable } from './commands/table.js';
import { BatchStarter, Connection, type ConnectionShared } from './connection.js';
import {
  serverLimitsDefault,
  type ClientState,
  type ServerClock,
  type ServerContext,
  type ServerLimits,
} from './context.js';
import { ScanCursors } from './cursors.js';
import { Dispatcher } from './dispatch.js';
import { ReplyEncoder } from './resp/output.js';
import { ServerStats } from './stats.js';
import { systemClock } from './system-clock.js';

export interface RespServerOptions {
  backend: ServerBackend;
  /** Address to listen on; port 0 picks a free port (see `listen()`'s result). */
  host: string;
  port: number;
  /** requirepass: clients must AUTH with it. Null: no authentication. */
  password?: string | null;
  /** PEM certificate and key: the client port speaks TLS. */
  tls?: { cert: string | Buffer; key: string | Buffer } | null;
  logger?: Logger;
  limits?: Partial<ServerLimits>;
  /** The policy CONFIG GET reports when the backend has no policy hook. */
  policy?: DurabilityPolicy;
  /** syncwal's version, for INFO server. */
  version?: string;
  clock?: ServerClock;
  /** The config file the process was started with, for INFO server. */
  configFile?: string | null;
}

const policyDefault: DurabilityPolicy = {
  acks: 'quorum',
  minReplicas: 0,
  commitTimeoutMs: 5_000,
  replicaTimeoutMs: 2_000,
};

function validateLimits(limits: ServerLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`server limit ${name} must be a positive integer`);
    }
  }
  if (limits.commandBytesMax < limits.bulkBytesMax) {
    throw new RangeError('server limit commandBytesMax must be >= bulkBytesMax');
  }
}

/**
 * The RESP server of a node (DESIGN §6): accepts clients on one port, runs their commands
 * against a `ServerBackend`, and closes gracefully. One instance per listening port.
 */
export class RespServer {
  readonly #context: ServerContext;
  readonly #clients = new Map<number, ClientState>();
  readonly #connections = new Set<Connection>();
  readonly #shared: ConnectionShared;
  readonly #listener: Server;
  readonly #host: string;
  readonly #port: number;
  #nextClientId = 1;
  #closing: Promise<void> | null = null;

  constructor(options: RespServerOptions) {
    const limits = { ...serverLimitsDefault, ...options.limits };
    validateLimits(limits);
    const clock = options.clock ?? systemClock;
    this.#host = options.host;
    this.#port = options.port;
    this.#context = {
      backend: options.backend,
      nodeId: options.backend.info().nodeId,
      version: options.version ?? '0.0.0',
      limits,
      password: options.password ?? null,
      stats: new ServerStats(),
      logger: options.logger ?? silentLogger,
      clock,
      clients: this.#clients,
      cursors: new ScanCursors(limits.scanCursorsMax),
      startedAtMs: clock.monotonicMs(),
      configFile: options.configFile ?? null,
      tls: options.tls !== undefined && options.tls !== null,
      address: { host: options.host, port: options.port },
      policy: options.policy ?? policyDefault,
      lastCheckpoint: null,
    };
    this.#shared = {
      dispatcher: new Dispatcher(commandTable(), this.#context),
      encoder: new ReplyEncoder(),
      starter: new BatchStarter(),
    };
    this.#listener = this.#createListener(options.tls ?? null);
    this.#watchBackend();
  }

  #createListener(tls: RespServerOptions['tls'] | null): Server {
    const accept = (socket: Socket): void => this.#accept(socket);
    if (tls === null || tls === undefined) return createTcpServer({ noDelay: true }, accept);
    const server = createTlsServer({ cert: tls.cert, key: tls.key }, accept);
    server.on('tlsClientError', (error) => {
      this.#context.logger.debug('client.tls-error', { error: error.message });
    });
    return server;
  }

  #watchBackend(): void {
    const { backend, logger, clock } = this.#context;
    backend.on?.('checkpoint', (value) => {
      const lsn = (value as { lsn?: unknown } | null)?.lsn;
      if (typeof lsn === 'number') this.#context.lastCheckpoint = { lsn, wallMs: clock.wallMs() };
      logger.info('node.checkpoint', { lsn: typeof lsn === 'number' ? lsn : null });
    });
    backend.on?.('checkpoint-failed', (error) => {
      logger.warn('node.checkpoint-failed', { error: String(error) });
    });
    backend.on?.('fenced', (error) => {
      logger.error('node.fenced', { error: String(error) });
    });
    backend.on?.('role', (role) => {
      logger.info('node.role', { role: String(role) });
    });
  }

  /** The server's shared state (tests and INFO read it). */
  get context(): ServerContext {
    return this.#context;
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  /** Starts listening; rejects with the listen error (EADDRINUSE, EACCES, ...). */
  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.#listener.once('error', onError);
      this.#listener.listen({ host: this.#host, port: this.#port, backlog: 511 }, () => {
        this.#listener.off('error', onError);
        this.#listener.on('error', (error) => {
          this.#context.logger.error('server.error', { error: error.message });
        });
        const address = this.#listener.address();
        const port = typeof address === 'object' && address !== null ? address.port : this.#port;
        this.#context.address = { host: this.#host, port };
        resolve(this.#context.address);
      });
    });
  }

  #accept(socket: Socket): void {
    const context = this.#context;
    if (this.#closing !== null) {
      socket.destroy();
      return;
    }
    context.stats.connectionsReceived++;
    socket.on('error', () => undefined);
    if (this.#clients.size >= context.limits.clientsMax) {
      context.stats.connectionsRejected++;
      socket.end('-ERR max number of clients reached\r\n', () => socket.destroy());
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 300_000);
    const client: ClientState = {
      id: this.#nextClientId++,
      address: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
      connectedAtMs: context.clock.monotonicMs(),
      name: null,
      libraryName: null,
      libraryVersion: null,
      protocol: 2,
      authenticated: context.password === null,
      lastWriteLsn: 0,
      commands: 0,
      closeAfterReply: false,
    };
    const connection = new Connection(socket, context, this.#shared, client);
    this.#clients.set(client.id, client);
    this.#connections.add(connection);
    void connection.closed.then(() => {
      this.#clients.delete(client.id);
      this.#connections.delete(connection);
    });
  }

  /**
   * Stops accepting, lets every started command complete and its reply go out, closes the
   * connections, and resolves. Connections still open after `timeoutMs` are destroyed. The
   * backend is not closed here: its owner closes it after this resolves.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.#closing ??= this.#closeNow(options.timeoutMs ?? 10_000);
    return this.#closing;
  }

  async #closeNow(timeoutMs: number): Promise<void> {
    const listenerClosed = new Promise<void>((resolve) => {
      this.#listener.close(() => resolve());
    });
    const stopped = Promise.all([...this.#connections].map((connection) => connection.stop()));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([stopped, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.#context.logger.warn('server.close-timeout', { clients: this.#connections.size });
      for (const connection of this.#connections) connection.destroy();
    }
    await listenerClosed;
  }
}
