import { InvalidError } from '../core/errors.js';
import type { DurabilityPolicy } from './backend.js';
import type { LogFormat, LogLevel } from './logger.js';

/**
 * `syncwal serve` configuration: one table of fields, three sources, one pure resolver.
 *
 * Each field can come from a flag (`--node-id`), an environment variable (`SYNCWAL_NODE_ID`)
 * or a JSON config file (`{"nodeId": ...}`, given with `--config` or `SYNCWAL_CONFIG`).
 * Precedence: flag, then environment, then file, then the default. A bad value is INVALID with
 * a message naming where it came from (`--port 'abc': must be a port number (0-65535)`), and
 * so is an unknown key in the file. Cross-field rules (peers, primary, secret, TLS) are checked
 * after every field is resolved.
 */

export interface PeerAddress {
  id: string;
  host: string;
  port: number;
}

export interface ServeConfig {
  nodeId: string;
  dataDir: string;
  host: string;
  port: number;
  peerHost: string;
  peerPort: number;
  peers: PeerAddress[];
  shardId: string;
  shardSecret: string | null;
  /** The fixed primary of this phase (elections come with issue #5). */
  primaryId: string;
  durability: DurabilityPolicy;
  password: string | null;
  tls: { certFile: string; keyFile: string } | null;
  logFormat: LogFormat;
  logLevel: LogLevel;
  /** The Prometheus endpoint's port, on `host` (0: any free port); null: not served. */
  metricsPort: number | null;
  limits: { clientsMax: number; bulkBytesMax: number; pipelineRepliesMax: number };
  engine: { segmentSizeBytes: number | null; checkpointLogBytes: number | null };
  configFile: string | null;
}

type Kind = 'id' | 'text' | 'secret' | 'port' | 'count' | 'positive' | 'peers' | 'enum';

export interface Field {
  /** Key in the config file and in commander's parsed options (camelCase of the flag). */
  key: string;
  flag: string;
  env: string;
  kind: Kind;
  choices?: readonly string[];
  describe: string;
}

function field(key: string, kind: Kind, describe: string, choices?: readonly string[]): Field {
  const flag = key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
  const env = `SYNCWAL_${flag.replace(/-/g, '_').toUpperCase()}`;
  return { key, flag: `--${flag}`, env, kind, describe, ...(choices ? { choices } : {}) };
}

export const serveFields: readonly Field[] = [
  field('nodeId', 'id', "this node's id (default n1)"),
  field('dataDir', 'text', "the node's data directory (default data/<node-id>)"),
  field('host', 'text', 'client (RESP) address to listen on (default 127.0.0.1)'),
  field('port', 'port', 'client (RESP) port (default 7001; 0 picks a free port)'),
  field('peerHost', 'text', 'peer (replication) address (default: --host)'),
  field('peerPort', 'port', 'peer (replication) port (default: port + 10000)'),
  field('peers', 'peers', 'the other nodes of the shard: id=host:port,... (peer ports)'),
  field('shardId', 'id', 'the shard this node belongs to (default shard-1)'),
  field('shardSecret', 'secret', 'shared secret peers authenticate with (16+ characters)'),
  field('primaryId', 'id', 'the primary of the shard (default: this node)'),
  field('acks', 'enum', 'durability policy: quorum (default) or all', ['quorum', 'all']),
  field('minReplicas', 'count', 'replicas that must hold a write (default 0)'),
  field('commitTimeoutMs', 'positive', 'abort a write not committed in time (default 5000)'),
  field('replicaTimeoutMs', 'positive', 'revoke a silent replica (default 2000)'),
  field('password', 'secret', 'clients must AUTH with this password (requirepass)'),
  field('tlsCert', 'text', 'PEM certificate file: TLS on the client port'),
  field('tlsKey', 'text', 'PEM private key file for --tls-cert'),
  field('logFormat', 'enum', 'text (default) or json: one JSON object per line', ['text', 'json']),
  field('logLevel', 'enum', 'debug, info (default), warn or error', [
    'debug',
    'info',
    'warn',
    'error',
  ]),
  field('metricsPort', 'port', 'serve Prometheus metrics at GET /metrics on this port (off)'),
  field('maxClients', 'positive', 'most connected clients (default 10000)'),
  field('maxBulkBytes', 'positive', 'largest bulk argument in bytes (default 16 MiB)'),
  field('maxPipeline', 'positive', 'outstanding replies per client before reading stops (1024)'),
  field('segmentSizeBytes', 'positive', 'log segment size in bytes (default 64 MiB)'),
  field('checkpointLogBytes', 'count', 'checkpoint after this many log bytes (0: never)'),
];

