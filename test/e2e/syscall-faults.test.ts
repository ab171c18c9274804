/**
 * Syscall fault injection on a real writer process (RELIABILITY.md §3.1 L3): fdatasync fails
 * with EIO in the middle of a run of acknowledged writes. The node must fence (writes waiting
 * get UNKNOWN, new writes IOERR), must never acknowledge a write the failed fdatasync covered
 * or any later one, and after a restart without the fault it must open cleanly with every
 * acknowledged write committed at the LSN it was acknowledged with.
 *
 * - strace: `-e inject=fdatasync:error=EIO:when=N` fails the Nth fdatasync of each thread. With
 *   the default synchronous disk I/O the log's fdatasyncs run on the main thread (only segment
 *   preallocation syncs on libuv pool threads, a few times each), so N counts the log's syncs;
 *   the test checks in strace's own output that the injected failure is the main thread's Nth.
 * - libfiu: `fiu-run -x` preloads libfiu; after some acks `fiu-ctrl` enables the fdatasync
 *   failure point in the running process, which works whatever thread calls it, so it also
 *   covers `NodeDisk({ io: 'async' })`, whose fdatasyncs run on pool threads.
 *
 * Each test skips with a notice when its tool is missing (.ci/run installs strace and
 * fiu-utils). SQLite's checkpoint store is left out (checkpoints off): it syncs with fsync on
 * its own thread, and this file is about the log.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../src/sim/random.js';
import {
  History,
  WriterProcess,
  prepareWriter,
  removeTemporary,
  stopAllWriters,
  type OpenReport,
  type PreparedWriter,
  type Report,
} from './harness.js';

const baseSeed = Number(process.env.E2E_SEED ?? 20_260_612);

/** True if `name` is an executable on PATH. */
function hasTool(name: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      // Not in this directory; try the next one.
    }
  }
  return false;
}

const hasStrace = hasTool('strace');
const hasFiu = hasTool('fiu-run') && hasTool('fiu-ctrl');
if (!hasStrace) console.log('e2e syscall faults: notice: strace not found, its test is skipped');
if (!hasFiu) console.log('e2e syscall faults: notice: fiu-run/fiu-ctrl not found, skipped');

let prepared: PreparedWriter;
let scratch: string;

beforeAll(async () => {
  prepared = await prepareWriter();
  scratch = mkdtempSync(join(tmpdir(), 'syncwal-e2e-faults-'));
});

afterAll(async () => {
  await stopAllWriters();
  if (prepared !== undefined) removeTemporary(prepared.root);
  if (scratch !== undefined) removeTemporary(scratch);
});

/** The writer's arguments for one faulty run: checkpoints off, two failures per writer. */
function writerArgs(dir: string, seed: number, extra: readonly string[]): string[] {
  return [
    prepared.script,
    dir,
    String(seed),
    ...['--life', 'L0', '--report-fd', '3', '--checkpoint-bytes', '0', '--errors-max', '2'],
    ...['--seconds', '30', ...extra],
  ];
}

/** Runs fiu-ctrl with one command against the writer's pid. */
function fiuControl(prefix: string, pid: number, command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      'fiu-ctrl',
      ['-f', prefix, '-c', command, String(pid)],
      { timeout: 10_000 },
      (error) => (error === null ? resolve() : reject(error)),
    );
  });
}

/**
 * The checks on a run that hit an fdatasync failure: it fenced, every ack came before the
 * fence report and lies at or below the commit point the fence left, and the writes that
 * failed afterwards failed with UNKNOWN (in flight) or IOERR (submitted after the fence).
 */
function expectFencedWithoutLateAcks(writer: WriterProcess, context: string): number {
  const reports = writer.reports;
  const fenceIndex = reports.findIndex((report) => report.t === 'fenced');
  expect(fenceIndex, `${context}: no fence report\n${writer.diagnostics()}`).toBeGreaterThan(0);
  const fence = reports[fenceIndex] as Report & { info: { commitLsn: number; lastLsn: number } };
  const commitLsn = fence.info.commitLsn;
  const acks = reports.filter((report) => report.t === 'ack');
  const late = reports.slice(fenceIndex).filter((report) => report.t === 'ack');
  expect(late, `${context}: acknowledged after the fence`).toEqual([]);
  for (const ack of acks) {
    expect(Number(ack.lsn), `${context}: ack above the fence's commit point`).toBeLessThanOrEqual(
      commitLsn,
    );
  }
  const errors = reports.filter((report) => report.t === 'err');
  const codes = new Set(errors.map((report) => String(report.code)));
  expect([...codes].sort(), context).toEqual(['IOERR', 'UNKNOWN']);
  expect(
    reports.slice(0, fenceIndex).some((report) => report.t === 'err'),
    context,
  ).toBe(false);
  expect(acks.length, `${context}: some writes were acknowledged first`).toBeGreaterThan(0);
  return commitLsn;
}

