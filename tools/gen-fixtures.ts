/**
 * Regenerates the log fixtures under `fixtures/` (run by `npm run fixtures`, or
 * `tsx tools/gen-fixtures.ts <output dir>`).
 *
 * Each fixture is written by the real Log on the real disk (NodeDisk) in a temporary node
 * directory, from a workload drawn from a fixed seed with fixed payloads and no timestamps.
 * Its `wal/` segment files are then copied to `<output>/<name>/wal/` and, for the damaged
 * fixtures, damaged the way a crash or the disk would damage them. The same inputs give the
 * same bytes, so a regenerated fixture is byte-identical to the checked-in one; the test
 * `test/cli/wal-inspect.test.ts` checks exactly that.
 *
 * | fixture              | what it is                                                        |
 * | -------------------- | ----------------------------------------------------------------- |
 * | clean                | 3 segments of INTENT, COMMIT, ABORT, TERM and CHECKPOINT records   |
 * | torn-tail            | clean plus one last INTENT, zeroed from inside that frame onwards |
 * | bit-flip             | clean with one bit flipped in a record of the middle segment       |
 * | zero-prealloc-tail   | one segment, a few records, then a long zeroed preallocated tail  |
 * | missing-segment      | clean with its middle segment file deleted                        |
 *
 * The golden outputs of wal-inspect (`fixtures/<name>.<command>.expected`) are written by the
 * test with UPDATE_GOLDEN=1, not by this tool.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RecordType } from '../src/core/format/frame.js';
import {
  encodeAbort,
  encodeCheckpoint,
  encodeCommit,
  encodeIntent,
  encodeTerm,
  type Effect,
} from '../src/core/format/record.js';
import { parseSegmentName } from '../src/core/format/segment-header.js';
import { frameHeaderBytes } from '../src/core/limits.js';
import { NodeDisk } from '../src/node/disk.js';
import { Random } from '../src/sim/random.js';
import { Log } from '../src/storage/log.js';
import { scanLog } from '../src/storage/scan-log.js';

/** The seed every fixture workload is drawn from. Changing it changes every fixture. */
export const fixtureSeed = 20_240_601;

/** Small segments keep multi-segment fixtures a few KB each. */
const segmentSizeBytes = 4096;

/** A larger segment for zero-prealloc-tail, so its zeroed tail is long. */
const preallocatedTailSegmentSizeBytes = 16_384;

export const fixtureNames = [
  'clean',
  'torn-tail',
  'bit-flip',
  'zero-prealloc-tail',
  'missing-segment',
] as const;
export type FixtureName = (typeof fixtureNames)[number];

const text = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// The workload.

interface WorkloadOptions {
  seed: number;
  terms: number;
  /** Steps (intent + commit, batch + commit, or intent + abort) per term. */
  stepsPerTerm: number;
}

/** Appends records one append at a time (so group commit makes one write per append). */
class Writer {
  constructor(readonly log: Log) {}

  async append(type: RecordType, term: number, payload: Uint8Array): Promise<number> {
    return this.log.append([{ type, term, payload }]);
  }

  /** The frame checksum of a durable record: what a COMMIT names for the intent it covers. */
  async checksumOf(lsn: number): Promise<number> {
    const [record] = await this.log.read({ lsnFirst: lsn, lsnLast: lsn });
    if (record === undefined) throw new Error(`record ${lsn} missing from the fixture log`);
    return record.checksum;
  }

  async commit(term: number, intentLsn: number): Promise<void> {
    const intentChecksum = await this.checksumOf(intentLsn);
    await this.append(
      RecordType.Commit,
      term,
      encodeCommit({
        commitLsn: intentLsn,
        intentLsn,
        intentChecksum,
      }),
    );
  }
}

function drawEffects(random: Random): Effect[] {
  const effects: Effect[] = [];
  const count = random.range(1, 3);
  for (let index = 0; index < count; index++) {
    const key = text.encode(`key-${String(random.int(20)).padStart(2, '0')}`);
    if (random.bool(0.2)) effects.push({ op: 'delete', key });
    else effects.push({ op: 'put', key, value: text.encode(`value-${random.int(1000)}`) });
  }
  return effects;
}

