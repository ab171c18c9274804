import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { assert } from '../core/assert.js';
import { replicationOf, type BackendInfo, type ReplicationState } from './backend.js';
import type { ServerContext } from './context.js';
import { replicaLagRecords } from './info.js';
import type { LogIoObserver, LogWriteSample } from './metrics-disk.js';
import { BucketHistogram } from './metrics-histogram.js';
import type { CounterName } from './stats.js';

/**
 * The node's metrics in the Prometheus text format (what `GET /metrics` serves), built with
 * prom-client on a registry of its own (never the library's global one).
 *
 * Sources, all read at scrape time from one snapshot except the histograms:
 * - the node (`backend.info()` and the replication hook, as INFO replication reads them): role,
 *   term, LSNs, replicas with their lag, eligibility and acked LSN;
 * - the server's counters (`ServerStats.totals()`, calls per command): counters that only go
 *   up, CONFIG RESETSTAT notwithstanding;
 * - histograms observed as things happen: commit latency (each committed write, from
 *   `ServerStats.watchWrites`), and the log's fdatasync latency and group-commit sizes (from
 *   the `MeasuredDisk` the node runs on, through `logIo`). These are `BucketHistogram`s, not
 *   prom-client's (see metrics-histogram.ts for the measured reason), appended to the text;
 * - process metrics: prom-client's default set (CPU, memory, event loop lag, GC, handles).
 *
 * Every label takes values from a bounded set: command names from the command table (plus
 * `unknown`), replica ids from the shard's membership, roles from three values.
 */

/** Commit latency buckets (seconds): from a fast local fsync to the commit timeout range. */
const commitLatencyBuckets = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** fdatasync latency buckets (seconds): from a write-cache hit to a stalled device. */
const fsyncLatencyBuckets = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];
/** Intents per group-commit write: powers of two up to the log's 65,536-record batch bound. */
const intentsBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536];
/** Bytes per group-commit write, up to the log's 8 MiB write bound. */
const writeBytesBuckets = [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 8388608];

const roles = ['primary', 'replica', 'candidate'] as const;

/** Server counters exported as Prometheus counters: metric name, help, ServerStats field. */
const serverCounters: readonly [string, string, CounterName][] = [
  ['syncwal_connections_received_total', 'Client connections accepted', 'connectionsReceived'],
  [
    'syncwal_connections_rejected_total',
    'Client connections refused (max clients)',
    'connectionsRejected',
  ],
  ['syncwal_error_replies_total', 'Error replies sent to clients', 'errorReplies'],
  [
    'syncwal_protocol_errors_total',
    'Client connections closed for a protocol error',
    'protocolErrors',
  ],
  ['syncwal_writes_committed_total', 'Write commands answered with success', 'writesCommitted'],
  ['syncwal_net_input_bytes_total', 'Bytes read from clients', 'netInputBytes'],
  ['syncwal_net_output_bytes_total', 'Bytes written to clients', 'netOutputBytes'],
  ['syncwal_keyspace_hits_total', 'GET lookups that found the key', 'keyspaceHits'],
  ['syncwal_keyspace_misses_total', 'GET lookups that did not find the key', 'keyspaceMisses'],
];

/** What one scrape reads from the node, once. */
interface Snapshot {
  state: ReplicationState;
  info: BackendInfo;
}

