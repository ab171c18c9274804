import { assert } from '../assert.js';
import { FrameWindow, TermIndex } from './frames.js';
import type { AppendAck, Hello, HeartbeatAck, PeerMessage } from './messages.js';
import {
  majorityLsn,
  policyLsn,
  policyUnmeetable,
  type DurabilityPolicy,
  type QuorumInput,
} from './quorum.js';

/**
 * The primary's half of the replication protocol (DESIGN §4), sans-IO. The engine tells it what
 * the log did (`appended`, `durable`), what arrived (`step`, `peerUp`, `peerDown`) and what time
 * it is (`tick`); it answers with actions (`take`): messages to send, log ranges to read for a
 * lagging replica, a new commit point, eligibility changes, full syncs to start.
 *
 * Per replica it keeps a progress record, like etcd raft's: `probe` (one append outstanding,
 * finding where the logs match), `replicate` (pipelined appends within a bounded in-flight
 * window), `snapshot` (the replica needs a full sync). Messages may be lost: an append with no
 * ack progress for `retransmitMs` sends the replica back to probing from its acked point.
 */
export type PrimaryAction =
  | { kind: 'send'; to: string; message: PeerMessage }
  | { kind: 'read'; peer: string; fromLsn: number; bytesMax: number }
  | { kind: 'commit'; lsn: number }
  | { kind: 'eligibility'; peer: string; granted: boolean; reason: string }
  | { kind: 'snapshot'; peer: string }
  | { kind: 'resume' }
  | { kind: 'newer-term'; peer: string; term: number };

export interface PrimaryOptions {
  nodeId: string;
  /** Voting members other than this node. */
  replicas: readonly string[];
  policy: DurabilityPolicy;
  heartbeatIntervalMs: number;
  /** Frames per append message (at least one record is always sent). */
  appendBytesMax: number;
  /** Unacknowledged bytes in flight per replica. */
  inflightBytesMax: number;
  /** No ack progress for this long with appends outstanding: probe again. */
  retransmitMs: number;
  /** Frames kept in memory for replicas that keep up. */
  windowBytesMax: number;
  /** A replica this close to the end pauses new writes so it can become eligible... */
  eligibilityLagRecords: number;
  /** ...for at most this long per attempt. */
  eligibilityPauseMs: number;
}

export interface PrimaryLogState {
  term: number;
  /** LSN of this primary's TERM record: commits count only from here (Raft's Figure 8). */
  termStartLsn: number;
  firstLsn: number;
  lastLsn: number;
  lastChecksum: number;
  durableLsn: number;
  commitLsn: number;
  terms: TermIndex;
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export interface ReplicaStatus {
  id: string;
  connected: boolean;
  eligible: boolean;
  state: ProgressState;
  ackedLsn: number;
  lagRecords: number;
  /** Milliseconds since the last ack (null: never acked). */
  lagMs: number | null;
}

interface Progress {
  id: string;
  connected: boolean;
  state: ProgressState;
  nextLsn: number;
  /**
   * Where a retransmitted probe starts: what the handshake or the replica's last answer
   * established, never below (a lost answer must not rewind the replica into a full sync).
   */
  probeFrom: number;
  matchLsn: number;
  ackLsn: number;
  inflight: { lastLsn: number; bytes: number }[];
  inflightBytes: number;
  reading: boolean;
  lastProgressAt: number;
  lastAckAt: number | null;
  eligible: boolean;
  pauseStartedAt: number | null;
  pauseBlockedUntil: number;
}

export class Primary {
  readonly #options: PrimaryOptions;
  readonly #log: PrimaryLogState;
  readonly #window: FrameWindow;
  readonly #progress = new Map<string, Progress>();
  #policy: DurabilityPolicy;
  #commitLsn: number;
  #majorityLsn = 0;
  #holds: { firstLsn: number; abortLsn: number }[] = [];
  #heartbeatSeq = 0;
  #nextHeartbeatAt = 0;
  #now = 0;
  #paused = false;
  #out: PrimaryAction[] = [];