function drawIntent(random: Random, requestNumber: number): Uint8Array {
  const requestId = random.bool(0.5) ? `req-${String(requestNumber).padStart(4, '0')}` : null;
  return encodeIntent({ requestId, effects: drawEffects(random) });
}

/** One step: an intent and its commit, two intents and one commit, or an aborted intent. */
async function writeStep(writer: Writer, random: Random, term: number, step: number) {
  const choice = random.int(10);
  const first = await writer.append(RecordType.Intent, term, drawIntent(random, step * 2));
  if (choice === 0) {
    await writer.append(RecordType.Abort, term, encodeAbort({ lsnFirst: first, lsnLast: first }));
    return;
  }
  let last = first;
  if (choice <= 2) {
    last = await writer.append(RecordType.Intent, term, drawIntent(random, step * 2 + 1));
  }
  await writer.commit(term, last);
}

async function writeWorkload(log: Log, options: WorkloadOptions): Promise<void> {
  const random = new Random(options.seed);
  const writer = new Writer(log);
  for (let term = 1; term <= options.terms; term++) {
    const primaryId = `node-${term}`;
    await writer.append(RecordType.Term, term, encodeTerm({ term, primaryId }));
    for (let step = 0; step < options.stepsPerTerm; step++) {
      await writeStep(writer, random, term, term * 1000 + step);
    }
    await writer.append(RecordType.Checkpoint, term, encodeCheckpoint({ lsn: log.lastLsn }));
  }
}

// ---------------------------------------------------------------------------------------------
// Writing a log and copying its segments.

interface LogRecipe {
  segmentSizeBytes: number;
  workload: WorkloadOptions;
  /** Extra appends after the workload (the torn-tail fixture's last write). */
  finish?: (writer: Writer) => Promise<void>;
}

const cleanRecipe: LogRecipe = {
  segmentSizeBytes,
  workload: { seed: fixtureSeed, terms: 3, stepsPerTerm: 12 },
};

/** Writes a log in a temporary node directory and copies its segment files to `walTarget`. */
async function writeLogInto(walTarget: string, recipe: LogRecipe): Promise<void> {
  const nodeDir = mkdtempSync(join(tmpdir(), 'syncwal-fixture-'));
  try {
    const log = await Log.open(new NodeDisk(), {
      dir: nodeDir,
      segmentSizeBytes: recipe.segmentSizeBytes,
      preallocate: false,
    });
    try {
      await writeWorkload(log, recipe.workload);
      await recipe.finish?.(new Writer(log));
    } finally {
      await log.close();
    }
    mkdirSync(walTarget, { recursive: true });
    // Only segment files: no LOCK (it lives in the node directory) and no *.tmp leftovers.
    for (const name of readdirSync(join(nodeDir, 'wal')).sort()) {
      if (parseSegmentName(name) === null) continue;
      copyFileSync(join(nodeDir, 'wal', name), join(walTarget, name));
    }
  } finally {
    rmSync(nodeDir, { recursive: true, force: true });
  }
}

function segmentFiles(walDir: string): string[] {
  return readdirSync(walDir)
    .filter((name) => parseSegmentName(name) !== null)
    .sort();
}

/** The segment and offset of every record frame (not SEAL) in a log, in LSN order. */
async function recordSites(walDir: string) {
  const sites: { segment: string; offset: number; frameBytes: number }[] = [];
  await scanLog(new NodeDisk(), walDir, {
    onFrame: (segment, scanned) => {
      if (scanned.frame.type === RecordType.Seal) return;
      sites.push({ segment, offset: scanned.offset, frameBytes: scanned.frame.frameBytes });
    },
  });
  return sites;
}

// ---------------------------------------------------------------------------------------------
// The damage.

/** Zeroes a file from `from` to its end, as a crash leaves a write that never reached disk. */
function zeroFrom(path: string, from: number): void {
  const bytes = readFileSync(path);
  bytes.fill(0, from);
  writeFileSync(path, bytes);
}