/** Node gauges without labels: metric name, help, how to read it from the snapshot. */
const nodeGauges: readonly [string, string, (snapshot: Snapshot) => number][] = [
  ['syncwal_term', 'Current term', ({ state }) => state.term],
  ['syncwal_commit_lsn', 'Commit point: the highest committed LSN', ({ state }) => state.commitLsn],
  ['syncwal_last_lsn', 'Last LSN in the local log', ({ state }) => state.lastLsn],
  ['syncwal_applied_lsn', 'Highest LSN applied to memory', ({ state }) => state.appliedLsn],
  ['syncwal_first_lsn', 'First LSN still in the local log', ({ info }) => info.firstLsn],
  ['syncwal_checkpoint_lsn', 'LSN of the last checkpoint', ({ info }) => info.checkpointLsn],
  ['syncwal_pending_intents', 'Logged intents waiting for commit', ({ info }) => info.pending],
  ['syncwal_keys', 'Keys in the committed state', ({ info }) => info.keys],
  [
    'syncwal_fenced',
    '1 if the node fenced itself after an I/O failure (it refuses writes)',
    ({ info }) => (info.fenced === null ? 0 : 1),
  ],
  [
    'syncwal_primary_link_up',
    'Replica: 1 if its link to the primary is up (a primary: 1)',
    ({ state }) => (state.linkUp ? 1 : 0),
  ],
  [
    'syncwal_eligible',
    'Replica: 1 if the primary counts it eligible (a primary: 1)',
    ({ state }) => (state.eligible ? 1 : 0),
  ],
  [
    'syncwal_replicas_connected',
    'Primary: replicas connected',
    ({ state }) => state.replicas.filter((replica) => replica.connected).length,
  ],
  [
    'syncwal_replicas_eligible',
    'Primary: replicas eligible (they count for acks=all)',
    ({ state }) => state.replicas.filter((replica) => replica.eligible).length,
  ],
];

/** Per-replica gauges (label `replica`), read on the primary. */
const replicaGauges: readonly [
  string,
  string,
  (snapshot: Snapshot, index: number) => number | null,
][] = [
  [
    'syncwal_replica_connected',
    '1 if the replica is connected',
    ({ state }, index) => (state.replicas[index]!.connected ? 1 : 0),
  ],
  [
    'syncwal_replica_eligible',
    '1 if the replica is eligible',
    ({ state }, index) => (state.replicas[index]!.eligible ? 1 : 0),
  ],
  [
    'syncwal_replica_acked_lsn',
    'Highest LSN the replica reported durable',
    ({ state }, index) => state.replicas[index]!.ackedLsn,
  ],
  [
    'syncwal_replica_lag_records',
    'Records the replica is behind the primary log (last LSN minus acked LSN)',
    ({ state }, index) => replicaLagRecords(state.replicas[index]!, state.lastLsn),
  ],
  [
    'syncwal_replica_lag_seconds',
    'Seconds since the replica last acknowledged (absent until its first ack)',
    ({ state }, index) => {
      const ageMs = state.replicas[index]!.lastAckAgoMs;
      return ageMs === null ? null : ageMs / 1000;
    },
  ],
];

export interface SyncwalMetricsOptions {
  /** Include prom-client's process and Node.js runtime metrics (default true). */
  processMetrics?: boolean;
}

