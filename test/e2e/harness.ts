/**
 * Shared parts of the e2e tests (crash-cycles.test.ts, syscall-faults.test.ts): a transpiled
 * copy of the writer, a handle on one writer process and its report lines, the history of
 * every write with a checker for what a restarted node recovered, and the power-loss
 * emulation applied to the files after a SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
  fstatSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Random } from '../../src/sim/random.js';
import type { DiskEvent } from './watermark-disk.js';
import type { WriterOp } from './writer.js';

export const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Removes a temporary directory this process created (never anything else). */
export function removeTemporary(path: string): void {
  if (relative(tmpdir(), path).startsWith('..')) throw new Error(`not a temp dir: ${path}`);
  rmSync(path, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// The writer, transpiled.

export interface PreparedWriter {
  /** A temporary directory holding the transpiled sources; remove it when done. */
  root: string;
  /** The writer's entry point, run with plain `node`. */
  script: string;
}

function typeScriptFiles(dir: string): string[] {
  const found: string[] = [];
  const pending = [dir];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) pending.push(full);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) found.push(full);
    }
  }
  return found;
}

/** Strips the types from one TypeScript module (no type check: tsc does that in lint). */
type Transpile = (source: string, fileName: string) => string;

/**
 * esbuild (installed with vitest and tsx) strips types about ten times faster than the
 * TypeScript compiler API; the latter is the fallback if esbuild cannot be loaded.
 */
async function loadTranspiler(): Promise<Transpile> {
  try {
    const esbuild = await import('esbuild');
    return (source, fileName) =>
      esbuild.transformSync(source, {
        loader: 'ts',
        format: 'esm',
        target: 'es2022',
        sourcefile: fileName,
      }).code;
  } catch {
    const ts = (await import('typescript')).default;
    const compilerOptions = { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 };
    return (source, fileName) =>
      ts.transpileModule(source, { compilerOptions, fileName }).outputText;
  }
}

/**
 * Transpiles src/ and the writer (types stripped, file by file, as vitest does) into a
 * temporary directory. Plain `node` starts the result in about 0.3 s, where `node --import
 * tsx` takes about 1.5 s, and it does not depend on `dist/` being built and fresh.
 */
export async function prepareWriter(): Promise<PreparedWriter> {
  const transpile = await loadTranspiler();
  const root = mkdtempSync(join(tmpdir(), 'syncwal-e2e-writer-'));
  const sources = [
    ...typeScriptFiles(join(repositoryRoot, 'src')),
    join(repositoryRoot, 'test', 'e2e', 'writer.ts'),
    join(repositoryRoot, 'test', 'e2e', 'watermark-disk.ts'),
  ];
  for (const source of sources) {
    const target = join(root, relative(repositoryRoot, source)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, transpile(readFileSync(source, 'utf8'), source));
  }
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(join(repositoryRoot, 'node_modules'), join(root, 'node_modules'), 'dir');
  return { root, script: join(root, 'test', 'e2e', 'writer.js') };
}

// ---------------------------------------------------------------------------------------------
// One writer process.

export type Report = { t: string } & Record<string, unknown>;

interface Waiter {
  check: () => boolean;
  resolve: () => void;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A running writer. Its reports arrive on file descriptor 3 (a pipe the writer writes with
 * write(2), so nothing is lost when it is killed); stdout and stderr are kept for diagnostics.
 * `command` may wrap node (strace, fiu-run); the pid to signal is the one the writer reports.
 */
export class WriterProcess {
  /** Every writer started and not yet gone, so a failed test can still stop them by pid. */
  static readonly running = new Set<WriterProcess>();
  readonly reports: Report[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  #waiters: Waiter[] = [];
  #partial = '';
  #output = '';
  #exitStatus: ExitStatus | null = null;

  constructor(command: string, args: readonly string[]) {
    this.child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    WriterProcess.running.add(this);
    const reports = this.child.stdio[3];
    if (!(reports instanceof Readable)) throw new Error('no report pipe');
    reports.setEncoding('utf8');
    reports.on('data', (chunk: string) => this.#onData(chunk));
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        // Keep the last 16 KiB: enough to explain a failure, bounded however long it runs.
        this.#output = (this.#output + chunk).slice(-16_384);
      });
    }
    this.exited = new Promise<ExitStatus>((resolve) => {
      this.child.on('error', (error) => {
        this.#output += `\nspawn error: ${String(error)}`;
      });
      // 'close' comes after the exit and after every stdio stream ended: all reports are in.
      this.child.on('close', (code, signal) => {
        WriterProcess.running.delete(this);
        this.#exitStatus = { code, signal };
        resolve(this.#exitStatus);
        this.#wake();
      });
    });
  }

