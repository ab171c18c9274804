/**
 * The `replication` suite (issue #4, "Performance"): committed 100-byte writes per second and
 * their p50/p99 latency at 1, 16 and 256 in flight, through RESP, against
 *
 * - `single`: one `syncwal serve` process (the single-node engine);
 * - `3node-quorum`: three `syncwal serve` processes on 127.0.0.1, n1 the fixed primary,
 *   `--acks quorum` (a write is OK once durable on the primary and one replica);
 * - `3node-all`: the same with `--acks all` (durable on every eligible replica; the run starts
 *   only once both replicas are eligible).
 *
 * Every system gets the same client (replication-client.ts: ioredis, min(C, 16) connections,
 * the rest pipelined) in the same run, so the ratios compare like with like. PING and GET rows
 * at the highest concurrency are the client + RESP ceiling. The CPU column gives the cores each
 * process kept busy: the client (this process), then n1 (the primary), n2, n3; `server us/op`
 * divides the servers' CPU by the writes, the cost that bounds throughput when the host's cores
 * are busy (at c=1 it is mostly idle overhead: timers and heartbeats over few writes).
 */
import {
  type Budget,
  budgetQuick,
  formatRatio,
  formatTarget,
  progress,
  withTemporaryDirectory,
} from './lib.js';
import type { SuiteOptions } from './log.js';
import { connectionsMax, type Operation, runLoad } from './replication-client.js';
import { startShard, startSingleNode, type Target } from './server-procs.js';
import {
  cpuMicrosPerOperation,
  formatColumns,
  formatCores,
  formatNumber,
  formatUnder,
  loadAverage,
  printSuiteReport,
} from './server-report.js';

const valueBytes = 100;
const concurrencyLevels = [1, 16, 256] as const;
const ceilingConcurrency = 256;
const budgetFull: Budget = { durationMs: 3_000, operationsMax: 2_000_000, warmupMs: 500 };

interface System {
  name: string;
  start: (dir: string) => Promise<Target>;
}

const systems: readonly System[] = [
  { name: 'single', start: startSingleNode },
  { name: '3node-quorum', start: (dir) => startShard(dir, 'quorum') },
  { name: '3node-all', start: (dir) => startShard(dir, 'all') },
];

export interface Row {
  system: string;
  operation: Operation;
  concurrency: number;
  connections: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Cores busy during the row: the client, then each server process. */
  cores: number[];
}

/** The rows one system runs: SET at every level, then the PING and GET ceiling. */
function plan(): { operation: Operation; concurrency: number }[] {
  return [
    ...concurrencyLevels.map((concurrency) => ({ operation: 'set' as const, concurrency })),
    { operation: 'ping', concurrency: ceilingConcurrency },
    { operation: 'get', concurrency: ceilingConcurrency },
  ];
}

async function runSystem(system: System, budget: Budget): Promise<Row[]> {
  return withTemporaryDirectory(`replication-${system.name}`, async (dir) => {
    progress(`replication: starting ${system.name} ...`);
    const target = await system.start(dir);
    const rows: Row[] = [];
    try {
      for (const { operation, concurrency } of plan()) {
        progress(`replication: ${system.name} ${operation.toUpperCase()} c=${concurrency} ...`);
        const run = { operation, concurrency, budget, valueBytes };
        const measured = await runLoad(target, run);
        rows.push({
          system: system.name,
          operation,
          concurrency,
          connections: measured.connections,
          opsPerSec: measured.opsPerSec,
          p50Ms: measured.p50Ms,
          p99Ms: measured.p99Ms,
          cores: [measured.clientCores, ...measured.childCores],
        });
      }
    } finally {
      await target.stop();
    }
    return rows;
  });
}

function find(rows: readonly Row[], system: string, operation: Operation, concurrency: number) {
  return rows.find(
    (row) =>
      row.system === system && row.operation === operation && row.concurrency === concurrency,
  );
}

function table(rows: readonly Row[]): string {
  const header = ['system', 'op', 'c', 'conns', 'ops/s', 'p50 ms', 'p99 ms', 'cpu cores'];
  header.push('server us/op');
  return formatColumns(
    header,
    rows.map((row) => [
      row.system,
      row.operation.toUpperCase(),
      String(row.concurrency),
      String(row.connections),
      formatNumber(row.opsPerSec, 0),
      formatNumber(row.p50Ms, 3),
      formatNumber(row.p99Ms, 3),
      formatCores(row.cores),
      formatNumber(cpuMicrosPerOperation(row.cores.slice(1), row.opsPerSec), 0),
    ]),
  );
}