/** Restarts the node without any fault and checks it recovered every acknowledged write. */
async function expectCleanRestart(dir: string, history: History, context: string) {
  const query = join(scratch, `query-${context.replace(/\W+/g, '-')}.json`);
  writeFileSync(query, JSON.stringify(history.queryIds()));
  const writer = new WriterProcess(process.execPath, [
    prepared.script,
    dir,
    '1',
    ...['--life', 'L1', '--report-fd', '3', '--query', query, '--verify-only'],
  ]);
  await writer.waitFor('open report', () => writer.find('open') !== undefined, 20_000);
  expect(writer.find('open-failed'), context).toBeUndefined();
  expect(history.verify(writer.find('open') as unknown as OpenReport), context).toEqual([]);
  expect(await writer.exited, `${context}\n${writer.diagnostics()}`).toEqual({
    code: 0,
    signal: null,
  });
}

/** Parses strace output: per thread, its fdatasync calls in order, and which were injected. */
function fdatasyncCalls(log: string): Map<number, boolean[]> {
  const calls = new Map<number, boolean[]>();
  for (const line of log.split('\n')) {
    // "<tid> fdatasync(<fd>) = 0" or "... = -1 EIO (Input/output error) (INJECTED)"; an
    // interrupted call shows as "<unfinished ...>" then "<... fdatasync resumed>".
    const match = /^(\d+)\s+(?:fdatasync\(|<\.\.\. fdatasync resumed>)/.exec(line);
    if (match === null || line.includes('<unfinished')) continue;
    const tid = Number(match[1]);
    const list = calls.get(tid) ?? [];
    list.push(line.includes('(INJECTED)'));
    calls.set(tid, list);
  }
  return calls;
}

describe('e2e: fdatasync fails under a real writer', () => {
  it.skipIf(!hasStrace)(
    'strace EIO on the Nth main-thread fdatasync: fence, no late ack',
    async () => {
      const random = new Random(baseSeed);
      const failAt = random.range(10, 40);
      const dir = join(scratch, 'strace', 'node');
      const traceLog = join(scratch, 'strace.log');
      const context = `strace seed ${baseSeed} when=${failAt}`;
      const history = new History();
      const strace = ['-f', '-qq', '-o', traceLog, '-e', 'trace=fdatasync'];
      strace.push('-e', `inject=fdatasync:error=EIO:when=${failAt}`, process.execPath);
      const writer = new WriterProcess('strace', [...strace, ...writerArgs(dir, baseSeed, [])]);
      const exit = await writer.exited;
      expect(exit, `${context}\n${writer.diagnostics()}`).toEqual({ code: 0, signal: null });
      history.record(writer.reports, 0);
      const commitLsn = expectFencedWithoutLateAcks(writer, context);
      const calls = fdatasyncCalls(readFileSync(traceLog, 'utf8'));
      const main = calls.get(writer.pid()) ?? [];
      // The failure is the main thread's Nth call: when= counts per thread.
      expect(main.indexOf(true), context).toBe(failAt - 1);
      const others = [...calls].filter(([tid]) => tid !== writer.pid());
      expect(
        others.every(([, list]) => !list.includes(true)),
        context,
      ).toBe(true);
      await expectCleanRestart(dir, history, context);
      console.log(
        `e2e strace: when=${failAt}, ${history.acks} acked up to lsn ${commitLsn}, ` +
          `${history.unackedCommitted()} unacknowledged found committed; main thread ` +
          `${main.length} fdatasyncs, other threads ${others.map(([, list]) => list.length)}`,
      );
    },
  );

  for (const io of ['sync', 'async'] as const) {
    it.skipIf(!hasFiu)(`libfiu fdatasync EIO mid-run (io ${io}): fence, no late ack`, async () => {
      const seed = baseSeed + (io === 'sync' ? 1 : 2);
      const acksBefore = new Random(seed).range(20, 120);
      const dir = join(scratch, `fiu-${io}`, 'node');
      const prefix = join(scratch, `fiu-ctrl-${io}`);
      const context = `libfiu io=${io} seed ${seed} after ${acksBefore} acks`;
      const history = new History();
      const fiu = ['-x', '-f', prefix, process.execPath];
      const writer = new WriterProcess('fiu-run', [...fiu, ...writerArgs(dir, seed, ['--io', io])]);
      await writer.waitFor(`${acksBefore} acks`, () => writer.count('ack') >= acksBefore, 20_000);
      await fiuControl(prefix, writer.pid(), 'enable name=posix/io/sync/fdatasync,failinfo=5');
      const exit = await writer.exited;
      expect(exit, `${context}\n${writer.diagnostics()}`).toEqual({ code: 0, signal: null });
      history.record(writer.reports, 0);
      const commitLsn = expectFencedWithoutLateAcks(writer, context);
      await expectCleanRestart(dir, history, context);
      console.log(
        `e2e libfiu io=${io}: ${history.acks} acked up to lsn ${commitLsn}, ` +
          `${history.unackedCommitted()} unacknowledged found committed after the restart`,
      );
    });
  }
});
