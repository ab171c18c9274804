/**
 * The `server` suite (issue #6, "Performance"): redis-benchmark (from redis-tools) against
 *
 * - `single`: one `syncwal serve` process;
 * - `3node-quorum`: a 3-node shard on 127.0.0.1, `--acks quorum`, clients on the primary;
 * - `redis-aof-always`: redis-server with `appendonly yes`, `appendfsync always`, what a user
 *   would pick instead for durable writes (skipped with a notice when it is not installed).
 *
 * Tests: SET and GET, 50 clients, pipeline 1 and 16, 100-byte values, random keys out of
 * 100,000. Each test first runs a short probe (also the warm-up) and then enough requests for
 * about three seconds at the probe's rate; `--quick` keeps only the probe. Figures come from
 * redis-benchmark's `--csv` output; the cpu column is the cores each server process kept busy.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { progress, withTemporaryDirectory } from './lib.js';
import type { SuiteOptions } from './log.js';
import {
  cpuSecondsOf,
  findExecutable,
  startRedisAof,
  startShard,
  startSingleNode,
  type Target,
} from './server-procs.js';
import {
  cpuMicrosPerOperation,
  formatColumns,
  formatCores,
  formatNumber,
  loadAverage,
  printSuiteReport,
} from './server-report.js';
import { formatRatio } from './lib.js';

const clients = 50;
const pipelines = [1, 16] as const;
const tests = ['set', 'get'] as const;
const valueBytes = 100;
const keySpace = 100_000;
const secondsFull = 3;
const requestsMax = 3_000_000;

type Test = (typeof tests)[number];

interface System {
  name: string;
  start: (dir: string, redisServer: string | null) => Promise<Target>;
}

const systems: readonly System[] = [
  { name: 'single', start: (dir) => startSingleNode(dir) },
  { name: '3node-quorum', start: (dir) => startShard(dir, 'quorum') },
  {
    name: 'redis-aof-always',
    start: (dir, redisServer) => {
      if (redisServer === null) throw new Error('redis-server is not installed');
      return startRedisAof(dir, redisServer);
    },
  },
];

export interface Row {
  system: string;
  test: Test;
  pipeline: number;
  clients: number;
  requests: number;
  rps: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
  /** Cores busy during the measured redis-benchmark run, by server process. */
  cores: number[];
}

interface BenchmarkOutput {
  rps: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
}

