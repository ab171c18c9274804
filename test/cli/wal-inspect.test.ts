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
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordType } from '../../src/core/format/frame.js';
import { encodeCheckpoint } from '../../src/core/format/record.js';
import { openNode } from '../../src/index.js';
import { NodeDisk } from '../../src/node/disk.js';
import { Log } from '../../src/storage/log.js';
import {
  allFixtureNames,
  fixtureNames,
  generateFixtures,
  type FixtureName,
} from '../../tools/gen-fixtures.js';

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
  for (const name of allFixtureNames) {
    for (const [path, digest] of hashTree(join(fixturesDir, name))) {
      all.set(`${name}/${path}`, digest);
    }
  }
  return all;
}

/**
 * Runs the compiled CLI from the repository root, checking it left every fixture untouched.
 * stderr is a pipe, so no progress bar may show: no carriage return reaches it.
 */
function runCli(args: readonly string[]): Run {
  const before = hashFixtures();
  const result = spawnSync(process.execPath, [cliPath, ...args], {
    cwd: repositoryRoot,
    encoding: 'utf8',
  });
  expect(hashFixtures()).toEqual(before);
  expect(result.stderr).not.toContain('\r');
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

  it("materializes a running node's state: its checkpoint read through SQLite's WAL", async () => {
    const dir = join(nodeDir, 'engine');
    const node = await openNode({ dir, segmentSizeBytes: 4096, checkpointLogBytes: 0 });
    const expected = new Map<string, string>();
    try {
      for (let index = 0; index < 60; index++) {
        await node.put(`key-${index}`, `value-${index}`);
        expected.set(`key-${index}`, `value-${index}`);
      }
      await node.checkpoint();
      await node.put('key-7', 'changed');
      await node.delete('key-8');
      expected.set('key-7', 'changed');
      expected.delete('key-8');
      await node.checkpoint();
      // The store keeps its database open: the committed batches are in checkpoint.sqlite-wal.
      expect(existsSync(join(dir, 'checkpoint.sqlite-wal'))).toBe(true);
      const before = hashTree(dir);
      const run = runCli(['state', '--json', dir]);
      // A reader of a WAL database updates the shared-memory index (-shm); nothing else changes.
      const after = hashTree(dir);
      for (const hashes of [before, after]) hashes.delete('checkpoint.sqlite-shm');
      expect(after).toEqual(before);
      expect(run.status).toBe(0);
      const state = new Map(stateLines(run.stdout).map((entry) => [entry.key, entry.value]));
      expect(state).toEqual(expected);
      const summary = JSON.parse(run.stderr) as { base: { from: string; lsn: number } };
      expect(summary.base.from).toBe('checkpoint');
      expect(summary.base.lsn).toBeGreaterThan(60);
    } finally {
      await node.close();
    }
  });
});

