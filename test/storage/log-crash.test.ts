import { describe, expect, it } from 'vitest';
import { Random } from '../../src/sim/random.js';
import { SimDisk } from '../../src/sim/disk.js';
import { SimScheduler } from '../../src/sim/scheduler.js';
import type { Log } from '../../src/storage/log.js';
import { intent, openLog, payloadFor, sameBytes } from './helpers.js';

/**
 * Crash at random points during concurrent appends: many seeded runs, each with a few crash and
 * recovery cycles, checking that no append that resolved is ever lost or changed. A failure
 * prints its seed; `CRASH_SEED=n` replays just that one.
 */
const seedsDefault = 1000;
const seedOnly = process.env.CRASH_SEED === undefined ? null : Number(process.env.CRASH_SEED);

interface Acked {
  lsn: number;
  tag: string;
  size: number;
}

function startWriters(log: Log, random: Random, acked: Map<number, Acked>, round: number) {
  const writers = random.range(1, 12);
  for (let writer = 0; writer < writers; writer++) {
    const sizes = [0, 1, 8, 40, 200, random.range(0, 700)];
    void (async () => {
      for (let index = 0; index < 10_000; index++) {
        const count = random.range(1, 3);
        const records = [];
        const pending: Acked[] = [];
        for (let item = 0; item < count; item++) {
          const tag = `r${round}w${writer}i${index}.${item}`;
          const size = random.pick(sizes);
          records.push(intent(tag, size));
          pending.push({ lsn: log.lastLsn + item + 1, tag, size });
        }
        try {
          const durable = await log.append(records);
          for (const entry of pending) {
            if (entry.lsn > durable) throw new Error('resolved before its records were durable');
            acked.set(entry.lsn, entry);
          }
        } catch {
          return;
        }
      }
    })();
  }
}

async function checkAcked(
  scheduler: SimScheduler,
  log: Log,
  acked: Map<number, Acked>,
  seed: number,
) {
  const highest = Math.max(0, ...acked.keys());
  expect(log.lastLsn, `seed ${seed}: lost acknowledged records`).toBeGreaterThanOrEqual(highest);
  if (log.durableLsn < log.firstLsn) return;
  const records = await scheduler.drive(
    log.read({ lsnFirst: log.firstLsn, lsnLast: log.durableLsn }),
  );
  for (const record of records) {
    const expected = acked.get(record.lsn);
    if (expected === undefined) continue;
    const same = sameBytes(record.payload, payloadFor(expected.tag, expected.size));
    expect(same, `seed ${seed}: lsn ${record.lsn} changed`).toBe(true);
  }
}

async function runSeed(seed: number) {
  const random = new Random(seed);
  const scheduler = new SimScheduler();
  const disk = new SimDisk({ seed, scheduler, latencyMs: { min: 0, max: random.range(1, 8) } });
  const segmentBytes = random.pick([4096, 8192, 16384]);
  const acked = new Map<number, Acked>();
  const rounds = random.range(1, 3);
  for (let round = 0; round < rounds; round++) {
    const log = await scheduler.drive(openLog(disk, segmentBytes));
    await checkAcked(scheduler, log, acked, seed);
    // Records beyond what was acknowledged may survive; they are now part of the log.
    for (const lsn of [...acked.keys()]) if (lsn > log.lastLsn) acked.delete(lsn);
    startWriters(log, random, acked, round);
    await scheduler.run({ stepsMax: random.range(1, 400) });
    disk.crash();
    scheduler.clear();
  }
  const final = await scheduler.drive(openLog(disk, segmentBytes));
  await checkAcked(scheduler, final, acked, seed);
  await scheduler.drive(final.close());
  return acked.size;
}

describe('crash during concurrent appends', () => {
  it(`never loses a resolved append (${seedOnly === null ? seedsDefault : 1} seeds)`, async () => {
    const seeds =
      seedOnly === null ? Array.from({ length: seedsDefault }, (_, i) => i) : [seedOnly];
    let ackedTotal = 0;
    for (const seed of seeds) {
      try {
        ackedTotal += await runSeed(seed);
      } catch (error: unknown) {
        throw new Error(
          `crash simulation failed: replay with CRASH_SEED=${seed}\n${String(error)}`,
          {
            cause: error,
          },
        );
      }
    }
    expect(ackedTotal).toBeGreaterThan(seeds.length);
  }, 600_000);
});
