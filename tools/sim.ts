/**
 * Runs the crash-recovery harness (src/harness/engine-sim.ts) over many seeds:
 *
 *   npm run sim -- --seeds 2000            seeds 0..1999
 *   npm run sim -- --seeds 500 --from 7000 seeds 7000..7499
 *   npm run sim -- --seed 1234 --trace     replays one seed and prints its whole trace
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
  SimulationFailure,
  counterNames,
  emptyCounters,
  runEngineSeed,
  type Counters,
} from '../src/harness/engine-sim.js';

interface Flags {
  seeds: number;
  seed?: number;
  from: number;
  trace: boolean;
  ops?: number;
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

function printCounters(totals: Counters): void {
  const width = Math.max(...counterNames.map((name) => name.length));
  for (const name of counterNames) console.log(`  ${name.padEnd(width)}  ${totals[name]}`);
}

async function runOne(seed: number, flags: Flags): Promise<Counters> {
  const report = await runEngineSeed(seed, {
    trace: flags.trace,
    ...(flags.ops === undefined ? {} : { opsMax: flags.ops }),
  });
  if (flags.trace) for (const line of report.trace) console.log(line);
  return report.counters;
}

function reportFailure(error: unknown, seed: number): void {
  const failedSeed = error instanceof SimulationFailure ? error.seed : seed;
  console.log('');
  console.log(`FAILED at seed ${failedSeed}`);
  console.log(error instanceof Error ? error.message : String(error));
  console.log('');
  console.log(`replay: npm run sim -- --seed ${failedSeed} --trace`);
}

async function main(flags: Flags): Promise<number> {
  const single = flags.seed !== undefined;
  const first = flags.seed ?? flags.from;
  const count = single ? 1 : flags.seeds;
  const totals = emptyCounters();
  const started = performance.now();
  for (let index = 0; index < count; index++) {
    const seed = first + index;
    try {
      const counters = await runOne(seed, flags);
      for (const name of counterNames) totals[name] += counters[name];
    } catch (error: unknown) {
      reportFailure(error, seed);
      return 1;
    }
    if ((index + 1) % progressEverySeeds === 0) {
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      console.log(`seeds ${index + 1}/${count} passed (${seconds} s)`);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${count} seed(s) from ${first} passed in ${seconds} s; coverage counters:`);
  printCounters(totals);
  const missing = counterNames.filter((name) => totals[name] === 0);
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
  .description('Runs the deterministic crash-recovery harness over many seeds.')
  .option('--seeds <count>', 'how many seeds to run', integer, 100)
  .option('--from <seed>', 'the first seed of the range', integer, 0)
  .option('--seed <seed>', 'run only this seed (replay)', integer)
  .option('--trace', 'print the whole trace of every seed run', false)
  .option('--ops <count>', 'client operations per seed (default: the harness default)', integer)
  .action(async (flags: Flags) => {
    process.exitCode = await main(flags);
  });

await program.parseAsync(process.argv);