export interface ConfigSources {
  /** Commander's options (only those given on the command line). */
  flags: Readonly<Record<string, unknown>>;
  env: Readonly<Record<string, string | undefined>>;
  /** The parsed JSON config file, or null. */
  file: { path: string; values: unknown } | null;
}

type Value = string | number | PeerAddress[];

function invalid(source: string, raw: unknown, problem: string): never {
  const shown = typeof raw === 'string' ? `'${raw}'` : JSON.stringify(raw);
  throw new InvalidError(`${source} ${shown}: ${problem}`);
}

function parseInteger(source: string, raw: unknown, minimum: number, maximum: number): number {
  const value = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    invalid(source, raw, 'must be an integer');
  }
  if (value < minimum || value > maximum)
    invalid(source, raw, `must be in [${minimum}, ${maximum}]`);
  return value;
}

const idPattern = /^[A-Za-z0-9_.-]{1,64}$/;

function parseHostPort(source: string, raw: unknown, text: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d+)$/.exec(text);
  if (match === null) invalid(source, raw, 'a peer is id=host:port');
  return {
    host: match[1]!.replace(/^\[|\]$/g, ''),
    port: parseInteger(source, match[2], 1, 65535),
  };
}

function parsePeers(source: string, raw: unknown): PeerAddress[] {
  const items: unknown[] =
    typeof raw === 'string'
      ? raw
          .split(',')
          .map((item) => item.trim())
          .filter((item) => item.length > 0)
      : Array.isArray(raw)
        ? raw
        : invalid(source, raw, 'must be id=host:port,... or a list');
  return items.map((item) => {
    if (typeof item === 'object' && item !== null) {
      const { id, host, port } = item as Record<string, unknown>;
      if (typeof id !== 'string' || !idPattern.test(id)) invalid(source, raw, 'bad peer id');
      if (typeof host !== 'string' || host.length === 0) invalid(source, raw, 'bad peer host');
      return { id, host, port: parseInteger(source, port, 1, 65535) };
    }
    if (typeof item !== 'string') return invalid(source, raw, 'a peer is id=host:port');
    const equals = item.indexOf('=');
    const id = item.slice(0, equals);
    if (equals < 0 || !idPattern.test(id)) invalid(source, raw, 'a peer is id=host:port');
    return { id, ...parseHostPort(source, raw, item.slice(equals + 1)) };
  });
}

function parseField(entry: Field, source: string, raw: unknown): Value {
  switch (entry.kind) {
    case 'port':
      return parseInteger(source, raw, 0, 65535);
    case 'count':
      return parseInteger(source, raw, 0, Number.MAX_SAFE_INTEGER);
    case 'positive':
      return parseInteger(source, raw, 1, Number.MAX_SAFE_INTEGER);
    case 'peers':
      return parsePeers(source, raw);
    case 'enum':
      if (typeof raw !== 'string' || !entry.choices!.includes(raw)) {
        invalid(source, raw, `must be one of ${entry.choices!.join(', ')}`);
      }
      return raw;
    case 'id':
      if (typeof raw !== 'string' || !idPattern.test(raw)) {
        invalid(source, raw, 'must be 1-64 characters of [A-Za-z0-9_.-]');
      }
      return raw;
    case 'text':
    case 'secret':
      if (typeof raw !== 'string' || raw.length === 0) invalid(source, raw, 'must not be empty');
      return raw;
  }
}

/** Each field's value from the first source that has it (flag, env, file), parsed. */
function collect(sources: ConfigSources): Map<string, Value> {
  const file = sources.file;
  let fileValues: Record<string, unknown> = {};
  if (file !== null) {
    const values = file.values;
    if (typeof values !== 'object' || values === null || Array.isArray(values)) {
      throw new InvalidError(`config file ${file.path}: must be a JSON object`);
    }
    fileValues = values as Record<string, unknown>;
    for (const key of Object.keys(fileValues)) {
      if (!serveFields.some((entry) => entry.key === key)) {
        throw new InvalidError(`config file ${file.path}: unknown key '${key}'`);
      }
    }
  }
  const values = new Map<string, Value>();
  for (const entry of serveFields) {
    const flag = sources.flags[entry.key];
    const env = sources.env[entry.env];
    if (flag !== undefined) values.set(entry.key, parseField(entry, entry.flag, flag));
    else if (env !== undefined && env !== '')
      values.set(entry.key, parseField(entry, entry.env, env));
    else if (fileValues[entry.key] !== undefined) {
      const source = `${entry.key} in ${file!.path}`;
      values.set(entry.key, parseField(entry, source, fileValues[entry.key]));
    }
  }
  return values;
}

