import { assert } from '../core/assert.js';
import {
  ClosedError,
  CorruptionError,
  InvalidError,
  IoError,
  SyncwalError,
  diskError,
} from '../core/errors.js';
import {
  RecordType,
  decodeFrame,
  encodeFrame,
  encodeFrameInto,
  frameBytesFor,
  isRecordType,
} from '../core/format/frame.js';
import {
  decodeSegmentHeader,
  encodeSegmentHeader,
  segmentName,
} from '../core/format/segment-header.js';
import {
  frameHeaderBytes,
  lsnMax,
  recordPayloadBytesMax,
  segmentHeaderBytes,
  writeBatchBytesMax,
  writeBatchRecordsMax,
} from '../core/limits.js';
import type { Disk, DiskLock, FileHandle } from '../ports/disk.js';
import { resolveLogOptions, type LogOptions, type LogOptionsResolved } from './options.js';
import { recoverLog, type RecoveryReport } from './recover.js';
import { removeResetMarker, writeResetMarker, type LogBase } from './reset-marker.js';
import { preallocateSegment, preallocatedName, zeroRange } from './segment-file.js';
import { removeTruncationMarker, writeTruncationMarker } from './truncation-marker.js';

export type { LogBase } from './reset-marker.js';

/**
 * The segmented, checksummed, group-committed log (DESIGN §2).
 *
 * Ordering contract:
 * - `append` assigns LSNs synchronously (the first record gets `lastLsn + 1` at call time) and
 *   encodes the frames at once, so their bytes are final before they are durable.
 * - One write is in flight at a time. Appends that arrive meanwhile gather into the next write;
 *   each write is one positional write plus one fdatasync, and resolves every append in it with
 *   the durable LSN. The next write starts only after the previous fdatasync returned.
 * - Every write that follows a durable write begins with a SEAL frame vouching for it, a write
 *   never spans segments, and a segment is rotated only when all writes to it are durable.
 *   Recovery (core/recovery/plan.ts) relies on these three facts.
 * - fdatasync failure is fail-stop: the failing write and everything queued reject with IOERR
 *   and so does every later call until the log is reopened; the fsync is never retried.
 * - Segments are preallocated, so a full disk shows when the next segment is prepared (statvfs
 *   and zero-fill, before any record byte is written): the appends waiting for it reject with
 *   NOSPACE and their LSNs roll back (appends queued behind them too: their frames chain on the
 *   rejected ones). Nothing durable is touched, and appends work again once space is free.
 * - A failed write (any errno) fences the log like a failed fdatasync: part of it may be on
 *   disk, so its appends are not definitively rejected; reopen recovers what is there.
 */
export interface LogRecordInput {
  type: RecordType;
  term: number;
  payload: Uint8Array;
}

export interface LogRecord {
  lsn: number;
  term: number;
  type: RecordType;
  checksum: number;
  /** The chain checksum of the record before (re-encoding the frame needs it). */
  prevChecksum: number;
  payload: Uint8Array;
}

/**
 * Sees every append synchronously, with its frames exactly as they will be written (a primary
 * ships them to replicas before they are durable). `offsets` locate each record's frame.
 */
export type AppendListener = (
  firstLsn: number,
  frames: Uint8Array,
  offsets: readonly number[],
  lastChecksum: number,
) => void;

export interface LogStats {
  firstLsn: number;
  lastLsn: number;
  durableLsn: number;
  segments: number;
  writes: number;
  syncs: number;
  records: number;
  bytesWritten: number;
  rotations: number;
}

interface Segment {
  name: string;
  firstLsn: number;
  /** Offsets of record frames, index = lsn - firstLsn. */
  recordOffsets: number[];
  /** Offset just past the last durable frame. */
  endOffset: number;
  /** Highest offset any write reached (failed writes may leave bytes up to here). */
  dirtyEnd: number;
}

/** One append call: its frames, back to back in one buffer, and its waiter. */
interface PendingAppend {
  frames: Uint8Array;
  /** Frame sizes when the append has more than one record (null: one frame). */
  frameSizes: number[] | null;
  records: number;
  lsnLast: number;
  checksumLast: number;
  termLast: number;
  resolve: (durableLsn: number) => void;
  reject: (error: SyncwalError) => void;
}

/** Frames are encoded into slabs of this size (fewer, larger allocations on the hot path). */
const slabBytes = 1024 * 1024;

interface Tail {
  lsn: number;
  checksum: number;
  term: number;
}

const emptyPayload = new Uint8Array(0);

/**
 * The index of the last record to read from [first, last] so that the bytes read stay near
 * `bytesMax` (at least one record): a binary search over the record offsets, so a small read
 * does not load the rest of a 64 MiB segment.
 */
function readLimitIndex(
  offsets: readonly number[],
  range: { first: number; last: number; bytesMax: number },
): number {
  const start = offsets[range.first];
  assert(start !== undefined, 'the first record is indexed');
  let low = range.first;
  let high = range.last;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    const offset = offsets[middle];
    assert(offset !== undefined, 'indexed records are dense');
    if (offset - start <= range.bytesMax) low = middle;
    else high = middle - 1;
  }
  return low;
}

