import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { NodeDisk, openNode, TcpTransport, type SyncwalNode } from '../index.js';
import type { Disk } from '../ports/disk.js';
import type { Logger } from '../ports/logger.js';
import type { ReplicationState, ServerBackend } from '../server/backend.js';
import { resolveServeConfig, serveFields, type ServeConfig } from '../server/config.js';
import { createLogger } from '../server/logger.js';
import { SyncwalMetrics } from '../server/metrics.js';
import { MeasuredDisk } from '../server/metrics-disk.js';
import { MetricsEndpoint } from '../server/metrics-endpoint.js';
import { RespServer } from '../server/server.js';
import { systemClock } from '../server/system-clock.js';
import type { Output } from './entry.js';

/**
 * `syncwal serve`: one node process. Resolves the configuration (flags, then SYNCWAL_*
 * environment variables, then the JSON config file), opens the node, serves RESP on the
 * client port, and on SIGTERM or SIGINT stops accepting, lets started commands finish,
 * closes the node cleanly and exits 0.
 *
 * Startup failures are one line on stderr and a distinct exit code (`serveExitCodes`).
 */

export const serveExitCodes = {
  ok: 0,
  /** A fenced node stopped itself (I/O failure); restarting it recovers from disk. */
  fenced: 74,
  usage: 64,
  corrupt: 65,
  portInUse: 69,
  internal: 70,
  io: 74,
  locked: 75,
} as const;

/** A startup failure with its exit code; the message is printed as one line. */
export class ServeError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}

/**
 * Builds the node the server runs on: the one place that decides single node versus
 * replicated. With `peers` the node joins a shard (peer port, shard id and secret, the
 * configured primary, the durability policy) and the server sees its replication state.
 * `disk` replaces the real disk (the metrics endpoint's measured one).
 */
export async function createBackend(
  config: ServeConfig,
  logger?: Logger,
  disk?: Disk,
): Promise<ServerBackend> {
  if (config.peers.length > 0) {
    if (config.shardSecret === null) {
      throw new ServeError('--shard-secret is required with --peers', serveExitCodes.usage);
    }
    const secret = config.shardSecret;
    const node = await openNode({
      ...engineOptions(config, disk),
      replication: {
        shardId: config.shardId,
        members: [config.nodeId, ...config.peers.map((peer) => peer.id)],
        primary: config.primaryId,
        policy: config.durability,
        ...(logger === undefined ? {} : { logger }),
        transport: (hello) =>
          TcpTransport.start({
            nodeId: config.nodeId,
            shardId: config.shardId,
            secret,
            listen: { host: config.peerHost, port: config.peerPort },
            peers: config.peers,
            hello,
            logger,
          }),
      },
    });
    return replicatedBackend(node, config);
  }
  return openNode(engineOptions(config, disk));
}

function engineOptions(config: ServeConfig, disk: Disk | undefined) {
  return {
    dir: config.dataDir,
    nodeId: config.nodeId,
    ...(disk === undefined ? {} : { disk }),
    ...(config.engine.segmentSizeBytes === null
      ? {}
      : { segmentSizeBytes: config.engine.segmentSizeBytes }),
    ...(config.engine.checkpointLogBytes === null
      ? {}
      : { checkpointLogBytes: config.engine.checkpointLogBytes }),
  };
}

/** A replicated node as the server sees it: the node plus its replication hooks. */
function replicatedBackend(node: SyncwalNode, config: ServeConfig): ServerBackend {
  return {
    put: (key, value, options) => node.put(key, value, options),
    delete: (key, options) => node.delete(key, options),
    batch: (operations, options) => node.batch(operations, options),
    incrBy: (key, delta, options) => node.incrBy(key, delta, options),
    compareAndSet: (key, expected, next, options) =>
      node.compareAndSet(key, expected, next, options),
    get: (key) => node.get(key),
    scan: (options) => node.scan(options),
    status: (requestId) => node.status(requestId),
    checkpoint: () => node.checkpoint(),
    info: () => node.info(),
    close: () => node.close(),
    on: (event, listener) => node.on(event, listener),
    getSync: (key) => node.getSync(key),
    replicationState: () => replicationStateOf(node),
    durability: () => node.durabilityPolicy() ?? config.durability,
    setDurability: async (change) => node.setDurabilityPolicy(change),
  };
}