function ratioLines(rows: readonly Row[]): string[] {
  const lines: string[] = [];
  for (const system of ['3node-quorum', '3node-all']) {
    for (const concurrency of concurrencyLevels) {
      const replicated = find(rows, system, 'set', concurrency);
      const single = find(rows, 'single', 'set', concurrency);
      if (replicated === undefined || single === undefined) continue;
      const label = `${system} / single SET at c=${concurrency}`;
      const targetMin = system === '3node-quorum' && concurrency === 256 ? 0.5 : undefined;
      lines.push(
        formatRatio({
          label: targetMin === undefined ? `${label} (no target)` : label,
          numerator: replicated.opsPerSec,
          denominator: single.opsPerSec,
          ...(targetMin === undefined ? {} : { targetMin }),
        }),
      );
    }
  }
  return lines;
}

function targetLines(rows: readonly Row[]): string[] {
  const lines: string[] = [];
  const quorum256 = find(rows, '3node-quorum', 'set', 256);
  if (quorum256 !== undefined) {
    lines.push(formatTarget('3node-quorum SET writes/s at c=256', quorum256.opsPerSec, 50_000));
  }
  const quorum16 = find(rows, '3node-quorum', 'set', 16);
  if (quorum16 !== undefined) {
    lines.push(formatUnder('3node-quorum SET p99 at c=16', quorum16.p99Ms, 5));
  }
  const all16 = find(rows, '3node-all', 'set', 16);
  if (all16 !== undefined) {
    lines.push(`3node-all SET p99 at c=16 (no target): ${formatNumber(all16.p99Ms, 2)} ms`);
  }
  return lines;
}

/** Server CPU per committed write at c=256, the cost that bounds throughput on a busy host. */
function cpuLines(rows: readonly Row[]): string[] {
  const single = find(rows, 'single', 'set', ceilingConcurrency);
  const base =
    single === undefined ? null : cpuMicrosPerOperation(single.cores.slice(1), single.opsPerSec);
  return systems.flatMap((system) => {
    const row = find(rows, system.name, 'set', ceilingConcurrency);
    if (row === undefined) return [];
    const perProcess = row.cores
      .slice(1)
      .map((cores) => cpuMicrosPerOperation([cores], row.opsPerSec));
    const total = cpuMicrosPerOperation(row.cores.slice(1), row.opsPerSec);
    const relative =
      base === null || system.name === 'single'
        ? ''
        : ` (${formatNumber(total / base, 1)}x single)`;
    return [
      `${system.name} server CPU per SET at c=${ceilingConcurrency}: ${formatNumber(total, 0)} us` +
        `${relative}; by process ${perProcess.map((value) => formatNumber(value, 0)).join('/')} us`,
    ];
  });
}

/** How close each system's SET rows come to its own PING and GET ceiling. */
function ceilingLines(rows: readonly Row[]): string[] {
  return systems.flatMap((system) => {
    const set = find(rows, system.name, 'set', ceilingConcurrency);
    const ping = find(rows, system.name, 'ping', ceilingConcurrency);
    const get = find(rows, system.name, 'get', ceilingConcurrency);
    if (set === undefined || ping === undefined || get === undefined) return [];
    return [
      `${system.name} c=${ceilingConcurrency}: SET ${formatNumber(set.opsPerSec, 0)}/s is ` +
        `${formatNumber(set.opsPerSec / ping.opsPerSec, 2)}x PING ` +
        `(${formatNumber(ping.opsPerSec, 0)}/s) and ` +
        `${formatNumber(set.opsPerSec / get.opsPerSec, 2)}x GET ` +
        `(${formatNumber(get.opsPerSec, 0)}/s) by the same client`,
    ];
  });
}

/** Runs the suite and prints its report; resolves with the process exit code. */
export async function runReplicationSuite(options: SuiteOptions): Promise<number> {
  const known = systems.map((system) => system.name);
  const unknown = (options.systems ?? []).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    progress(`replication: unknown system(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
    return 64;
  }
  const selected = systems.filter(
    (system) => options.systems === null || options.systems.includes(system.name),
  );
  const budget = options.quick ? budgetQuick : budgetFull;
  const loadAtStart = loadAverage();
  const rows: Row[] = [];
  const failures: string[] = [];
  for (const system of selected) {
    try {
      rows.push(...(await runSystem(system, budget)));
    } catch (error: unknown) {
      const message = error instanceof Error ? error.message : String(error);
      failures.push(`${system.name}: FAILED: ${message}`);
    }
  }
  const loadAtEnd = loadAverage();
  const lines = [
    `${valueBytes}-byte values; client: ioredis, min(c, ${connectionsMax}) connections, ` +
      'the rest pipelined; cpu cores: client/n1/n2/n3; server us/op: CPU of n1..n3 per op',
    `load average (1/5/15 min): ${loadAtStart} at the start, ${loadAtEnd} at the end`,
    '',
    ...ceilingLines(rows),
    ...cpuLines(rows),
    '',
    ...ratioLines(rows),
    '',
    ...targetLines(rows),
    ...failures,
  ];
  const figures = { load: { start: loadAtStart, end: loadAtEnd }, failures };
  printSuiteReport({ bench: 'replication', results: rows, figures }, table(rows), lines, options);
  return failures.length > 0 ? 1 : 0;
}