function parentDirectory(path: string): string {
  const cut = path.lastIndexOf('/');
  if (cut > 0) return path.slice(0, cut);
  return cut === 0 ? '/' : '.';
}

export class Log {
  readonly #disk: Disk;
  readonly #options: LogOptionsResolved;
  readonly #lock: DiskLock | null;
  readonly #segments: Segment[];
  #active: FileHandle;
  #writeOffset: number;
  /** The last assigned record (may not be durable yet). */
  #assigned: Tail;
  /** The last durable record. */
  #durable: Tail;
  #sealNeeded: boolean;
  #queue: PendingAppend[] = [];
  #pumping: Promise<void> | null = null;
  #failure: SyncwalError | null = null;
  #closed = false;
  #prepared: Promise<FileHandle | SyncwalError> | null = null;
  #slab = new Uint8Array(slabBytes);
  #appendListener: AppendListener | null = null;
  #slabUsed = 0;
  /** A `resetTo` is replacing the files: every other call is refused meanwhile. */
  #resetting = false;
  #stats = { writes: 0, syncs: 0, records: 0, bytesWritten: 0, rotations: 0 };
  /** What recovery found and did when this log was opened. */
  readonly recovery: RecoveryReport;

  private constructor(init: {
    disk: Disk;
    options: LogOptionsResolved;
    lock: DiskLock | null;
    segments: Segment[];
    active: FileHandle;
    tail: Tail;
    recovery: RecoveryReport;
  }) {
    this.#disk = init.disk;
    this.#options = init.options;
    this.#lock = init.lock;
    this.#segments = init.segments;
    this.#active = init.active;
    const last = init.segments.at(-1);
    assert(last !== undefined, 'an open log has a segment');
    this.#writeOffset = last.endOffset;
    this.#assigned = { ...init.tail };
    this.#durable = { ...init.tail };
    this.#sealNeeded = init.tail.lsn >= (init.segments[0]?.firstLsn ?? 1);
    this.recovery = init.recovery;
    this.#startPreallocation();
  }

  /**
   * Opens (and recovers) the log in `<dir>/wal`, creating it if missing. Takes the directory
   * lock. A torn tail is truncated; corruption anywhere else rejects with CORRUPT naming the
   * segment, offset and LSN.
   */
  static async open(disk: Disk, options: LogOptions): Promise<Log> {
    const resolved = resolveLogOptions(options);
    try {
      await disk.mkdir(resolved.walDir);
      // A new directory entry is durable only once its parent directory is synced.
      await disk.syncDir(resolved.dir);
      await disk.syncDir(parentDirectory(resolved.dir));
    } catch (error: unknown) {
      throw diskError('mkdir', error);
    }
    const lock = resolved.lock ? await disk.lock(resolved.dir) : null;
    try {
      const recovered = await recoverLog(disk, resolved);
      return new Log({ disk, options: resolved, lock, ...recovered });
    } catch (error: unknown) {
      await lock?.release().catch(() => undefined);
      throw error;
    }
  }

  /** LSN of the first record still in the log (after prefix truncation). */
  get firstLsn(): number {
    return this.#segments[0]?.firstLsn ?? this.#options.firstLsn;
  }
  /** LSN of the last record appended (assigned), durable or not. */
  get lastLsn(): number {
    return this.#assigned.lsn;
  }
  /** LSN of the last record known durable. */
  get durableLsn(): number {
    return this.#durable.lsn;
  }
  /** The most frame bytes one `append` call may carry (it must fit one write). */
  get appendBytesMax(): number {
    const capacity = this.#options.segmentSizeBytes - segmentHeaderBytes - frameHeaderBytes;
    return Math.min(capacity, writeBatchBytesMax);
  }
  /** Checksum (frame crc) of the last record appended: COMMIT records carry it. */
  get lastChecksum(): number {
    return this.#assigned.checksum;
  }
  /** Term of the last record appended. */
  get lastTerm(): number {
    return this.#assigned.term;
  }
  /** The error that fenced this log, if any. */
  get failure(): SyncwalError | null {
    return this.#failure;
  }

  stats(): LogStats {
    return {
      firstLsn: this.firstLsn,
      lastLsn: this.lastLsn,
      durableLsn: this.durableLsn,
      segments: this.#segments.length,
      ...this.#stats,
    };
  }