  #onData(chunk: string): void {
    const lines = (this.#partial + chunk).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.length > 0) this.reports.push(JSON.parse(line) as Report);
    }
    this.#wake();
  }

  #wake(): void {
    const ready = this.#waiters.filter((waiter) => waiter.check());
    this.#waiters = this.#waiters.filter((waiter) => !ready.includes(waiter));
    for (const waiter of ready) waiter.resolve();
  }

  /** Output of the process and the last reports, for failure messages. */
  diagnostics(): string {
    const last = this.reports.slice(-5).map((report) => JSON.stringify(report).slice(0, 300));
    const exit = JSON.stringify(this.#exitStatus);
    return `exit ${exit}\noutput:\n${this.#output}\nlast reports:\n${last.join('\n')}`;
  }

  /**
   * Resolves once `check` holds (checked after every report and at exit), or rejects after
   * `timeoutMs` or if the process exits first without it holding.
   */
  waitFor(description: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const fail = (why: string) => {
        this.#waiters = this.#waiters.filter((waiter) => waiter !== entry);
        reject(new Error(`waiting for ${description}: ${why}\n${this.diagnostics()}`));
      };
      const timer = setTimeout(() => fail(`no result in ${timeoutMs} ms`), timeoutMs);
      const entry: Waiter = {
        check: () => check() || this.#exitStatus !== null,
        resolve: () => {
          clearTimeout(timer);
          if (check()) resolve();
          else fail('the process exited');
        },
      };
      this.#waiters.push(entry);
    });
  }

  /** The first report of type `t`, or undefined. */
  find(t: string): Report | undefined {
    return this.reports.find((report) => report.t === t);
  }

  count(t: string): number {
    let count = 0;
    for (const report of this.reports) if (report.t === t) count += 1;
    return count;
  }

  /** The writer's own pid (not a wrapper's), once it said hello. */
  pid(): number {
    const hello = this.find('hello');
    if (hello === undefined || typeof hello.pid !== 'number') throw new Error('no hello yet');
    return hello.pid;
  }

  /** Sends SIGKILL to the writer by pid and waits until it and its pipes are gone. */
  async kill(timeoutMs = 10_000): Promise<ExitStatus> {
    if (this.#exitStatus === null) {
      const pid = this.find('hello') === undefined ? this.child.pid : this.pid();
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch (error: unknown) {
          // ESRCH: it exited on its own in the meantime; anything else is a real problem.
          if ((error as { code?: unknown }).code !== 'ESRCH') throw error;
        }
      }
    }
    await this.waitFor('exit after SIGKILL', () => this.#exitStatus !== null, timeoutMs);
    return this.exited;
  }
}

/** SIGKILLs every writer still running (after a failed test), each by its own pid. */
export async function stopAllWriters(): Promise<void> {
  await Promise.all([...WriterProcess.running].map((writer) => writer.kill()));
}

// ---------------------------------------------------------------------------------------------
// History and verification.

interface OpRecord {
  op: WriterOp;
  life: number;
  acked: { lsn: number; value: string | null } | null;
  /** What a restarted node said about it: fixed from then on. */
  outcome: { status: 'committed'; lsn: number } | { status: 'unknown' } | null;
}

/** What a restart reported (`open` report of the writer). */
export interface OpenReport {
  info: { fenced: string | null; pending: number; lastLsn: number; commitLsn: number };
  statuses: [string, string, number | null][];
  state: Record<string, string>;
}

/** Applies one committed write to a model of the key-value state; returns an incr's value. */
function applyOp(state: Map<string, string>, op: WriterOp): string | null {
  if (op.op === 'put') {
    state.set(op.key, op.value);
    return null;
  }
  if (op.op === 'incr') {
    const value = (BigInt(state.get(op.key) ?? '0') + 1n).toString();
    state.set(op.key, value);
    return value;
  }
  for (const entry of op.ops) {
    if (entry.op === 'put') state.set(entry.key, entry.value);
    else state.delete(entry.key);
  }
  return null;
}

/**
 * Every write submitted across all lives of one node directory, by request id, with its ack
 * and its outcome as seen after restarts.
 */
export class History {
  readonly ops = new Map<string, OpRecord>();
  acks = 0;

