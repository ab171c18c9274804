/**
 * Real processes, real disk (RELIABILITY.md §3.1 L2). A writer child (test/e2e/writer.ts)
 * writes seeded puts, incrs and batches through the public API with several concurrent
 * writers, and reports every acknowledged write the moment its promise resolves. The test
 * SIGKILLs it by pid after a seeded number of acks (or while it recovers), restarts it on the
 * same directory, and checks what the restarted node reports against the whole history:
 * - every acknowledged request id has status 'committed' at the LSN it was acknowledged with;
 * - every other submitted id is 'committed' or 'unknown', and never changes its answer later;
 * - the key-value state is exactly the committed writes applied in LSN order (incr values
 *   included, and each acknowledged incr value matches);
 * - the node opens cleanly (no CORRUPT, not fenced).
 *
 * The power-loss variant also wraps the disk (watermark-disk.ts) so the child reports which
 * written ranges a successful fdatasync covered and which directory entries a directory fsync
 * covered. After the kill, the harness damages everything not covered (zero, garbage, torn at
 * a sector, or sector by sector) and undoes uncovered creates and renames before the restart.
 * checkpoint.sqlite is left alone: SQLite (synchronous=FULL) does its own fsyncs.
 *
 * The seed (printed; E2E_SEED=<seed> sets it) fixes the workload, the kill points counted in
 * acks, and the damage choices; where the kill lands in the writer's syscalls is real timing,
 * so a failure may need a few runs to recur. E2E_KEEP=1 keeps the directories with every
 * life's reports and damage summary for a post-mortem; E2E_ONLY=power runs only the
 * power-loss test.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../src/sim/random.js';
import {
  History,
  WriterProcess,
  diskEvents,
  emulatePowerLoss,
  fileSizes,
  prepareWriter,
  removeTemporary,
  stopAllWriters,
  type OpenReport,
  type PowerLossSummary,
  type PreparedWriter,
} from './harness.js';
import type { DiskEvent } from './watermark-disk.js';

const baseSeed = Number(process.env.E2E_SEED ?? 20_260_611);
/** Cycle counts; E2E_KILL_CYCLES and E2E_POWER_CYCLES raise them for a longer soak run. */
const killCycles = Number(process.env.E2E_KILL_CYCLES ?? 50);
const powerLossCycles = Number(process.env.E2E_POWER_CYCLES ?? 20);
/** Acks to wait for before the kill: a seeded count in this range. */
const acksMin = 1;
const acksMax = 100;
/** Share of lives killed right after they start, while they recover. */
const killDuringRecoveryProbability = 0.1;
/** Share of power-loss lives killed right after a write finished rather than at an ack. */
const killAfterWriteProbability = 0.5;
/** Share of power-loss lives run with `NodeDisk({ io: 'async' })`. */
const asyncIoProbability = 0.75;

let prepared: PreparedWriter;
const temporary: string[] = [];

beforeAll(async () => {
  prepared = await prepareWriter();
  temporary.push(prepared.root);
});

/** E2E_KEEP=1 keeps the directories, with every life's reports, for a post-mortem. */
const keep = process.env.E2E_KEEP === '1';

afterAll(async () => {
  await stopAllWriters();
  if (keep) console.log(`e2e: kept ${temporary.join(' ')}`);
  else for (const path of temporary) removeTemporary(path);
});

interface Lives {
  dir: string;
  history: History;
  seed: number;
  watermarks: boolean;
}

function startLife(lives: Lives, life: number, extra: readonly string[] = []): WriterProcess {
  const query = join(lives.dir, `query-${life}.json`);
  writeFileSync(query, JSON.stringify(lives.history.queryIds()));
  const args = [prepared.script, join(lives.dir, 'node'), String(lives.seed * 1000 + life)];
  args.push('--life', `L${life}`, '--query', query, '--report-fd', '3', '--seconds', '30');
  if (lives.watermarks) args.push('--watermarks');
  return new WriterProcess(process.execPath, [...args, ...extra]);
}

/** True once a write to a log segment (not to a file being preallocated) finished after
 * report number `after`. */
function segmentWriteFinished(writer: WriterProcess, after: number): boolean {
  const segments = new Set<number>();
  for (let index = 0; index < writer.reports.length; index++) {
    const report = writer.reports[index]!;
    const event = report.t === 'disk' ? (report.e as DiskEvent) : null;
    if (event === null) continue;
    if ((event.t === 'open' || event.t === 'create') && event.path.endsWith('.wal')) {
      segments.add(event.file);
    } else if (event.t === 'rename' && event.file !== null && event.to.endsWith('.wal')) {
      segments.add(event.file);
    } else if (event.t === 'written' && index >= after && segments.has(event.file)) {
      return true;
    }
  }
  return false;
}

/** Waits for the restarted writer's report of what it recovered, and checks it. */
async function expectRecovered(writer: WriterProcess, lives: Lives, context: string) {
  await writer.waitFor('open report', () => writer.find('open') !== undefined, 20_000);
  expect(writer.find('open-failed'), context).toBeUndefined();
  const report = writer.find('open') as unknown as OpenReport;
  expect(lives.history.verify(report), context).toEqual([]);
}

