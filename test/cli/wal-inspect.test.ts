/**
 * Golden-output tests for wal-inspect (after etcd's tools/etcd-dump-logs/expectedoutput).
 *
 * Each case runs the compiled CLI (`node dist/cli/wal-inspect.js ...`, built here if it is
 * missing or older than its source) on a checked-in fixture under `fixtures/` and compares
 * stdout with `fixtures/<name>.<command>.expected`. Run with UPDATE_GOLDEN=1 to rewrite the
 * expected files, then review the diff.
 *
 * Every run also checks that wal-inspect is read-only: the fixture files hash the same before
 * and after, and no file appears or disappears.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordType } from '../../src/core/format/frame.js';
import { encodeCheckpoint } from '../../src/core/format/record.js';
import { NodeDisk } from '../../src/node/disk.js';
import { Log } from '../../src/storage/log.js';
import { fixtureNames, generateFixtures, type FixtureName } from '../../tools/gen-fixtures.js';

const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));
const cliPath = join(repositoryRoot, 'dist', 'cli', 'wal-inspect.js');
const sourceDir = join(repositoryRoot, 'src');
const fixturesDir = join(repositoryRoot, 'fixtures');
const updateGolden = process.env.UPDATE_GOLDEN === '1';

const exitCodeByFixture: Record<FixtureName, number> = {
  clean: 0,
  'torn-tail': 1,
  'bit-flip': 2,
  'zero-prealloc-tail': 0,
  'missing-segment': 2,
};
const statusByExitCode = new Map([
  [0, 'clean'],
  [1, 'torn'],
  [2, 'corrupt'],
]);

/** The command variants with a golden file each: `fixtures/<name>.<suffix>.expected`. */
const variants: readonly { suffix: string; args: readonly string[] }[] = [
  { suffix: 'dump', args: ['dump'] },
  { suffix: 'dump.json', args: ['dump', '--json'] },
  { suffix: 'verify', args: ['verify'] },
  { suffix: 'verify.json', args: ['verify', '--json'] },
  { suffix: 'verify.continue', args: ['verify', '--continue'] },
  { suffix: 'verify.continue.json', args: ['verify', '--continue', '--json'] },
  { suffix: 'stats', args: ['stats'] },
  { suffix: 'stats.json', args: ['stats', '--json'] },
];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Every file under `dir` (relative path -> sha256), so any change, addition or removal shows. */
function hashTree(dir: string): Map<string, string> {
  const hashes = new Map<string, string>();
  const pending = [dir];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    if (statSync(path).isDirectory()) {
      for (const name of readdirSync(path)) pending.push(join(path, name));
      continue;
    }
    const digest = createHash('sha256').update(readFileSync(path)).digest('hex');
    hashes.set(relative(dir, path), digest);
  }
  return new Map([...hashes].sort(([left], [right]) => left.localeCompare(right)));
}

function hashFixtures(): Map<string, string> {
  const all = new Map<string, string>();
  for (const name of fixtureNames) {
    for (const [path, digest] of hashTree(join(fixturesDir, name))) {
      all.set(`${name}/${path}`, digest);
    }
  }
  return all;
}

