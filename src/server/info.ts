import { arch, platform } from 'node:os';
import {
  replicationOf,
  type FullSyncView,
  type ReplicaState,
  type ReplicationState,
} from './backend.js';
import { redisCompatibleVersion } from './commands/connection.js';
import type { ServerContext } from './context.js';

/**
 * INFO: `# Section` headers and `field:value` lines, as Redis prints them, so redis-cli,
 * ioredis (its ready check reads `loading`) and monitoring scripts read it unchanged. Fields
 * Redis has keep its names; syncwal's own (LSNs, eligibility, commit latency) are added.
 */

export const infoSections = [
  'server',
  'clients',
  'memory',
  'replication',
  'persistence',
  'stats',
  'keyspace',
] as const;

type Section = (typeof infoSections)[number];
type Lines = [string, string | number][];

function serverSection(server: ServerContext): Lines {
  const uptimeSeconds = Math.floor((server.clock.monotonicMs() - server.startedAtMs) / 1000);
  return [
    ['redis_version', redisCompatibleVersion],
    ['syncwal_version', server.version],
    ['redis_mode', 'standalone'],
    ['node_id', server.nodeId],
    ['os', `${platform()} ${arch()}`],
    ['arch_bits', 64],
    ['process_id', process.pid],
    ['tcp_port', server.address.port],
    ['tls', server.tls ? 1 : 0],
    ['uptime_in_seconds', uptimeSeconds],
    ['uptime_in_days', Math.floor(uptimeSeconds / 86_400)],
    ['config_file', server.configFile ?? ''],
  ];
}

function clientsSection(server: ServerContext): Lines {
  return [
    ['connected_clients', server.clients.size],
    ['maxclients', server.limits.clientsMax],
    ['blocked_clients', 0],
  ];
}

function memorySection(): Lines {
  const usage = process.memoryUsage();
  return [
    ['used_memory', usage.heapUsed + usage.external + usage.arrayBuffers],
    ['used_memory_human', `${((usage.heapUsed + usage.external) / 1048576).toFixed(2)}M`],
    ['used_memory_rss', usage.rss],
    ['used_memory_rss_human', `${(usage.rss / 1048576).toFixed(2)}M`],
    ['maxmemory', 0],
  ];
}

function hostPort(address: string | null): [string, string] {
  if (address === null) return ['', ''];
  const colon = address.lastIndexOf(':');
  return colon < 0 ? [address, ''] : [address.slice(0, colon), address.slice(colon + 1)];
}

/** Records a replica is behind the primary's log: its last LSN minus the replica's acked LSN. */
export function replicaLagRecords(replica: ReplicaState, lastLsn: number): number {
  return Math.max(0, lastLsn - replica.ackedLsn);
}

function replicaLine(replica: ReplicaState, lastLsn: number): string {
  const [host, port] = hostPort(replica.address);
  const lagSeconds = replica.lastAckAgoMs === null ? -1 : Math.floor(replica.lastAckAgoMs / 1000);
  return (
    `id=${replica.id},ip=${host},port=${port},` +
    `state=${replica.connected ? 'online' : 'offline'},offset=${replica.ackedLsn},` +
    `lag=${lagSeconds},eligible=${replica.eligible ? 1 : 0},` +
    `lag_lsn=${replicaLagRecords(replica, lastLsn)}` +
    (replica.fullSync ? `,fullsync=${replica.fullSync.state}` : '') +
    (replica.fullSync ? `,fullsync_bytes=${replica.fullSync.bytesDone}` : '') +
    (replica.fullSync ? `,fullsync_total=${replica.fullSync.bytesTotal}` : '')
  );
}

function replicationLines(state: ReplicationState): Lines {
  if (state.role === 'primary') {
    const lines: Lines = [
      ['role', 'master'],
      ['syncwal_role', 'primary'],
      ['connected_slaves', state.replicas.filter((replica) => replica.connected).length],
      ['eligible_replicas', state.replicas.filter((replica) => replica.eligible).length],
    ];
    state.replicas.forEach((replica, index) => {
      lines.push([`slave${index}`, replicaLine(replica, state.lastLsn)]);
    });
    lines.push(['master_repl_offset', state.lastLsn]);
    return lines;
  }
  const [host, port] = hostPort(state.primaryAddress);
  return [
    ['role', 'slave'],
    ['syncwal_role', state.role],
    ['master_host', host],
    ['master_port', port],
    ['master_link_status', state.linkUp ? 'up' : 'down'],
    ['eligible', state.eligible ? 1 : 0],
    ['slave_repl_offset', state.lastLsn],
    ...fullSyncLines(state.fullSync ?? null),
  ];
}

