/**
 * `npm run bench -- <suite> [--json] [--quick] [--system=a,b]`
 *
 * Runs one benchmark suite and prints a table plus the ratios its targets are about (DESIGN.md
 * §8). `--json` prints one JSON object `{bench, results}` on stdout instead of the table;
 * `--quick` runs each configuration for a fraction of the time (a smoke run, not a
 * measurement); `--system` runs only the named systems of the suite.
 */
import { runEngineSuite } from './engine.js';
import { runFullSyncSuite } from './fullsync.js';
import { runLogSuite, type SuiteOptions } from './log.js';
import { runReplicationSuite } from './replication.js';
import { runServerSuite } from './server.js';

interface Suite {
  name: string;
  description: string;
  run: (options: SuiteOptions) => Promise<number>;
}

const suites: readonly Suite[] = [
  {
    name: 'log',
    description: 'durable 100-byte appends: fdatasync loop vs better-sqlite3 vs syncwal',
    run: runLogSuite,
  },
  {
    name: 'engine',
    description: 'single-node put/get, replay, checkpoint and memory: syncwal vs better-sqlite3',
    run: runEngineSuite,
  },
  {
    name: 'fullsync',
    description: 'full sync of 1M keys over TCP on loopback: 1 vs 4 key-range streams',
    run: runFullSyncSuite,
  },
  {
    name: 'replication',
    description: '3-node shard (acks=quorum, acks=all) vs one node: writes/s, p50/p99 via RESP',
    run: runReplicationSuite,
  },
  {
    name: 'server',
    description: 'redis-benchmark SET/GET: one node, 3-node shard, Redis appendfsync always',
    run: runServerSuite,
  },
];

/** Exit code for a command line usage error (sysexits.h EX_USAGE). */
const exitUsage = 64;

function usage(problem: string): number {
  const lines = [
    `bench: ${problem}`,
    'usage: npm run bench -- <suite> [--json] [--quick] [--system=name[,name...]]',
    'suites:',
    ...suites.map((suite) => `  ${suite.name.padEnd(8)} ${suite.description}`),
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
  return exitUsage;
}

interface Arguments {
  suite: Suite;
  options: SuiteOptions;
}

function parseArguments(argv: readonly string[]): Arguments | string {
  const options: SuiteOptions = { json: false, quick: false, systems: null };
  const names: string[] = [];
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (argument === '--json') options.json = true;
    else if (argument === '--quick') options.quick = true;
    else if (argument.startsWith('--system=')) {
      options.systems = argument.slice('--system='.length).split(',').filter(Boolean);
    } else if (argument === '--system' && argv[index + 1] !== undefined) {
      options.systems = argv[++index]!.split(',').filter(Boolean);
    } else if (argument.startsWith('-')) return `unknown option ${argument}`;
    else names.push(argument);
  }
  if (names.length !== 1) return names.length === 0 ? 'no suite given' : 'give one suite';
  const suite = suites.find((candidate) => candidate.name === names[0]);
  if (suite === undefined) return `unknown suite '${names[0]}'`;
  return { suite, options };
}

async function main(): Promise<number> {
  const parsed = parseArguments(process.argv.slice(2));
  if (typeof parsed === 'string') return usage(parsed);
  return parsed.suite.run(parsed.options);
}

process.exitCode = await main();
