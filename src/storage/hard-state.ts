/**
 * The hard state (DESIGN §2 and §4): the current term and the vote cast in it, persisted before
 * a vote is granted or a candidacy starts, so that after any crash a node never votes twice in
 * one term and its term never goes backwards. It lives in `<dir>/state`, beside `LOCK` and
 * `wal/`. Eligibility is not part of it: DESIGN §4 makes eligibility volatile (lost on restart),
 * and which node was primary of a term is in the log's TERM records.
 *
 * File format (280 bytes, little-endian; docs/format.md section 13):
 *
 * ```
 *  byte  0      4        8         10         12      16       24                 280
 *        +------+--------+---------+----------+-------+--------+------------------+
 *        | crc  | magic  | version | votedFor | 0     | term   | votedFor         |
 *        | u32  | "SHST" | u16 = 1 | bytes u16| u32   | u64    | UTF-8, 0-padded  |
 *        +------+--------+---------+----------+-------+--------+------------------+
 * ```
 *
 * `crc` is CRC-32 of bytes [4, 280). `votedFor bytes` is 0 for "no vote" and at most 255; the
 * id's UTF-8 bytes start at byte 24 and every byte after them is zero. A vote needs a term of at
 * least 1. A reader checks the size, then magic and crc, then the version and the fields.
 *
 * How a save is made durable (marker-file.ts does the two halves): write the bytes to
 * `state.tmp` (created fresh), fdatasync it, rename it over `state`, fsync the directory. Only
 * after the directory fsync does the save resolve. Under its durable name the file therefore
 * always has durable, valid contents: a bad `state` is corruption (CORRUPT), never a torn write,
 * and is never replaced by term 0. No `state` at all is a fresh node: term 0, no vote.
 * `state.tmp` is what a crash left of an unfinished save: opening removes it.
 */
import { assert } from '../core/assert.js';
import {
  ClosedError,
  CorruptionError,
  InvalidError,
  IoError,
  SyncwalError,
  diskError,
  errnoCode,
} from '../core/errors.js';
import { readU64, writeU64 } from '../core/format/frame.js';
import { lsnMax, peerIdBytesMax } from '../core/limits.js';
import type { Disk } from '../ports/disk.js';
import { installMarker, prepareMarker, readMarker } from './marker-file.js';

/** Term and vote. A term only grows; within a term the vote goes from null to one node, once. */
export interface HardState {
  readonly term: number;
  /** The node this one voted for in `term` (itself when it is the candidate), or null. */
  readonly votedFor: string | null;
}

/** What a node that never saved a hard state has. */
export const hardStateInitial: HardState = Object.freeze({ term: 0, votedFor: null });

export const hardStateFileName = 'state';
/** The name `prepareMarker` writes to (`<name>.tmp`). */
export const hardStateTemporaryName = `${hardStateFileName}.tmp`;
export const hardStateVersion = 1;
export const hardStateBytes = 280;
/** The longest node id a vote may name, in UTF-8 bytes. */
export const hardStateVotedForBytesMax = 255;
/** The most saves that may wait unresolved at once; one more is refused with INVALID. */
export const hardStateSavesWaitingMax = 1024;

const magic = 0x54534853;
const votedForOffset = 24;
const kind = { name: hardStateFileName, magic, bytes: hardStateBytes };

assert(votedForOffset + hardStateVotedForBytesMax < hardStateBytes, 'a vote fits, zero-ended');
assert(hardStateVotedForBytesMax >= peerIdBytesMax, 'any id the wire carries can be voted for');
assert(hardStateBytes % 8 === 0, 'the file is whole 8-byte words');

export interface HardStateOptions {
  /**
   * The node directory. It must exist, and the caller must hold its lock (`Log.open` creates
   * the directory and takes the lock): two stores on one directory would overwrite each other.
   */
  dir: string;
}

interface Waiter {
  resolve: (state: HardState) => void;
  reject: (error: SyncwalError) => void;
}

/** Saves that share one write; `state` is fixed when the write starts. */
interface Batch {
  state: HardState;
  waiters: Waiter[];
}