/** One life: start, check what it recovered, let it ack some writes, SIGKILL it. */
async function crashLife(lives: Lives, life: number, random: Random): Promise<WriterProcess> {
  const context = `seed ${lives.seed} life ${life}`;
  // With asynchronous disk I/O a write usually waits for its fdatasync on a pool thread, so a
  // kill often finds written but unsynced bytes for the power-loss emulation to damage.
  const io = lives.watermarks && random.bool(asyncIoProbability) ? 'async' : 'sync';
  const writer = startLife(lives, life, ['--io', io]);
  if (random.bool(killDuringRecoveryProbability)) {
    await writer.waitFor('hello', () => writer.find('hello') !== undefined, 20_000);
  } else {
    await expectRecovered(writer, lives, context);
    const target = random.range(acksMin, acksMax);
    await writer.waitFor(`${target} acks`, () => writer.count('ack') >= target, 30_000);
    if (lives.watermarks && random.bool(killAfterWriteProbability)) {
      // Kill right after the next write to a segment finished, before its fdatasync returns.
      const after = writer.reports.length;
      const written = () => segmentWriteFinished(writer, after);
      await writer.waitFor('a finished segment write', written, 30_000);
    }
  }
  const exit = await writer.kill();
  expect(exit.signal === 'SIGKILL' || exit.code === 0, context).toBe(true);
  lives.history.record(writer.reports, life);
  if (keep) {
    const lines = writer.reports.map((report) => JSON.stringify(report));
    writeFileSync(join(lives.dir, `reports-${life}.jsonl`), `${lines.join('\n')}\n`);
  }
  return writer;
}

/** A last life that only opens, reports, and closes cleanly. */
async function finalCheck(lives: Lives, life: number): Promise<void> {
  const context = `seed ${lives.seed} final life ${life}`;
  const writer = startLife(lives, life, ['--verify-only']);
  await expectRecovered(writer, lives, context);
  const exit = await writer.exited;
  expect(exit, `${context}\n${writer.diagnostics()}`).toEqual({ code: 0, signal: null });
}

function newLives(name: string, watermarks: boolean, seed: number): Lives {
  const dir = mkdtempSync(join(tmpdir(), `syncwal-e2e-${name}-`));
  temporary.push(dir);
  return { dir, history: new History(), seed, watermarks };
}

describe('e2e: SIGKILL and power loss on a real directory', () => {
  it.skipIf(process.env.E2E_ONLY === 'power')(
    `keeps every acknowledged write over ${killCycles} SIGKILL cycles`,
    async () => {
      const lives = newLives('kill', false, baseSeed);
      const random = new Random(baseSeed);
      for (let life = 0; life < killCycles; life++) await crashLife(lives, life, random);
      await finalCheck(lives, killCycles);
      console.log(
        `e2e kill: seed ${baseSeed}, ${killCycles} cycles, ${lives.history.ops.size} writes ` +
          `submitted, ${lives.history.acks} acknowledged, ` +
          `${lives.history.unackedCommitted()} unacknowledged found committed`,
      );
      expect(lives.history.acks).toBeGreaterThan(killCycles);
    },
  );

  it(`keeps every acknowledged write over ${powerLossCycles} power-loss cycles`, async () => {
    const seed = baseSeed + 1;
    const lives = newLives('power', true, seed);
    const random = new Random(seed);
    const summaries: PowerLossSummary[] = [];
    for (let life = 0; life < powerLossCycles; life++) {
      const sizesBefore = fileSizes(join(lives.dir, 'node', 'wal'));
      const writer = await crashLife(lives, life, random);
      const summary = emulatePowerLoss(diskEvents(writer.reports), sizesBefore, random);
      summaries.push(summary);
      if (keep) writeFileSync(join(lives.dir, `power-loss-${life}.json`), JSON.stringify(summary));
    }
    await finalCheck(lives, powerLossCycles);
    const damaged = summaries.flatMap((summary) => summary.damaged);
    const segments = damaged.filter((entry) => entry.path.endsWith('.wal'));
    const byMode = new Map<string, number>();
    for (const entry of segments) byMode.set(entry.mode, (byMode.get(entry.mode) ?? 0) + 1);
    const total = (count: (summary: PowerLossSummary) => number) =>
      summaries.reduce((sum, summary) => sum + count(summary), 0);
    console.log(
      `e2e power loss: seed ${seed}, ${powerLossCycles} cycles, ` +
        `${lives.history.acks} acknowledged; damaged segments ${JSON.stringify([...byMode])}, ` +
        `other files ${damaged.length - segments.length}, ` +
        `bytes ${damaged.reduce((sum, entry) => sum + entry.bytes, 0)}, ` +
        `cut ${total((summary) => summary.truncated)}, ` +
        `files removed ${total((summary) => summary.filesRemoved.length)}, ` +
        `renames undone ${total((summary) => summary.renamesUndone)}`,
    );
    // The emulation must have damaged log segments in a good share of the cycles, or it
    // proved little.
    expect(segments.length).toBeGreaterThanOrEqual(powerLossCycles / 4);
  });
});
