import { assert } from '../core/assert.js';
import { RecordType } from '../core/format/frame.js';
import { frameAlignmentBytes, frameHeaderBytes } from '../core/limits.js';
import { ForwardingDisk } from '../ports/forwarding-disk.js';
import type { Disk, FileHandle, OpenMode, OpenOptions } from '../ports/disk.js';

/**
 * A Disk decorator that measures the log's hot path for the metrics endpoint, through the
 * disk port alone (the engine and the log are not touched): how long each `fdatasync` of a log
 * segment takes, and how much each group-commit write carries.
 *
 * What counts: handles of log segments (`*.wal`) opened for writing in the foreground. That is
 * the active segment the log appends to; segments being preallocated and their headers are
 * written through background handles and are not counted. On such a handle:
 * - every `datasync` is timed, from the call until it resolves, on the injected monotonic
 *   clock (on the default synchronous NodeDisk the fdatasync runs inside the call);
 * - every `write` whose buffers are whole log frames is a group-commit write: its records are
 *   counted from the frame headers (SEAL frames are local bookkeeping, not records) and
 *   reported with its byte count. A write of anything else (recovery zeroing a torn tail) is
 *   not reported, nor is one without records (the SEAL a clean close writes alone).
 *
 * Counting reads only the 32-byte frame headers the log just encoded (length and type), so it
 * costs a few memory reads per record and never a checksum.
 */

/** What one group-commit write of the log carried. */
export interface LogWriteSample {
  /**
   * INTENT records: the atomic writes that share this write's fdatasync (one per write command,
   * except that the server batches the plain SETs a connection pipelines in one turn into one).
   */
  intents: number;
  /** Records of every type (INTENT, COMMIT, ABORT, TERM, CHECKPOINT), SEALs excluded. */
  records: number;
  bytes: number;
}

/** Receives the measurements; called on the write path, so it must be cheap. */
export interface LogIoObserver {
  logWrite(sample: LogWriteSample): void;
  /** One fdatasync of the active segment took `seconds` (also when it failed). */
  logSync(seconds: number): void;
}

/** Where a frame header keeps its payload length (u32 LE) and its type (u8): see frame.ts. */
const headerLengthOffset = 8;
const headerTypeOffset = 12;

/**
 * The format's constants as module locals: read once per frame, and an imported binding can
 * cost a property lookup per read (under CommonJS interop, as tsx runs the sources).
 */
const headerBytes = frameHeaderBytes;
const alignmentBytes = frameAlignmentBytes;
const sealType: number = RecordType.Seal;
const intentType: number = RecordType.Intent;

/** 1 at each valid record type: a table lookup per frame on the write path. */
const recordTypes = new Uint8Array(256);
for (const type of Object.values(RecordType)) recordTypes[type] = 1;

/**
 * Counts the frames of one buffer into `into`; false if the buffer is not whole frames. Plain
 * byte reads (no DataView, no helper calls): this runs for every record the log writes.
 */
function countFrames(buffer: Uint8Array, into: LogWriteSample): boolean {
  let offset = 0;
  // Every pass consumes at least a frame header, so the loop ends.
  while (offset < buffer.length) {
    if (offset + headerBytes > buffer.length) return false;
    const type = buffer[offset + headerTypeOffset]!;
    if (recordTypes[type] !== 1) return false;
    const at = offset + headerLengthOffset;
    const length =
      buffer[at]! +
      buffer[at + 1]! * 0x100 +
      buffer[at + 2]! * 0x10000 +
      buffer[at + 3]! * 0x1000000;
    const size = Math.ceil((headerBytes + length) / alignmentBytes) * alignmentBytes;
    if (offset + size > buffer.length) return false;
    if (type !== sealType) into.records += 1;
    if (type === intentType) into.intents += 1;
    offset += size;
  }
  return true;
}

/** What a write of `buffers` carried, or null if it is not a group-commit write of frames. */
export function logWriteSample(buffers: readonly Uint8Array[]): LogWriteSample | null {
  const sample: LogWriteSample = { intents: 0, records: 0, bytes: 0 };
  for (const buffer of buffers) {
    if (!countFrames(buffer, sample)) return null;
    sample.bytes += buffer.length;
  }
  return sample.records === 0 ? null : sample;
}

class MeasuredHandle implements FileHandle {
  readonly #inner: FileHandle;
  readonly #observer: LogIoObserver;
  readonly #nowMs: () => number;

  constructor(inner: FileHandle, observer: LogIoObserver, nowMs: () => number) {
    this.#inner = inner;
    this.#observer = observer;
    this.#nowMs = nowMs;
  }

  read(target: Uint8Array, targetOffset: number, length: number, position: number) {
    return this.#inner.read(target, targetOffset, length, position);
  }

  async write(buffers: readonly Uint8Array[], position: number): Promise<void> {
    // Counted before the call: once a write resolves, the caller may reuse its buffers (the
    // engine encodes the next intents into the same memory).
    const sample = logWriteSample(buffers);
    await this.#inner.write(buffers, position);
    // Reported once written: a failed write fences the log and carried nothing durable.
    if (sample !== null) this.#observer.logWrite(sample);
  }

  async datasync(): Promise<void> {
    const startedMs = this.#nowMs();
    try {
      await this.#inner.datasync();
    } finally {
      const elapsedMs = this.#nowMs() - startedMs;
      assert(elapsedMs >= 0, 'the clock is monotonic');
      this.#observer.logSync(elapsedMs / 1000);
    }
  }

  truncate(length: number): Promise<void> {
    return this.#inner.truncate(length);
  }

  size(): Promise<number> {
    return this.#inner.size();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** The disk the node runs on, with the log's segment writes and fdatasyncs measured. */
export class MeasuredDisk extends ForwardingDisk {
  readonly #observer: LogIoObserver;
  readonly #nowMs: () => number;

  constructor(options: { disk: Disk; observer: LogIoObserver; monotonicMs: () => number }) {
    super(options.disk);
    this.#observer = options.observer;
    this.#nowMs = options.monotonicMs;
  }

  override async open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle> {
    const handle = await this.inner.open(path, mode, options);
    const measured = mode === 'write' && options?.background !== true && path.endsWith('.wal');
    return measured ? new MeasuredHandle(handle, this.#observer, this.#nowMs) : handle;
  }
}