  constructor(options: PrimaryOptions, log: PrimaryLogState) {
    this.#options = options;
    this.#log = { ...log };
    this.#policy = options.policy;
    this.#commitLsn = log.commitLsn;
    this.#window = new FrameWindow(options.windowBytesMax);
    for (const id of options.replicas) {
      assert(id !== options.nodeId, 'a primary is not its own replica');
      this.#progress.set(id, this.#freshProgress(id));
    }
  }

  #freshProgress(id: string): Progress {
    return {
      id,
      connected: false,
      state: 'probe',
      nextLsn: this.#log.lastLsn + 1,
      probeFrom: this.#log.lastLsn + 1,
      matchLsn: 0,
      ackLsn: 0,
      inflight: [],
      inflightBytes: 0,
      reading: false,
      lastProgressAt: this.#now,
      lastAckAt: null,
      eligible: false,
      pauseStartedAt: null,
      pauseBlockedUntil: 0,
    };
  }

  get term(): number {
    return this.#log.term;
  }
  get commitLsn(): number {
    return this.#commitLsn;
  }
  /** Highest LSN durable on the primary and a majority including it (ABORTs resolve here). */
  get majorityLsn(): number {
    return this.#majorityLsn;
  }
  get policy(): DurabilityPolicy {
    return this.#policy;
  }
  get voters(): number {
    return this.#progress.size + 1;
  }