  /** Takes in the writer reports of one life. */
  record(reports: readonly Report[], life: number): void {
    for (const report of reports) {
      if (report.t === 'inv') {
        const { t: _type, id, ...op } = report;
        this.ops.set(String(id), { op: op as WriterOp, life, acked: null, outcome: null });
      } else if (report.t === 'ack') {
        const entry = this.ops.get(String(report.id));
        if (entry === undefined) throw new Error(`ack of unknown write ${String(report.id)}`);
        const value = typeof report.value === 'string' ? report.value : null;
        entry.acked = { lsn: Number(report.lsn), value };
        this.acks += 1;
      }
    }
  }

  /** How many writes that were never acknowledged turned out committed after a restart. */
  unackedCommitted(): number {
    let count = 0;
    for (const entry of this.ops.values()) {
      if (entry.acked === null && entry.outcome?.status === 'committed') count += 1;
    }
    return count;
  }

  /** Request ids whose status a restarted writer must report. */
  queryIds(): string[] {
    return [...this.ops.keys()];
  }

  /** Problems with what a restarted node reports, as readable lines (none: it is right). */
  verify(report: OpenReport): string[] {
    const problems: string[] = [];
    const { fenced, pending } = report.info;
    if (fenced !== null) problems.push(`restarted node is fenced: ${fenced}`);
    if (pending !== 0) problems.push(`restarted node has ${pending} writes pending`);
    const statuses = new Map(report.statuses.map(([id, status, lsn]) => [id, { status, lsn }]));
    const committed: { lsn: number; id: string; entry: OpRecord }[] = [];
    for (const [id, entry] of this.ops) {
      const problem = this.#checkStatus(id, entry, statuses.get(id));
      if (problem !== null) problems.push(problem);
      if (entry.outcome?.status === 'committed') {
        committed.push({ lsn: entry.outcome.lsn, id, entry });
      }
    }
    committed.sort((left, right) => left.lsn - right.lsn);
    const state = new Map<string, string>();
    for (let index = 0; index < committed.length; index++) {
      const { lsn, id, entry } = committed[index]!;
      if (index > 0 && committed[index - 1]!.lsn === lsn) problems.push(`two writes at lsn ${lsn}`);
      const value = applyOp(state, entry.op);
      if (entry.acked?.value != null && entry.acked.value !== value) {
        problems.push(`${id}: acked incr value ${entry.acked.value}, history gives ${value}`);
      }
    }
    problems.push(...compareState(state, report.state));
    return problems;
  }

  #checkStatus(
    id: string,
    entry: OpRecord,
    found: { status: string; lsn: number | null } | undefined,
  ): string | null {
    if (found === undefined) return `${id}: no status reported`;
    const lsn = found.lsn ?? -1;
    if (found.status !== 'committed' && found.status !== 'unknown') {
      return `${id}: status ${found.status} after a restart`;
    }
    if (entry.acked !== null && (found.status !== 'committed' || lsn !== entry.acked.lsn)) {
      return `${id}: ACKED at lsn ${entry.acked.lsn} but now ${found.status} ${lsn}`;
    }
    const outcome =
      found.status === 'committed'
        ? { status: 'committed' as const, lsn }
        : { status: 'unknown' as const };
    if (entry.outcome !== null && JSON.stringify(entry.outcome) !== JSON.stringify(outcome)) {
      return `${id}: was ${JSON.stringify(entry.outcome)}, now ${JSON.stringify(outcome)}`;
    }
    entry.outcome = outcome;
    return null;
  }
}

