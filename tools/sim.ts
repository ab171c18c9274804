/**
 * Runs the crash-recovery harness (src/harness/engine-sim.ts) over many seeds:
 *
 *   npm run sim -- --seeds 2000            seeds 0..1999
 *   npm run sim -- --seeds 500 --from 7000 seeds 7000..7499
 *   npm run sim -- --seed 1234 --trace     replays one seed and prints its whole trace
 *   npm run sim -- --cluster --seeds 500   the cluster simulation (src/harness/cluster-sim.ts)
 *   npm run sim -- --cluster --nodes 5 --seed 7 --trace
 *                                          replays one cluster seed (3 nodes unless --nodes 5)
 *
 * Seeds run one after another (each is deterministic, so a failure replays exactly from its
 * seed). Prints progress every 100 seeds and the coverage counter totals at the end. Exits 1 on
 * the first failing seed (printing its trace and the replay command), and, for runs of at least
 * 100 seeds, if any coverage counter stayed at 0: a fault or recovery path that never ran
 * proves nothing.
 */
import { Command } from 'commander';
import { performance } from 'node:perf_hooks';
import {
  clusterCounterNames,
  clusterCoverageCounters,
  runClusterSeed,
} from '../src/harness/cluster-sim.js';
import { SimulationFailure, counterNames, runEngineSeed } from '../src/harness/engine-sim.js';

interface Flags {
  seeds: number;
  seed?: number;
  from: number;
  trace: boolean;
  ops?: number;
  cluster: boolean;
  nodes: 3 | 5;
}

type Totals = Record<string, number>;

/** What differs between the engine harness and the cluster harness. */
interface Mode {
  names: readonly string[];
  /** Counters that must end above zero over a long enough run. */
  required: readonly string[];
  run(seed: number, flags: Flags): Promise<{ counters: Totals; trace: string[] }>;
  replay(seed: number): string;
}

const engineMode: Mode = {
  names: counterNames,
  required: counterNames,
  run: (seed, flags) =>
    runEngineSeed(seed, {
      trace: flags.trace,
      ...(flags.ops === undefined ? {} : { opsMax: flags.ops }),
    }),
  replay: (seed) => `npm run sim -- --seed ${seed} --trace`,
};

function clusterMode(nodes: 3 | 5): Mode {
  return {
    names: clusterCounterNames,
    required: clusterCoverageCounters,
    run: (seed, flags) =>
      runClusterSeed(seed, {
        trace: flags.trace,
        nodes,
        ...(flags.ops === undefined ? {} : { opsMax: flags.ops }),
      }),
    replay: (seed) =>
      `npm run sim -- --cluster${nodes === 3 ? '' : ` --nodes ${nodes}`} --seed ${seed} --trace`,
  };
}

const progressEverySeeds = 100;
const coverageSeedsMin = 100;

function integer(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) {
    throw new Error(`expected a non-negative integer, got '${value}'`);
  }
  return parsed;
}

function nodesCount(value: string): 3 | 5 {
  if (value === '3') return 3;
  if (value === '5') return 5;
  throw new Error(`--nodes must be 3 or 5, got '${value}'`);
}

function printCounters(names: readonly string[], totals: Totals): void {
  const width = Math.max(...names.map((name) => name.length));
  for (const name of names) console.log(`  ${name.padEnd(width)}  ${totals[name] ?? 0}`);
}

async function runOne(mode: Mode, seed: number, flags: Flags): Promise<Totals> {
  const report = await mode.run(seed, flags);
  if (flags.trace) for (const line of report.trace) console.log(line);
  return report.counters;
}

function reportFailure(mode: Mode, error: unknown, seed: number): void {
  const failedSeed = error instanceof SimulationFailure ? error.seed : seed;
  console.log('');
  console.log(`FAILED at seed ${failedSeed}`);
  console.log(error instanceof Error ? error.message : String(error));
  console.log('');
  console.log(`replay: ${mode.replay(failedSeed)}`);
}

async function main(flags: Flags): Promise<number> {
  const mode = flags.cluster ? clusterMode(flags.nodes) : engineMode;
  const single = flags.seed !== undefined;
  const first = flags.seed ?? flags.from;
  const count = single ? 1 : flags.seeds;
  const totals: Totals = Object.fromEntries(mode.names.map((name) => [name, 0]));
  const started = performance.now();
  for (let index = 0; index < count; index++) {
    const seed = first + index;
    try {
      const counters = await runOne(mode, seed, flags);
      for (const name of mode.names) totals[name] = (totals[name] ?? 0) + (counters[name] ?? 0);
    } catch (error: unknown) {
      reportFailure(mode, error, seed);
      return 1;
    }
    if ((index + 1) % progressEverySeeds === 0) {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(`seeds ${index + 1}/${count} passed (${seconds} s)`);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${count} seed(s) from ${first} passed in ${seconds} s; coverage counters:`);
  printCounters(mode.names, totals);
  const missing = mode.required.filter((name) => totals[name] === 0);
  if (count >= coverageSeedsMin && missing.length > 0) {
    console.log(
      `coverage counters at 0 (a fault or recovery path never ran): ${missing.join(', ')}`,
    );
    return 1;
  }
  return 0;
}

const program = new Command()
  .name('sim')
  .description('Runs the deterministic crash-recovery or cluster harness over many seeds.')
  .option('--seeds <count>', 'how many seeds to run', integer, 100)
  .option('--from <seed>', 'the first seed of the range', integer, 0)
  .option('--seed <seed>', 'run only this seed (replay)', integer)
  .option('--trace', 'print the whole trace of every seed run', false)
  .option('--ops <count>', 'client operations per seed (default: the harness default)', integer)
  .option('--cluster', 'run the cluster simulation (a replicated shard) instead', false)
  .option('--nodes <count>', 'cluster nodes: 3 or 5', nodesCount, 3)
  .action(async (flags: Flags) => {
    process.exitCode = await main(flags);
  });

await program.parseAsync(process.argv);