export class SyncwalMetrics {
  readonly registry = new Registry();
  /** The observer the node's `MeasuredDisk` reports the log's writes and fdatasyncs to. */
  readonly logIo: LogIoObserver;
  readonly #commitLatency = new BucketHistogram({
    name: 'syncwal_commit_latency_seconds',
    help: 'From the server starting a write command to its commit (successful writes)',
    buckets: commitLatencyBuckets,
  });
  readonly #fsyncLatency = new BucketHistogram({
    name: 'syncwal_log_fsync_seconds',
    help: 'fdatasync of the active log segment (every group-commit write makes one)',
    buckets: fsyncLatencyBuckets,
  });
  readonly #writeIntents = new BucketHistogram({
    name: 'syncwal_log_write_intents',
    help: 'INTENT records (atomic writes) per group-commit log write: sharing one fdatasync',
    buckets: intentsBuckets,
  });
  readonly #writeBytes = new BucketHistogram({
    name: 'syncwal_log_write_bytes',
    help: 'Bytes per group-commit log write',
    buckets: writeBytesBuckets,
  });
  #recordsWritten = 0;
  readonly #updates: (() => void)[] = [];
  #server: ServerContext | null = null;
  #stopWatching: (() => void) | null = null;
  /** Scrapes run one at a time, so each renders one consistent snapshot. */
  #scrapes: Promise<unknown> = Promise.resolve();

  constructor(options: SyncwalMetricsOptions = {}) {
    this.logIo = {
      logWrite: (sample: LogWriteSample) => {
        this.#writeIntents.observe(sample.intents);
        this.#writeBytes.observe(sample.bytes);
        this.#recordsWritten += sample.records;
      },
      logSync: (seconds: number) => this.#fsyncLatency.observe(seconds),
    };
    const records = new Counter({
      name: 'syncwal_log_records_written_total',
      help: 'Log records written (INTENT, COMMIT, ABORT, TERM, CHECKPOINT)',
      registers: [this.registry],
    });
    this.#updates.push(() => {
      records.reset();
      records.inc(this.#recordsWritten);
    });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Starts reporting on a server (once): its node, counters and committed writes. */
  attach(server: ServerContext): void {
    assert(this.#server === null, 'metrics are attached to one server');
    this.#server = server;
    this.#stopWatching = server.stats.watchWrites((latencyMs) => {
      this.#commitLatency.observe(latencyMs / 1000);
    });
    this.#defineNodeMetrics(server);
    this.#defineServerMetrics(server);
  }

  /** Stops observing the server's writes (the endpoint closed). */
  detach(): void {
    this.#stopWatching?.();
    this.#stopWatching = null;
  }

  #gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  #defineNodeMetrics(server: ServerContext): void {
    const info = this.#gauge('syncwal_info', 'Constant 1, labelled with the node', [
      'node_id',
      'version',
    ]);
    info.set({ node_id: server.nodeId, version: server.version }, 1);
    const role = this.#gauge('syncwal_role', '1 for the role this node has, 0 for the others', [
      'role',
    ]);
    const plain = nodeGauges.map(([name, help, read]) => ({
      gauge: this.#gauge(name, help),
      read,
    }));
    const perReplica = replicaGauges.map(([name, help, read]) => ({
      gauge: this.#gauge(name, help, ['replica']),
      read,
    }));
    this.#updates.push(() => {
      const snapshot: Snapshot = {
        state: replicationOf(server.backend),
        info: server.backend.info(),
      };
      for (const each of roles) role.set({ role: each }, snapshot.state.role === each ? 1 : 0);
      for (const { gauge, read } of plain) gauge.set(read(snapshot));
      for (const { gauge, read } of perReplica) {
        // Replicas come and go with the connection state: only the current ones are shown.
        gauge.reset();
        snapshot.state.replicas.forEach((replica, index) => {
          const value = read(snapshot, index);
          if (value !== null) gauge.set({ replica: replica.id }, value);
        });
      }
    });
  }

  #defineServerMetrics(server: ServerContext): void {
    const registers = [this.registry];
    const clients = this.#gauge('syncwal_connected_clients', 'Client connections open');
    const counters = serverCounters.map(([name, help, field]) => ({
      counter: new Counter({ name, help, registers }),
      field,
    }));
    const commands = new Counter({
      name: 'syncwal_commands_total',
      help: 'Commands run, by command (unknown: unknown commands and wrong arities)',
      labelNames: ['command'],
      registers,
    });
    this.#updates.push(() => {
      clients.set(server.clients.size);
      const totals = server.stats.totals();
      // A counter mirrors a total kept elsewhere: reset, then add the total.
      for (const { counter, field } of counters) {
        counter.reset();
        counter.inc(totals[field]);
      }
      commands.reset();
      for (const [command, calls] of server.stats.commandCalls()) {
        commands.inc({ command }, calls);
      }
    });
  }

  /** The exposition text and its content type, from the state at this moment. */
  render(): Promise<{ contentType: string; text: string }> {
    const scrape = this.#scrapes.then(async () => {
      for (const update of this.#updates) update();
      const histograms = [
        this.#commitLatency,
        this.#fsyncLatency,
        this.#writeIntents,
        this.#writeBytes,
      ].map((histogram) => histogram.render());
      // prom-client ends its text with one newline; metrics are separated by a blank line.
      const text = `${await this.registry.metrics()}\n${histograms.join('\n\n')}\n`;
      return { contentType: this.registry.contentType, text };
    });
    this.#scrapes = scrape.catch(() => undefined);
    return scrape;
  }
}
