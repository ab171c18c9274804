/**
 * The e2e writer: a child process that writes through the public API to a real directory and
 * reports, as one JSON object per line, everything the parent test needs to check durability.
 *
 *   node --import tsx test/e2e/writer.ts <dir> <seed> [options]
 *
 * (test/e2e/harness.ts runs a transpiled copy with plain `node`, which starts about four times
 * faster.) Options:
 *   --life TAG            prefix of this run's request ids (default L0)
 *   --writers N           concurrent writers, so group commit batches them (default 4)
 *   --ops N               writes per writer before stopping (default 100000)
 *   --seconds S           stop writing after S seconds (default 60)
 *   --io sync|async       NodeDisk mode (default sync: write and fdatasync on this thread)
 *   --watermarks          wrap the disk in WatermarkDisk and report its events
 *   --query FILE          a JSON array of request ids whose status to report after opening
 *   --verify-only         report what was recovered, close, and exit without writing
 *   --errors-max N        a writer stops at its Nth failed write (default 1)
 *   --segment-bytes N     segmentSizeBytes (default 32 KiB, so segments rotate often)
 *   --checkpoint-bytes N  checkpointLogBytes (default 256 KiB; 0 disables checkpoints)
 *   --report-fd N         file descriptor the report lines go to (default 1)
 *
 * Reports (`t` is the type): hello {pid}; open {info, statuses, state} or open-failed {code,
 * message}; inv {id, op, ...} before a write is submitted; ack {id, lsn, value?} in the write's
 * resolution callback; err {id, code}; fenced {message, info}; disk {e} (WatermarkDisk
 * events); done {reason, info}. Each line is written with a synchronous write(2) before the
 * code that produced it goes on, so a SIGKILL can lose no report about something that
 * already happened: a pipe keeps what was written to it after its writer dies.
 */
import { writeSync, readFileSync } from 'node:fs';
import { NodeDisk, openNode, type SyncwalNode } from '../../src/index.js';
import { Random } from '../../src/sim/random.js';
import { WatermarkDisk } from './watermark-disk.js';

/** The kinds of write the workload makes; the parent replays them in LSN order. */
export type WriterOp =
  | { op: 'put'; key: string; value: string }
  | { op: 'incr'; key: string }
  | {
      op: 'batch';
      ops: ({ op: 'put'; key: string; value: string } | { op: 'del'; key: string })[];
    };

export interface WriterArgs {
  dir: string;
  seed: number;
  life: string;
  writers: number;
  ops: number;
  seconds: number;
  io: 'sync' | 'async';
  watermarks: boolean;
  query: string | null;
  verifyOnly: boolean;
  errorsMax: number;
  segmentBytes: number;
  checkpointBytes: number;
  reportFd: number;
}

/** Keys of puts and batches, and the separate counters of incr (so an incr never meets text). */
export const putKeys = 40;
export const counterKeys = 8;

function parseArgs(argv: readonly string[]): WriterArgs {
  const [dir, seedText, ...rest] = argv;
  if (dir === undefined || seedText === undefined) {
    throw new Error('usage: writer.ts <dir> <seed> [options]');
  }
  const args: WriterArgs = {
    dir,
    seed: Number(seedText),
    life: 'L0',
    writers: 4,
    ops: 100_000,
    seconds: 60,
    io: 'sync',
    watermarks: false,
    query: null,
    verifyOnly: false,
    errorsMax: 1,
    segmentBytes: 32 * 1024,
    checkpointBytes: 256 * 1024,
    reportFd: 1,
  };
  const flags: Record<string, () => void> = {
    '--watermarks': () => (args.watermarks = true),
    '--verify-only': () => (args.verifyOnly = true),
  };
  const numbers: Record<string, (value: number) => void> = {
    '--writers': (value) => (args.writers = value),
    '--errors-max': (value) => (args.errorsMax = value),
    '--ops': (value) => (args.ops = value),
    '--seconds': (value) => (args.seconds = value),
    '--segment-bytes': (value) => (args.segmentBytes = value),
    '--checkpoint-bytes': (value) => (args.checkpointBytes = value),
    '--report-fd': (value) => (args.reportFd = value),
  };
  for (let index = 0; index < rest.length; index++) {
    const name = rest[index] ?? '';
    const flag = flags[name];
    if (flag !== undefined) {
      flag();
      continue;
    }
    const value = rest[++index];
    if (value === undefined) throw new Error(`${name} needs a value`);
    const number = numbers[name];
    if (number !== undefined) number(Number(value));
    else if (name === '--life') args.life = value;
    else if (name === '--query') args.query = value;
    else if (name === '--io' && (value === 'sync' || value === 'async')) args.io = value;
    else throw new Error(`unknown option ${name} ${value}`);
  }
  if (!Number.isSafeInteger(args.seed)) throw new Error('seed must be an integer');
  return args;
}

/** Writes one report line with write(2); a full pipe blocks it, it is never queued. */
function reporter(fd: number): (message: object) => void {
  return (message) => {
    const line = Buffer.from(`${JSON.stringify(message)}\n`);
    let offset = 0;
    for (let attempt = 0; offset < line.length; attempt++) {
      try {
        offset += writeSync(fd, line, offset, line.length - offset);
      } catch (error: unknown) {
        // A non-blocking pipe that is full says EAGAIN: try again (the parent is reading).
        const code = (error as { code?: unknown }).code;
        if (code !== 'EAGAIN' || attempt > 10_000_000) throw error;
      }
    }
  };
}