function replicationStateOf(node: SyncwalNode): ReplicationState {
  const info = node.info();
  const status = node.replication();
  return {
    role: info.role,
    term: info.term,
    primaryId: status?.primary ?? null,
    primaryAddress: null,
    linkUp: status?.primary !== null,
    eligible: info.role === 'primary' || status?.eligible === true,
    commitLsn: info.commitLsn,
    lastLsn: info.lastLsn,
    appliedLsn: info.appliedLsn,
    replicas: (status?.replicas ?? []).map((replica) => ({
      id: replica.id,
      address: null,
      connected: replica.connected,
      eligible: replica.eligible,
      ackedLsn: replica.ackedLsn,
      lastAckAgoMs: replica.lagMs,
      fullSync: replica.fullSync,
    })),
    fullSync: status?.fullSync ?? null,
  };
}

/** The exit code for a startup error from the node or the listener. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof ServeError) return error.exitCode;
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'INVALID':
      return serveExitCodes.usage;
    case 'LOCKED':
      return serveExitCodes.locked;
    case 'CORRUPT':
      return serveExitCodes.corrupt;
    case 'IOERR':
    case 'NOSPACE':
      return serveExitCodes.io;
    case 'EADDRINUSE':
    case 'EACCES':
    case 'EADDRNOTAVAIL':
      return serveExitCodes.portInUse;
    default:
      return serveExitCodes.internal;
  }
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ');
}

/** Reads the JSON config file named by --config or SYNCWAL_CONFIG, if any. */
function readConfigFile(path: string | undefined): { path: string; values: unknown } | null {
  if (path === undefined || path === '') return null;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error: unknown) {
    throw new ServeError(`config file ${path}: ${oneLine(error)}`, serveExitCodes.usage);
  }
  try {
    return { path, values: JSON.parse(text) as unknown };
  } catch (error: unknown) {
    throw new ServeError(`config file ${path}: not JSON (${oneLine(error)})`, serveExitCodes.usage);
  }
}

