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
 * Node fixtures for `diff` and `state` (`nodeFixtureNames`), most of them other nodes' views of
 * `clean`'s records:
 *
 * | fixture              | what it is                                                        |
 * | -------------------- | ----------------------------------------------------------------- |
 * | diff-regrouped       | clean's records in 8 KiB segments, each abort written with its     |
 * |                      | intent: other segment files and SEALs, the same records           |
 * | diff-behind          | clean up to lsn 70 (a node that is behind)                        |
 * | diff-term            | clean up to lsn 47, then its own term 3 (primary node-b)          |
 * | diff-bytes           | clean up to lsn 52, then a different record in the same term      |
 * | diff-chain           | clean with one value changed at lsn 4 and its first segment       |
 * |                      | removed: later records differ only in their chain checksum        |
 * | state-log            | a hand-written log of committed, aborted and in-doubt intents,    |
 * |                      | a new primary's commit of an earlier term's intent, binary keys   |
 * | state-checkpoint     | a node directory: clean plus a tail ending in two in-doubt        |
 * |                      | intents, checkpoint.sqlite at lsn 57 (written by the real store), |
 * |                      | and the log's first segment removed as a checkpoint does          |
 *
 * The golden outputs of wal-inspect (`fixtures/<name>.<command>.expected`) are written by the
 * test with UPDATE_GOLDEN=1, not by this tool.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  type IntentPayload,
} from '../src/core/format/record.js';
import { parseSegmentName } from '../src/core/format/segment-header.js';
import { frameHeaderBytes } from '../src/core/limits.js';
import { openSqliteCheckpoint } from '../src/node/checkpoint-sqlite.js';
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

/** Fixtures for `diff` and `state` (the log fixtures above take part too). */
export const nodeFixtureNames = [
  'diff-regrouped',
  'diff-behind',
  'diff-term',
  'diff-bytes',
  'diff-chain',
  'state-log',
  'state-checkpoint',
] as const;
export type NodeFixtureName = (typeof nodeFixtureNames)[number];

export const allFixtureNames = [...fixtureNames, ...nodeFixtureNames] as const;
export type AnyFixtureName = FixtureName | NodeFixtureName;

/** The checkpoint of `state-checkpoint` is at the end of the workload's second term. */
export const stateCheckpointLsn = 57;

const text = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// The workload.

interface WorkloadOptions {
  seed: number;
  terms: number;
  /** Steps (intent + commit, batch + commit, or intent + abort) per term. */
  stepsPerTerm: number;
}

/** Thrown by the Writer when a recipe's `stopAfterLsn` is reached; ends the workload early. */
class WorkloadStopped extends Error {}

type WriterRecipe = Pick<LogRecipe, 'stopAfterLsn' | 'rewrite' | 'groupAborts' | 'snapshotAtLsn'>;

/**
 * Appends records one append at a time (so group commit makes one write per append), and keeps
 * a model of the committed state (an oracle for the checkpoint fixture, independent of the
 * replay code under test).
 */
class Writer {
  /** Committed state by key (latin1 of the key's bytes), as the workload commits it. */
  readonly model = new Map<string, Uint8Array>();
  /** Intents appended and not yet committed or aborted, with their effects. */
  readonly #open = new Map<number, Effect[]>();
  /** A copy of `model` taken at the recipe's `snapshotAtLsn`. */
  snapshot: Map<string, Uint8Array> | null = null;

  constructor(
    readonly log: Log,
    readonly recipe: WriterRecipe = {},
  ) {}