function hexValue(random: Random): string {
  // Mostly small values, sometimes a few KiB (as hex text), so writes also span several
  // sectors and pages. A batch of five of the largest still fits one segment of 32 KiB.
  const bytes = random.bool(0.15) ? random.range(256, 2048) : random.range(1, 64);
  let text = '';
  for (let index = 0; index < bytes; index += 4) {
    text += random.uint32().toString(16).padStart(8, '0');
  }
  return text.slice(0, bytes * 2);
}

/** The next seeded write of one writer. */
export function nextOp(random: Random): WriterOp {
  const roll = random.next();
  if (roll < 0.5) return { op: 'put', key: `k${random.int(putKeys)}`, value: hexValue(random) };
  if (roll < 0.75) return { op: 'incr', key: `c${random.int(counterKeys)}` };
  const ops: Extract<WriterOp, { op: 'batch' }>['ops'] = [];
  const count = random.range(2, 5);
  for (let index = 0; index < count; index++) {
    const key = `k${random.int(putKeys)}`;
    ops.push(random.bool(0.25) ? { op: 'del', key } : { op: 'put', key, value: hexValue(random) });
  }
  return { op: 'batch', ops };
}

async function perform(node: SyncwalNode, op: WriterOp, requestId: string) {
  if (op.op === 'put') return { ...(await node.put(op.key, op.value, { requestId })) };
  if (op.op === 'incr') {
    const result = await node.incr(op.key, { requestId });
    return { lsn: result.lsn, duplicate: result.duplicate, value: result.value.toString() };
  }
  const operations = op.ops.map((entry) =>
    entry.op === 'put'
      ? { op: 'put' as const, key: entry.key, value: entry.value }
      : { op: 'delete' as const, key: entry.key },
  );
  return { ...(await node.batch(operations, { requestId })) };
}

/** One writer: submits its seeded writes one at a time until its ops, time or errors run out. */
async function writerLoop(
  node: SyncwalNode,
  args: WriterArgs,
  worker: number,
  deadline: number,
  report: (message: object) => void,
): Promise<void> {
  const random = new Random(args.seed * 64 + worker);
  let errors = 0;
  for (let index = 0; index < args.ops; index++) {
    if (performance.now() > deadline) return;
    const op = nextOp(random);
    const id = `${args.life}.${worker}.${index}`;
    report({ t: 'inv', id, ...op });
    // The ack is reported inside the resolution callback, before anything else can run.
    const outcome = await perform(node, op, id).then(
      (result) => {
        report({ t: 'ack', id, ...result });
        return null;
      },
      (error: unknown) => {
        const code = String((error as { code?: unknown }).code ?? 'EXCEPTION');
        report({ t: 'err', id, code, message: String(error) });
        return code;
      },
    );
    if (outcome !== null) errors += 1;
    if (errors >= args.errorsMax) return;
  }
}

function readQuery(path: string | null): string[] {
  if (path === null) return [];
  const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (!Array.isArray(parsed)) throw new Error('--query file must hold a JSON array');
  return parsed.map((id) => String(id));
}

/** Every committed key and value, page by page. */
async function dumpState(node: SyncwalNode): Promise<Record<string, string>> {
  const state: Record<string, string> = {};
  let start: Buffer | undefined;
  for (let page = 0; page < 10_000; page++) {
    const result = await node.scan(start === undefined ? { limit: 1000 } : { start, limit: 1000 });
    for (const entry of result.entries) state[entry.key.toString()] = entry.value.toString();
    if (result.next === null) return state;
    start = result.next;
  }
  throw new Error('scan did not end');
}

async function openReported(args: WriterArgs, report: (message: object) => void) {
  const inner = new NodeDisk({ io: args.io });
  const disk = args.watermarks
    ? new WatermarkDisk(inner, (event) => report({ t: 'disk', e: event }))
    : inner;
  try {
    return await openNode({
      dir: args.dir,
      disk,
      segmentSizeBytes: args.segmentBytes,
      checkpointLogBytes: args.checkpointBytes,
    });
  } catch (error: unknown) {
    const code = String((error as { code?: unknown }).code ?? 'EXCEPTION');
    report({ t: 'open-failed', code, message: String(error) });
    return null;
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const report = reporter(args.reportFd);
  report({ t: 'hello', pid: process.pid });
  const node = await openReported(args, report);
  if (node === null) return 3;
  const ids = readQuery(args.query);
  const statuses = ids.map((id) => {
    const status = node.status(id);
    return [id, status.status, 'lsn' in status ? status.lsn : null];
  });
  report({ t: 'open', info: node.info(), statuses, state: await dumpState(node) });
  if (args.verifyOnly) {
    await node.close();
    report({ t: 'done', reason: 'verify-only', info: null });
    return 0;
  }
  const deadline = performance.now() + args.seconds * 1000;
  // Once fenced, every writer's next write fails, so each stops and the process exits.
  node.on('fenced', (error) => {
    report({ t: 'fenced', message: String(error), info: node.info() });
  });
  const writers = Array.from({ length: args.writers }, (_, worker) =>
    writerLoop(node, args, worker, deadline, report),
  );
  await Promise.all(writers);
  const info = node.info();
  await node.close().catch(() => undefined);
  report({ t: 'done', reason: info.fenced === null ? 'finished' : 'fenced', info });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`writer failed: ${String(error)}\n`);
    process.exit(2);
  },
);