/** A replica's full sync, with Redis's names where they exist. */
function fullSyncLines(sync: FullSyncView | null): Lines {
  const running = sync !== null && sync.state !== 'done' && sync.state !== 'failed';
  const lines: Lines = [['master_sync_in_progress', running ? 1 : 0]];
  if (sync === null) return lines;
  const percent = sync.bytesTotal === 0 ? 100 : (100 * sync.bytesDone) / sync.bytesTotal;
  lines.push(
    ['master_sync_state', sync.state],
    ['master_sync_total_bytes', sync.bytesTotal],
    ['master_sync_read_bytes', sync.bytesDone],
    ['master_sync_left_bytes', Math.max(0, sync.bytesTotal - sync.bytesDone)],
    ['master_sync_perc', percent.toFixed(2)],
    ['master_sync_total_keys', sync.keysTotal],
    ['master_sync_read_keys', sync.keysDone],
    ['master_sync_rate_bytes_per_sec', Math.round(sync.bytesPerSec)],
    ['master_sync_eta_ms', sync.etaMs ?? -1],
  );
  return lines;
}

function replicationSection(server: ServerContext): Lines {
  const state = replicationOf(server.backend);
  return [
    ...replicationLines(state),
    ['node_id', server.nodeId],
    ['term', state.term],
    ['primary_id', state.primaryId ?? ''],
    ['commit_lsn', state.commitLsn],
    ['last_lsn', state.lastLsn],
    ['applied_lsn', state.appliedLsn],
  ];
}

function persistenceSection(server: ServerContext): Lines {
  const info = server.backend.info();
  const checkpoint = server.lastCheckpoint;
  const lines: Lines = [
    ['loading', 0],
    ['async_loading', 0],
    ['wal_enabled', 1],
    ['log_first_lsn', info.firstLsn],
    ['log_last_lsn', info.lastLsn],
    ['commit_lsn', info.commitLsn],
    ['applied_lsn', info.appliedLsn],
    ['pending_intents', info.pending],
    ['checkpoint_lsn', info.checkpointLsn],
    ['last_checkpoint_time', checkpoint === null ? -1 : Math.floor(checkpoint.wallMs / 1000)],
    ['fenced', info.fenced === null ? 0 : 1],
  ];
  if (info.fenced !== null) lines.push(['fenced_reason', info.fenced]);
  const extra = server.backend.persistenceStats?.() ?? {};
  for (const [field, value] of Object.entries(extra)) {
    if (/^[a-z0-9_]{1,64}$/.test(field)) lines.push([field, value]);
  }
  return lines;
}

function statsSection(server: ServerContext): Lines {
  const stats = server.stats;
  const now = server.clock.monotonicMs();
  const latency = stats.commitLatency();
  return [
    ['total_connections_received', stats.connectionsReceived],
    ['total_commands_processed', stats.commandsProcessed],
    ['instantaneous_ops_per_sec', stats.opsPerSecond(now)],
    ['instantaneous_write_ops_per_sec', stats.writesPerSecond(now)],
    ['total_net_input_bytes', stats.netInputBytes],
    ['total_net_output_bytes', stats.netOutputBytes],
    ['rejected_connections', stats.connectionsRejected],
    ['keyspace_hits', stats.keyspaceHits],
    ['keyspace_misses', stats.keyspaceMisses],
    ['total_error_replies', stats.errorReplies],
    ['total_protocol_errors', stats.protocolErrors],
    ['total_writes_committed', stats.writesCommitted],
    ['commit_latency_p50_usec', latency.p50Us],
    ['commit_latency_p99_usec', latency.p99Us],
    ['commit_latency_p999_usec', latency.p999Us],
    ['commit_latency_max_usec', latency.maxUs],
  ];
}

function keyspaceSection(server: ServerContext): Lines {
  const keys = server.backend.info().keys;
  return keys === 0 ? [] : [['db0', `keys=${keys},expires=0,avg_ttl=0`]];
}

const renderers: Record<Section, (server: ServerContext) => Lines> = {
  server: serverSection,
  clients: clientsSection,
  memory: memorySection,
  replication: replicationSection,
  persistence: persistenceSection,
  stats: statsSection,
  keyspace: keyspaceSection,
};

const titles: Record<Section, string> = {
  server: 'Server',
  clients: 'Clients',
  memory: 'Memory',
  replication: 'Replication',
  persistence: 'Persistence',
  stats: 'Stats',
  keyspace: 'Keyspace',
};

/** INFO text for the named sections (lower case); empty, `default`, `all`: every section. */
export function renderInfo(server: ServerContext, requested: readonly string[]): string {
  const everything =
    requested.length === 0 ||
    requested.some((name) => name === 'all' || name === 'default' || name === 'everything');
  const chosen = infoSections.filter((section) => everything || requested.includes(section));
  const blocks = chosen.map((section) => {
    const lines = renderers[section](server).map(([field, value]) => `${field}:${value}`);
    return [`# ${titles[section]}`, ...lines].join('\r\n');
  });
  return blocks.length === 0 ? '' : `${blocks.join('\r\n\r\n')}\r\n`;
}
