import { describe, expect, it } from 'vitest';
import {
  SimulationFailure,
  counterNames,
  emptyCounters,
  runEngineSeed,
  type Counters,
} from '../../src/harness/engine-sim.js';

/**
 * The crash-recovery harness (src/harness/engine-sim.ts) over 500 seeds: one node on the
 * simulated disk under a random workload, power losses, fdatasync EIO, full disks, failed
 * checkpoints and request-id retries, checked after every restart. Every coverage counter must
 * end above zero, so a fault or recovery path that silently stopped running fails the test.
 *
 * A failure names its seed; replay it with `SIM_SEED=n npx vitest run test/sim/engine-sim.test.ts`
 * (prints the whole trace) or `npm run sim -- --seed n --trace`.
 */
const seedsDefault = 500;
const seedOnly = process.env.SIM_SEED === undefined ? null : Number(process.env.SIM_SEED);

function formatCounters(totals: Counters): string {
  const width = Math.max(...counterNames.map((name) => name.length));
  return counterNames.map((name) => `  ${name.padEnd(width)}  ${totals[name]}`).join('\n');
}

/** The report of a run, or the message of its failure: what must replay identically. */
async function outcomeOf(seed: number) {
  try {
    const report = await runEngineSeed(seed, { trace: true });
    return { counters: report.counters, trace: report.trace, failure: null };
  } catch (error: unknown) {
    if (!(error instanceof SimulationFailure)) throw error;
    return { counters: null, trace: error.trace, failure: error.message };
  }
}

describe('crash-recovery harness: one node on the simulated disk', () => {
  const count = seedOnly === null ? seedsDefault : 1;
  it(`keeps every invariant over ${count} seed(s) and reaches every fault path`, async () => {
    const seeds = seedOnly === null ? Array.from({ length: count }, (_, i) => i) : [seedOnly];
    const totals = emptyCounters();
    const started = performance.now();
    for (const seed of seeds) {
      try {
        const report = await runEngineSeed(seed, { trace: seedOnly !== null });
        if (seedOnly !== null) console.log(report.trace.join('\n'));
        for (const name of counterNames) totals[name] += report.counters[name];
      } catch (error: unknown) {
        const replay =
          `replay: SIM_SEED=${seed} npx vitest run test/sim/engine-sim.test.ts, ` +
          `or npm run sim -- --seed ${seed} --trace`;
        throw new Error(`${error instanceof Error ? error.message : String(error)}\n${replay}`, {
          cause: error,
        });
      }
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${seeds.length} seed(s) in ${seconds} s; coverage:\n${formatCounters(totals)}`);
    if (seedOnly !== null) return;
    for (const name of counterNames) expect(totals[name], `counter ${name}`).toBeGreaterThan(0);
  }, 170_000);

  it('replays a seed exactly: the same counters and the same trace', async () => {
    for (const seed of [1, 2, 3]) {
      const first = await outcomeOf(seed);
      const second = await outcomeOf(seed);
      expect(second).toEqual(first);
      expect(first.trace.length).toBeGreaterThan(10);
    }
  });
});