  #checkUsable(): void {
    if (this.#closed) throw new ClosedError('log is closed');
    if (this.#failure !== null) throw this.#failure;
    if (this.#resetting) throw new InvalidError('the log is being reset');
  }

  /**
   * Appends records (in one write, never split across segments) and resolves with the durable
   * LSN once they are durable. LSNs are assigned at call time: the first is the previous
   * `lastLsn + 1`. A crash before the promise resolves may keep any prefix of the records, so
   * effects that must stay together belong in one record (one INTENT), not in one append.
   */
  append(records: readonly LogRecordInput[]): Promise<number> {
    try {
      this.#checkUsable();
      const bytes = this.#validate(records);
      return new Promise<number>((resolve, reject) => {
        this.#enqueue(this.#encode(records, bytes, resolve, reject));
      });
    } catch (error: unknown) {
      return Promise.reject(error);
    }
  }

  /** Sets (or with null clears) the listener that sees every append's frames. */
  onAppend(listener: AppendListener | null): void {
    this.#appendListener = listener;
  }

  /**
   * Appends frames received from the primary, byte for byte (a replica's log is identical to
   * its primary's over the shared prefix). Each frame must check out on its own, continue this
   * log's LSNs and checksum chain, and not lower the term; otherwise nothing is appended and
   * the call rejects with INVALID. Resolves with the durable LSN, like `append`.
   */
  appendFrames(frames: Uint8Array): Promise<number> {
    try {
      this.#checkUsable();
      const checked = this.#validateFrames(frames);
      return new Promise<number>((resolve, reject) => {
        this.#assigned = {
          lsn: checked.lsnLast,
          checksum: checked.checksumLast,
          term: checked.termLast,
        };
        this.#enqueue({
          frames: frames.slice(),
          frameSizes: checked.sizes.length > 1 ? checked.sizes : null,
          records: checked.sizes.length,
          lsnLast: checked.lsnLast,
          checksumLast: checked.checksumLast,
          termLast: checked.termLast,
          resolve,
          reject,
        });
      });
    } catch (error: unknown) {
      return Promise.reject(error);
    }
  }

  #validateFrames(frames: Uint8Array) {
    if (!(frames instanceof Uint8Array) || frames.length === 0) {
      throw new InvalidError('appendFrames needs at least one frame');
    }
    const capacity = this.#options.segmentSizeBytes - segmentHeaderBytes - frameHeaderBytes;
    const limit = Math.min(capacity, writeBatchBytesMax);
    if (frames.length > limit) {
      throw new InvalidError(`append of ${frames.length} bytes exceeds one write (${limit})`);
    }
    let { lsn, checksum, term } = this.#assigned;
    const sizes: number[] = [];
    for (let offset = 0; offset < frames.length;) {
      const decoded = decodeFrame(frames, offset, frames.length);
      if (decoded.kind !== 'ok') {
        const reason = decoded.kind === 'bad' ? decoded.reason : 'zeros';
        throw new InvalidError(`received frame at offset ${offset} is bad: ${reason}`);
      }
      const frame = decoded.frame;
      const problem =
        frame.type === RecordType.Seal
          ? 'a SEAL frame (node-local) was received'
          : frame.lsn !== lsn + 1
            ? `LSN ${frame.lsn} does not follow ${lsn}`
            : frame.prevChecksum !== checksum
              ? `LSN ${frame.lsn} does not continue the checksum chain`
              : frame.term < term
                ? `LSN ${frame.lsn} has term ${frame.term} below ${term}`
                : null;
      if (problem !== null) throw new InvalidError(`received frames rejected: ${problem}`);
      if (sizes.length >= writeBatchRecordsMax) throw new InvalidError('too many frames');
      ({ lsn, checksum, term } = frame);
      sizes.push(frame.frameBytes);
      offset += frame.frameBytes;
    }
    return { sizes, lsnLast: lsn, checksumLast: checksum, termLast: term };
  }

  /** Queues an encoded append, shows it to the listener, and starts the writer. */
  #enqueue(pending: PendingAppend): void {
    this.#queue.push(pending);
    const listener = this.#appendListener;
    if (listener !== null) {
      const offsets: number[] = [];
      let offset = 0;
      for (const size of pending.frameSizes ?? [pending.frames.length]) {
        offsets.push(offset);
        offset += size;
      }
      listener(
        pending.lsnLast - pending.records + 1,
        pending.frames,
        offsets,
        pending.checksumLast,
      );
    }
    this.#kick();
  }

  /**
   * Durable records as frames, byte for byte as written (SEAL frames left out), for shipping
   * to a replica that is behind: at least one record, about `bytesMax` of payload.
   */
  async readFrames(range: { lsnFirst: number; lsnLast: number; bytesMax?: number }) {
    const records = await this.read(range);
    const first = records[0];
    assert(first !== undefined, 'a read returns at least one record');
    const encoded = records.map(
      (record) =>
        encodeFrame({
          type: record.type,
          term: record.term,
          lsn: record.lsn,
          prevChecksum: record.prevChecksum,
          payload: record.payload,
        }).bytes,
    );
    const frames = new Uint8Array(encoded.reduce((sum, bytes) => sum + bytes.length, 0));
    let offset = 0;
    for (const bytes of encoded) {
      frames.set(bytes, offset);
      offset += bytes.length;
    }
    return { frames, lastLsn: records.at(-1)?.lsn ?? first.lsn, prevChecksum: first.prevChecksum };
  }

  /** Checks every record before anything is assigned; returns the frames' total size. */
  #validate(records: readonly LogRecordInput[]): number {
    if (records.length === 0) throw new InvalidError('append needs at least one record');
    if (records.length > writeBatchRecordsMax) {
      throw new InvalidError(`append of ${records.length} records exceeds ${writeBatchRecordsMax}`);
    }
    let term = this.#assigned.term;
    let bytes = 0;
    for (const record of records) {
      if (!isRecordType(record.type) || record.type === RecordType.Seal) {
        throw new InvalidError(`record type ${String(record.type)} cannot be appended`);
      }
      if (!Number.isSafeInteger(record.term) || record.term < term) {
        throw new InvalidError(`record term ${record.term} below the log's term ${term}`);
      }
      const payload = record.payload;
      if (!(payload instanceof Uint8Array) || payload.length > recordPayloadBytesMax) {
        throw new InvalidError(`record payload must be bytes, at most ${recordPayloadBytesMax}`);
      }
      term = record.term;
      bytes += frameBytesFor(payload.length);
    }
    const capacity = this.#options.segmentSizeBytes - segmentHeaderBytes - frameHeaderBytes;
    const limit = Math.min(capacity, writeBatchBytesMax);
    if (bytes > limit)
      throw new InvalidError(`append of ${bytes} bytes exceeds one write (${limit})`);
    return bytes;
  }

  /** Assigns LSNs and encodes the frames; cannot fail once `#validate` passed. */
  #encode(
    records: readonly LogRecordInput[],
    bytes: number,
    resolve: (durableLsn: number) => void,
    reject: (error: SyncwalError) => void,
  ): PendingAppend {
    if (this.#slabUsed + bytes > this.#slab.length) {
      this.#slab = new Uint8Array(Math.max(slabBytes, bytes));
      this.#slabUsed = 0;
    }
    const frames = this.#slab.subarray(this.#slabUsed, this.#slabUsed + bytes);
    this.#slabUsed += bytes;
    const frameSizes: number[] | null = records.length > 1 ? [] : null;
    let lsn = this.#assigned.lsn;
    let checksum = this.#assigned.checksum;
    let term = this.#assigned.term;
    let offset = 0;
    for (const record of records) {
      lsn += 1;
      term = record.term;
      const fields = {
        type: record.type,
        term,
        lsn,
        prevChecksum: checksum,
        payload: record.payload,
      };
      checksum = encodeFrameInto(frames, offset, fields);
      const size = frameBytesFor(record.payload.length);
      frameSizes?.push(size);
      offset += size;
    }
    assert(offset === bytes, 'frames filled exactly their buffer');
    this.#assigned = { lsn, checksum, term };
    return {
      frames,
      frameSizes,
      records: records.length,
      lsnLast: lsn,
      checksumLast: checksum,
      termLast: term,
      resolve,
      reject,
    };
  }

  #kick(): void {
    if (this.#pumping !== null) return;
    // Start writing one microtask later: when a write resolves many appends, their callers'
    // continuations are already queued and each appends again before the pump takes a group,
    // so the next write carries all of them instead of the first alone.
    this.#pumping = Promise.resolve()
      .then(() => this.#pump())
      .finally(() => {
        this.#pumping = null;
        // Appends may have arrived while the pump was finishing its last step.
        if (this.#queue.length > 0 && this.#failure === null) this.#kick();
      });
  }

  async #pump(): Promise<void> {
    while (this.#queue.length > 0 && this.#failure === null) {
      const group = this.#takeGroup();
      if (group === null) {
        const rotated = await this.#rotate();
        if (!rotated) return;
        continue;
      }
      await this.#writeGroup(group);
    }
  }

  /** The appends for the next write, or null if the first does not fit: rotate first. */
  #takeGroup(): PendingAppend[] | null {
    const sealBytes = this.#sealNeeded ? frameHeaderBytes : 0;
    const room = Math.min(
      this.#options.segmentSizeBytes - this.#writeOffset - sealBytes,
      writeBatchBytesMax,
    );
    let bytes = 0;
    let records = 0;
    let count = 0;
    for (const pending of this.#queue) {
      if (bytes + pending.frames.length > room) break;
      if (records + pending.records > writeBatchRecordsMax) break;
      bytes += pending.frames.length;
      records += pending.records;
      count += 1;
    }
    if (count === 0) return null;
    return this.#queue.splice(0, count);
  }

  #sealFrame(): Uint8Array {
    const tail = this.#durable;
    return encodeFrame({
      type: RecordType.Seal,
      term: tail.term,
      lsn: tail.lsn,
      prevChecksum: tail.checksum,
      payload: emptyPayload,
    }).bytes;
  }

  async #writeGroup(group: PendingAppend[]): Promise<void> {
    const segment = this.#segments.at(-1);
    assert(segment !== undefined, 'an active segment exists');
    const buffers: Uint8Array[] = [];
    const offsets: number[] = [];
    let offset = this.#writeOffset;
    if (this.#sealNeeded) {
      const seal = this.#sealFrame();
      buffers.push(seal);
      offset += seal.length;
    }
    for (const pending of group) {
      buffers.push(pending.frames);
      if (pending.frameSizes === null) {
        offsets.push(offset);
        offset += pending.frames.length;
        continue;
      }
      for (const size of pending.frameSizes) {
        offsets.push(offset);
        offset += size;
      }
    }
    assert(offset <= this.#options.segmentSizeBytes, 'a write never spans segments');
    segment.dirtyEnd = Math.max(segment.dirtyEnd, offset);
    try {
      await this.#active.write(buffers, this.#writeOffset);
    } catch (error: unknown) {
      // Any prefix of a failed write may be on disk, and complete frames among it would be
      // recovered as records after a crash. So a failed write is not a definitive "not
      // written" (even ENOSPC): fence, and let reopen recover what is really there.
      const cause = diskError('write', error);
      this.#fence(group, new IoError('write', `${cause.message}; the log is fenced`, { cause }));
      return;
    }
    try {
      await this.#active.datasync();
    } catch (error: unknown) {
      this.#fence(group, new IoError('fdatasync', 'failed; the log is fenced', { cause: error }));
      return;
    }
    this.#completeGroup(group, segment, offsets, offset);
  }

  #completeGroup(group: PendingAppend[], segment: Segment, offsets: number[], end: number) {
    const last = group.at(-1);
    assert(last !== undefined, 'a group has appends');
    assert(
      segment.firstLsn + segment.recordOffsets.length === this.#durable.lsn + 1,
      'index is dense',
    );
    for (const offset of offsets) segment.recordOffsets.push(offset);
    segment.endOffset = end;
    this.#writeOffset = end;
    this.#durable = { lsn: last.lsnLast, checksum: last.checksumLast, term: last.termLast };
    this.#sealNeeded = true;
    this.#startPreallocation();
    this.#stats.writes += 1;
    this.#stats.syncs += 1;
    this.#stats.records += offsets.length;
    this.#stats.bytesWritten += end - (offsets[0] ?? end);
    for (const pending of group) pending.resolve(this.#durable.lsn);
  }

  /**
   * Preparing a segment failed before any record byte was written: NOSPACE rejects the queue
   * definitively, rolls back its LSNs and keeps the log usable; anything else fences it.
   */
  #failRotation(group: PendingAppend[], error: SyncwalError): void {
    if (error.code !== 'NOSPACE') {
      this.#fence(group, error);
      return;
    }
    const queued = this.#queue.splice(0);
    this.#assigned = { ...this.#durable };
    for (const pending of [...group, ...queued]) pending.reject(error);
  }

  #fence(group: PendingAppend[], error: SyncwalError): void {
    this.#failure ??= error;
    const queued = this.#queue.splice(0);
    for (const pending of [...group, ...queued]) pending.reject(this.#failure);
  }

  /**
   * Prepares the next segment in the background once the active one is a quarter full. Not at
   * once: zero-filling 64 MiB competes with the fdatasyncs of the writes in flight, and a
   * segment that just started has plenty of room left (etcd prepares at once; we measured the
   * cost at low concurrency).
   */
  #startPreallocation(): void {
    if (!this.#options.preallocate || this.#prepared !== null) return;
    if (this.#writeOffset < this.#options.segmentSizeBytes / 4) return;
    this.#prepared = preallocateSegment(
      this.#disk,
      this.#options.walDir,
      this.#options.segmentSizeBytes,
    ).catch((error: unknown) => diskError('preallocate', error));
  }

  async #takePrepared(): Promise<FileHandle> {
    const prepared =
      this.#prepared ??
      preallocateSegment(this.#disk, this.#options.walDir, this.#options.segmentSizeBytes).catch(
        (error: unknown) => diskError('preallocate', error),
      );
    this.#prepared = null;
    const result = await prepared;
    if (!(result instanceof SyncwalError)) return result;
    // A background preparation that failed earlier (say, while the disk was full) is stale:
    // try once more now, so writes resume as soon as space is freed.
    return preallocateSegment(this.#disk, this.#options.walDir, this.#options.segmentSizeBytes);
  }

  /** Starts the next segment. Returns false if the queue was failed instead. */
  async #rotate(): Promise<boolean> {
    const head = this.#queue[0];
    assert(head !== undefined, 'rotation happens for a queued append');
    let handle: FileHandle;
    try {
      handle = await this.#takePrepared();
    } catch (error: unknown) {
      this.#failRotation([], diskError('preallocate', error));
      return false;
    }
    const firstLsn = this.#durable.lsn + 1;
    const name = segmentName(firstLsn);
    const header = encodeSegmentHeader({
      firstLsn,
      segmentSizeBytes: this.#options.segmentSizeBytes,
      chainSeed: this.#durable.checksum,
    });
    let active: FileHandle;
    try {
      await handle.write([header], 0);
      await handle.datasync();
      await this.#disk.rename(
        `${this.#options.walDir}/${preallocatedName}`,
        `${this.#options.walDir}/${name}`,
      );
      await this.#disk.syncDir(this.#options.walDir);
      // The preparing handle was a background one; the hot path gets a foreground handle.
      await handle.close();
      active = await this.#disk.open(`${this.#options.walDir}/${name}`, 'write');
    } catch (error: unknown) {
      await handle.close().catch(() => undefined);
      this.#fence(
        [],
        new IoError('rotate', 'segment rotation failed; the log is fenced', { cause: error }),
      );
      return false;
    }
    await this.#active.close().catch(() => undefined);
    this.#active = active;
    this.#segments.push({
      name,
      firstLsn,
      recordOffsets: [],
      endOffset: segmentHeaderBytes,
      dirtyEnd: segmentHeaderBytes,
    });
    this.#writeOffset = segmentHeaderBytes;
    this.#stats.rotations += 1;
    this.#startPreallocation();
    return true;
  }

  /** Resolves when no write is in flight and nothing is queued. */
  async #drain(): Promise<void> {
    for (let round = 0; this.#pumping !== null && round < 1_000_000; round++) await this.#pumping;
  }

  #segmentIndexFor(lsn: number): number {
    let low = 0;
    let high = this.#segments.length - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      const segment = this.#segments[middle];
      assert(segment !== undefined, 'binary search stays in range');
      if (segment.firstLsn <= lsn) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  async #withSegmentHandle<T>(segment: Segment, use: (handle: FileHandle) => Promise<T>) {
    if (segment === this.#segments.at(-1)) return use(this.#active);
    const handle = await this.#disk.open(`${this.#options.walDir}/${segment.name}`, 'read');
    try {
      return await use(handle);
    } finally {
      await handle.close();
    }
  }

  /**
   * Reads durable records in [lsnFirst, lsnLast], stopping early once `bytesMax` payload bytes
   * were collected (at least one record is always returned). Every frame is verified again on
   * the way out: a record that no longer checks out rejects with CORRUPT, never silently.
   */
  async read(range: {
    lsnFirst: number;
    lsnLast: number;
    bytesMax?: number;
  }): Promise<LogRecord[]> {
    this.#checkUsable();
    const { lsnFirst, lsnLast } = range;
    const bytesMax = range.bytesMax ?? recordPayloadBytesMax;
    if (!Number.isSafeInteger(lsnFirst) || !Number.isSafeInteger(lsnLast) || lsnFirst > lsnLast) {
      throw new InvalidError(`bad read range [${lsnFirst}, ${lsnLast}]`);
    }
    if (lsnFirst < this.firstLsn || lsnLast > this.durableLsn) {
      throw new InvalidError(
        `read [${lsnFirst}, ${lsnLast}] outside the durable log ` +
          `[${this.firstLsn}, ${this.durableLsn}]`,
      );
    }
    const records: LogRecord[] = [];
    let bytes = 0;
    let lsn = lsnFirst;
    for (let guard = 0; lsn <= lsnLast && guard < this.#segments.length; guard++) {
      const segment = this.#segments[this.#segmentIndexFor(lsn)];
      assert(segment !== undefined, 'a segment holds every durable LSN');
      const segmentLast = Math.min(lsnLast, segment.firstLsn + segment.recordOffsets.length - 1);
      const found = await this.#withSegmentHandle(segment, (handle) =>
        this.#readFromSegment(handle, segment, lsn, segmentLast, bytesMax - bytes),
      );
      for (const record of found) {
        records.push(record);
        bytes += record.payload.length;
      }
      lsn = (records.at(-1)?.lsn ?? lsn - 1) + 1;
      if (bytes >= bytesMax || found.length === 0) break;
    }
    return records;
  }

  async #readFromSegment(
    handle: FileHandle,
    segment: Segment,
    lsnFirst: number,
    lsnLast: number,
    bytesMax: number,
  ): Promise<LogRecord[]> {
    const start = segment.recordOffsets[lsnFirst - segment.firstLsn];
    assert(start !== undefined, 'index covers the range');
    const last = readLimitIndex(segment.recordOffsets, {
      first: lsnFirst - segment.firstLsn,
      last: lsnLast - segment.firstLsn,
      bytesMax,
    });
    const end = segment.recordOffsets[last + 1] ?? segment.endOffset;
    const bytes = new Uint8Array(end - start);
    const count = await handle.read(bytes, 0, bytes.length, start);
    const records: LogRecord[] = [];
    let offset = 0;
    let payloadBytes = 0;
    while (offset < count && records.length <= lsnLast - lsnFirst) {
      const decoded = decodeFrame(bytes, offset, count);
      const lsn = lsnFirst + records.length;
      if (decoded.kind !== 'ok') {
        const reason = decoded.kind === 'bad' ? decoded.reason : 'zeros where a record was';
        throw new CorruptionError({ segment: segment.name, offset: start + offset, lsn }, reason);
      }
      offset += decoded.frame.frameBytes;
      if (decoded.frame.type === RecordType.Seal) continue;
      if (decoded.frame.lsn !== lsn) {
        throw new CorruptionError(
          { segment: segment.name, offset: start + offset, lsn },
          'lsn mismatch on read',
        );
      }
      const { type, term, checksum, prevChecksum, payload } = decoded.frame;
      records.push({ lsn, type, term, checksum, prevChecksum, payload: payload.slice() });
      payloadBytes += payload.length;
      if (payloadBytes >= bytesMax) break;
    }
    return records;
  }

  /**
   * Drops every record after `lsnLast` (a divergent, uncommitted tail). Crash-safe: the intent
   * is recorded in a marker file first, and recovery finishes an interrupted truncation. Must
   * not overlap appends.
   */
  async truncateSuffix(options: { lsnLast: number }): Promise<void> {
    this.#checkUsable();
    await this.#drain();
    this.#checkUsable();
    const { lsnLast } = options;
    if (this.#queue.length > 0) throw new InvalidError('truncateSuffix while appends are queued');
    if (!Number.isSafeInteger(lsnLast) || lsnLast < this.firstLsn - 1 || lsnLast > this.lastLsn) {
      throw new InvalidError(
        `cannot truncate after ${lsnLast}: log is [${this.firstLsn}, ${this.lastLsn}]`,
      );
    }
    if (lsnLast === this.lastLsn) return;
    try {
      await this.#truncateSuffixSteps(lsnLast);
    } catch (error: unknown) {
      const failure = error instanceof SyncwalError ? error : diskError('truncate', error);
      this.#fence([], failure);
      throw failure;
    }
  }

  async #truncateSuffixSteps(lsnLast: number): Promise<void> {
    const tail = await this.#tailAt(lsnLast);
    await writeTruncationMarker(this.#disk, this.#options.walDir, lsnLast);
    const target = this.#segmentIndexFor(Math.max(lsnLast, this.firstLsn));
    for (let index = this.#segments.length - 1; index > target; index--) {
      const segment = this.#segments[index];
      assert(segment !== undefined, 'segment to delete exists');
      if (index === this.#segments.length - 1) await this.#active.close();
      await this.#disk.remove(`${this.#options.walDir}/${segment.name}`);
    }
    await this.#disk.syncDir(this.#options.walDir);
    const removedActive = target < this.#segments.length - 1;
    this.#segments.length = target + 1;
    const segment = this.#segments[target];
    assert(segment !== undefined, 'the cut segment exists');
    const keptRecords = lsnLast - segment.firstLsn + 1;
    const cut = segment.recordOffsets[keptRecords] ?? segment.endOffset;
    if (removedActive)
      this.#active = await this.#disk.open(`${this.#options.walDir}/${segment.name}`, 'write');
    await zeroRange(this.#active, cut, Math.max(segment.dirtyEnd, segment.endOffset));
    await this.#active.datasync();
    await removeTruncationMarker(this.#disk, this.#options.walDir);
    segment.recordOffsets.length = keptRecords;
    segment.endOffset = cut;
    segment.dirtyEnd = cut;
    this.#writeOffset = cut;
    this.#assigned = { ...tail };
    this.#durable = { ...tail };
    this.#sealNeeded = keptRecords > 0 || target > 0;
  }

  /** The chain tail as it stands after record `lsn` (or before the log's first record). */
  async #tailAt(lsn: number): Promise<Tail> {
    if (lsn < this.firstLsn) return this.#readBase();
    const [record] = await this.read({ lsnFirst: lsn, lsnLast: lsn });
    assert(record !== undefined, 'the record exists');
    return { lsn, checksum: record.checksum, term: record.term };
  }

  /** The base as the first segment's header records it (chain seed and term seed). */
  async #readBase(): Promise<LogBase> {
    const first = this.#segments[0];
    assert(first !== undefined, 'a log has a first segment');
    const bytes = new Uint8Array(segmentHeaderBytes);
    await this.#withSegmentHandle(first, (handle) => handle.read(bytes, 0, bytes.length, 0));
    const decoded = decodeSegmentHeader(bytes);
    if (decoded.kind === 'bad') {
      throw new CorruptionError({ segment: first.name, offset: 0, lsn: null }, decoded.reason);
    }
    return {
      lsn: first.firstLsn - 1,
      checksum: decoded.header.chainSeed,
      term: decoded.header.termSeed ?? 0,
    };
  }

  /**
   * Where the log starts: the record before its first one (LSN firstLsn - 1), with the chain
   * checksum and term its first segment's header records for it (term 0 when not known). After
   * `resetTo(base)` this is `base` until a prefix truncation moves the start.
   */
  async base(): Promise<LogBase> {
    this.#checkUsable();
    try {
      return await this.#readBase();
    } catch (error: unknown) {
      throw diskError('read segment header', error);
    }
  }

  /**
   * Replaces the whole log with an empty one that continues after `base` (a replica installs a
   * full sync): the next record appended gets `base.lsn + 1`, its prevChecksum must be
   * `base.checksum`, and no record may have a term below `base.term`. Crash-safe: a crash at any
   * point reopens either the old log, whole, or the new empty one, never a mix (the reset
   * marker, reset-marker.ts, decides; recovery rolls it forward). Waits for queued appends
   * first; while it runs, other calls reject with INVALID (`close` must not overlap it). The
   * append listener sees nothing of it. A failure while preparing the new segment changes
   * nothing (the log stays usable); a later failure fences the log, and reopening yields the
   * old log or the new one (NOSPACE before the decision is definitive: the old log, usable).
   */
  async resetTo(base: LogBase): Promise<void> {
    this.#checkUsable();
    await this.#drain();
    this.#checkUsable();
    if (this.#queue.length > 0) throw new InvalidError('resetTo while appends are queued');
    const valid =
      Number.isSafeInteger(base.lsn) &&
      base.lsn >= 0 &&
      base.lsn < lsnMax &&
      Number.isSafeInteger(base.checksum) &&
      base.checksum >= 0 &&
      base.checksum <= 0xffffffff &&
      Number.isSafeInteger(base.term) &&
      base.term >= 0;
    if (!valid) throw new InvalidError(`bad log base ${JSON.stringify(base)}`);
    this.#resetting = true;
    try {
      const prepared = await this.#prepareResetSegment(base);
      await this.#resetDecided(base, prepared);
    } finally {
      this.#resetting = false;
    }
  }

  async #resetDecided(base: LogBase, prepared: FileHandle): Promise<void> {
    let decided = false;
    try {
      await writeResetMarker(this.#disk, this.#options.walDir, base);
      decided = true;
      await this.#resetSteps(base, prepared);
    } catch (error: unknown) {
      await prepared.close().catch(() => undefined);
      const failure = error instanceof SyncwalError ? error : diskError('reset', error);
      // Before the marker is durable nothing of the old log changed; a marker write that failed
      // midway may still turn up after a crash, so only NOSPACE is definitive.
      if (decided || failure.code !== 'NOSPACE') this.#fence([], failure);
      throw failure;
    }
  }

  /**
   * The new first segment, prepared under its temporary name with its header durable, so the
   * costly part (zero-filling a segment) happens before anything is decided.
   */
  async #prepareResetSegment(base: LogBase): Promise<FileHandle> {
    const earlier = this.#prepared;
    this.#prepared = null;
    if (earlier !== null) {
      const result = await earlier;
      if (!(result instanceof SyncwalError)) await result.close().catch(() => undefined);
    }
    const walDir = this.#options.walDir;
    const handle = await preallocateSegment(this.#disk, walDir, this.#options.segmentSizeBytes);
    try {
      const header = encodeSegmentHeader({
        firstLsn: base.lsn + 1,
        segmentSizeBytes: this.#options.segmentSizeBytes,
        chainSeed: base.checksum,
        termSeed: base.term,
      });
      await handle.write([header], 0);
      await handle.datasync();
    } catch (error: unknown) {
      await handle.close().catch(() => undefined);
      throw diskError('prepare reset segment', error);
    }
    return handle;
  }

  /** The steps after the reset marker is durable (recovery repeats them if they are cut). */
  async #resetSteps(base: LogBase, prepared: FileHandle): Promise<void> {
    const walDir = this.#options.walDir;
    await this.#active.close();
    for (const segment of this.#segments) await this.#disk.remove(`${walDir}/${segment.name}`);
    await this.#disk.syncDir(walDir);
    await prepared.close();
    const name = segmentName(base.lsn + 1);
    await this.#disk.rename(`${walDir}/${preallocatedName}`, `${walDir}/${name}`);
    await this.#disk.syncDir(walDir);
    await removeResetMarker(this.#disk, walDir);
    this.#active = await this.#disk.open(`${walDir}/${name}`, 'write');
    this.#segments.length = 0;
    this.#segments.push({
      name,
      firstLsn: base.lsn + 1,
      recordOffsets: [],
      endOffset: segmentHeaderBytes,
      dirtyEnd: segmentHeaderBytes,
    });
    this.#writeOffset = segmentHeaderBytes;
    this.#assigned = { lsn: base.lsn, checksum: base.checksum >>> 0, term: base.term };
    this.#durable = { ...this.#assigned };
    // No write to vouch for yet: the first write after a reset needs no SEAL, as in a new log.
    this.#sealNeeded = false;
    this.#startPreallocation();
  }

  /**
   * Deletes whole segments whose records all precede `lsnFirst` (after a checkpoint). The
   * active segment is never deleted. Returns the number of segments removed.
   */
  async truncatePrefix(options: { lsnFirst: number }): Promise<number> {
    this.#checkUsable();
    let removed = 0;
    try {
      for (let guard = 0; this.#segments.length > 1 && guard < 1_000_000; guard++) {
        const next = this.#segments[1];
        const first = this.#segments[0];
        assert(next !== undefined && first !== undefined, 'two segments exist');
        if (next.firstLsn > options.lsnFirst) break;
        await this.#disk.remove(`${this.#options.walDir}/${first.name}`);
        this.#segments.shift();
        removed += 1;
      }
      if (removed > 0) await this.#disk.syncDir(this.#options.walDir);
    } catch (error: unknown) {
      throw diskError('truncate prefix', error);
    }
    return removed;
  }

  /**
   * Waits for queued appends, seals the last write (so recovery can vouch for it), and releases
   * the files and the lock. Later calls reject with CLOSED.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#drain();
    this.#closed = true;
    try {
      // The closing SEAL vouches for the last write; it needs room in the active segment.
      const room = this.#options.segmentSizeBytes - this.#writeOffset >= frameHeaderBytes;
      if (this.#failure === null && this.#sealNeeded && room) {
        await this.#active.write([this.#sealFrame()], this.#writeOffset);
        await this.#active.datasync();
      }
    } catch (error: unknown) {
      this.#failure ??= diskError('close', error);
    } finally {
      await this.#releaseFiles();
    }
  }

  async #releaseFiles(): Promise<void> {
    const prepared = this.#prepared;
    this.#prepared = null;
    if (prepared !== null) {
      const result = await prepared;
      if (!(result instanceof SyncwalError)) await result.close().catch(() => undefined);
    }
    await this.#active.close().catch(() => undefined);
    await this.#lock?.release().catch(() => undefined);
  }
}
