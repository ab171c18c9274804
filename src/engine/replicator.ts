import { assert } from '../core/assert.js';
import { SyncwalError } from '../core/errors.js';
import { peekFrames, TermIndex } from '../core/consensus/frames.js';
import { Follower, type FollowerAction } from '../core/consensus/follower.js';
import type {
  Hello,
  PeerMessage,
  SnapshotBegin,
  SnapshotChunk,
} from '../core/consensus/messages.js';
import { Primary, type PrimaryAction, type ReplicaStatus } from '../core/consensus/primary.js';
import type { DurabilityPolicy } from '../core/consensus/quorum.js';
import type { CheckpointStore } from '../ports/checkpoint.js';
import type { Clock } from '../ports/clock.js';
import type { Logger } from '../ports/logger.js';
import type { Transport } from '../ports/transport.js';
import type { Log, LogBase } from '../storage/log.js';
import { SnapshotReceiver, type FullSyncProgress, type InstalledSnapshot } from './full-sync.js';
import { SnapshotSenders, type StateCapture } from './full-sync-senders.js';
import type { ReplicationOptionsResolved } from './replication-options.js';

/**
 * What the replicator needs from the engine it drives (SyncwalNode builds this object over its
 * private state). All calls are synchronous and happen in protocol order.
 */
export interface EngineHooks {
  /** The commit point reached `lsn`: apply what it covers and answer the writers. */
  commitTo(lsn: number): void;
  /** Replica: the frames were handed to the log; queue their intents for apply. */
  received(frames: Uint8Array): void;
  /** Replica: records after `lsn` were dropped (a divergent uncommitted tail). */
  truncated(lsn: number): void;
  /** Primary: writes held back for an eligibility grant may go now. */
  resume(): void;
  /** Primary: fail pending writes older than `before` (commit timeout; `now` for the log). */
  expire(before: number, now: number): void;
  /** A failure the node cannot continue after (fence it). */
  fail(error: SyncwalError): void;
  /** Something the operator should see (eligibility, role, full sync progress). */
  event(name: string, fields: Record<string, unknown>): void;
  /** Primary: committed state right now, for a replica's full sync. */
  capture(): StateCapture;
  /**
   * Replica: a full sync replaced the checkpoint and reset the log to `installed.lsn`: load
   * the state from the checkpoint. No replication message is handled until this resolves.
   */
  installed(installed: InstalledSnapshot): Promise<void>;
  /** Resolves once no checkpoint of the node is running (a snapshot install must not overlap). */
  checkpointIdle(): Promise<void>;
}

export type Role = 'primary' | 'replica';

export interface ReplicationStatus {
  role: Role;
  shardId: string;
  primary: string | null;
  term: number;
  commitLsn: number;
  eligible: boolean;
  policy: DurabilityPolicy;
  replicas: (ReplicaStatus & { fullSync: FullSyncProgress | null })[];
  /** Replica: the full sync it is receiving (or the last one), with its progress. */
  fullSync: FullSyncProgress | null;
}

/**
 * Drives the pure replication core (src/core/consensus) with real or simulated IO: the log,
 * the transport and the clock. One per node; the role is fixed by configuration in this phase
 * (elections come later and switch the role here).
 *
 * Storage actions of a replica (truncate, append) run strictly in the order the core emitted
 * them, on one promise chain; acks follow durability reported by the log.
 */
export class Replicator {
  readonly #options: ReplicationOptionsResolved;
  readonly #log: Log;
  readonly #transport: Transport;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #hooks: EngineHooks;
  readonly #primary: Primary | null;
  readonly #follower: Follower | null;
  readonly #senders: SnapshotSenders | null = null;
  /** Replica: the full sync receiver (replaced when the link to the primary drops). */
  #receiver: SnapshotReceiver | null = null;
  readonly #store: CheckpointStore;
  #storage: Promise<void> = Promise.resolve();
  #cancelTick: (() => void) | null = null;
  #closed = false;
  #deferredReads: { peer: string; fromLsn: number; bytesMax: number }[] = [];
  #flushScheduled = false;
  /** Bumped by every suffix truncation: durability reports of older appends are stale. */
  #generation = 0;