function flipBit(path: string, byteOffset: number, bit: number): void {
  const bytes = readFileSync(path);
  const value = bytes[byteOffset];
  if (value === undefined) throw new Error(`${path} has no byte ${byteOffset}`);
  bytes[byteOffset] = value ^ (1 << bit);
  writeFileSync(path, bytes);
}

/** Tears the last record: its header and the first payload bytes stay, the rest is zeros. */
async function tearLastRecord(walDir: string): Promise<void> {
  const last = (await recordSites(walDir)).at(-1);
  if (last === undefined) throw new Error('torn-tail: the log has no records');
  const keptBytes = frameHeaderBytes + 16;
  if (last.frameBytes <= keptBytes + 16) throw new Error('torn-tail: the last record is too small');
  zeroFrom(join(walDir, last.segment), last.offset + keptBytes);
}

/** Flips one payload bit of the middle record of the middle segment (cold, durable data). */
async function flipBitMidLog(walDir: string): Promise<void> {
  const middleSegment = segmentFiles(walDir)[1];
  const sites = (await recordSites(walDir)).filter((site) => site.segment === middleSegment);
  const target = sites[Math.floor(sites.length / 2)];
  if (target === undefined) throw new Error('bit-flip: the middle segment has no records');
  flipBit(join(walDir, target.segment), target.offset + frameHeaderBytes + 2, 3);
}

function deleteMiddleSegment(walDir: string): void {
  const files = segmentFiles(walDir);
  if (files.length < 3) throw new Error('missing-segment: the log needs at least 3 segments');
  rmSync(join(walDir, files[1]!));
}

/** The torn-tail fixture's last write: an intent large enough to tear in its middle. */
async function appendLastIntent(writer: Writer): Promise<void> {
  const effects: Effect[] = ['alpha', 'beta', 'gamma'].map((name) => ({
    op: 'put',
    key: text.encode(`last-${name}`),
    value: text.encode(`the last write, torn by the crash (${name})`),
  }));
  const payload = encodeIntent({ requestId: 'req-last', effects });
  await writer.append(RecordType.Intent, writer.log.lastTerm, payload);
}

async function generateFixture(name: FixtureName, walDir: string): Promise<void> {
  switch (name) {
    case 'clean':
      return writeLogInto(walDir, cleanRecipe);
    case 'torn-tail':
      await writeLogInto(walDir, { ...cleanRecipe, finish: appendLastIntent });
      return tearLastRecord(walDir);
    case 'bit-flip':
      await writeLogInto(walDir, cleanRecipe);
      return flipBitMidLog(walDir);
    case 'zero-prealloc-tail':
      return writeLogInto(walDir, {
        segmentSizeBytes: preallocatedTailSegmentSizeBytes,
        workload: { seed: fixtureSeed + 1, terms: 1, stepsPerTerm: 4 },
      });
    case 'missing-segment':
      await writeLogInto(walDir, cleanRecipe);
      return deleteMiddleSegment(walDir);
  }
}

/**
 * Regenerates every fixture directory under `outputDir` (`<outputDir>/<name>/wal/*.wal`).
 * Each fixture directory is replaced whole; other files in `outputDir` (the golden outputs)
 * are left alone.
 */
export async function generateFixtures(outputDir: string): Promise<void> {
  for (const name of fixtureNames) {
    const fixtureDir = join(outputDir, name);
    rmSync(fixtureDir, { recursive: true, force: true });
    await generateFixture(name, join(fixtureDir, 'wal'));
  }
  const cleanSegments = segmentFiles(join(outputDir, 'clean', 'wal')).length;
  if (cleanSegments < 3) throw new Error(`clean fixture has ${cleanSegments} segments, needs 3`);
}

const isEntryPoint =
  process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isEntryPoint) {
  const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
  const outputDir = process.argv[2] ?? join(repositoryRoot, 'fixtures');
  await generateFixtures(outputDir);
}
