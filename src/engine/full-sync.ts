import { AssertionError, assert } from '../core/assert.js';
import { InvalidError, SyncwalError } from '../core/errors.js';
import type { SnapshotAck, SnapshotBegin, SnapshotChunk } from '../core/consensus/messages.js';
import { peerBulkBytesMax } from '../core/limits.js';
import type { CheckpointStore, RequestIdRecord } from '../ports/checkpoint.js';
import type { Transport } from '../ports/transport.js';
import type { LogBase } from '../storage/log.js';
import {
  decodeEntries,
  decodeRequestIds,
  requestIdCursor,
  type SnapshotCursor,
  type SnapshotSource,
} from './full-sync-source.js';

/**
 * Full sync (DESIGN §5, issue #4 item 5): the primary sends a replica committed state at some
 * LSN S in several key-range streams, and the replica installs it in place of its checkpoint
 * and log. Sans-IO in time: nothing here sets a timer or reads a clock. The engine passes `now`
 * into `tick` and `step`, routes the snapshot messages to the sender (primary) or the receiver
 * (replica), and starts a new sender, with a new snapshot id, whenever one fails or the link
 * drops. The log after S travels on the normal channel once the sender is done.
 *
 * The protocol, over a transport that may drop, duplicate and reorder messages:
 *
 * ```
 *   sender (primary)                                   receiver (replica)
 *   SnapshotBegin {id, S, term, checksum, streams,  ->  beginReplace() on the checkpoint
 *                  keys, bytes}                     <-  SnapshotAck {id, stream 0, seq 0}
 *   SnapshotChunk {id, stream s, seq 1..n, done}    ->  addReplace(entries); per stream in seq
 *     (per stream at most `windowChunks` unacked)   <-  order, acked cumulatively once staged:
 *                                                        SnapshotAck {id, s, seq k}
 *                              (all streams done)        commitReplace(S), log.resetTo(S),
 *                                                        onInstalled()
 *   SnapshotBegin again, every retransmitMs         <-  SnapshotAck {id, .., installed: true}
 * ```
 *
 * Streams 0..streams-1 carry key ranges; stream `streams` carries the request ids (see
 * full-sync-source.ts for both encodings). Chunk seqs start at 1 in each stream; an ack with
 * seq k means every chunk of that stream up to k is staged, and seq 0 acknowledges the Begin.
 * A duplicate Begin is answered with the receiver's state, so the Begin doubles as the probe
 * that learns `installed` after the last chunk's ack. Chunks are retransmitted after
 * `retransmitMs` without an ack (doubling per retry); a sender with no progress at all for
 * `stallMs` fails (a restarted receiver forgot the snapshot: it ignores every message of it).
 */
export interface FullSyncOptions {
  /** Key-range streams (1 to `fullSyncStreamsMax`). */
  streams: number;
  /** Chunks close before their entries pass this many bytes (an entry larger goes alone). */
  chunkBytes: number;
  /** Unacknowledged chunks per stream. */
  windowChunks: number;
  /** No ack for this long: send the chunk (or the Begin) again. */
  retransmitMs: number;
  /** No progress at all for this long: the sync fails. */
  stallMs: number;
  /** Hold back chunks while more than this many bytes wait in the transport for the peer. */
  queuedBytesMax: number;
  /**
   * Chunk bytes encoded by one `step` or `tick` (keeps each turn of the loop short): encoding
   * stops once this is reached, so a turn encodes at most this plus one chunk.
   */
  encodeBytesPerTurn: number;
}

export const fullSyncStreamsMax = 64;

export const fullSyncOptionsDefault: FullSyncOptions = {
  streams: 4,
  chunkBytes: 256 * 1024,
  windowChunks: 4,
  retransmitMs: 1_000,
  stallMs: 30_000,
  queuedBytesMax: 4 * 1024 * 1024,
  encodeBytesPerTurn: 2 * 1024 * 1024,
};

export function resolveFullSyncOptions(options: Partial<FullSyncOptions> = {}): FullSyncOptions {
  const resolved = { ...fullSyncOptionsDefault, ...options };
  const bounds: Record<keyof FullSyncOptions, [number, number]> = {
    streams: [1, fullSyncStreamsMax],
    chunkBytes: [1024, peerBulkBytesMax],
    windowChunks: [1, 64],
    retransmitMs: [1, 3_600_000],
    stallMs: [1, 86_400_000],
    queuedBytesMax: [0, 1024 * 1024 * 1024],
    encodeBytesPerTurn: [1, 1024 * 1024 * 1024],
  };
  for (const [name, [min, max]] of Object.entries(bounds)) {
    const value = resolved[name as keyof FullSyncOptions];
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidError(`option fullSync.${name}: must be an integer in ${min}..${max}`);
    }
  }
  return resolved;
}