  take(): PrimaryAction[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  setPolicy(policy: DurabilityPolicy): void {
    this.#policy = policy;
    this.#recompute();
  }

  /** Why a new write cannot meet the policy right now (NOREPLICAS before logging), or null. */
  unmeetable(): string | null {
    let connected = 0;
    for (const progress of this.#progress.values()) if (progress.connected) connected += 1;
    return policyUnmeetable(this.voters, connected, this.#policy);
  }

  /** True while new writes wait so a nearly caught-up replica can become eligible. */
  get writesPaused(): boolean {
    return this.#paused;
  }

  /** The log assigned records `firstLsn`.. (frames as written; offsets of each frame). */
  appended(
    firstLsn: number,
    frames: Uint8Array,
    offsets: readonly number[],
    lastChecksum: number,
  ): void {
    assert(firstLsn === this.#log.lastLsn + 1, 'appends are contiguous');
    this.#window.push(firstLsn, frames, offsets);
    this.#log.lastLsn = firstLsn + offsets.length - 1;
    this.#log.lastChecksum = lastChecksum;
  }

  /**
   * Ships what was appended since the last call. The driver calls it once per turn, so the
   * appends of one turn travel in one message per replica, not one message each.
   */
  flush(): void {
    for (const progress of this.#progress.values()) this.#sendMore(progress);
  }

  /** Notes a record's term (the engine calls it for every record it appends). */
  noteTerm(lsn: number, term: number): void {
    this.#log.terms.note(lsn, term);
  }

  /** The log made everything through `lsn` durable on this node. */
  durable(lsn: number): void {
    if (lsn <= this.#log.durableLsn) return;
    this.#log.durableLsn = lsn;
    this.#recompute();
  }

  /** The log's prefix below `firstLsn` is gone (checkpoint): replicas behind it need a sync. */
  truncatedPrefix(firstLsn: number): void {
    this.#log.firstLsn = firstLsn;
  }

  /**
   * Intents firstLsn.. were aborted by the ABORT record at `abortLsn`: the commit point shown to
   * anyone stays below them until the ABORT itself commits.
   */
  hold(firstLsn: number, abortLsn: number): void {
    this.#holds.push({ firstLsn, abortLsn });
    this.#recompute();
  }

  peerUp(peer: string, hello: Hello): void {
    const progress = this.#progress.get(peer);
    if (progress === undefined) return;
    const start = Math.min(hello.lastLsn, this.#log.lastLsn) + 1;
    Object.assign(progress, this.#freshProgress(peer), {
      connected: true,
      nextLsn: start,
      probeFrom: start,
      lastProgressAt: this.#now,
    });
    this.#probe(progress);
  }

  peerDown(peer: string): void {
    const progress = this.#progress.get(peer);
    if (progress === undefined || !progress.connected) return;
    progress.connected = false;
    progress.inflight = [];
    progress.inflightBytes = 0;
    this.#revoke(progress, 'disconnected');
    this.#updatePause();
  }

  step(from: string, message: PeerMessage): void {
    const progress = this.#progress.get(from);
    if (progress === undefined || !('term' in message)) return;
    if (message.term > this.#log.term) {
      this.#out.push({ kind: 'newer-term', peer: from, term: message.term });
      return;
    }
    if (message.term < this.#log.term || !progress.connected) return;
    if (message.type === 'append-ack') this.#onAppendAck(progress, message);
    else if (message.type === 'heartbeat-ack') this.#onHeartbeatAck(progress, message);
  }

  #onAppendAck(progress: Progress, ack: AppendAck): void {
    progress.lastAckAt = this.#now;
    if (!ack.success) {
      progress.state = 'probe';
      progress.inflight = [];
      progress.inflightBytes = 0;
      progress.nextLsn = Math.max(
        progress.matchLsn + 1,
        Math.min(ack.hintLsn + 1, progress.nextLsn - 1, this.#log.lastLsn + 1),
      );
      progress.probeFrom = progress.nextLsn;
      this.#probe(progress);
      return;
    }
    this.#acked(progress, ack.matchLsn, ack.ackLsn);
    progress.probeFrom = Math.max(progress.probeFrom, progress.matchLsn + 1);
    if (progress.state === 'probe') {
      progress.state = 'replicate';
      progress.nextLsn = Math.max(progress.nextLsn, progress.matchLsn + 1);
    }
    this.#sendMore(progress);
  }

  #onHeartbeatAck(progress: Progress, ack: HeartbeatAck): void {
    progress.lastAckAt = this.#now;
    this.#acked(progress, progress.matchLsn, Math.min(ack.ackLsn, progress.matchLsn));
  }

  #acked(progress: Progress, matchLsn: number, ackLsn: number): void {
    if (matchLsn > progress.matchLsn || ackLsn > progress.ackLsn) {
      progress.lastProgressAt = this.#now;
    }
    progress.matchLsn = Math.max(progress.matchLsn, matchLsn);
    progress.ackLsn = Math.max(progress.ackLsn, Math.min(ackLsn, progress.matchLsn));
    while ((progress.inflight[0]?.lastLsn ?? Infinity) <= progress.matchLsn) {
      progress.inflightBytes -= progress.inflight.shift()?.bytes ?? 0;
    }
    this.#maybeGrant(progress);
    this.#recompute();
  }

  /** Sets the time that inputs arriving before the next tick are stamped with. */
  setTime(now: number): void {
    this.#now = Math.max(this.#now, now);
  }

  tick(now: number): void {
    this.setTime(now);
    for (const progress of this.#progress.values()) {
      if (!progress.connected) continue;
      const stalled = now - progress.lastProgressAt > this.#options.retransmitMs;
      // Unacknowledged appends, or a probe (possibly empty) that got no answer: send again.
      const outstanding = progress.nextLsn - 1 > progress.matchLsn || progress.state === 'probe';
      if (stalled && outstanding && !progress.reading && progress.state !== 'snapshot') {
        progress.state = 'probe';
        progress.inflight = [];
        progress.inflightBytes = 0;
        progress.nextLsn = Math.max(progress.matchLsn + 1, progress.probeFrom);
        progress.lastProgressAt = now;
        this.#probe(progress);
      }
      const silent = now - (progress.lastAckAt ?? progress.lastProgressAt);
      if (progress.eligible && silent > this.#policy.replicaTimeoutMs) {
        this.#revoke(progress, `no ack for ${silent} ms`);
      }
    }
    this.#updatePause();
    if (now >= this.#nextHeartbeatAt) {
      this.#nextHeartbeatAt = now + this.#options.heartbeatIntervalMs;
      this.#heartbeat();
    }
  }

  #heartbeat(): void {
    this.#heartbeatSeq += 1;
    const eligible = [...this.#progress.values()]
      .filter((progress) => progress.eligible)
      .map((progress) => ({ id: progress.id, ackedLsn: progress.ackLsn }));
    for (const progress of this.#progress.values()) {
      if (!progress.connected) continue;
      this.#send(progress.id, {
        type: 'heartbeat',
        term: this.#log.term,
        from: this.#options.nodeId,
        seq: this.#heartbeatSeq,
        commitLsn: this.#commitLsn,
        lastLsn: this.#log.lastLsn,
        eligible,
      });
    }
  }

  /** A lagging replica's range, read from the log (null: no longer in the log). */
  readDone(
    peer: string,
    fromLsn: number,
    result: { frames: Uint8Array; lastLsn: number; prevChecksum: number } | null,
  ): void {
    const progress = this.#progress.get(peer);
    if (progress === undefined || !progress.reading) return;
    progress.reading = false;
    if (!progress.connected || progress.nextLsn !== fromLsn) {
      this.#sendMore(progress);
      return;
    }
    if (result === null) {
      this.#startSnapshot(progress);
      return;
    }
    this.#sendAppend(progress, fromLsn, result);
    if (progress.state === 'replicate') this.#sendMore(progress);
  }

  /** A full sync to `peer` finished at `snapshotLsn`: ship the log after it. */
  snapshotDone(peer: string, snapshotLsn: number): void {
    const progress = this.#progress.get(peer);
    if (progress === undefined || progress.state !== 'snapshot') return;
    progress.state = 'probe';
    progress.nextLsn = snapshotLsn + 1;
    progress.lastProgressAt = this.#now;
    this.#probe(progress);
  }

  /**
   * A full sync to `peer` failed (stalled, or the replica could not install it): probe again
   * from where the replica last answered; if that part of the log is gone, another full sync
   * starts.
   */
  snapshotFailed(peer: string): void {
    const progress = this.#progress.get(peer);
    if (progress === undefined || progress.state !== 'snapshot') return;
    progress.state = 'probe';
    progress.nextLsn = Math.max(progress.matchLsn + 1, progress.probeFrom);
    progress.lastProgressAt = this.#now;
    this.#probe(progress);
  }

  /** One append outstanding from `nextLsn` (frames if there are any). */
  #probe(progress: Progress): void {
    if (!progress.connected || progress.state === 'snapshot') return;
    progress.state = 'probe';
    progress.lastProgressAt = this.#now;
    if (progress.nextLsn > this.#log.lastLsn) {
      this.#sendAppend(progress, progress.nextLsn, {
        frames: new Uint8Array(0),
        lastLsn: this.#log.lastLsn,
        prevChecksum: this.#log.lastChecksum,
      });
      return;
    }
    this.#shipFrom(progress);
  }

