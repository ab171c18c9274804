/**
 * The `fullsync` suite (issue #4, "Full sync rate"): a snapshot of 1 million keys with 100-byte
 * values sent by SnapshotSender and installed by SnapshotReceiver over the real TcpTransport on
 * 127.0.0.1, with 1 and with 4 key-range streams, and the ratio (target: 4 streams >= 2.5x one).
 *
 * Systems:
 * - `inproc-null`: both ends in this process; the replica keeps nothing (no checkpoint, no
 *   log): the transfer alone (encode, wire codec, TCP, decode, acks).
 * - `inproc-sqlite`: both ends in this process; the replica stages into the SQLite checkpoint
 *   (its worker thread), commits it and resets a real log.
 * - `procs-sqlite`: as inproc-sqlite, with the replica in a child process (its own event loop,
 *   so the two ends can use both cores).
 *
 * MB = 10^6 bytes of keys and values (no framing). CPU is user + system time of the process(es)
 * over the run, so CPU/wall shows how many cores the run kept busy.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  benchSource,
  startPrimary,
  startReplica,
  type ReplicaStore,
} from './fullsync-endpoints.js';
import {
  type BenchResult,
  formatRatio,
  printReport,
  progress,
  withTemporaryDirectory,
} from './lib.js';
import type { SuiteOptions } from './log.js';
import type { SnapshotSource } from '../src/engine/full-sync-source.js';

const keysFull = 1_000_000;
const keysQuick = 100_000;
const valueBytes = 100;
const streamCounts = [1, 4] as const;

interface FullSyncSystem {
  name: string;
  store: ReplicaStore;
  process: 'same' | 'child';
}

const systems: readonly FullSyncSystem[] = [
  { name: 'inproc-null', store: 'null', process: 'same' },
  { name: 'inproc-sqlite', store: 'sqlite', process: 'same' },
  { name: 'procs-sqlite', store: 'sqlite', process: 'child' },
];

interface Run {
  system: string;
  streams: number;
  seconds: number;
  mbPerSec: number;
  keysPerSec: number;
  cpuSeconds: number;
  retransmits: number;
}

async function runInProcess(system: FullSyncSystem, source: SnapshotSource, streams: number) {
  return withTemporaryDirectory(`fullsync-${system.name}`, async (dir) => {
    const primary = await startPrimary();
    const replica = await startReplica({ dir, store: system.store, primaryPort: primary.port });
    primary.transport.setPeers([{ id: 'replica', host: '127.0.0.1', port: replica.port }]);
    try {
      const cpu = process.cpuUsage();
      const sent = await primary.send(source, streams);
      await replica.installed;
      const used = process.cpuUsage(cpu);
      return { ...sent, cpuMs: (used.user + used.system) / 1000 };
    } finally {
      await replica.close();
      await primary.close();
    }
  });
}

async function runTwoProcesses(system: FullSyncSystem, source: SnapshotSource, streams: number) {
  return withTemporaryDirectory(`fullsync-${system.name}`, async (dir) => {
    const primary = await startPrimary();
    const script = fileURLToPath(new URL('./fullsync-replica.ts', import.meta.url));
    const argument = JSON.stringify({ dir, store: system.store, primaryPort: primary.port });
    const child = spawn(process.execPath, ['--import', 'tsx', script, argument], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => {
      const line = await lines.next();
      if (line.done === true) throw new Error('the replica process ended early');
      return JSON.parse(line.value) as { port?: number; cpuMs?: number };
    };
    try {
      const { port } = await next();
      primary.transport.setPeers([{ id: 'replica', host: '127.0.0.1', port: port ?? 0 }]);
      const cpu = process.cpuUsage();
      const sent = await primary.send(source, streams);
      const used = process.cpuUsage(cpu);
      const { cpuMs } = await next();
      return { ...sent, cpuMs: (used.user + used.system) / 1000 + (cpuMs ?? 0) };
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
      await primary.close();
    }
  });
}

async function measure(system: FullSyncSystem, source: SnapshotSource, streams: number) {
  const run = system.process === 'same' ? runInProcess : runTwoProcesses;
  const { elapsedMs, retransmits, cpuMs } = await run(system, source, streams);
  const seconds = elapsedMs / 1000;
  return {
    system: system.name,
    streams,
    seconds,
    mbPerSec: source.bytes / 1e6 / seconds,
    keysPerSec: source.keys / seconds,
    cpuSeconds: cpuMs / 1000,
    retransmits,
  };
}

function formatRun(run: Run): string {
  const cell = (value: number, digits: number) =>
    value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return (
    `${run.system.padEnd(14)} streams=${run.streams}  ${cell(run.seconds, 2).padStart(6)} s  ` +
    `${cell(run.mbPerSec, 1).padStart(7)} MB/s  ${cell(run.keysPerSec, 0).padStart(9)} keys/s  ` +
    `cpu ${cell(run.cpuSeconds, 2)} s (${cell(run.cpuSeconds / run.seconds, 2)} cores)  ` +
    `retransmits ${run.retransmits}`
  );
}

/** Runs the suite and prints its report; resolves with the process exit code. */
export async function runFullSyncSuite(options: SuiteOptions): Promise<number> {
  const known = systems.map((system) => system.name);
  const unknown = (options.systems ?? []).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    progress(`fullsync: unknown system(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
    return 64;
  }
  const selected = systems.filter(
    (system) => options.systems === null || options.systems.includes(system.name),
  );
  const keys = options.quick ? keysQuick : keysFull;
  progress(`fullsync: building a snapshot of ${keys} keys ...`);
  const source = benchSource(keys, valueBytes);
  const runs: Run[] = [];
  const failures: string[] = [];
  for (const system of selected) {
    for (const streams of streamCounts) {
      progress(`fullsync: ${system.name} streams=${streams} ...`);
      try {
        runs.push(await measure(system, source, streams));
      } catch (error: unknown) {
        const message = error instanceof Error ? error.message : String(error);
        failures.push(`${system.name} streams=${streams}: FAILED: ${message}`);
      }
    }
  }
  const ratios = selected.flatMap((system) => {
    const one = runs.find((run) => run.system === system.name && run.streams === 1);
    const four = runs.find((run) => run.system === system.name && run.streams === 4);
    if (one === undefined || four === undefined) return [];
    const label = `${system.name}: 4 streams / 1 stream (MB/s)`;
    return [
      formatRatio({ label, numerator: four.mbPerSec, denominator: one.mbPerSec, targetMin: 2.5 }),
    ];
  });
  const results: BenchResult[] = runs.map((run) => ({
    system: `${run.system}`,
    concurrency: run.streams,
    opsPerSec: run.keysPerSec,
    p50Ms: 0,
    p99Ms: 0,
    recordsPerSync: 0,
  }));
  const lines = [
    `fullsync: ${keys.toLocaleString('en-US')} keys of 13 bytes, ${valueBytes}-byte values ` +
      `(${(source.bytes / 1e6).toFixed(1)} MB); rows: ops/s = keys/s, c = streams`,
    '',
    ...runs.map(formatRun),
    '',
    ...ratios,
    ...failures,
  ];
  const report = { bench: 'fullsync', results, figures: { runs } };
  printReport(report, lines, options);
  return failures.length > 0 ? 1 : 0;
}