export type FullSyncState = 'begin' | 'streaming' | 'installing' | 'done' | 'failed';

/** Progress of one full sync, on either side (DESIGN §5: bytes and keys, rate, ETA). */
export interface FullSyncProgress {
  snapshotId: number;
  peer: string;
  lsn: number;
  state: FullSyncState;
  keysTotal: number;
  bytesTotal: number;
  /** Sender: acknowledged by the replica. Receiver: staged in its checkpoint. */
  keysDone: number;
  bytesDone: number;
  elapsedMs: number;
  bytesPerSec: number;
  keysPerSec: number;
  /** Time left at the rate so far; null before any byte is done. */
  etaMs: number | null;
  chunks: number;
  retransmits: number;
}

function progressOf(
  fields: Omit<FullSyncProgress, 'elapsedMs' | 'bytesPerSec' | 'keysPerSec' | 'etaMs'>,
  startedAt: number,
  now: number,
): FullSyncProgress {
  const elapsedMs = Math.max(0, now - startedAt);
  const seconds = elapsedMs / 1000;
  const bytesPerSec = seconds > 0 ? fields.bytesDone / seconds : 0;
  const keysPerSec = seconds > 0 ? fields.keysDone / seconds : 0;
  const left = fields.bytesTotal - fields.bytesDone;
  const etaMs = left <= 0 ? 0 : bytesPerSec > 0 ? Math.round((left / bytesPerSec) * 1000) : null;
  return { ...fields, elapsedMs, bytesPerSec, keysPerSec, etaMs };
}

// ---------------------------------------------------------------------------------------------
// Sender.

interface OutChunk {
  message: SnapshotChunk;
  keys: number;
  bytes: number;
  /** When it was last handed to the transport; null: (re)send it at the next chance. */
  sentAt: number | null;
  retries: number;
}

interface SendStream {
  index: number;
  cursor: SnapshotCursor;
  nextSeq: number;
  /** The chunk marked `done` was encoded (nothing is left to encode). */
  encodedAll: boolean;
  ackedSeq: number;
  inflight: OutChunk[];
}

export interface SnapshotSenderInit {
  transport: Pick<Transport, 'send' | 'queuedBytes'>;
  /** This node (the primary) and the replica. */
  nodeId: string;
  peer: string;
  /** The primary's term (every message carries it). */
  term: number;
  /** Unique among this primary's snapshots to `peer` (a new one for every attempt). */
  snapshotId: number;
  source: SnapshotSource;
  now: number;
  options?: Partial<FullSyncOptions>;
}

/**
 * The primary's side of one full sync to one replica. Call `step` with every SnapshotAck from
 * the replica and `tick` every few milliseconds; both send what is due, encoding at most
 * `encodeBytesPerTurn`. `state` reaches 'done' once the replica reported the snapshot installed
 * (then tell the replication core: `Primary.snapshotDone(peer, source.lsn)`), or 'failed'.
 */
export class SnapshotSender {
  readonly #transport: Pick<Transport, 'send' | 'queuedBytes'>;
  readonly #nodeId: string;
  readonly #peer: string;
  readonly #term: number;
  readonly #id: number;
  readonly #source: SnapshotSource;
  readonly #options: FullSyncOptions;
  readonly #streams: SendStream[] = [];
  readonly #startedAt: number;
  #state: FullSyncState = 'begin';
  #failure: string | null = null;
  #beginSentAt: number | null = null;
  #lastProgressAt: number;
  #keysAcked = 0;
  #bytesAcked = 0;
  #chunks = 0;
  #retransmits = 0;