  constructor(init: {
    options: ReplicationOptionsResolved;
    log: Log;
    store: CheckpointStore;
    transport: Transport;
    clock: Clock;
    hooks: EngineHooks;
    terms: TermIndex;
    commitLsn: number;
    /** Primary: LSN of its durable TERM record. */
    termStartLsn: number;
  }) {
    this.#options = init.options;
    this.#log = init.log;
    this.#transport = init.transport;
    this.#clock = init.clock;
    this.#logger = init.options.logger;
    this.#hooks = init.hooks;
    this.#store = init.store;
    const options = init.options;
    if (options.role === 'primary') {
      this.#primary = new Primary(
        {
          nodeId: options.nodeId,
          replicas: options.members.filter((id) => id !== options.nodeId),
          policy: options.policy,
          heartbeatIntervalMs: options.heartbeatIntervalMs,
          appendBytesMax: Math.min(options.appendBytesMax, init.log.appendBytesMax),
          inflightBytesMax: options.inflightBytesMax,
          retransmitMs: options.retransmitMs,
          windowBytesMax: options.windowBytesMax,
          eligibilityLagRecords: options.eligibilityLagRecords,
          eligibilityPauseMs: options.eligibilityPauseMs,
        },
        {
          term: init.log.lastTerm,
          termStartLsn: init.termStartLsn,
          firstLsn: init.log.firstLsn,
          lastLsn: init.log.lastLsn,
          lastChecksum: init.log.lastChecksum,
          durableLsn: init.log.durableLsn,
          commitLsn: init.commitLsn,
          terms: init.terms,
        },
      );
      this.#follower = null;
      this.#senders = this.#newSenders();
      init.log.onAppend((firstLsn, frames, offsets, lastChecksum) => {
        this.#primary?.appended(firstLsn, frames, offsets, lastChecksum);
        this.#scheduleFlush();
      });
    } else {
      this.#primary = null;
      this.#follower = new Follower({
        nodeId: options.nodeId,
        term: init.log.lastTerm,
        lastLsn: init.log.lastLsn,
        lastTerm: init.log.lastTerm,
        durableLsn: init.log.durableLsn,
        commitLsn: init.commitLsn,
        terms: init.terms,
      });
      this.#receiver = this.#newReceiver();
    }
    this.#primary?.setTime(init.clock.now());
    this.#transport.onMessage((from, message) => this.#onMessage(from, message));
    this.#transport.onPeer((event) => this.#onPeer(event.peer, event.up, event.direction, event));
    this.#scheduleTick();
  }

  #onMessage(from: string, message: PeerMessage): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    this.#primary?.setTime(now);
    if (message.type === 'snapshot-ack') {
      this.#senders?.ack(from, message, now);
    } else if (message.type === 'snapshot-begin' || message.type === 'snapshot-chunk') {
      const follower = this.#follower;
      // Only the primary this replica follows, in its term, may replace its state.
      if (follower !== null && from === follower.primary && message.term === follower.term) {
        this.#receiveSnapshot(from, message, now, follower);
      }
    } else if (this.#primary !== null) {
      this.#primary.step(from, message);
    } else if (this.#receiver?.state !== 'installing' && this.#follower !== null) {
      // While a snapshot installs, the log and the state are being replaced: the primary
      // sends nothing else meanwhile, so whatever arrives is stale.
      const term = this.#follower.term;
      this.#follower.step(from, message);
      if (this.#follower.term !== term) this.#replaceReceiver(`term ${this.#follower.term} began`);
    }
    this.#drain();
  }

  /**
   * Replica: a snapshot message. A Begin at or below this replica's commit point is answered
   * "installed" at once: it already holds that state and the log after it matches the
   * primary's (records in flight arrived after the primary chose the snapshot), so the
   * primary can ship the log from the snapshot's LSN on. While a snapshot is received, the
   * commit point stays at or below its LSN.
   */
  #receiveSnapshot(
    from: string,
    message: SnapshotBegin | SnapshotChunk,
    now: number,
    follower: Follower,
  ): void {
    const receiver = this.#receiver;
    if (receiver === null) return;
    const active = receiver.progress(now);
    const known = active !== null && active.snapshotId === message.snapshotId;
    if (message.type === 'snapshot-begin' && !known && message.snapshotLsn <= follower.commitLsn) {
      this.#logger.info('full-sync-skipped', {
        snapshotId: message.snapshotId,
        lsn: message.snapshotLsn,
        commitLsn: follower.commitLsn,
      });
      this.#transport.send(from, {
        type: 'snapshot-ack',
        term: message.term,
        from: this.#options.nodeId,
        snapshotId: message.snapshotId,
        stream: message.streams,
        seq: 0,
        installed: true,
      });
      return;
    }
    receiver.step(from, message, now);
    const state = receiver.state;
    const receiving = state === 'begin' || state === 'streaming' || state === 'installing';
    follower.limitCommit(receiving ? (receiver.progress(now)?.lsn ?? null) : null);
  }

  #newSenders(): SnapshotSenders {
    const options = this.#options;
    return new SnapshotSenders({
      nodeId: options.nodeId,
      transport: this.#transport,
      log: this.#log,
      logger: this.#logger,
      options: options.fullSync,
      progressLogMs: options.fullSyncProgressLogMs,
      capture: () => this.#hooks.capture(),
      done: (peer, lsn) => {
        this.#hooks.event('full-sync-done', { peer, lsn });
        this.#primary?.snapshotDone(peer, lsn);
        this.#drain();
      },
      failed: (peer, reason) => {
        this.#hooks.event('full-sync-failed', { peer, reason });
        this.#primary?.snapshotFailed(peer);
        this.#drain();
      },
    });
  }

  /**
   * A replica's receiver: the store it installs into waits for the node's running checkpoint
   * before committing (the two must not overlap), and the log is reset on the storage chain,
   * after the appends already queued there.
   */
  #newReceiver(): SnapshotReceiver {
    const hooks = this.#hooks;
    const store = this.#store;
    const installing: CheckpointStore = {
      load: () => store.load(),
      apply: (batch) => store.apply(batch),
      close: () => store.close(),
      beginReplace: () => store.beginReplace(),
      addReplace: (entries) => store.addReplace(entries),
      commitReplace: async (commit) => {
        await hooks.checkpointIdle();
        await store.commitReplace(commit);
      },
    };
    return new SnapshotReceiver({
      transport: this.#transport,
      nodeId: this.#options.nodeId,
      store: installing,
      log: { resetTo: (base) => this.#resetLog(base) },
      onInstalled: (installed) => this.#installed(installed),
      onFailed: (error, snapshotId) => {
        this.#follower?.limitCommit(null);
        this.#logger.warn('full-sync-failed', {
          snapshotId,
          code: error.code,
          reason: error.message,
        });
        this.#hooks.event('full-sync-failed', { snapshotId, reason: error.message });
      },
      options: this.#options.fullSyncReceiver,
    });
  }

  /**
   * Abandons the snapshot being received (its sender is gone with the link or the term): a
   * new receiver takes over once the old one's store calls settled, and the commit point is
   * free again. An install already committing finishes locally.
   */
  #replaceReceiver(reason: string): void {
    const old = this.#receiver;
    const state = old?.state ?? null;
    if (old === null || state === null || state === 'done' || state === 'failed') return;
    this.#logger.info('full-sync-abandoned', { reason });
    this.#receiver = null;
    this.#follower?.limitCommit(null);
    void old.close().then(() => {
      if (!this.#closed) this.#receiver = this.#newReceiver();
    });
  }

  #resetLog(base: LogBase): Promise<void> {
    const reset = this.#storage.then(() => this.#log.resetTo(base));
    this.#storage = reset.catch(() => undefined);
    return reset.then(() => {
      // Durability reports of appends before the reset are about records that are gone.
      this.#generation += 1;
    });
  }

  async #installed(installed: InstalledSnapshot): Promise<void> {
    await this.#hooks.installed(installed);
    this.#follower?.reset({ lsn: installed.lsn, term: installed.term });
    this.#follower?.limitCommit(null);
    this.#logger.info('full-sync-installed', { ...installed });
    this.#hooks.event('full-sync-installed', { ...installed });
  }

  /** Replica: a snapshot's install is under way (the node takes no checkpoint meanwhile). */
  get installing(): boolean {
    return this.#receiver?.state === 'installing';
  }

  /** Primary: the first LSN the log must keep for the full syncs running (Infinity: none). */
  get snapshotHeldFrom(): number {
    return this.#senders?.heldFrom ?? Infinity;
  }

  /** What this node says in its handshake. */
  static hello(log: Log): Omit<Hello, 'type' | 'protocolVersion' | 'shardId' | 'from'> {
    return { term: log.lastTerm, lastLsn: log.lastLsn, lastTerm: log.lastTerm };
  }

  get role(): Role {
    return this.#primary !== null ? 'primary' : 'replica';
  }

  #onPeer(peer: string, up: boolean, direction: string, event: { hello?: Hello; reason?: string }) {
    if (this.#closed) return;
    this.#logger.debug(up ? 'replication.peer-up' : 'replication.peer-down', {
      peer,
      direction,
      reason: event.reason,
    });
    this.#primary?.setTime(this.#clock.now());
    if (this.#primary !== null && direction === 'outbound') {
      // A sync in progress does not survive the link: a new one starts if still needed.
      this.#senders?.cancel(peer, up ? 'reconnected' : 'disconnected');
      if (up && event.hello !== undefined) this.#primary.peerUp(peer, event.hello);
      if (!up) this.#primary.peerDown(peer);
    }
    if (this.#follower !== null && !up) {
      if (peer === this.#follower.primary) this.#replaceReceiver('the link to the primary dropped');
      this.#follower.disconnected(peer);
    }
    this.#drain();
  }

  /** Ships the turn's appends together, after the turn (one message per replica). */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    this.#clock.defer(() => {
      this.#flushScheduled = false;
      if (this.#closed) return;
      this.#primary?.flush();
      this.#drain();
    });
  }

  #scheduleTick(): void {
    if (this.#closed) return;
    this.#cancelTick = this.#clock.setTimer(this.#options.tickMs, () => {
      this.#tick();
      this.#scheduleTick();
    });
  }

  #tick(): void {
    const now = this.#clock.now();
    if (this.#primary !== null) {
      this.#primary.tick(now);
      this.#senders?.tick(now);
      this.#hooks.expire(now - this.#primary.policy.commitTimeoutMs, now);
    }
    this.#drain();
  }

  /** The log made everything through `lsn` durable on this node. */
  durable(lsn: number): void {
    if (this.#primary !== null) {
      this.#primary.durable(lsn);
      this.#retryDeferredReads();
    }
    // A replica's commit point is at most its durable LSN (the follower sees to it), so its
    // checkpoint never runs ahead of its log.
    this.#follower?.durable(lsn);
    this.#drain();
  }

  /** Primary: why a write cannot be logged now (NOREPLICAS), or null. */
  unmeetable(): string | null {
    return this.#primary?.unmeetable() ?? null;
  }

  /** Primary: writes wait while a nearly caught-up replica becomes eligible. */
  get writesPaused(): boolean {
    return this.#primary?.writesPaused ?? false;
  }

  /** Primary: highest LSN durable on itself and a majority (ABORTs are safe there). */
  get majorityLsn(): number {
    return this.#primary?.majorityLsn ?? 0;
  }

  get commitLsn(): number {
    return this.#primary?.commitLsn ?? this.#follower?.commitLsn ?? 0;
  }

  /** Primary: intents from `firstLsn` are aborted by the ABORT record at `abortLsn`. */
  hold(firstLsn: number, abortLsn: number): void {
    this.#primary?.hold(firstLsn, abortLsn);
    this.#drain();
  }

  setPolicy(policy: DurabilityPolicy): void {
    assert(this.#primary !== null, 'only a primary has a policy to change');
    this.#primary.setPolicy(policy);
    this.#drain();
  }

  /** Primary: the log's prefix below `firstLsn` was removed (after a checkpoint). */
  truncatedPrefix(firstLsn: number): void {
    this.#primary?.truncatedPrefix(firstLsn);
  }

  status(): ReplicationStatus {
    const now = this.#clock.now();
    const replicas = (this.#primary?.replicas() ?? []).map((replica) => ({
      ...replica,
      fullSync: this.#senders?.progress(replica.id, now) ?? null,
    }));
    return {
      role: this.role,
      shardId: this.#options.shardId,
      primary: this.#primary !== null ? this.#options.nodeId : (this.#follower?.primary ?? null),
      term: this.#primary?.term ?? this.#follower?.term ?? 0,
      commitLsn: this.commitLsn,
      eligible: this.#follower?.eligible ?? false,
      policy: this.#primary?.policy ?? this.#options.policy,
      replicas,
      fullSync: this.#receiver?.progress(now) ?? null,
    };
  }

  #drain(): void {
    for (let round = 0; round < 1000; round++) {
      const actions: (PrimaryAction | FollowerAction)[] =
        this.#primary?.take() ?? this.#follower?.take() ?? [];
      if (actions.length === 0) return;
      for (const action of actions) this.#perform(action);
    }
    assert(false, 'replication actions settle');
  }

  #perform(action: PrimaryAction | FollowerAction): void {
    switch (action.kind) {
      case 'send':
        this.#transport.send(action.to, action.message);
        return;
      case 'commit':
        this.#hooks.commitTo(action.lsn);
        return;
      case 'read':
        this.#read(action.peer, action.fromLsn, action.bytesMax);
        return;
      case 'resume':
        this.#hooks.resume();
        return;
      case 'eligibility':
        this.#logger.info(action.granted ? 'eligibility-granted' : 'eligibility-revoked', {
          peer: action.peer,
          reason: action.reason,
        });
        this.#hooks.event('eligibility', { ...action });
        return;
      case 'eligible':
        this.#hooks.event('eligible', { granted: action.granted });
        return;
      case 'snapshot': {
        this.#logger.warn('full-sync-needed', { peer: action.peer });
        this.#hooks.event('full-sync-needed', { peer: action.peer });
        const term = this.#primary?.term ?? 0;
        this.#senders?.start(action.peer, term, () => this.#clock.now());
        return;
      }
      case 'newer-term':
        this.#logger.error('newer-term', { peer: action.peer, term: action.term });
        this.#hooks.event('newer-term', { peer: action.peer, term: action.term });
        return;
      case 'reject':
        this.#logger.warn('append-refused', { peer: action.from, reason: action.reason });
        return;
      case 'truncate':
        this.#generation += 1;
        this.#hooks.truncated(action.afterLsn);
        this.#storageStep(() => this.#log.truncateSuffix({ lsnLast: action.afterLsn }));
        return;
      case 'append':
        this.#appendReceived(action.frames);
        return;
    }
  }

  /** Replica: hands frames to the log in pieces that fit one log write. */
  #appendReceived(frames: Uint8Array): void {
    const peeks = peekFrames(frames);
    assert(typeof peeks !== 'string', 'the follower checked the frames');
    const limit = this.#log.appendBytesMax;
    let start = 0;
    let end = 0;
    const pieces: Uint8Array[] = [];
    for (const peek of peeks) {
      if (end > start && peek.offset + peek.size - start > limit) {
        pieces.push(frames.subarray(start, end));
        start = end;
      }
      end = peek.offset + peek.size;
    }
    if (end > start) pieces.push(frames.subarray(start, end));
    // The engine queues the intents now (in protocol order); the log writes them in order on
    // the storage chain.
    this.#hooks.received(frames);
    const generation = this.#generation;
    for (const piece of pieces) {
      this.#storageStep(async () => {
        this.#log.appendFrames(piece).then(
          (lsn) => {
            if (generation === this.#generation) this.durable(lsn);
          },
          (error: unknown) => this.#storageFailed(error),
        );
      });
    }
  }

  #storageStep(step: () => Promise<void>): void {
    this.#storage = this.#storage
      .then(() => (this.#closed ? undefined : step()))
      .catch((error: unknown) => this.#storageFailed(error));
  }

  #storageFailed(error: unknown): void {
    if (this.#closed) return;
    const failure =
      error instanceof SyncwalError ? error : new SyncwalError('IOERR', String(error));
    this.#logger.error('replica-storage-failed', { reason: failure.message });
    this.#hooks.fail(failure);
  }

  #read(peer: string, fromLsn: number, bytesMax: number): void {
    if (fromLsn > this.#log.durableLsn) {
      // Not durable yet (the window was too small): read once the log catches up.
      this.#deferredReads.push({ peer, fromLsn, bytesMax });
      return;
    }
    this.#log
      .readFrames({ lsnFirst: fromLsn, lsnLast: this.#log.durableLsn, bytesMax })
      .then(
        (result) => this.#primary?.readDone(peer, fromLsn, result),
        (error: unknown) => {
          const code = error instanceof SyncwalError ? error.code : 'IOERR';
          if (code === 'INVALID') this.#primary?.readDone(peer, fromLsn, null);
          else this.#storageFailed(error);
        },
      )
      .finally(() => this.#drain());
  }

  #retryDeferredReads(): void {
    const reads = this.#deferredReads;
    this.#deferredReads = [];
    for (const read of reads) this.#read(read.peer, read.fromLsn, read.bytesMax);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelTick?.();
    this.#log.onAppend(null);
    this.#senders?.close();
    await this.#receiver?.close();
    await this.#storage.catch(() => undefined);
    await this.#transport.close();
  }
}