function readTls(config: ServeConfig): { cert: Buffer; key: Buffer } | null {
  if (config.tls === null) return null;
  try {
    return { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
  } catch (error: unknown) {
    throw new ServeError(`TLS: ${oneLine(error)}`, serveExitCodes.usage);
  }
}

/** Where `serve` gets its signals and writes its log (tests and `cluster` may differ). */
export interface ServeRuntime {
  output: Output;
  env: Readonly<Record<string, string | undefined>>;
  writeLog: (line: string) => void;
  onSignal: (handler: (signal: string) => void) => () => void;
  version: string;
}

export function processRuntime(output: Output, version: string): ServeRuntime {
  return {
    output,
    env: process.env,
    writeLog: (line) => process.stdout.write(line),
    onSignal: (handler) => {
      const listener = (signal: NodeJS.Signals): void => handler(signal);
      process.on('SIGTERM', listener);
      process.on('SIGINT', listener);
      return () => {
        process.off('SIGTERM', listener);
        process.off('SIGINT', listener);
      };
    },
    version,
  };
}

function resolveConfig(flags: Record<string, unknown>, runtime: ServeRuntime): ServeConfig {
  const configPath = (flags['config'] as string | undefined) ?? runtime.env['SYNCWAL_CONFIG'];
  const file = readConfigFile(configPath);
  const fieldFlags: Record<string, unknown> = { ...flags };
  delete fieldFlags['config'];
  return resolveServeConfig({ flags: fieldFlags, env: runtime.env, file });
}

/** Runs `syncwal serve` until a signal (exit 0) or a startup failure (non-zero). */
export async function runServe(
  flags: Record<string, unknown>,
  runtime: ServeRuntime,
): Promise<number> {
  let config: ServeConfig;
  let tls: { cert: Buffer; key: Buffer } | null;
  try {
    config = resolveConfig(flags, runtime);
    tls = readTls(config);
  } catch (error: unknown) {
    runtime.output.err(`syncwal serve: ${oneLine(error)}`);
    return exitCodeOf(error);
  }
  const logger = createLogger({
    format: config.logFormat,
    level: config.logLevel,
    write: runtime.writeLog,
    wallMs: systemClock.wallMs,
    base: { node: config.nodeId },
  });
  // With --metrics-port the node runs on a disk that measures the log's fdatasyncs and
  // group-commit writes; without it, on the plain real disk.
  const metrics = config.metricsPort === null ? null : new SyncwalMetrics();
  const disk =
    metrics === null
      ? undefined
      : new MeasuredDisk({
          disk: new NodeDisk(),
          observer: metrics.logIo,
          monotonicMs: systemClock.monotonicMs,
        });
  let backend: ServerBackend;
  try {
    backend = await createBackend(config, logger, disk);
  } catch (error: unknown) {
    runtime.output.err(`syncwal serve: ${oneLine(error)}`);
    return exitCodeOf(error);
  }
  return serveBackend(config, backend, tls, { runtime, logger, metrics });
}

interface ServeContext {
  runtime: ServeRuntime;
  logger: ReturnType<typeof createLogger>;
  metrics: SyncwalMetrics | null;
}

/** The one-line message for a listener that could not start. */
function listenFailure(error: unknown, where: string): string {
  const code = (error as { code?: unknown }).code;
  const message = code === 'EADDRINUSE' ? `port ${where} is already in use` : oneLine(error);
  return `syncwal serve: cannot listen on ${where}: ${message}`;
}

async function serveBackend(
  config: ServeConfig,
  backend: ServerBackend,
  tls: { cert: Buffer; key: Buffer } | null,
  context: ServeContext,
): Promise<number> {
  const { runtime, logger } = context;
  const server = new RespServer({
    backend,
    host: config.host,
    port: config.port,
    password: config.password,
    tls,
    logger,
    limits: config.limits,
    policy: config.durability,
    version: runtime.version,
    configFile: config.configFile,
  });
  let address: { host: string; port: number };
  try {
    address = await server.listen();
  } catch (error: unknown) {
    await backend.close().catch(() => undefined);
    runtime.output.err(listenFailure(error, `${config.host}:${config.port}`));
    return exitCodeOf(error);
  }
  let endpoint: MetricsEndpoint | null;
  try {
    endpoint = await startMetrics(config, server, context);
  } catch (error: unknown) {
    await server.close({ timeoutMs: 10_000 });
    await backend.close().catch(() => undefined);
    runtime.output.err(listenFailure(error, `${config.host}:${config.metricsPort}`));
    return exitCodeOf(error);
  }
  const info = backend.info();
  logger.info('server.listening', {
    host: address.host,
    port: address.port,
    tls: tls !== null,
    auth: config.password !== null,
    dataDir: config.dataDir,
    lastLsn: info.lastLsn,
    keys: info.keys,
  });
  return waitForStop({ server, endpoint }, backend, context);
}

/** Serves GET /metrics on the metrics port, if one is configured. */
async function startMetrics(
  config: ServeConfig,
  server: RespServer,
  context: ServeContext,
): Promise<MetricsEndpoint | null> {
  const { metrics, logger } = context;
  if (metrics === null || config.metricsPort === null) return null;
  metrics.attach(server.context);
  const endpoint = new MetricsEndpoint({
    metrics,
    host: config.host,
    port: config.metricsPort,
    logger,
  });
  try {
    const address = await endpoint.listen();
    logger.info('metrics.listening', { host: address.host, port: address.port, path: '/metrics' });
  } catch (error: unknown) {
    metrics.detach();
    await endpoint.close();
    throw error;
  }
  return endpoint;
}

/** Waits for SIGTERM/SIGINT (exit 0) or a fenced node (exit 74), then shuts down cleanly. */
async function waitForStop(
  listeners: { server: RespServer; endpoint: MetricsEndpoint | null },
  backend: ServerBackend,
  context: ServeContext,
): Promise<number> {
  const { server, endpoint } = listeners;
  const { runtime, logger } = context;
  let signals = 0;
  const reason = await new Promise<{ code: number; why: string }>((resolve) => {
    backend.on?.('fenced', () => resolve({ code: serveExitCodes.fenced, why: 'fenced' }));
    const remove = runtime.onSignal((signal) => {
      signals++;
      if (signals === 1) {
        resolve({ code: serveExitCodes.ok, why: signal });
        return;
      }
      // A second signal during shutdown: stop waiting. The log is safe at any moment.
      logger.warn('server.forced-exit', { signal });
      remove();
      process.exit(130);
    });
  });
  logger.info('server.stopping', { reason: reason.why });
  await server.close({ timeoutMs: 10_000 });
  // Metrics stay up until the clients are gone, so the last scrape sees the shutdown.
  await endpoint?.close();
  context.metrics?.detach();
  try {
    await backend.close();
  } catch (error: unknown) {
    logger.error('node.close-failed', { error: oneLine(error) });
    return serveExitCodes.io;
  }
  logger.info('server.stopped', { reason: reason.why });
  return reason.code;
}

/** Adds `serve` to the `syncwal` program; `setCode` receives the exit code. */
export function registerServe(
  program: Command,
  runtime: () => ServeRuntime,
  setCode: (code: number) => void,
): void {
  const command = program
    .command('serve')
    .description('run one node: RESP on the client port (flags > SYNCWAL_* env > config file)')
    .option('--config <file>', 'JSON config file with any of the options below (camelCase keys)');
  for (const entry of serveFields) {
    command.option(`${entry.flag} <value>`, `${entry.describe} [${entry.env}]`);
  }
  command.action(async (options: Record<string, unknown>) => {
    setCode(await runServe(options, runtime()));
  });
}