/** Why a write failed, and whether the store must fence itself. */
interface WriteFailure {
  error: SyncwalError;
  /** False only when the old file is certainly untouched and nothing is left behind. */
  fence: boolean;
}

/**
 * The persisted hard state of one node.
 *
 * Contract:
 * - `save(next)` resolves only once a state at least as new as `next` is durable (its directory
 *   fsync returned). Saves are checked and accepted in call order, against the newest accepted
 *   state: a lower term, or another vote (or none) in a term that already has one, rejects with
 *   INVALID and changes nothing.
 * - One write is in flight at a time. Saves made meanwhile are coalesced: the next write stores
 *   the newest accepted state and resolves them all, which is safe because a newer state
 *   forbids everything an older one did (a node at term t never votes again in a lower term).
 * - Fail-stop: a failed write fences the store. The failing saves, those queued behind them and
 *   every later call reject with IOERR; nothing is retried (a failed fdatasync is never trusted
 *   again), and reopening reads what is really on disk, the old state or the new one.
 * - The one exception is a full disk before anything was renamed: the saves reject with NOSPACE,
 *   the temporary file is removed, the store keeps its durable state and stays usable.
 */
export class HardStateStore {
  readonly #disk: Disk;
  readonly #dir: string;
  /** The newest state known durable. */
  #durable: HardState;
  /** The newest state accepted by `save` (durable, being written, or queued). */
  #accepted: HardState;
  #inflight: Batch | null = null;
  /** Saves accepted while a write is in flight: the next write, of `#accepted`. */
  #queued: Waiter[] | null = null;
  #waiting = 0;
  #failure: SyncwalError | null = null;
  #closed = false;

  private constructor(disk: Disk, dir: string, state: HardState) {
    this.#disk = disk;
    this.#dir = dir;
    this.#durable = state;
    this.#accepted = state;
  }

  /**
   * Reads the hard state of `options.dir`: term 0 and no vote if there is none. Removes a
   * leftover `state.tmp` and fsyncs the directory, so the state it returns is durable even if
   * the process that saved it crashed before its own directory fsync. Rejects with CORRUPT
   * (naming the file, offset and reason) if the file fails verification, IOERR if the directory
   * cannot be read.
   */
  static async open(disk: Disk, options: HardStateOptions): Promise<HardStateStore> {
    if (typeof options?.dir !== 'string' || options.dir.length === 0) {
      throw new InvalidError('option dir: must be a path');
    }
    const dir = options.dir.replace(/\/+$/, '') || '/';
    let names: string[];
    try {
      names = await disk.list(dir);
      if (names.includes(hardStateTemporaryName)) {
        await disk.remove(`${dir}/${hardStateTemporaryName}`);
      }
      await disk.syncDir(dir);
    } catch (error: unknown) {
      throw diskError('open hard state', error);
    }
    const found = names.includes(hardStateFileName);
    const state = found ? await readHardState(disk, dir) : hardStateInitial;
    return new HardStateStore(disk, dir, state);
  }

  /** The newest durable state: what a crash now would keep at least. */
  get state(): HardState {
    return this.#durable;
  }

  /** The error that fenced the store, if any. */
  get failure(): SyncwalError | null {
    return this.#failure;
  }