/** Resolves, defaults and cross-checks the configuration. Throws INVALID naming the problem. */
export function resolveServeConfig(sources: ConfigSources): ServeConfig {
  const values = collect(sources);
  const string = (key: string): string | null => (values.get(key) as string | undefined) ?? null;
  const number = (key: string): number | null => (values.get(key) as number | undefined) ?? null;
  const nodeId = string('nodeId') ?? 'n1';
  const host = string('host') ?? '127.0.0.1';
  const port = number('port') ?? 7001;
  const peers = (values.get('peers') as PeerAddress[] | undefined) ?? [];
  const config: ServeConfig = {
    nodeId,
    dataDir: string('dataDir') ?? `data/${nodeId}`,
    host,
    port,
    peerHost: string('peerHost') ?? host,
    peerPort: number('peerPort') ?? (port === 0 ? 0 : port + 10_000),
    peers,
    shardId: string('shardId') ?? 'shard-1',
    shardSecret: string('shardSecret'),
    primaryId: string('primaryId') ?? nodeId,
    durability: {
      acks: (string('acks') ?? 'quorum') as DurabilityPolicy['acks'],
      minReplicas: number('minReplicas') ?? 0,
      commitTimeoutMs: number('commitTimeoutMs') ?? 5_000,
      replicaTimeoutMs: number('replicaTimeoutMs') ?? 2_000,
    },
    password: string('password'),
    tls: tlsOf(string('tlsCert'), string('tlsKey')),
    logFormat: (string('logFormat') ?? 'text') as LogFormat,
    logLevel: (string('logLevel') ?? 'info') as LogLevel,
    metricsPort: number('metricsPort'),
    limits: {
      clientsMax: number('maxClients') ?? 10_000,
      bulkBytesMax: number('maxBulkBytes') ?? 16 * 1024 * 1024,
      pipelineRepliesMax: number('maxPipeline') ?? 1_024,
    },
    engine: {
      segmentSizeBytes: number('segmentSizeBytes'),
      checkpointLogBytes: number('checkpointLogBytes'),
    },
    configFile: sources.file?.path ?? null,
  };
  checkPorts(config);
  checkShard(config, values.has('primaryId'));
  return config;
}

function tlsOf(certFile: string | null, keyFile: string | null): ServeConfig['tls'] {
  if (certFile === null && keyFile === null) return null;
  if (certFile === null || keyFile === null) {
    throw new InvalidError('--tls-cert and --tls-key go together: give both or neither');
  }
  return { certFile, keyFile };
}

/** The listeners must not collide: client, peer and metrics ports on the same host. */
function checkPorts(config: ServeConfig): void {
  if (config.peerPort > 65_535) {
    throw new InvalidError(`--peer-port ${config.peerPort}: must be in [0, 65535]`);
  }
  if (config.port !== 0 && config.port === config.peerPort && config.host === config.peerHost) {
    throw new InvalidError(`--port and --peer-port are both ${config.port}`);
  }
  const metrics = config.metricsPort;
  if (metrics !== null && metrics !== 0 && metrics === config.port) {
    throw new InvalidError(`--metrics-port and --port are both ${metrics}`);
  }
  const samePeerHost = config.host === config.peerHost;
  if (metrics !== null && metrics !== 0 && metrics === config.peerPort && samePeerHost) {
    throw new InvalidError(`--metrics-port and --peer-port are both ${metrics}`);
  }
}

function checkShard(config: ServeConfig, primaryGiven: boolean): void {
  const ids = new Set<string>([config.nodeId]);
  for (const peer of config.peers) {
    if (ids.has(peer.id)) throw new InvalidError(`--peers: node id '${peer.id}' appears twice`);
    ids.add(peer.id);
  }
  if (!ids.has(config.primaryId)) {
    throw new InvalidError(`--primary-id '${config.primaryId}' is neither this node nor a peer`);
  }
  if (config.durability.minReplicas > config.peers.length) {
    throw new InvalidError(
      `--min-replicas ${config.durability.minReplicas}: the shard has ` +
        `${config.peers.length} other node(s)`,
    );
  }
  if (config.peers.length === 0) return;
  if (!primaryGiven) throw new InvalidError('--primary-id is required with --peers');
  if (config.shardSecret === null || config.shardSecret.length < 16) {
    throw new InvalidError('--shard-secret of at least 16 characters is required with --peers');
  }
}
