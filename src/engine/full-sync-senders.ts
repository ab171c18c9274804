import { InvalidError } from '../core/errors.js';
import type { SnapshotAck } from '../core/consensus/messages.js';
import type { RequestIdRecord } from '../ports/checkpoint.js';
import type { Logger } from '../ports/logger.js';
import type { Transport } from '../ports/transport.js';
import type { Log } from '../storage/log.js';
import { SnapshotSender, type FullSyncOptions, type FullSyncProgress } from './full-sync.js';
import { latin1SnapshotSource } from './full-sync-source.js';

/** The primary's committed state at one LSN, as the engine hands it over (see state.ts). */
export interface StateCapture {
  lsn: number;
  keys: readonly string[];
  values: readonly string[];
  requestIds: readonly RequestIdRecord[];
}

export interface SnapshotSendersInit {
  nodeId: string;
  transport: Pick<Transport, 'send' | 'queuedBytes'>;
  log: Pick<Log, 'read' | 'base' | 'firstLsn'>;
  logger: Logger;
  options: Partial<FullSyncOptions>;
  /** Progress is logged this often while a sync runs. */
  progressLogMs: number;
  /** The committed state right now (taken synchronously: it is the snapshot). */
  capture: () => StateCapture;
  /** The replica installed the snapshot at `lsn`: ship it the log after that. */
  done: (peer: string, lsn: number) => void;
  /** The sync failed; the replication core decides what comes next. */
  failed: (peer: string, reason: string) => void;
}

interface Starting {
  lsn: number;
  cancelled: boolean;
}

/**
 * The primary's full syncs (DESIGN §5), one per replica that needs one: captures committed
 * state, finds the chain checksum and term of the record the snapshot stands at (the replica's
 * log continues from it), runs a SnapshotSender, and reports the end either way. While a sync
 * runs (or is being prepared) the log must keep the records after its LSN: `heldFrom`.
 */
export class SnapshotSenders {
  readonly #init: SnapshotSendersInit;
  readonly #senders = new Map<string, SnapshotSender>();
  readonly #starting = new Map<string, Starting>();
  readonly #loggedAt = new Map<string, number>();
  #nextId = 1;
  #closed = false;

  constructor(init: SnapshotSendersInit) {
    this.#init = init;
  }

  /** Starts a full sync to `peer` in `term` (one already running to it is cancelled). */
  start(peer: string, term: number, now: () => number): void {
    if (this.#closed) return;
    this.cancel(peer, 'replaced by a new full sync');
    const capture = this.#init.capture();
    const starting: Starting = { lsn: capture.lsn, cancelled: false };
    this.#starting.set(peer, starting);
    this.#locate(capture.lsn).then(
      (at) => {
        if (starting.cancelled || this.#closed) return;
        this.#starting.delete(peer);
        const source = latin1SnapshotSource({ ...capture, ...at });
        const sender = new SnapshotSender({
          transport: this.#init.transport,
          nodeId: this.#init.nodeId,
          peer,
          term,
          snapshotId: this.#nextId++,
          source,
          now: now(),
          options: this.#init.options,
        });
        this.#senders.set(peer, sender);
        this.#loggedAt.set(peer, now());
        this.#init.logger.info('full-sync-started', {
          peer,
          snapshotId: sender.snapshotId,
          lsn: source.lsn,
          keys: source.keys,
          bytes: source.bytes,
        });
      },
      (error: unknown) => {
        if (starting.cancelled || this.#closed) return;
        this.#starting.delete(peer);
        const reason = error instanceof Error ? error.message : String(error);
        this.#init.logger.error('full-sync-failed', { peer, reason });
        this.#init.failed(peer, reason);
      },
    );
  }

  /** Chain checksum and term of record `lsn` (the log's base when it is just before it). */
  async #locate(lsn: number): Promise<{ checksum: number; term: number }> {
    const log = this.#init.log;
    if (lsn < log.firstLsn) {
      const base = await log.base();
      if (base.lsn !== lsn) {
        throw new InvalidError(`snapshot at ${lsn} but the log starts after ${base.lsn}`);
      }
      return { checksum: base.checksum, term: base.term };
    }
    const [record] = await log.read({ lsnFirst: lsn, lsnLast: lsn });
    if (record === undefined || record.lsn !== lsn) {
      throw new InvalidError(`record ${lsn} is not in the log`);
    }
    return { checksum: record.checksum, term: record.term };
  }

  ack(from: string, ack: SnapshotAck, now: number): void {
    const sender = this.#senders.get(from);
    if (sender === undefined) return;
    sender.step(ack, now);
    this.#settle(sender, now);
  }

  tick(now: number): void {
    for (const sender of [...this.#senders.values()]) {
      sender.tick(now);
      this.#settle(sender, now);
      const peer = sender.peer;
      if (this.#senders.get(peer) !== sender) continue;
      if (now - (this.#loggedAt.get(peer) ?? now) < this.#init.progressLogMs) continue;
      this.#loggedAt.set(peer, now);
      this.#init.logger.info('full-sync-progress', { ...sender.progress(now) });
    }
  }

  #settle(sender: SnapshotSender, now: number): void {
    const peer = sender.peer;
    if (sender.state === 'done') {
      this.#senders.delete(peer);
      this.#init.logger.info('full-sync-done', { ...sender.progress(now) });
      this.#init.done(peer, sender.lsn);
    } else if (sender.state === 'failed') {
      this.#senders.delete(peer);
      const reason = sender.failure ?? 'failed';
      this.#init.logger.warn('full-sync-failed', { peer, snapshotId: sender.snapshotId, reason });
      this.#init.failed(peer, reason);
    }
  }

  /** Stops the sync to `peer` without reporting it (the link went down). */
  cancel(peer: string, reason: string): void {
    const starting = this.#starting.get(peer);
    if (starting !== undefined) starting.cancelled = true;
    this.#starting.delete(peer);
    const sender = this.#senders.get(peer);
    if (sender === undefined) return;
    sender.cancel(reason);
    this.#senders.delete(peer);
    this.#init.logger.info('full-sync-cancelled', { peer, snapshotId: sender.snapshotId, reason });
  }

  /** The first LSN the log must keep for the syncs running (Infinity: none). */
  get heldFrom(): number {
    let first = Infinity;
    for (const starting of this.#starting.values()) first = Math.min(first, starting.lsn + 1);
    for (const sender of this.#senders.values()) first = Math.min(first, sender.lsn + 1);
    return first;
  }

  progress(peer: string, now: number): FullSyncProgress | null {
    return this.#senders.get(peer)?.progress(now) ?? null;
  }

  close(): void {
    this.#closed = true;
    for (const peer of [...this.#senders.keys(), ...this.#starting.keys()]) {
      this.cancel(peer, 'closing');
    }
  }
}