  #sendMore(progress: Progress): void {
    if (!progress.connected || progress.state !== 'replicate') return;
    while (
      progress.nextLsn <= this.#log.lastLsn &&
      progress.inflightBytes < this.#options.inflightBytesMax &&
      !progress.reading
    ) {
      if (!this.#shipFrom(progress)) return;
    }
  }

  /** Sends frames from `nextLsn` out of the window, or asks for a log read. */
  #shipFrom(progress: Progress): boolean {
    const fromLsn = progress.nextLsn;
    if (fromLsn < this.#log.firstLsn) {
      this.#startSnapshot(progress);
      return false;
    }
    const slice = this.#window.slice(fromLsn, this.#options.appendBytesMax);
    if (slice === null) {
      progress.reading = true;
      this.#out.push({
        kind: 'read',
        peer: progress.id,
        fromLsn,
        bytesMax: this.#options.appendBytesMax,
      });
      return false;
    }
    this.#sendAppend(progress, fromLsn, slice);
    return true;
  }

  #sendAppend(
    progress: Progress,
    fromLsn: number,
    slice: { frames: Uint8Array; lastLsn: number; prevChecksum: number },
  ): void {
    const prevLsn = fromLsn - 1;
    this.#send(progress.id, {
      type: 'append',
      term: this.#log.term,
      from: this.#options.nodeId,
      prevLsn,
      prevTerm: this.#log.terms.termAt(prevLsn),
      prevChecksum: slice.prevChecksum,
      lastLsn: slice.lastLsn,
      commitLsn: this.#commitLsn,
      frames: slice.frames,
    });
    if (slice.lastLsn >= fromLsn) {
      progress.inflight.push({ lastLsn: slice.lastLsn, bytes: slice.frames.length });
      progress.inflightBytes += slice.frames.length;
      progress.nextLsn = slice.lastLsn + 1;
    }
  }

  #startSnapshot(progress: Progress): void {
    if (progress.state === 'snapshot') return;
    progress.state = 'snapshot';
    progress.inflight = [];
    progress.inflightBytes = 0;
    this.#revoke(progress, 'needs a full sync');
    this.#out.push({ kind: 'snapshot', peer: progress.id });
  }

  #maybeGrant(progress: Progress): void {
    if (progress.eligible || !progress.connected || progress.state === 'snapshot') return;
    if (progress.ackLsn < this.#log.lastLsn) return;
    progress.eligible = true;
    progress.pauseStartedAt = null;
    this.#sendEligibility(progress, true, `caught up at ${progress.ackLsn}`);
    this.#updatePause();
  }

  #revoke(progress: Progress, reason: string): void {
    if (!progress.eligible) return;
    progress.eligible = false;
    this.#sendEligibility(progress, false, reason);
    this.#recompute();
  }

  #sendEligibility(progress: Progress, granted: boolean, reason: string): void {
    this.#out.push({ kind: 'eligibility', peer: progress.id, granted, reason });
    if (!progress.connected) return;
    this.#send(progress.id, {
      type: 'eligibility',
      term: this.#log.term,
      from: this.#options.nodeId,
      granted,
    });
  }

  /** Pauses writes while some replica is close enough to catch the very end (bounded). */
  #updatePause(): void {
    let paused = false;
    for (const progress of this.#progress.values()) {
      const near =
        progress.connected &&
        !progress.eligible &&
        progress.state === 'replicate' &&
        this.#log.lastLsn - progress.ackLsn <= this.#options.eligibilityLagRecords &&
        this.#now >= progress.pauseBlockedUntil;
      if (!near) {
        progress.pauseStartedAt = null;
        continue;
      }
      progress.pauseStartedAt ??= this.#now;
      if (this.#now - progress.pauseStartedAt > this.#options.eligibilityPauseMs) {
        // Give up for a while: a replica that cannot keep up must not stall writes repeatedly.
        progress.pauseStartedAt = null;
        progress.pauseBlockedUntil = this.#now + 10 * this.#options.eligibilityPauseMs;
        continue;
      }
      paused = true;
    }
    if (this.#paused && !paused) this.#out.push({ kind: 'resume' });
    this.#paused = paused;
  }

  #quorumInput(): QuorumInput {
    return {
      voters: this.voters,
      primaryDurableLsn: this.#log.durableLsn,
      replicas: [...this.#progress.values()].map((progress) => ({
        id: progress.id,
        ackLsn: progress.ackLsn,
        eligible: progress.eligible,
      })),
    };
  }

  #recompute(): void {
    const input = this.#quorumInput();
    this.#majorityLsn = Math.max(this.#majorityLsn, majorityLsn(input));
    const raw = policyLsn(input, this.#policy);
    if (raw < this.#log.termStartLsn) return;
    let candidate = raw;
    this.#holds = this.#holds.filter((hold) => raw < hold.abortLsn);
    for (const hold of this.#holds) candidate = Math.min(candidate, hold.firstLsn - 1);
    if (candidate <= this.#commitLsn) return;
    this.#commitLsn = candidate;
    this.#out.push({ kind: 'commit', lsn: candidate });
  }

  replicas(): ReplicaStatus[] {
    return [...this.#progress.values()].map((progress) => ({
      id: progress.id,
      connected: progress.connected,
      eligible: progress.eligible,
      state: progress.state,
      ackedLsn: progress.ackLsn,
      lagRecords: Math.max(0, this.#log.lastLsn - progress.ackLsn),
      lagMs: progress.lastAckAt === null ? null : this.#now - progress.lastAckAt,
    }));
  }

  #send(to: string, message: PeerMessage): void {
    this.#out.push({ kind: 'send', to, message });
  }
}