/** Parses `redis-benchmark --csv` output: a quoted header line, then one line per test. */
export function parseCsv(text: string): BenchmarkOutput {
  const lines = text.split('\n').filter((line) => line.startsWith('"'));
  const split = (line: string): string[] => line.split(',').map((cell) => cell.replace(/"/g, ''));
  const header = split(lines[0] ?? '');
  const values = split(lines[1] ?? '');
  const column = (name: string): number => {
    const index = header.indexOf(name);
    const value = index < 0 ? Number.NaN : Number(values[index]);
    if (!Number.isFinite(value)) throw new Error(`redis-benchmark output has no ${name}: ${text}`);
    return value;
  };
  return {
    rps: column('rps'),
    avgMs: column('avg_latency_ms'),
    p50Ms: column('p50_latency_ms'),
    p99Ms: column('p99_latency_ms'),
  };
}

async function redisBenchmark(port: number, test: Test, pipeline: number, requests: number) {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-c', String(clients)];
  args.push('-n', String(requests), '-P', String(pipeline), '-d', String(valueBytes));
  args.push('-r', String(keySpace), '-t', test, '--csv');
  const child = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`redis-benchmark exited with ${code}: ${stderr.trim()}`);
  return parseCsv(stdout);
}

/**
 * One test: a probe (the warm-up, and the rate that sizes the run), then about `secondsFull`
 * seconds at the probe's rate; `--quick` runs only a probe-sized run.
 */
async function runTest(target: Target, test: Test, pipeline: number, quick: boolean) {
  const probeRequests = clients * pipeline * (quick ? 20 : 40);
  let requests = probeRequests;
  if (!quick) {
    const probe = await redisBenchmark(target.port, test, pipeline, probeRequests);
    const wanted = Math.round(probe.rps * secondsFull);
    requests = Math.min(requestsMax, Math.max(probeRequests, wanted));
  }
  const before = target.children.map((child) => cpuSecondsOf(child.pid));
  const startedMs = performance.now();
  const output = await redisBenchmark(target.port, test, pipeline, requests);
  const seconds = (performance.now() - startedMs) / 1000;
  const cores = target.children.map(
    (child, index) => (cpuSecondsOf(child.pid) - before[index]!) / seconds,
  );
  return { requests, output, cores };
}

async function runSystem(system: System, redisServer: string | null, quick: boolean) {
  return withTemporaryDirectory(`server-${system.name}`, async (dir) => {
    progress(`server: starting ${system.name} ...`);
    const target = await system.start(dir, redisServer);
    const rows: Row[] = [];
    try {
      for (const pipeline of pipelines) {
        for (const test of tests) {
          progress(`server: ${system.name} ${test.toUpperCase()} -P ${pipeline} ...`);
          const { requests, output, cores } = await runTest(target, test, pipeline, quick);
          rows.push({ system: system.name, test, pipeline, clients, requests, ...output, cores });
        }
      }
    } finally {
      await target.stop();
    }
    return rows;
  });
}

function table(rows: readonly Row[]): string {
  const header = ['system', 'test', 'P', 'requests', 'rps', 'avg ms', 'p50 ms', 'p99 ms'];
  header.push('cpu cores', 'cpu us/req');
  return formatColumns(
    header,
    rows.map((row) => [
      row.system,
      row.test.toUpperCase(),
      String(row.pipeline),
      String(row.requests),
      formatNumber(row.rps, 0),
      formatNumber(row.avgMs, 3),
      formatNumber(row.p50Ms, 3),
      formatNumber(row.p99Ms, 3),
      formatCores(row.cores),
      formatNumber(cpuMicrosPerOperation(row.cores, row.rps), 0),
    ]),
  );
}

function targetLines(rows: readonly Row[]): string[] {
  const find = (system: string, pipeline: number) =>
    rows.find((row) => row.system === system && row.test === 'set' && row.pipeline === pipeline);
  return pipelines.flatMap((pipeline) => {
    const redis = find('redis-aof-always', pipeline);
    if (redis === undefined) return [];
    const lines: string[] = [];
    const single = find('single', pipeline);
    const shard = find('3node-quorum', pipeline);
    if (single !== undefined) {
      const label = `single / redis-aof-always SET at -P ${pipeline}`;
      lines.push(
        formatRatio({ label, numerator: single.rps, denominator: redis.rps, targetMin: 1 }),
      );
    }
    if (shard !== undefined) {
      const label = `3node-quorum / redis-aof-always SET at -P ${pipeline}`;
      lines.push(
        formatRatio({ label, numerator: shard.rps, denominator: redis.rps, targetMin: 0.5 }),
      );
    }
    return lines;
  });
}

/** Runs the suite and prints its report; resolves with the process exit code. */
export async function runServerSuite(options: SuiteOptions): Promise<number> {
  const known = systems.map((system) => system.name);
  const unknown = (options.systems ?? []).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    progress(`server: unknown system(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
    return 64;
  }
  if ((await findExecutable('redis-benchmark')) === null) {
    progress('server: redis-benchmark is not installed (Debian: apt-get install redis-tools)');
    return 1;
  }
  const redisServer = await findExecutable('redis-server');
  const notices: string[] = [];
  const selected = systems.filter((system) => {
    if (options.systems !== null && !options.systems.includes(system.name)) return false;
    if (system.name !== 'redis-aof-always' || redisServer !== null) return true;
    notices.push(
      'redis-server is not installed: redis-aof-always skipped, no target verdicts ' +
        '(Debian: apt-get install redis-server)',
    );
    return false;
  });
  for (const notice of notices) progress(`server: ${notice}`);
  const loadAtStart = loadAverage();
  const rows: Row[] = [];
  const failures: string[] = [];
  for (const system of selected) {
    try {
      rows.push(...(await runSystem(system, redisServer, options.quick)));
    } catch (error: unknown) {
      const message = error instanceof Error ? error.message : String(error);
      failures.push(`${system.name}: FAILED: ${message}`);
    }
  }
  const loadAtEnd = loadAverage();
  const lines = [
    `redis-benchmark -c ${clients} -d ${valueBytes} -r ${keySpace} -t set|get -P 1|16 --csv; ` +
      'cpu cores: per server process (3node: n1/n2/n3); cpu us/req: all of them per request',
    `load average (1/5/15 min): ${loadAtStart} at the start, ${loadAtEnd} at the end`,
    ...notices,
    '',
    ...targetLines(rows),
    ...failures,
  ];
  const figures = { load: { start: loadAtStart, end: loadAtEnd }, notices, failures };
  printSuiteReport({ bench: 'server', results: rows, figures }, table(rows), lines, options);
  return failures.length > 0 ? 1 : 0;
}