  /**
   * Makes `next` durable (see the class contract). Resolves with the durable state, which is
   * `next` or a newer state accepted after it. Saving the newest accepted state again writes
   * nothing and resolves when that state is durable.
   */
  async save(next: HardState): Promise<HardState> {
    this.#checkUsable();
    const state = checkedHardState(next);
    checkTransition(this.#accepted, state);
    if (this.#waiting >= hardStateSavesWaitingMax) {
      throw new InvalidError(`more than ${hardStateSavesWaitingMax} hard-state saves waiting`);
    }
    if (sameHardState(state, this.#accepted)) {
      if (this.#queued !== null) return this.#wait(this.#queued);
      if (this.#inflight !== null) return this.#wait(this.#inflight.waiters);
      return this.#durable;
    }
    this.#accepted = state;
    this.#queued ??= [];
    const saved = this.#wait(this.#queued);
    this.#pump();
    return saved;
  }

  /** Waits for the saves in progress (their outcome is theirs), then refuses every call. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const last = this.#queued ?? this.#inflight?.waiters ?? null;
    if (last !== null) {
      await new Promise<void>((resolve) => {
        last.push({ resolve: () => resolve(), reject: () => resolve() });
      });
    }
  }

  #checkUsable(): void {
    if (this.#closed) throw new ClosedError('the hard-state store is closed');
    if (this.#failure !== null) throw this.#failure;
  }

  #wait(waiters: Waiter[]): Promise<HardState> {
    this.#waiting++;
    return new Promise<HardState>((resolve, reject) => {
      waiters.push({ resolve, reject });
    }).finally(() => {
      this.#waiting--;
    });
  }

  /** Starts the next write if none is in flight and saves are queued. */
  #pump(): void {
    if (this.#inflight !== null || this.#queued === null) return;
    const batch: Batch = { state: this.#accepted, waiters: this.#queued };
    this.#queued = null;
    this.#inflight = batch;
    void this.#write(batch.state).then((failure) => this.#settle(batch, failure));
  }

  async #write(state: HardState): Promise<WriteFailure | null> {
    try {
      await prepareMarker(this.#disk, this.#dir, kind, (view) => fillHardState(view, state));
    } catch (error: unknown) {
      const failure = diskError('save hard state', error);
      // The old file was not touched: a full disk is definitive once the leftover is gone.
      if (failure.code === 'NOSPACE' && (await this.#removeTemporary())) {
        return { error: failure, fence: false };
      }
      return { error: failure, fence: true };
    }
    try {
      await installMarker(this.#disk, this.#dir, kind);
    } catch (error: unknown) {
      // The rename may or may not have happened, or may not be durable: in doubt.
      return { error: diskError('save hard state', error), fence: true };
    }
    return null;
  }

  /** Removes `state.tmp` after a failed prepare; false if that failed too. */
  async #removeTemporary(): Promise<boolean> {
    try {
      await this.#disk.remove(`${this.#dir}/${hardStateTemporaryName}`);
      return true;
    } catch (error: unknown) {
      // The create itself failed: there is nothing to remove.
      return errnoCode(error) === 'ENOENT';
    }
  }

  #settle(batch: Batch, failure: WriteFailure | null): void {
    assert(this.#inflight === batch, 'the settling write is the one in flight');
    this.#inflight = null;
    if (failure === null) {
      this.#durable = batch.state;
      for (const waiter of batch.waiters) waiter.resolve(batch.state);
      this.#pump();
      return;
    }
    const waiters = [...batch.waiters, ...(this.#queued ?? [])];
    this.#queued = null;
    let error = failure.error;
    if (failure.fence) {
      const message = `${failure.error.message}; the hard-state store is fenced`;
      error = new IoError('save hard state', message, { cause: failure.error });
      this.#failure = error;
    } else {
      // Every queued state was accepted on top of the one that failed: they all fail with it.
      this.#accepted = this.#durable;
    }
    for (const waiter of waiters) waiter.reject(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Checks and the codec.

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function sameHardState(left: HardState, right: HardState): boolean {
  return left.term === right.term && left.votedFor === right.votedFor;
}

/** A frozen copy of `value` if it is a well-formed hard state; INVALID naming the problem. */
function checkedHardState(value: HardState): HardState {
  if (typeof value !== 'object' || value === null) {
    throw new InvalidError('hard state: must be an object');
  }
  const { term, votedFor } = value;
  if (!Number.isSafeInteger(term) || term < 0 || term > lsnMax) {
    throw new InvalidError(`hard state: term must be an integer in [0, ${lsnMax}]: ${term}`);
  }
  if (votedFor !== null) {
    if (typeof votedFor !== 'string') throw new InvalidError('hard state: votedFor: not a string');
    const bytes = encoder.encode(votedFor);
    if (bytes.length === 0 || bytes.length > hardStateVotedForBytesMax) {
      throw new InvalidError(`hard state: votedFor must be 1-${hardStateVotedForBytesMax} bytes`);
    }
    // A lone surrogate encodes as U+FFFD, and would read back as another id.
    if (decoder.decode(bytes) !== votedFor) {
      throw new InvalidError('hard state: votedFor is not well-formed Unicode');
    }
    if (term === 0) throw new InvalidError('hard state: a vote needs a term of at least 1');
  }
  return Object.freeze({ term, votedFor });
}

/** INVALID if `next` may not follow `previous`: a lower term, or a changed vote in a term. */
function checkTransition(previous: HardState, next: HardState): void {
  if (next.term < previous.term) {
    throw new InvalidError(
      `hard state: term would go backwards (${previous.term} to ${next.term})`,
    );
  }
  const voted = previous.votedFor;
  if (next.term === previous.term && voted !== null && next.votedFor !== voted) {
    throw new InvalidError(
      `hard state: already voted for ${voted} in term ${next.term}; cannot change it to ` +
        String(next.votedFor),
    );
  }
}

/** Writes the fields after crc and magic (marker-file.ts writes those two). */
function fillHardState(view: DataView, state: HardState): void {
  const votedFor = state.votedFor === null ? new Uint8Array(0) : encoder.encode(state.votedFor);
  assert(votedFor.length <= hardStateVotedForBytesMax, 'the vote was checked on save');
  view.setUint16(8, hardStateVersion, true);
  view.setUint16(10, votedFor.length, true);
  view.setUint32(12, 0, true);
  writeU64(view, 16, state.term);
  new Uint8Array(view.buffer, view.byteOffset + votedForOffset, votedFor.length).set(votedFor);
}

function corrupt(offset: number, reason: string): CorruptionError {
  return new CorruptionError(
    { segment: hardStateFileName, offset, lsn: null },
    `hard state: ${reason}`,
  );
}

async function readHardState(disk: Disk, dir: string): Promise<HardState> {
  let size: number | null;
  try {
    size = await disk.size(`${dir}/${hardStateFileName}`);
  } catch (error: unknown) {
    throw diskError('read hard state', error);
  }
  if (size !== hardStateBytes) {
    throw corrupt(0, `size ${String(size)} bytes, expected ${hardStateBytes}`);
  }
  let view: DataView | null;
  try {
    view = await readMarker(disk, dir, kind, { optional: false, valid: () => true });
  } catch (error: unknown) {
    if (error instanceof CorruptionError) throw corrupt(0, 'bad magic or checksum');
    throw error;
  }
  assert(view !== null, 'a required marker is read or refused');
  return decodeHardState(view);
}

/** The fields of a file whose size, magic and crc are good; CORRUPT naming a bad field. */
function decodeHardState(view: DataView): HardState {
  const version = view.getUint16(8, true);
  if (version !== hardStateVersion) {
    throw corrupt(8, `unsupported version ${version} (this build reads ${hardStateVersion})`);
  }
  const length = view.getUint16(10, true);
  if (length > hardStateVotedForBytesMax) throw corrupt(10, `votedFor of ${length} bytes`);
  if (view.getUint32(12, true) !== 0) throw corrupt(12, 'reserved bytes are not zero');
  const term = readU64(view, 16);
  if (term < 0) throw corrupt(16, 'term of 2^53 or more');
  const fieldBytes = hardStateBytes - votedForOffset;
  const field = new Uint8Array(view.buffer, view.byteOffset + votedForOffset, fieldBytes);
  const padding = field.subarray(length).findIndex((byte) => byte !== 0);
  if (padding !== -1) throw corrupt(votedForOffset + length + padding, 'padding is not zero');
  if (length === 0) return Object.freeze({ term, votedFor: null });
  let votedFor: string;
  try {
    votedFor = decoder.decode(field.subarray(0, length));
  } catch {
    throw corrupt(votedForOffset, 'votedFor is not UTF-8');
  }
  if (term === 0) throw corrupt(16, 'a vote in term 0');
  return Object.freeze({ term, votedFor });
}