describe('fixture generator', () => {
  it('regenerates byte-identical fixtures', async () => {
    const outputDir = mkdtempSync(join(tmpdir(), 'wal-inspect-fixtures-'));
    try {
      await generateFixtures(outputDir);
      for (const name of allFixtureNames) {
        expect(hashTree(join(outputDir, name)), name).toEqual(hashTree(join(fixturesDir, name)));
      }
    } finally {
      rmSync(outputDir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// diff

interface DiffCase {
  a: string;
  b: string;
  exit: number;
  result: string;
  firstDivergentLsn: number | null;
}

/** Golden files: `fixtures/diff.<a>.<b>.expected` (text) and `...json.expected`. */
const diffCases: readonly DiffCase[] = [
  { a: 'clean', b: 'clean', exit: 0, result: 'identical', firstDivergentLsn: null },
  { a: 'clean', b: 'diff-regrouped', exit: 0, result: 'identical', firstDivergentLsn: null },
  { a: 'clean', b: 'diff-behind', exit: 0, result: 'behind', firstDivergentLsn: 71 },
  { a: 'diff-behind', b: 'clean', exit: 0, result: 'behind', firstDivergentLsn: 71 },
  { a: 'clean', b: 'diff-term', exit: 1, result: 'diverged', firstDivergentLsn: 48 },
  { a: 'clean', b: 'diff-bytes', exit: 1, result: 'diverged', firstDivergentLsn: 53 },
  { a: 'clean', b: 'diff-chain', exit: 1, result: 'diverged', firstDivergentLsn: 37 },
  { a: 'clean', b: 'state-checkpoint', exit: 0, result: 'behind', firstDivergentLsn: 86 },
  { a: 'clean', b: 'torn-tail', exit: 0, result: 'identical', firstDivergentLsn: null },
  { a: 'clean', b: 'bit-flip', exit: 2, result: 'behind', firstDivergentLsn: 55 },
];

interface DiffJson {
  result: string;
  a: { firstLsn: number | null; lastLsn: number | null; lastTerm: number | null };
  b: { firstLsn: number | null; lastLsn: number | null; lastTerm: number | null };
  compareFromLsn: number | null;
  commonPrefix: { firstLsn: number | null; lastLsn: number | null; records: number };
  firstDivergentLsn: number | null;
  reason: null | { kind: string; [field: string]: unknown };
  notes: string[];
}

describe('wal-inspect diff', () => {
  for (const entry of diffCases) {
    const dirs = [`fixtures/${entry.a}`, `fixtures/${entry.b}`];
    it(`diff ${dirs.join(' ')}: ${entry.result} (exit ${entry.exit})`, () => {
      const text = runCli(['diff', ...dirs]);
      checkGolden(`diff.${entry.a}.${entry.b}.expected`, text.stdout);
      expect(text.status).toBe(entry.exit);
      const json = runCli(['diff', '--json', ...dirs]);
      checkGolden(`diff.${entry.a}.${entry.b}.json.expected`, json.stdout);
      expect(json.status).toBe(entry.exit);
      const report = JSON.parse(json.stdout) as DiffJson;
      expect(report.result).toBe(entry.result);
      expect(report.firstDivergentLsn).toBe(entry.firstDivergentLsn);
      expect(text.stdout).toContain(`result: ${entry.result}\n`);
      // Problems of either log go to stderr, named by side; a clean pair prints none.
      expect(json.stderr).toBe(text.stderr);
      if (entry.b === 'torn-tail' || entry.b === 'bit-flip')
        expect(text.stderr).toMatch(/^wal-inspect: B: /);
      else expect(text.stderr).toBe('');
    });
  }

  it('reports each side, the common prefix and why they diverged', () => {
    const term = JSON.parse(
      runCli(['diff', '--json', 'fixtures/clean', 'fixtures/diff-term']).stdout,
    ) as DiffJson;
    expect(term.a).toMatchObject({ firstLsn: 1, lastLsn: 85, lastTerm: 3 });
    expect(term.b).toMatchObject({ firstLsn: 1, lastLsn: 50, lastTerm: 4 });
    expect(term.commonPrefix).toEqual({ firstLsn: 1, lastLsn: 47, records: 47 });
    expect(term.reason).toMatchObject({
      kind: 'term',
      a: { term: 2, type: 'INTENT' },
      b: { term: 4, type: 'TERM' },
    });
    const bytes = JSON.parse(
      runCli(['diff', '--json', 'fixtures/clean', 'fixtures/diff-bytes']).stdout,
    ) as DiffJson;
    expect(bytes.reason).toMatchObject({
      kind: 'bytes',
      sameType: false,
      a: { term: 2, type: 'COMMIT' },
      b: { term: 2, type: 'INTENT' },
    });
    const behind = JSON.parse(
      runCli(['diff', '--json', 'fixtures/clean', 'fixtures/diff-behind']).stdout,
    ) as DiffJson;
    expect(behind.reason).toEqual({
      kind: 'ends',
      side: 'b',
      lastLsn: 70,
      cause: 'behind',
      otherLsns: { first: 71, last: 85 },
    });
  });

  it('compares a log whose prefix a checkpoint removed from the first LSN both hold', () => {
    const run = runCli(['diff', '--json', 'fixtures/clean', 'fixtures/state-checkpoint']);
    const report = JSON.parse(run.stdout) as DiffJson;
    expect(report.compareFromLsn).toBe(37);
    expect(report.commonPrefix).toEqual({ firstLsn: 37, lastLsn: 85, records: 49 });
    expect(report.notes.join('\n')).toMatch(/B's log starts at lsn 37.*compared from lsn 37/);
    const chain = JSON.parse(
      runCli(['diff', '--json', 'fixtures/clean', 'fixtures/diff-chain']).stdout,
    ) as DiffJson;
    // Same term, type and payload at lsn 37: only the chain checksum tells the histories apart.
    expect(chain.reason).toMatchObject({ kind: 'bytes', sameType: true, samePayload: true });
  });

  it('ignores SEAL frames and segment boundaries, which are local to a node', () => {
    const stats = (name: string) =>
      JSON.parse(runCli(['stats', '--json', `fixtures/${name}`]).stdout) as {
        seals: number;
        segments: { name: string }[];
      };
    const clean = stats('clean');
    const regrouped = stats('diff-regrouped');
    expect(regrouped.seals).toBeLessThan(clean.seals);
    expect(regrouped.segments.map((entry) => entry.name)).not.toEqual(
      clean.segments.map((entry) => entry.name),
    );
    const records = (name: string) =>
      runCli(['dump', '--json', `fixtures/${name}`])
        .stdout.trimEnd()
        .split('\n')
        .map((line) => {
          const {
            segment: _segment,
            offset: _offset,
            ...record
          } = JSON.parse(line) as Record<string, unknown>;
          return record;
        });
    expect(records('diff-regrouped')).toEqual(records('clean'));
  });

  const usage: readonly { why: string; args: readonly string[]; message?: RegExp }[] = [
    { why: 'one directory', args: ['diff', 'fixtures/clean'] },
    {
      why: 'three directories',
      args: ['diff', 'fixtures/clean', 'fixtures/clean', 'fixtures/clean'],
    },
    {
      why: 'a missing directory',
      args: ['diff', 'fixtures/clean', 'fixtures/nope'],
      message: /ENOENT/,
    },
    {
      why: 'a directory without segments',
      args: ['diff', 'docs', 'fixtures/clean'],
      message: /no segment files/,
    },
  ];
  for (const entry of usage) {
    it(`exits 64 on ${entry.why}`, () => {
      const run = runCli(entry.args);
      expect(run.status).toBe(64);
      expect(run.stdout).toBe('');
      expect(run.stderr).not.toMatch(/\n\s+at /);
      if (entry.message !== undefined) expect(run.stderr).toMatch(entry.message);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// state

interface StateCase {
  fixture: string;
  args: readonly string[];
  /** Golden files: `fixtures/<fixture>.<suffix>.expected` (stdout) and `.stderr.expected`. */
  suffix: string;
  exit: number;
}

const stateCases: readonly StateCase[] = [
  { fixture: 'state-log', args: [], suffix: 'state', exit: 0 },
  { fixture: 'state-log', args: ['--json'], suffix: 'state.json', exit: 0 },
  { fixture: 'state-log', args: ['--at', '6'], suffix: 'state.at-6', exit: 0 },
  { fixture: 'state-log', args: ['--at', '7'], suffix: 'state.at-7', exit: 0 },
  { fixture: 'state-log', args: ['--at', '11'], suffix: 'state.at-11', exit: 0 },
  { fixture: 'state-log', args: ['--at', '12'], suffix: 'state.at-12', exit: 0 },
  { fixture: 'state-checkpoint', args: [], suffix: 'state', exit: 0 },
  { fixture: 'state-checkpoint', args: ['--json'], suffix: 'state.json', exit: 0 },
  { fixture: 'state-checkpoint', args: ['--at', '57'], suffix: 'state.at-57', exit: 0 },
  { fixture: 'state-checkpoint', args: ['--at', '70'], suffix: 'state.at-70', exit: 0 },
  { fixture: 'clean', args: [], suffix: 'state', exit: 0 },
  { fixture: 'torn-tail', args: [], suffix: 'state', exit: 1 },
  { fixture: 'bit-flip', args: [], suffix: 'state', exit: 2 },
];

interface StateEntry {
  key: string | { base64: string };
  value: string | { base64: string };
}

function stateLines(stdout: string): StateEntry[] {
  return stdout
    .trimEnd()
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as StateEntry);
}

describe('wal-inspect state', () => {
  for (const entry of stateCases) {
    const args = ['state', ...entry.args, `fixtures/${entry.fixture}`];
    it(`${args.join(' ')} (exit ${entry.exit})`, () => {
      const run = runCli(args);
      checkGolden(`${entry.fixture}.${entry.suffix}.expected`, run.stdout);
      checkGolden(`${entry.fixture}.${entry.suffix}.stderr.expected`, run.stderr);
      expect(run.status).toBe(entry.exit);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    });
  }

  it('applies committed intents only: aborted and in-doubt ones are not applied', () => {
    const run = runCli(['state', '--json', 'fixtures/state-log']);
    expect(stateLines(run.stdout)).toEqual([
      { key: { base64: 'AP8=' }, value: { base64: '3q2+7w==' } },
      { key: 'alpha', value: '1' }, // del alpha (lsn 14) is in doubt
      { key: 'beta', value: '2' }, // del beta (lsn 6) was aborted
      { key: 'delta', value: '4' },
      { key: 'epsilon', value: '5' }, // term 1's intent, committed by term 2's first COMMIT
      { key: 'gamma', value: '3' }, // gamma=300 (lsn 16) is in doubt
      { key: 'lines', value: 'one\ntwo' },
      { key: 'snow ☃', value: '❄' },
    ]);
    const summary = JSON.parse(run.stderr) as {
      intents: Record<string, unknown>;
      commitLsn: number;
    };
    expect(summary.commitLsn).toBe(13);
    expect(summary.intents).toEqual({
      applied: 5,
      aborted: 2,
      inDoubt: 2,
      inDoubtFirstLsn: 14,
      inDoubtLastLsn: 16,
    });
  });

  it('gives the same state from the checkpoint as from replaying the whole log', () => {
    // state-checkpoint holds clean's records; its checkpoint.sqlite was written from the
    // generator's own model, so this also checks the replay against an independent oracle.
    for (const at of ['57', '70', '85']) {
      const fromLog = runCli(['state', '--at', at, 'fixtures/clean']);
      const fromCheckpoint = runCli(['state', '--at', at, 'fixtures/state-checkpoint']);
      expect(fromCheckpoint.stdout, `at ${at}`).toBe(fromLog.stdout);
      expect(fromCheckpoint.stderr).toMatch(/from: checkpoint\.sqlite at lsn 57/);
      expect(fromLog.stderr).toMatch(/from: the log from lsn 1 \(no checkpoint\)/);
    }
  });

  it('exits 2 on a checkpoint.sqlite that is not a checkpoint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wal-inspect-checkpoint-'));
    try {
      cpSync(join(fixturesDir, 'state-checkpoint'), dir, { recursive: true });
      const path = join(dir, 'checkpoint.sqlite');
      writeFileSync(path, Buffer.alloc(8192, 0x5a));
      const garbage = runCli(['state', dir]);
      expect(garbage.status).toBe(2);
      expect(garbage.stderr).toMatch(/CORRUPT: SQLITE_NOTADB.*segment checkpoint\.sqlite/);
      rmSync(path);
      const db = new Database(path);
      db.exec('CREATE TABLE other (x)');
      db.close();
      const shape = runCli(['state', dir]);
      expect(shape.status).toBe(2);
      expect(shape.stderr).toMatch(/CORRUPT: .*no such table: meta/);
      expect(readdirSync(dir).sort()).toEqual(['checkpoint.sqlite', 'wal']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts the wal directory of a node and still finds its checkpoint', () => {
    const fromNode = runCli(['state', 'fixtures/state-checkpoint']);
    const fromWal = runCli(['state', 'fixtures/state-checkpoint/wal/']);
    expect(fromWal).toEqual(fromNode);
  });

  const failures: readonly {
    why: string;
    args: readonly string[];
    exit: number;
    message: RegExp;
  }[] = [
    {
      why: '--at past the end of the log',
      args: ['state', '--at', '99', 'fixtures/state-log'],
      exit: 64,
      message: /--at 99 is past the end of the log \(lsn 16\)/,
    },
    {
      why: '--at below the checkpoint when the log no longer holds those records',
      args: ['state', '--at', '40', 'fixtures/state-checkpoint'],
      exit: 64,
      message: /below the checkpoint's lsn 57.*starts at lsn 37.*cannot be rebuilt/,
    },
    {
      why: 'a log that starts late with no checkpoint',
      args: ['state', 'fixtures/diff-chain'],
      exit: 2,
      message: /the log starts at lsn 37 .*no checkpoint\.sqlite/,
    },
    {
      why: 'a non-numeric --at',
      args: ['state', '--at', 'x', 'fixtures/state-log'],
      exit: 64,
      message: /LSN/,
    },
    { why: 'a missing directory', args: ['state', 'fixtures/nope'], exit: 64, message: /ENOENT/ },
  ];
  for (const entry of failures) {
    it(`exits ${entry.exit} on ${entry.why}`, () => {
      const run = runCli(entry.args);
      expect(run.status).toBe(entry.exit);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(entry.message);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    });
  }
});
