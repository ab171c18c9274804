import { describe, expect, it } from 'vitest';
import {
  clusterCounterNames,
  clusterCoverageCounters,
  emptyClusterCounters,
  runClusterSeed,
  type ClusterCounters,
} from '../../src/harness/cluster-sim.js';
import { SimulationFailure } from '../../src/harness/engine-sim.js';

/**
 * The cluster simulation (src/harness/cluster-sim.ts) over 800 seeds: a primary and 2 replicas
 * (and, for a quarter of the seeds, 4 replicas) on simulated disks and a simulated network, under
 * a random workload, crashes, partitions, message faults, slow disks, fdatasync EIO and policy
 * changes, then healed, converged, powered off all at once and converged again, with the client
 * history checked against the final committed log (src/harness/cluster-model.ts; its own tests
 * are in cluster-model.test.ts). Every coverage counter must end above zero.
 *
 * A failure names its seed; replay it with
 * `SIM_SEED=n [SIM_NODES=5] npx vitest run test/sim/cluster-sim.test.ts` (prints the whole
 * trace) or `npm run sim -- --cluster [--nodes 5] --seed n --trace`.
 */
const seedOnly = process.env.SIM_SEED === undefined ? null : Number(process.env.SIM_SEED);
const nodesOnly = process.env.SIM_NODES === '5' ? 5 : 3;

/** Seed ranges per test case, so that progress shows and each case stays within its timeout. */
const batches: { nodes: 3 | 5; from: number; count: number }[] = [
  { nodes: 3, from: 0, count: 150 },
  { nodes: 3, from: 150, count: 150 },
  { nodes: 3, from: 300, count: 150 },
  { nodes: 3, from: 450, count: 150 },
  { nodes: 5, from: 0, count: 100 },
  { nodes: 5, from: 100, count: 100 },
];

function formatCounters(totals: ClusterCounters): string {
  const width = Math.max(...clusterCounterNames.map((name) => name.length));
  return clusterCounterNames.map((name) => `  ${name.padEnd(width)}  ${totals[name]}`).join('\n');
}

async function runSeeds(nodes: 3 | 5, seeds: number[], totals: ClusterCounters): Promise<void> {
  for (const seed of seeds) {
    try {
      const report = await runClusterSeed(seed, { nodes, trace: seedOnly !== null });
      if (seedOnly !== null) console.log(report.trace.join('\n'));
      for (const name of clusterCounterNames) totals[name] += report.counters[name];
    } catch (error: unknown) {
      const flag = nodes === 5 ? ' --nodes 5' : '';
      const replay =
        `replay: SIM_SEED=${seed}${nodes === 5 ? ' SIM_NODES=5' : ''} npx vitest run ` +
        `test/sim/cluster-sim.test.ts, or npm run sim -- --cluster${flag} --seed ${seed} --trace`;
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${replay}`, {
        cause: error,
      });
    }
  }
}

/** The report of a run, or the message of its failure: what must replay identically. */
async function outcomeOf(seed: number, nodes: 3 | 5) {
  try {
    const report = await runClusterSeed(seed, { nodes, trace: true });
    return { counters: report.counters, trace: report.trace, failure: null };
  } catch (error: unknown) {
    if (!(error instanceof SimulationFailure)) throw error;
    return { counters: null, trace: error.trace, failure: error.message };
  }
}

describe('cluster simulation: a replicated shard on simulated disks and network', () => {
  if (seedOnly !== null) {
    it(`replays seed ${seedOnly} (${nodesOnly} nodes)`, async () => {
      await runSeeds(nodesOnly, [seedOnly], emptyClusterCounters());
    }, 600_000);
    return;
  }
  const totals = emptyClusterCounters();
  const started = performance.now();
  for (const batch of batches) {
    const last = batch.from + batch.count - 1;
    it(`keeps every invariant, ${batch.nodes} nodes, seeds ${batch.from}..${last}`, async () => {
      const seeds = Array.from({ length: batch.count }, (_, index) => batch.from + index);
      await runSeeds(batch.nodes, seeds, totals);
    }, 300_000);
  }

  it('reached every fault and recovery path over the seeds above', () => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const seeds = batches.reduce((sum, batch) => sum + batch.count, 0);
    console.log(`${seeds} cluster seeds in ${seconds} s; coverage:\n${formatCounters(totals)}`);
    for (const name of clusterCoverageCounters) {
      expect(totals[name], `counter ${name}`).toBeGreaterThan(0);
    }
  });

  it('replays a seed exactly: the same counters and the same trace', async () => {
    for (const [seed, nodes] of [
      [1, 3],
      [2, 5],
    ] as const) {
      const first = await outcomeOf(seed, nodes);
      const second = await outcomeOf(seed, nodes);
      expect(second).toEqual(first);
      expect(first.trace.length).toBeGreaterThan(10);
    }
  }, 120_000);
});