  #checkStop(count: number): void {
    const stop = this.recipe.stopAfterLsn;
    if (stop !== undefined && this.log.lastLsn + count > stop) throw new WorkloadStopped();
  }

  async append(type: RecordType, term: number, payload: Uint8Array): Promise<number> {
    this.#checkStop(1);
    const rewrite = this.recipe.rewrite;
    const bytes = rewrite?.lsn === this.log.lastLsn + 1 ? rewrite.payload(payload) : payload;
    return this.log.append([{ type, term, payload: bytes }]);
  }

  /** Several records in one append (one write, one SEAL). */
  async appendGroup(records: { type: RecordType; term: number; payload: Uint8Array }[]) {
    this.#checkStop(records.length);
    return this.log.append(records);
  }

  async intent(term: number, intent: IntentPayload): Promise<number> {
    const lsn = await this.append(RecordType.Intent, term, encodeIntent(intent));
    this.#open.set(lsn, intent.effects);
    return lsn;
  }

  /** The frame checksum of a durable record: what a COMMIT names for the intent it covers. */
  async checksumOf(lsn: number): Promise<number> {
    const [record] = await this.log.read({ lsnFirst: lsn, lsnLast: lsn });
    if (record === undefined) throw new Error(`record ${lsn} missing from the fixture log`);
    return record.checksum;
  }

  /** A COMMIT naming `intentLsn` as its last intent, with commit point `commitLsn`. */
  async commit(term: number, intentLsn: number, commitLsn = intentLsn): Promise<void> {
    const intentChecksum = await this.checksumOf(intentLsn);
    await this.append(
      RecordType.Commit,
      term,
      encodeCommit({ commitLsn, intentLsn, intentChecksum }),
    );
    for (const [lsn, effects] of [...this.#open].sort(([left], [right]) => left - right)) {
      if (lsn > commitLsn) continue;
      this.#open.delete(lsn);
      for (const effect of effects) {
        const key = Buffer.from(effect.key).toString('latin1');
        if (effect.op === 'put') this.model.set(key, effect.value);
        else this.model.delete(key);
      }
    }
  }

  async abort(term: number, lsnFirst: number, lsnLast: number): Promise<void> {
    await this.append(RecordType.Abort, term, encodeAbort({ lsnFirst, lsnLast }));
    for (let lsn = lsnFirst; lsn <= lsnLast; lsn++) this.#open.delete(lsn);
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

function drawIntent(random: Random, requestNumber: number): IntentPayload {
  const requestId = random.bool(0.5) ? `req-${String(requestNumber).padStart(4, '0')}` : null;
  return { requestId, effects: drawEffects(random) };
}

/**
 * One step: an intent and its commit, two intents and one commit, or an aborted intent (with
 * `groupAborts`, the intent and its abort go in one append).
 */
async function writeStep(writer: Writer, random: Random, term: number, step: number) {
  const choice = random.int(10);
  const intent = drawIntent(random, step * 2);
  if (choice === 0 && writer.recipe.groupAborts === true) {
    const lsn = writer.log.lastLsn + 1;
    await writer.appendGroup([
      { type: RecordType.Intent, term, payload: encodeIntent(intent) },
      { type: RecordType.Abort, term, payload: encodeAbort({ lsnFirst: lsn, lsnLast: lsn }) },
    ]);
    return;
  }
  const first = await writer.intent(term, intent);
  if (choice === 0) return writer.abort(term, first, first);
  let last = first;
  if (choice <= 2) last = await writer.intent(term, drawIntent(random, step * 2 + 1));
  await writer.commit(term, last);
}

async function writeWorkload(writer: Writer, options: WorkloadOptions): Promise<void> {
  const random = new Random(options.seed);
  for (let term = 1; term <= options.terms; term++) {
    const primaryId = `node-${term}`;
    await writer.append(RecordType.Term, term, encodeTerm({ term, primaryId }));
    for (let step = 0; step < options.stepsPerTerm; step++) {
      await writeStep(writer, random, term, term * 1000 + step);
    }
    const lsn = writer.log.lastLsn;
    await writer.append(RecordType.Checkpoint, term, encodeCheckpoint({ lsn }));
    if (lsn === writer.recipe.snapshotAtLsn) writer.snapshot = new Map(writer.model);
  }
}

// ---------------------------------------------------------------------------------------------
// Writing a log and copying its segments.

interface LogRecipe {
  segmentSizeBytes: number;
  /** The seeded workload (none: only `finish` writes). */
  workload?: WorkloadOptions;
  /** Keep a copy of the committed-state model when the workload's CHECKPOINT names this LSN. */
  snapshotAtLsn?: number;
  /** Write each aborted intent and its ABORT in one append (fewer writes, fewer SEALs). */
  groupAborts?: boolean;
  /** End the workload once this LSN is written (a node that has only part of the log). */
  stopAfterLsn?: number;
  /** Replace the payload of the record at one LSN. */
  rewrite?: { lsn: number; payload: (payload: Uint8Array) => Uint8Array };
  /** Extra appends after the workload (the torn-tail fixture's last write). */
  finish?: (writer: Writer) => Promise<void>;
  /** Runs on the open log after everything was written (the checkpoint fixture). */
  afterWrite?: (writer: Writer, nodeDir: string) => Promise<void>;
}

const cleanRecipe: LogRecipe = {
  segmentSizeBytes,
  workload: { seed: fixtureSeed, terms: 3, stepsPerTerm: 12 },
};

/**
 * Writes a log in a temporary node directory and copies its segment files to
 * `<fixtureDir>/wal/`, and its checkpoint.sqlite, if it has one, to `fixtureDir`.
 */
async function writeLogInto(fixtureDir: string, recipe: LogRecipe): Promise<void> {
  const nodeDir = mkdtempSync(join(tmpdir(), 'syncwal-fixture-'));
  const walTarget = join(fixtureDir, 'wal');
  try {
    const log = await Log.open(new NodeDisk(), {
      dir: nodeDir,
      segmentSizeBytes: recipe.segmentSizeBytes,
      preallocate: false,
    });
    try {
      const writer = new Writer(log, recipe);
      if (recipe.workload !== undefined) {
        await writeWorkload(writer, recipe.workload).catch((error: unknown) => {
          if (!(error instanceof WorkloadStopped)) throw error;
        });
      }
      await recipe.finish?.(new Writer(log));
      await recipe.afterWrite?.(writer, nodeDir);
    } finally {
      await log.close();
    }
    mkdirSync(walTarget, { recursive: true });
    // Only segment files: no LOCK (it lives in the node directory) and no *.tmp leftovers.
    for (const name of readdirSync(join(nodeDir, 'wal')).sort()) {
      if (parseSegmentName(name) === null) continue;
      copyFileSync(join(nodeDir, 'wal', name), join(walTarget, name));
    }
    const checkpoint = join(nodeDir, 'checkpoint.sqlite');
    if (existsSync(checkpoint)) copyFileSync(checkpoint, join(fixtureDir, 'checkpoint.sqlite'));
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

async function generateFixture(name: FixtureName, fixtureDir: string): Promise<void> {
  const walDir = join(fixtureDir, 'wal');
  switch (name) {
    case 'clean':
      return writeLogInto(fixtureDir, cleanRecipe);
    case 'torn-tail':
      await writeLogInto(fixtureDir, { ...cleanRecipe, finish: appendLastIntent });
      return tearLastRecord(walDir);
    case 'bit-flip':
      await writeLogInto(fixtureDir, cleanRecipe);
      return flipBitMidLog(walDir);
    case 'zero-prealloc-tail':
      return writeLogInto(fixtureDir, {
        segmentSizeBytes: preallocatedTailSegmentSizeBytes,
        workload: { seed: fixtureSeed + 1, terms: 1, stepsPerTerm: 4 },
      });
    case 'missing-segment':
      await writeLogInto(fixtureDir, cleanRecipe);
      return deleteMiddleSegment(walDir);
  }
}

// ---------------------------------------------------------------------------------------------
// Other nodes' logs (diff) and committed state (state).

const bytesOf = (value: string | readonly number[]): Uint8Array =>
  typeof value === 'string' ? text.encode(value) : Uint8Array.from(value);
const put = (key: string | readonly number[], value: string | readonly number[]): Effect => ({
  op: 'put',
  key: bytesOf(key),
  value: bytesOf(value),
});
const del = (key: string): Effect => ({ op: 'delete', key: bytesOf(key) });

/** diff-term: after lsn 47 this node went on in a term of its own (A is in term 2 there). */
async function appendOwnTerm(writer: Writer): Promise<void> {
  const term = 4;
  await writer.append(RecordType.Term, term, encodeTerm({ term, primaryId: 'node-b' }));
  const lsn = await writer.intent(term, { requestId: 'req-b1', effects: [put('key-04', 'b1')] });
  await writer.commit(term, lsn);
}

/** diff-bytes: at lsn 53 (a COMMIT in clean) this node has another intent of term 2. */
async function appendOtherIntent(writer: Writer): Promise<void> {
  const lsn = await writer.intent(2, { requestId: null, effects: [put('key-05', 'other-53')] });
  await writer.commit(2, lsn);
}

/** diff-chain: changes one value at lsn 4 (same length, so segments start where clean's do). */
function changeOneValue(payload: Uint8Array): Uint8Array {
  const from = text.encode('value-620');
  const copy = payload.slice();
  const at = Buffer.from(copy).indexOf(Buffer.from(from));
  if (at < 0) throw new Error('diff-chain: lsn 4 does not hold value-620');
  copy.set(text.encode('value-621'), at);
  return copy;
}

function deleteFirstSegment(walDir: string): void {
  const first = segmentFiles(walDir)[0];
  if (first === undefined) throw new Error('diff-chain: no segments');
  rmSync(join(walDir, first));
}

/**
 * state-log, by hand: committed, aborted (a range of two) and in-doubt intents, a new primary
 * whose first COMMIT also commits the earlier term's pending intent, deletes, overwrites, and
 * keys and values that are not UTF-8.
 */
async function writeStateLog(writer: Writer): Promise<void> {
  await writer.append(RecordType.Term, 1, encodeTerm({ term: 1, primaryId: 'node-1' })); // 1
  await writer.intent(1, { requestId: 'req-1', effects: [put('alpha', '1'), put('beta', '2')] });
  const three = await writer.intent(1, { requestId: null, effects: [put('gamma', '3')] });
  await writer.commit(1, three); // 4: commits 2 and 3
  await writer.intent(1, { requestId: 'req-5', effects: [put('alpha', '10')] }); // 5
  await writer.intent(1, { requestId: null, effects: [del('beta')] }); // 6
  await writer.abort(1, 5, 6); // 7
  const effects = [put('snow ☃', '❄'), put([0x00, 0xff], [0xde, 0xad, 0xbe, 0xef])];
  effects.push(put('lines', 'one\ntwo'));
  const eight = await writer.intent(1, { requestId: null, effects });
  await writer.commit(1, eight); // 9
  const ten = await writer.intent(1, { requestId: 'req-10', effects: [put('epsilon', '5')] });
  await writer.append(RecordType.Term, 2, encodeTerm({ term: 2, primaryId: 'node-2' })); // 11
  await writer.commit(2, ten, 11); // 12: the new primary's TERM commits, and 10 with it
  const thirteen = await writer.intent(2, { requestId: null, effects: [put('delta', '4')] });
  await writer.intent(2, { requestId: 'req-14', effects: [del('alpha')] }); // 14
  await writer.commit(2, thirteen); // 15: the commit point is 13; 14 stays in doubt
  await writer.intent(2, { requestId: null, effects: [put('gamma', '300')] }); // 16, in doubt
}

/** state-checkpoint's tail after clean's records: a commit, then two intents in doubt. */
async function appendStateTail(writer: Writer): Promise<void> {
  const term = writer.log.lastTerm;
  await writer.intent(term, { requestId: 'req-tail', effects: [put('tail-a', 'committed')] });
  const binary = [put([0xff, 0xfe], [0x00, 0x80, 0xff]), del('key-00')];
  const last = await writer.intent(term, { requestId: null, effects: binary });
  await writer.commit(term, last);
  await writer.intent(term, { requestId: null, effects: [put('key-01', 'in-doubt')] });
  await writer.intent(term, { requestId: null, effects: [del('key-16')] });
}

/**
 * state-checkpoint: what the engine's checkpoint does (src/engine/node.ts): store the committed
 * state at the checkpoint LSN in checkpoint.sqlite with the real store, then delete the log
 * segments wholly below it. The state comes from the Writer's own model, not from the replay
 * code that `wal-inspect state` uses.
 */
async function checkpointAt(writer: Writer, nodeDir: string): Promise<void> {
  const snapshot = writer.snapshot;
  if (snapshot === null) throw new Error(`state-checkpoint: no snapshot at ${stateCheckpointLsn}`);
  const keys = [...snapshot.keys()].sort();
  const puts = keys.map((key) => ({ key: Buffer.from(key, 'latin1'), value: snapshot.get(key)! }));
  const store = await openSqliteCheckpoint(nodeDir);
  try {
    const batch = { appliedLsn: stateCheckpointLsn, puts, deletes: [], requestIds: [] };
    await store.apply({ ...batch, requestIdsBelowLsnForget: 0 });
  } finally {
    await store.close();
  }
  await writer.log.truncatePrefix({ lsnFirst: stateCheckpointLsn + 1 });
}

async function generateNodeFixture(name: NodeFixtureName, fixtureDir: string): Promise<void> {
  const walDir = join(fixtureDir, 'wal');
  switch (name) {
    case 'diff-regrouped':
      return writeLogInto(fixtureDir, {
        ...cleanRecipe,
        segmentSizeBytes: 8192,
        groupAborts: true,
      });
    case 'diff-behind':
      return writeLogInto(fixtureDir, { ...cleanRecipe, stopAfterLsn: 70 });
    case 'diff-term':
      return writeLogInto(fixtureDir, { ...cleanRecipe, stopAfterLsn: 47, finish: appendOwnTerm });
    case 'diff-bytes':
      return writeLogInto(fixtureDir, {
        ...cleanRecipe,
        stopAfterLsn: 52,
        finish: appendOtherIntent,
      });
    case 'diff-chain':
      await writeLogInto(fixtureDir, {
        ...cleanRecipe,
        rewrite: { lsn: 4, payload: changeOneValue },
      });
      return deleteFirstSegment(walDir);
    case 'state-log':
      return writeLogInto(fixtureDir, { segmentSizeBytes, finish: writeStateLog });
    case 'state-checkpoint':
      return writeLogInto(fixtureDir, {
        ...cleanRecipe,
        snapshotAtLsn: stateCheckpointLsn,
        finish: appendStateTail,
        afterWrite: checkpointAt,
      });
  }
}

/**
 * Regenerates every fixture directory under `outputDir` (`<outputDir>/<name>/wal/*.wal`, and
 * `<outputDir>/<name>/checkpoint.sqlite` for a node fixture with a checkpoint). Each fixture
 * directory is replaced whole; other files in `outputDir` (the golden outputs) are left alone.
 */
export async function generateFixtures(outputDir: string): Promise<void> {
  for (const name of fixtureNames) {
    const fixtureDir = join(outputDir, name);
    rmSync(fixtureDir, { recursive: true, force: true });
    await generateFixture(name, fixtureDir);
  }
  for (const name of nodeFixtureNames) {
    const fixtureDir = join(outputDir, name);
    rmSync(fixtureDir, { recursive: true, force: true });
    await generateNodeFixture(name, fixtureDir);
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