function compareState(expected: Map<string, string>, actual: Record<string, string>): string[] {
  const problems: string[] = [];
  const keys = new Set([...expected.keys(), ...Object.keys(actual)]);
  for (const key of [...keys].sort()) {
    const want = expected.get(key);
    const have = actual[key];
    if (want === have) continue;
    const show = (value: string | undefined) =>
      value === undefined ? 'absent' : JSON.stringify(value.slice(0, 24));
    problems.push(`key ${key}: expected ${show(want)}, found ${show(have)}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Power-loss emulation.

export type DamageMode = 'zero' | 'random' | 'cut' | 'head' | 'sectors';
/**
 * The seeded choice among the modes. Writeback in any order ('head': later sectors landed,
 * earlier ones did not; 'sectors': each on its own) counts twice: those are the shapes a
 * recovery that reads a log front to back is most likely to misjudge.
 */
const damageModes: readonly DamageMode[] = [
  'zero',
  'random',
  'cut',
  'head',
  'head',
  'sectors',
  'sectors',
];
const sectorBytes = 512;

export interface PowerLossSummary {
  damaged: { path: string; mode: DamageMode; bytes: number }[];
  truncated: number;
  filesRemoved: string[];
  renamesUndone: number;
  /** Removals a power loss could undo, which this emulation cannot (the bytes are gone). */
  removalsKept: number;
}

interface FileModel {
  path: string | null;
  /** Reported writes no successful datasync covered: [start, end). */
  dirty: Map<number, [number, number]>;
  /** The end of what is durable: the size before this life and every covered write. */
  durableEnd: number;
}

type EntryModel =
  | { kind: 'create'; file: number }
  | { kind: 'rename'; file: number | null; from: string; to: string }
  | { kind: 'remove' };

/** Sizes of the files in `dir` (one level): what was on disk, and durable, before a life. */
export function fileSizes(dir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  if (!existsSync(dir)) return sizes;
  for (const name of readdirSync(dir)) sizes.set(join(dir, name), statSync(join(dir, name)).size);
  return sizes;
}

/**
 * Replays the disk events of one life into per-file and per-entry durability models. A failed
 * datasync ('sync-failed') leaves its writes dirty for good. Truncation is not modelled: the
 * log never shortens a file (it zeroes instead), so 'truncate' events do not occur.
 */
function modelDisk(events: readonly DiskEvent[], sizesBefore: ReadonlyMap<string, number>) {
  const files = new Map<number, FileModel>();
  const entries = new Map<number, EntryModel>();
  const durableEntries = new Set<number>();
  for (const event of events) {
    const file = 'file' in event && event.file !== null ? files.get(event.file) : undefined;
    if (event.t === 'create') {
      files.set(event.file, { path: event.path, dirty: new Map(), durableEnd: 0 });
      entries.set(event.entry, { kind: 'create', file: event.file });
    } else if (event.t === 'open') {
      const durableEnd = sizesBefore.get(event.path) ?? 0;
      files.set(event.file, { path: event.path, dirty: new Map(), durableEnd });
    } else if (event.t === 'write') {
      file?.dirty.set(event.write, [event.start, event.end]);
    } else if (event.t === 'sync' && file !== undefined) {
      for (const write of event.writes) {
        const range = file.dirty.get(write);
        if (range !== undefined) file.durableEnd = Math.max(file.durableEnd, range[1]);
        file.dirty.delete(write);
      }
    } else if (event.t === 'rename') {
      if (file !== undefined) file.path = event.to;
      entries.set(event.entry, {
        kind: 'rename',
        file: event.file,
        from: event.from,
        to: event.to,
      });
    } else if (event.t === 'remove') {
      if (file !== undefined) file.path = null;
      entries.set(event.entry, { kind: 'remove' });
    } else if (event.t === 'syncdir') {
      for (const entry of event.entries) durableEntries.add(entry);
    }
  }
  return { files, entries, durableEntries };
}

/** The sorted, merged union of ranges. */
function mergeRanges(ranges: Iterable<[number, number]>): [number, number][] {
  const sorted = [...ranges].sort((left, right) => left[0] - right[0]);
  const merged: [number, number][] = [];
  for (const [start, end] of sorted) {
    const last = merged.at(-1);
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

function randomBytes(random: Random, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let index = 0; index < length; index++) bytes[index] = random.int(256);
  return bytes;
}

/** What to write over [start, end) of a dirty range for `mode` (null: leave it). */
function damageFor(
  mode: DamageMode,
  range: [number, number],
  cut: number,
  random: Random,
): { offset: number; bytes: Buffer }[] {
  const [start, end] = range;
  if (mode === 'zero') return [{ offset: start, bytes: Buffer.alloc(end - start) }];
  if (mode === 'random') return [{ offset: start, bytes: randomBytes(random, end - start) }];
  if (mode === 'cut') {
    const from = Math.max(start, cut);
    return from < end ? [{ offset: from, bytes: Buffer.alloc(end - from) }] : [];
  }
  if (mode === 'head') {
    // The later sectors were written back and the first ones were not.
    const to = Math.min(end, cut);
    return start < to ? [{ offset: start, bytes: Buffer.alloc(to - start) }] : [];
  }
  // 'sectors': each sector the range touches is kept, lost (zeros) or garbage, independently,
  // as a disk may write back the sectors of one write in any order.
  const pieces: { offset: number; bytes: Buffer }[] = [];
  for (let sector = Math.floor(start / sectorBytes); sector * sectorBytes < end; sector++) {
    const from = Math.max(start, sector * sectorBytes);
    const to = Math.min(end, (sector + 1) * sectorBytes);
    const roll = random.int(3);
    if (roll === 1) pieces.push({ offset: from, bytes: Buffer.alloc(to - from) });
    if (roll === 2) pieces.push({ offset: from, bytes: randomBytes(random, to - from) });
  }
  return pieces;
}

/** Damages the not-durable bytes of one file; returns the bytes changed and if it shrank. */
function damageFile(path: string, model: FileModel, mode: DamageMode, random: Random) {
  const ranges = mergeRanges(model.dirty.values());
  const low = ranges[0]![0];
  const high = ranges.at(-1)![1];
  // Where a torn write splits: a sector boundary inside the dirty span (cut and head modes),
  // half the time the first one, since tears near the start of a write are the hard cases.
  const first = Math.ceil((low + 1) / sectorBytes) * sectorBytes;
  const anywhere = Math.ceil((low + random.int(high - low + 1)) / sectorBytes) * sectorBytes;
  const cut = random.bool(0.5) ? first : Math.max(low, anywhere);
  const fd = openSync(path, 'r+');
  let bytes = 0;
  let truncated = false;
  try {
    const size = fstatSync(fd).size;
    for (const range of ranges) {
      const clipped: [number, number] = [range[0], Math.min(range[1], size)];
      if (clipped[0] >= clipped[1]) continue;
      for (const piece of damageFor(mode, clipped, cut, random)) {
        writeSync(fd, piece.bytes, 0, piece.bytes.length, piece.offset);
        bytes += piece.bytes.length;
      }
    }
    // Only what no datasync made durable may vanish, the file's length included.
    const keep = Math.max(cut, model.durableEnd);
    if (mode === 'cut' && size > keep) {
      ftruncateSync(fd, keep);
      truncated = true;
    }
  } finally {
    closeSync(fd);
  }
  return { bytes, truncated };
}

/**
 * After a SIGKILL, makes the node directory look as a power loss at that moment could have
 * left it: every written range no successful datasync covered is zeroed, garbled, torn at a
 * sector boundary (the tail lost, and the file cut there if its durable length allows; or the
 * head lost and the tail landed) or damaged sector by sector, per file by a seeded choice;
 * then every create and rename no directory fsync covered is undone, newest first. Durable
 * bytes are never touched. `<dir>/checkpoint.sqlite` is left alone: it is not written through
 * the Disk port, and SQLite (synchronous=FULL) makes its own writes durable with its own
 * fsyncs before a checkpoint is reported done; the log drops segments only after that.
 */
export function emulatePowerLoss(
  events: readonly DiskEvent[],
  sizesBefore: ReadonlyMap<string, number>,
  random: Random,
): PowerLossSummary {
  const { files, entries, durableEntries } = modelDisk(events, sizesBefore);
  const summary: PowerLossSummary = {
    damaged: [],
    truncated: 0,
    filesRemoved: [],
    renamesUndone: 0,
    removalsKept: 0,
  };
  for (const model of files.values()) {
    if (model.path === null || model.dirty.size === 0 || !existsSync(model.path)) continue;
    const mode = damageModes[random.int(damageModes.length)]!;
    const result = damageFile(model.path, model, mode, random);
    summary.damaged.push({ path: model.path, mode, bytes: result.bytes });
    if (result.truncated) summary.truncated += 1;
  }
  const undo = [...entries.entries()]
    .filter(([entry]) => !durableEntries.has(entry))
    .sort((left, right) => right[0] - left[0]);
  for (const [, entry] of undo) undoEntry(entry, files, summary);
  return summary;
}

function undoEntry(entry: EntryModel, files: Map<number, FileModel>, summary: PowerLossSummary) {
  if (entry.kind === 'remove') {
    summary.removalsKept += 1;
    return;
  }
  const file = entry.file === null ? undefined : files.get(entry.file);
  if (entry.kind === 'rename') {
    if (existsSync(entry.to) && !existsSync(entry.from)) {
      renameSync(entry.to, entry.from);
      summary.renamesUndone += 1;
      if (file !== undefined) file.path = entry.from;
    }
    return;
  }
  if (file?.path != null && existsSync(file.path)) {
    unlinkSync(file.path);
    summary.filesRemoved.push(file.path);
    file.path = null;
  }
}

/** The disk events among a life's reports. */
export function diskEvents(reports: readonly Report[]): DiskEvent[] {
  return reports.filter((report) => report.t === 'disk').map((report) => report.e as DiskEvent);
}