  constructor(init: SnapshotSenderInit) {
    this.#transport = init.transport;
    this.#nodeId = init.nodeId;
    this.#peer = init.peer;
    this.#term = init.term;
    this.#id = init.snapshotId;
    this.#source = init.source;
    this.#options = resolveFullSyncOptions(init.options);
    assert(Number.isSafeInteger(init.snapshotId) && init.snapshotId >= 0, 'snapshot id');
    this.#startedAt = init.now;
    this.#lastProgressAt = init.now;
    const streams = this.#options.streams;
    for (let index = 0; index <= streams; index++) {
      const cursor =
        index < streams
          ? init.source.cursor(index, streams)
          : requestIdCursor(init.source.requestIds);
      this.#streams.push({
        index,
        cursor,
        nextSeq: 1,
        encodedAll: false,
        ackedSeq: 0,
        inflight: [],
      });
    }
    this.#sendBegin(init.now);
  }

  get state(): FullSyncState {
    return this.#state;
  }
  get snapshotId(): number {
    return this.#id;
  }
  get peer(): string {
    return this.#peer;
  }
  get lsn(): number {
    return this.#source.lsn;
  }
  /** Why the sync failed (state 'failed'), for the log. */
  get failure(): string | null {
    return this.#failure;
  }

  progress(now: number): FullSyncProgress {
    const fields = {
      snapshotId: this.#id,
      peer: this.#peer,
      lsn: this.#source.lsn,
      state: this.#state,
      keysTotal: this.#source.keys,
      bytesTotal: this.#source.bytes,
      keysDone: this.#keysAcked,
      bytesDone: this.#bytesAcked,
      chunks: this.#chunks,
      retransmits: this.#retransmits,
    };
    return progressOf(fields, this.#startedAt, now);
  }

  /** Gives up (the link went down, the node steps down). Later calls do nothing. */
  cancel(reason: string): void {
    if (this.#state === 'done' || this.#state === 'failed') return;
    this.#fail(reason);
  }

  /** A SnapshotAck from the replica (acks of other snapshots are ignored). */
  step(ack: SnapshotAck, now: number): void {
    if (ack.snapshotId !== this.#id || this.#state === 'done' || this.#state === 'failed') return;
    if (this.#state === 'begin') {
      this.#state = 'streaming';
      this.#lastProgressAt = now;
    }
    const stream = this.#streams[ack.stream];
    if (stream !== undefined && ack.seq > stream.ackedSeq) this.#acked(stream, ack.seq, now);
    // Acks while installing are not progress: a restarted replica may answer the Begin probe
    // (as a new snapshot) forever; `stallMs` bounds the install instead.
    if (ack.installed) {
      // Installed means every stream was staged, even if the acks of its last chunks were lost.
      this.#state = 'done';
      this.#keysAcked = this.#source.keys;
      this.#bytesAcked = this.#source.bytes;
      for (const each of this.#streams) each.inflight = [];
      return;
    }
    this.#pump(now);
  }

  tick(now: number): void {
    if (this.#state === 'done' || this.#state === 'failed') return;
    if (now - this.#lastProgressAt > this.#options.stallMs) {
      this.#fail(`no progress for ${now - this.#lastProgressAt} ms`);
      return;
    }
    const beginDue =
      this.#beginSentAt === null || now - this.#beginSentAt >= this.#options.retransmitMs;
    if ((this.#state === 'begin' || this.#state === 'installing') && beginDue) {
      this.#sendBegin(now);
    }
    if (this.#state === 'streaming') this.#expire(now);
    this.#pump(now);
  }

  #fail(reason: string): void {
    this.#state = 'failed';
    this.#failure = reason;
    for (const stream of this.#streams) stream.inflight = [];
  }

  #sendBegin(now: number): void {
    const source = this.#source;
    const begin: SnapshotBegin = {
      type: 'snapshot-begin',
      term: this.#term,
      from: this.#nodeId,
      snapshotId: this.#id,
      snapshotLsn: source.lsn,
      snapshotTerm: source.term,
      snapshotChecksum: source.checksum,
      streams: this.#options.streams,
      keys: source.keys,
      bytes: source.bytes,
    };
    this.#beginSentAt = this.#transport.send(this.#peer, begin) ? now : null;
  }

  #acked(stream: SendStream, seq: number, now: number): void {
    // An ack for a chunk never sent is a confused peer: ignore it.
    if (seq >= stream.nextSeq) return;
    stream.ackedSeq = seq;
    this.#lastProgressAt = now;
    while ((stream.inflight[0]?.message.seq ?? Infinity) <= seq) {
      const chunk = stream.inflight.shift();
      assert(chunk !== undefined, 'an acked chunk was in flight');
      this.#keysAcked += chunk.keys;
      this.#bytesAcked += chunk.bytes;
    }
    if (this.#state === 'streaming' && this.#allAcked()) {
      this.#state = 'installing';
      this.#beginSentAt = null;
    }
  }

  #allAcked(): boolean {
    return this.#streams.every((stream) => stream.encodedAll && stream.inflight.length === 0);
  }

  /** Chunks with no ack for their retransmission time are sent again (time doubles per try). */
  #expire(now: number): void {
    for (const stream of this.#streams) {
      for (const chunk of stream.inflight) {
        if (chunk.sentAt === null) continue;
        const timeout = this.#options.retransmitMs * 2 ** Math.min(chunk.retries, 6);
        if (now - chunk.sentAt < timeout) continue;
        chunk.sentAt = null;
        chunk.retries += 1;
        this.#retransmits += 1;
      }
    }
  }

  /** Encodes chunks into free window slots (round robin over streams, bounded), then sends. */
  #pump(now: number): void {
    if (this.#state !== 'streaming') return;
    let budget = this.#options.encodeBytesPerTurn;
    for (let progress = true; progress && budget > 0;) {
      progress = false;
      for (const stream of this.#streams) {
        if (stream.encodedAll || stream.inflight.length >= this.#options.windowChunks) continue;
        budget -= this.#encodeChunk(stream);
        progress = true;
        if (budget <= 0) break;
      }
    }
    this.#send(now);
  }

  #send(now: number): void {
    for (const stream of this.#streams) {
      for (const chunk of stream.inflight) {
        if (chunk.sentAt !== null) continue;
        if (this.#transport.queuedBytes(this.#peer) > this.#options.queuedBytesMax) return;
        if (!this.#transport.send(this.#peer, chunk.message)) return;
        chunk.sentAt = now;
      }
    }
  }

  /** Encodes the stream's next chunk into its window; returns the bytes it took. */
  #encodeChunk(stream: SendStream): number {
    const cursor = stream.cursor;
    let buffer = new Uint8Array(this.#options.chunkBytes);
    let used = 0;
    let keys = 0;
    let bytes = 0;
    for (let size = cursor.peekSize(); size !== null; size = cursor.peekSize()) {
      if (used > 0 && used + size > this.#options.chunkBytes) break;
      if (used + size > buffer.length) buffer = new Uint8Array(size);
      bytes += cursor.writeNext(buffer, used);
      used += size;
      keys += 1;
    }
    const done = cursor.peekSize() === null;
    const seq = stream.nextSeq;
    stream.nextSeq += 1;
    stream.encodedAll = done;
    const isKeys = stream.index < this.#options.streams;
    stream.inflight.push({
      message: {
        type: 'snapshot-chunk',
        term: this.#term,
        from: this.#nodeId,
        snapshotId: this.#id,
        stream: stream.index,
        seq,
        done,
        entries: buffer.subarray(0, used),
      },
      keys: isKeys ? keys : 0,
      bytes: isKeys ? bytes : 0,
      sentAt: null,
      retries: 0,
    });
    this.#chunks += 1;
    return Math.max(used, 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Receiver.

export interface ReceiverOptions {
  /** Chunks ahead of the next one kept per stream (more are dropped: the sender resends). */
  bufferChunksMax: number;
  /** `addReplace` calls in flight at once (the store queues them; overlap keeps it busy). */
  addsInflightMax: number;
}

export const receiverOptionsDefault: ReceiverOptions = { bufferChunksMax: 16, addsInflightMax: 4 };

/** A snapshot the replica installed: its checkpoint holds it and its log continues after it. */
export interface InstalledSnapshot {
  from: string;
  snapshotId: number;
  lsn: number;
  term: number;
  checksum: number;
  keys: number;
  bytes: number;
}

export interface SnapshotReceiverInit {
  transport: Pick<Transport, 'send'>;
  /** This node (the replica). */
  nodeId: string;
  store: CheckpointStore;
  log: { resetTo(base: LogBase): Promise<void> };
  /**
   * The checkpoint was replaced and the log reset: rebuild the in-memory state from the
   * checkpoint (and restart replication after `lsn`). The receiver reports the snapshot
   * installed to the primary only after this resolves; a rejection fails the sync.
   */
  onInstalled: (installed: InstalledSnapshot) => Promise<void> | void;
  /**
   * The sync of `snapshotId` failed here (the primary will start another). IOERR, CORRUPT or
   * NOSPACE come from the checkpoint store or the log (a failure after the commit leaves the
   * checkpoint's `logBase` ahead of the log: the next open finishes the reset); INVALID means
   * the primary sent something malformed or inconsistent.
   */
  onFailed?: (error: SyncwalError, snapshotId: number) => void;
  options?: Partial<ReceiverOptions>;
}

interface ReceiveStream {
  /** Next chunk to hand to the store. */
  nextSeq: number;
  /** Every chunk up to here is staged (what the acks say). */
  stagedSeq: number;
  doneSeq: number | null;
  buffered: Map<number, SnapshotChunk>;
  resolved: Set<number>;
}

type ReceivePhase = 'beginning' | 'receiving' | 'installing' | 'installed' | 'failed';

interface Incoming {
  from: string;
  begin: SnapshotBegin;
  phase: ReceivePhase;
  streams: ReceiveStream[];
  startedAt: number;
  keys: number;
  bytes: number;
  chunks: number;
  addsInflight: number;
  requestIds: RequestIdRecord[];
}

const phaseStates: Record<ReceivePhase, FullSyncState> = {
  beginning: 'begin',
  receiving: 'streaming',
  installing: 'installing',
  installed: 'done',
  failed: 'failed',
};

function sameSnapshot(a: SnapshotBegin, b: SnapshotBegin): boolean {
  return (
    a.snapshotId === b.snapshotId &&
    a.term === b.term &&
    a.snapshotLsn === b.snapshotLsn &&
    a.snapshotTerm === b.snapshotTerm &&
    a.snapshotChecksum === b.snapshotChecksum &&
    a.streams === b.streams &&
    a.keys === b.keys &&
    a.bytes === b.bytes
  );
}

/**
 * The replica's side of full sync. Feed it every SnapshotBegin and SnapshotChunk from the
 * primary (`step`); it stages chunks in the checkpoint (`addReplace`, in seq order per stream,
 * up to `addsInflightMax` at once), acks each once staged, and when every stream is complete it
 * commits the checkpoint, resets the log to the snapshot's LSN, calls `onInstalled` and reports
 * the snapshot installed. A Begin with another snapshot id starts over (dropping what was
 * staged), except while an install runs. Only one snapshot at a time; a restarted node starts
 * from nothing and the primary's stalled sender starts a new snapshot.
 */
export class SnapshotReceiver {
  readonly #transport: Pick<Transport, 'send'>;
  readonly #nodeId: string;
  readonly #store: CheckpointStore;
  readonly #log: { resetTo(base: LogBase): Promise<void> };
  readonly #onInstalled: SnapshotReceiverInit['onInstalled'];
  readonly #onFailed: NonNullable<SnapshotReceiverInit['onFailed']>;
  readonly #options: ReceiverOptions;
  #current: Incoming | null = null;
  /** beginReplace and the install run here, one after another. */
  #serial: Promise<void> = Promise.resolve();
  readonly #addsPending = new Set<Promise<void>>();
  #closed = false;

  constructor(init: SnapshotReceiverInit) {
    this.#transport = init.transport;
    this.#nodeId = init.nodeId;
    this.#store = init.store;
    this.#log = init.log;
    this.#onInstalled = init.onInstalled;
    this.#onFailed = init.onFailed ?? (() => undefined);
    this.#options = { ...receiverOptionsDefault, ...init.options };
    const { bufferChunksMax, addsInflightMax } = this.#options;
    assert(Number.isSafeInteger(bufferChunksMax) && bufferChunksMax >= 1, 'bufferChunksMax');
    assert(Number.isSafeInteger(addsInflightMax) && addsInflightMax >= 1, 'addsInflightMax');
  }

  /** The state of the current (or last) snapshot, or null before any. */
  get state(): FullSyncState | null {
    return this.#current === null ? null : phaseStates[this.#current.phase];
  }

  progress(now: number): FullSyncProgress | null {
    const incoming = this.#current;
    if (incoming === null) return null;
    const fields = {
      snapshotId: incoming.begin.snapshotId,
      peer: incoming.from,
      lsn: incoming.begin.snapshotLsn,
      state: phaseStates[incoming.phase],
      keysTotal: incoming.begin.keys,
      bytesTotal: incoming.begin.bytes,
      keysDone: incoming.keys,
      bytesDone: incoming.bytes,
      chunks: incoming.chunks,
      retransmits: 0,
    };
    return progressOf(fields, incoming.startedAt, now);
  }

  /** A snapshot message from the primary (the engine routes only its primary's messages). */
  step(from: string, message: SnapshotBegin | SnapshotChunk, now: number): void {
    if (this.#closed) return;
    if (message.type === 'snapshot-begin') this.#onBegin(from, message, now);
    else this.#onChunk(from, message);
  }

  /** Stops taking messages and resolves once the store calls it made have settled. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([this.#serial, ...this.#addsPending]);
  }

  #onBegin(from: string, begin: SnapshotBegin, now: number): void {
    const current = this.#current;
    if (current !== null && current.from === from && sameSnapshot(current.begin, begin)) {
      // A duplicate, or the sender's probe for `installed`: answer with where things stand.
      if (current.phase !== 'beginning' && current.phase !== 'failed') this.#ack(current, 0);
      return;
    }
    if (current !== null && current.phase === 'installing') return;
    const valid =
      begin.streams >= 1 && begin.streams <= fullSyncStreamsMax && begin.snapshotLsn >= 0;
    if (!valid) return;
    const incoming: Incoming = {
      from,
      begin,
      phase: 'beginning',
      streams: [],
      startedAt: now,
      keys: 0,
      bytes: 0,
      chunks: 0,
      addsInflight: 0,
      requestIds: [],
    };
    for (let index = 0; index <= begin.streams; index++) {
      incoming.streams.push({
        nextSeq: 1,
        stagedSeq: 0,
        doneSeq: null,
        buffered: new Map(),
        resolved: new Set(),
      });
    }
    this.#current = incoming;
    const adds = [...this.#addsPending];
    this.#run(incoming, async () => {
      // Adds of an abandoned snapshot must not land in the new staging area.
      await Promise.allSettled(adds);
      await this.#store.beginReplace();
    }).then((ok) => {
      if (!ok || this.#current !== incoming) return;
      incoming.phase = 'receiving';
      this.#ack(incoming, 0);
      this.#feed(incoming);
    });
  }

  #onChunk(from: string, chunk: SnapshotChunk): void {
    const incoming = this.#current;
    if (incoming === null || incoming.from !== from) return;
    if (chunk.snapshotId !== incoming.begin.snapshotId) return;
    const stream = incoming.streams[chunk.stream];
    if (stream === undefined) return;
    if (incoming.phase === 'installing' || incoming.phase === 'installed') {
      this.#ack(incoming, chunk.stream);
      return;
    }
    if (incoming.phase !== 'receiving') return;
    if (chunk.seq < stream.nextSeq) {
      // Already staged: the ack was lost. Still being staged: its ack will come.
      if (chunk.seq <= stream.stagedSeq) this.#ack(incoming, chunk.stream);
      return;
    }
    if (chunk.seq >= stream.nextSeq + this.#options.bufferChunksMax) return;
    if (stream.doneSeq !== null && chunk.seq > stream.doneSeq) return;
    stream.buffered.set(chunk.seq, chunk);
    this.#feed(incoming);
  }

  /** Hands buffered chunks that are next in their stream to the store, round robin. */
  #feed(incoming: Incoming): void {
    for (let progress = true; progress;) {
      progress = false;
      for (let index = 0; index < incoming.streams.length; index++) {
        if (incoming.phase !== 'receiving') return;
        if (incoming.addsInflight >= this.#options.addsInflightMax) return;
        const stream = incoming.streams[index] as ReceiveStream;
        const chunk = stream.buffered.get(stream.nextSeq);
        if (chunk === undefined) continue;
        stream.buffered.delete(stream.nextSeq);
        stream.nextSeq += 1;
        if (chunk.done) stream.doneSeq = chunk.seq;
        this.#stage(incoming, index, chunk);
        progress = true;
      }
    }
  }

  #stage(incoming: Incoming, index: number, chunk: SnapshotChunk): void {
    const isRequestIds = index === incoming.begin.streams;
    const decoded = isRequestIds ? decodeRequestIds(chunk.entries) : decodeEntries(chunk.entries);
    if (typeof decoded === 'string') {
      const where = `snapshot ${chunk.snapshotId} stream ${index} chunk ${chunk.seq}`;
      this.#fail(incoming, new InvalidError(`${where} is malformed: ${decoded}`));
      return;
    }
    let keys = 0;
    let bytes = 0;
    let work: Promise<void> = Promise.resolve();
    if (isRequestIds) {
      for (const record of decoded as RequestIdRecord[]) incoming.requestIds.push(record);
    } else {
      for (const entry of decoded as { key: Uint8Array; value: Uint8Array }[]) {
        keys += 1;
        bytes += entry.key.length + entry.value.length;
      }
      if (keys > 0)
        work = this.#store.addReplace(decoded as { key: Uint8Array; value: Uint8Array }[]);
    }
    incoming.addsInflight += 1;
    const settled = work.then(
      () => this.#staged(incoming, index, chunk.seq, { keys, bytes }),
      (error: unknown) => {
        incoming.addsInflight -= 1;
        this.#fail(incoming, asSyncwalError(error));
      },
    );
    this.#addsPending.add(settled);
    void settled.finally(() => this.#addsPending.delete(settled));
  }

  #staged(incoming: Incoming, index: number, seq: number, counts: { keys: number; bytes: number }) {
    incoming.addsInflight -= 1;
    if (this.#current !== incoming || incoming.phase !== 'receiving' || this.#closed) return;
    const stream = incoming.streams[index] as ReceiveStream;
    incoming.keys += counts.keys;
    incoming.bytes += counts.bytes;
    incoming.chunks += 1;
    stream.resolved.add(seq);
    while (stream.resolved.delete(stream.stagedSeq + 1)) stream.stagedSeq += 1;
    this.#ack(incoming, index);
    this.#feed(incoming);
    this.#maybeInstall(incoming);
  }

  #maybeInstall(incoming: Incoming): void {
    if (incoming.phase !== 'receiving' || incoming.addsInflight > 0) return;
    const complete = incoming.streams.every(
      (stream) => stream.doneSeq !== null && stream.stagedSeq === stream.doneSeq,
    );
    if (!complete) return;
    const begin = incoming.begin;
    if (incoming.keys !== begin.keys || incoming.bytes !== begin.bytes) {
      const message =
        `snapshot ${begin.snapshotId} has ${incoming.keys} keys and ${incoming.bytes} bytes, ` +
        `its Begin said ${begin.keys} and ${begin.bytes}`;
      this.#fail(incoming, new InvalidError(message));
      return;
    }
    incoming.phase = 'installing';
    const base = {
      lsn: begin.snapshotLsn,
      checksum: begin.snapshotChecksum,
      term: begin.snapshotTerm,
    };
    const installed: InstalledSnapshot = {
      from: incoming.from,
      snapshotId: begin.snapshotId,
      ...base,
      keys: begin.keys,
      bytes: begin.bytes,
    };
    this.#run(incoming, async () => {
      await this.#store.commitReplace({
        appliedLsn: base.lsn,
        requestIds: incoming.requestIds,
        logBase: base,
      });
      await this.#log.resetTo(base);
      await this.#onInstalled(installed);
    }).then((ok) => {
      if (!ok) return;
      incoming.phase = 'installed';
      this.#ack(incoming, begin.streams);
    });
  }

  /** Runs `work` after what is already queued; false if it failed (the snapshot failed). */
  #run(incoming: Incoming, work: () => Promise<void>): Promise<boolean> {
    const result = this.#serial.then(work).then(
      () => !this.#closed,
      (error: unknown) => {
        this.#fail(incoming, asSyncwalError(error));
        return false;
      },
    );
    this.#serial = result.then(() => undefined);
    return result;
  }

  #fail(incoming: Incoming, error: SyncwalError): void {
    if (incoming.phase === 'failed' || incoming.phase === 'installed') return;
    incoming.phase = 'failed';
    for (const stream of incoming.streams) stream.buffered.clear();
    if (!this.#closed) this.#onFailed(error, incoming.begin.snapshotId);
  }

  #ack(incoming: Incoming, index: number): void {
    const stream = incoming.streams[index];
    assert(stream !== undefined, 'acks name a stream of the snapshot');
    const ack: SnapshotAck = {
      type: 'snapshot-ack',
      term: incoming.begin.term,
      from: this.#nodeId,
      snapshotId: incoming.begin.snapshotId,
      stream: index,
      seq: stream.stagedSeq,
      installed: incoming.phase === 'installed',
    };
    this.#transport.send(incoming.from, ack);
  }
}

/** A failure of the store or the log as a typed error; an assertion (a bug) stays thrown. */
function asSyncwalError(error: unknown): SyncwalError {
  if (error instanceof AssertionError) throw error;
  if (error instanceof SyncwalError) return error;
  return new SyncwalError('IOERR', error instanceof Error ? error.message : String(error), {
    cause: error,
  });
}