/** Runs the compiled CLI from the repository root, checking it left every fixture untouched. */
function runCli(args: readonly string[]): Run {
  const before = hashFixtures();
  const result = spawnSync(process.execPath, [cliPath, ...args], {
    cwd: repositoryRoot,
    encoding: 'utf8',
  });
  expect(hashFixtures()).toEqual(before);
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function checkGolden(file: string, actual: string): void {
  const path = join(fixturesDir, file);
  if (updateGolden) {
    writeFileSync(path, actual);
    return;
  }
  expect(existsSync(path), `${file} is missing: run with UPDATE_GOLDEN=1`).toBe(true);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

/** True if the compiled CLI is missing or older than any file under src/. */
function isStale(): boolean {
  if (!existsSync(cliPath)) return true;
  const built = statSync(cliPath).mtimeMs;
  const pending = [sourceDir];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    const stats = statSync(path);
    if (stats.isDirectory()) pending.push(...readdirSync(path).map((name) => join(path, name)));
    else if (stats.mtimeMs > built) return true;
  }
  return false;
}

beforeAll(() => {
  // `npm test` builds first; a direct `vitest run` builds here if dist is missing or stale.
  if (isStale()) {
    execFileSync(
      process.execPath,
      [join(repositoryRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      { cwd: repositoryRoot, stdio: 'inherit' },
    );
  }
});

describe('wal-inspect golden output', () => {
  for (const name of fixtureNames) {
    for (const variant of variants) {
      const command = [...variant.args, `fixtures/${name}`].join(' ');
      it(`${command} (exit ${exitCodeByFixture[name]})`, () => {
        const run = runCli([...variant.args, `fixtures/${name}`]);
        checkGolden(`${name}.${variant.suffix}.expected`, run.stdout);
        expect(run.status).toBe(exitCodeByFixture[name]);
        const status = statusByExitCode.get(exitCodeByFixture[name]);
        if (run.status === 0) expect(run.stderr).toBe('');
        else if (variant.args[0] !== 'verify') {
          // dump and stats print what they could read, and the problems on stderr.
          expect(run.stderr).toContain(`wal-inspect: the log is ${status}`);
          expect(run.stderr).not.toMatch(/\n\s+at /);
        }
      });
    }
  }

  it('accepts a wal directory as well as a node directory', () => {
    const fromNode = runCli(['verify', 'fixtures/clean']);
    const fromWal = runCli(['verify', 'fixtures/clean/wal/']);
    expect(fromWal).toEqual(fromNode);
  });

  it('writes no absolute path into any golden file', () => {
    for (const name of readdirSync(fixturesDir).filter((file) => file.endsWith('.expected'))) {
      const text = readFileSync(join(fixturesDir, name), 'utf8');
      expect(text).not.toContain(repositoryRoot);
      expect(text).not.toContain(tmpdir());
    }
  });
});

interface DumpLine {
  lsn: number;
  type: string;
}

function dumpJson(args: readonly string[]): DumpLine[] {
  const run = runCli(['dump', '--json', ...args, 'fixtures/clean']);
  expect(run.status).toBe(0);
  return run.stdout
    .trimEnd()
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as DumpLine);
}

describe('wal-inspect dump filters', () => {
  const all = () => dumpJson([]);

  it('--from and --to select an inclusive LSN range', () => {
    const lines = dumpJson(['--from', '10', '--to', '20']);
    expect(lines.map((line) => line.lsn)).toEqual([...Array(11).keys()].map((key) => key + 10));
    const text = runCli(['dump', '--from', '80', 'fixtures/clean']);
    const rows = text.stdout.trimEnd().split('\n').slice(1);
    const lsns = rows.map((line) => Number(line.trim().split(/\s+/)[0]));
    expect(lsns).toEqual([80, 81, 82, 83, 84, 85]);
  });

  it('--type takes a comma list, repeats, and ignores case', () => {
    const lines = dumpJson(['--type', 'commit,Abort', '--type', 'TERM']);
    const expected = all().filter((line) => ['COMMIT', 'ABORT', 'TERM'].includes(line.type));
    expect(lines).toEqual(expected);
    expect(new Set(lines.map((line) => line.type))).toEqual(new Set(['COMMIT', 'ABORT', 'TERM']));
  });

  it('hides SEAL frames unless --seals is given or --type names SEAL', () => {
    expect(all().some((line) => line.type === 'SEAL')).toBe(false);
    const withSeals = dumpJson(['--seals']);
    const stats = JSON.parse(runCli(['stats', '--json', 'fixtures/clean']).stdout) as {
      seals: number;
      totals: { records: number };
    };
    expect(withSeals).toHaveLength(stats.totals.records + stats.seals);
    const sealsOnly = dumpJson(['--type', 'seal']);
    expect(sealsOnly).toHaveLength(stats.seals);
    expect(sealsOnly.every((line) => line.type === 'SEAL')).toBe(true);
  });

  it('combines LSN and type filters', () => {
    const lines = dumpJson(['--from', '30', '--to', '60', '--type', 'intent']);
    const expected = all().filter(
      (line) => line.lsn >= 30 && line.lsn <= 60 && line.type === 'INTENT',
    );
    expect(lines).toEqual(expected);
    expect(lines.length).toBeGreaterThan(0);
  });
});

describe('wal-inspect usage errors exit 64 without a stack trace', () => {
  const cases: readonly { why: string; args: readonly string[]; message?: RegExp }[] = [
    { why: 'no command', args: [] },
    { why: 'an unknown command', args: ['frobnicate', 'fixtures/clean'] },
    { why: 'a missing directory argument', args: ['verify'] },
    { why: 'an unknown option', args: ['verify', '--bogus', 'fixtures/clean'] },
    { why: 'an extra argument', args: ['verify', 'fixtures/clean', 'fixtures/clean'] },
    {
      why: 'an unknown --type',
      args: ['dump', '--type', 'bogus', 'fixtures/clean'],
      message: /unknown record type 'bogus'/,
    },
    { why: 'a non-numeric --from', args: ['dump', '--from', 'abc', 'fixtures/clean'] },
    { why: 'a negative --to', args: ['dump', '--to', '-1', 'fixtures/clean'] },
    { why: '--from after --to', args: ['dump', '--from', '9', '--to', '3', 'fixtures/clean'] },
    { why: 'a missing directory', args: ['verify', 'fixtures/no-such-dir'], message: /ENOENT/ },
    { why: 'a file, not a directory', args: ['stats', 'package.json'], message: /not a directory/ },
    { why: 'a directory without segments', args: ['verify', 'docs'], message: /no segment files/ },
  ];
  for (const entry of cases) {
    it(entry.why, () => {
      const run = runCli(entry.args);
      expect(run.status).toBe(64);
      expect(run.stdout).toBe('');
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(run.stderr.length).toBeGreaterThan(0);
      if (entry.message !== undefined) expect(run.stderr).toMatch(entry.message);
    });
  }

  it('--help exits 0', () => {
    const run = runCli(['verify', '--help']);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('--continue');
  });
});

describe('wal-inspect on a live node directory', () => {
  let nodeDir = '';
  beforeAll(() => {
    nodeDir = mkdtempSync(join(tmpdir(), 'wal-inspect-live-'));
  });
  afterAll(() => {
    rmSync(nodeDir, { recursive: true, force: true });
  });

  it('verifies while another process holds the LOCK, and takes nothing from it', async () => {
    mkdirSync(join(nodeDir, 'wal'));
    cpSync(join(fixturesDir, 'clean', 'wal'), join(nodeDir, 'wal'), { recursive: true });
    const log = await Log.open(new NodeDisk(), { dir: nodeDir, segmentSizeBytes: 4096 });
    try {
      const second = Log.open(new NodeDisk(), { dir: nodeDir, segmentSizeBytes: 4096 });
      await expect(second).rejects.toMatchObject({ code: 'LOCKED' });
      const run = runCli(['verify', nodeDir]);
      expect(run.status).toBe(0);
      expect(run.stdout).toBe(readFileSync(join(fixturesDir, 'clean.verify.expected'), 'utf8'));
      // The log is still usable, and wal-inspect sees what it appends.
      const payload = encodeCheckpoint({ lsn: log.lastLsn });
      const lsn = await log.append([{ type: RecordType.Checkpoint, term: log.lastTerm, payload }]);
      const after = JSON.parse(runCli(['verify', '--json', nodeDir]).stdout) as { lastLsn: number };
      expect(after.lastLsn).toBe(lsn);
    } finally {
      await log.close();
    }
  });
});

describe('fixture generator', () => {
  it('regenerates byte-identical fixtures', async () => {
    const outputDir = mkdtempSync(join(tmpdir(), 'wal-inspect-fixtures-'));
    try {
      await generateFixtures(outputDir);
      for (const name of fixtureNames) {
        expect(hashTree(join(outputDir, name)), name).toEqual(hashTree(join(fixturesDir, name)));
      }
    } finally {
      rmSync(outputDir, { recursive: true, force: true });
    }
  });
});
