import { assert } from '../assert.js';
import { peekFrames, TermIndex } from './frames.js';
import type { Append, AppendAck, Heartbeat, PeerMessage } from './messages.js';

/**
 * A replica's half of the replication protocol (DESIGN §4), sans-IO: messages in, actions out.
 *
 * The replica accepts records only in log order from the primary of the highest term it has
 * seen: `prevLsn`/`prevTerm` must match its log (Raft's log matching), frames it already holds
 * with the same term are skipped, and a conflicting uncommitted tail is truncated first. It acks
 * `ackLsn` = min(durable, matched): a record counts only once it is both on its disk and known
 * to be the primary's. Its commit point is min(primary's commit, matched), and it never moves
 * backwards; truncating at or below it would be a safety bug and fails loudly instead.
 */
export type FollowerAction =
  | { kind: 'truncate'; afterLsn: number }
  | { kind: 'append'; frames: Uint8Array; firstLsn: number; lastLsn: number }
  | { kind: 'send'; to: string; message: PeerMessage }
  | { kind: 'commit'; lsn: number }
  | { kind: 'eligible'; granted: boolean }
  | { kind: 'reject'; from: string; reason: string };

export interface FollowerInit {
  nodeId: string;
  term: number;
  lastLsn: number;
  lastTerm: number;
  durableLsn: number;
  commitLsn: number;
  terms: TermIndex;
}

const announcedMax = 4096;

export class Follower {
  readonly nodeId: string;
  #term: number;
  #primary: string | null = null;
  #lastLsn: number;
  #durableLsn: number;
  #matchLsn = 0;
  #ackSent = -1;
  #commitLsn: number;
  /**
   * Commit points the primary announced above ours, ascending. The replica's commit point is
   * always one of them: an announced point never passes an intent whose ABORT comes after it
   * (the primary's hold, decision 0003), while an arbitrary LSN below it could.
   */
  #announced: number[] = [];
  #eligible = false;
  #eligibleSet: string[] = [];
  /** While a full sync to this LSN is received, the commit point stays at or below it. */
  #commitLimit = Infinity;
  readonly #terms: TermIndex;
  #out: FollowerAction[] = [];

  constructor(init: FollowerInit) {
    this.nodeId = init.nodeId;
    this.#term = init.term;
    this.#lastLsn = init.lastLsn;
    this.#durableLsn = init.durableLsn;
    this.#commitLsn = init.commitLsn;
    this.#terms = init.terms;
    assert(init.commitLsn <= init.lastLsn, 'commit within the log');
  }

  get term(): number {
    return this.#term;
  }
  get primary(): string | null {
    return this.#primary;
  }
  get lastLsn(): number {
    return this.#lastLsn;
  }
  get lastTerm(): number {
    return this.#terms.termAt(this.#lastLsn);
  }
  get commitLsn(): number {
    return this.#commitLsn;
  }
  get ackLsn(): number {
    return Math.min(this.#durableLsn, this.#matchLsn);
  }
  get eligible(): boolean {
    return this.#eligible;
  }
  /** The eligible set of the latest heartbeat (elections use it, DESIGN §4 rule (b)). */
  get eligibleSet(): readonly string[] {
    return this.#eligibleSet;
  }

  /** Actions produced since the last call, in order. */
  take(): FollowerAction[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** The primary's link went down or this node restarted: eligibility is gone. */
  disconnected(peer: string): void {
    if (peer !== this.#primary) return;
    this.#setEligible(false);
  }

  /**
   * A full sync installed the primary's committed state at `base.lsn`: the log now continues
   * right after it (Log.resetTo), so that is this replica's last, durable, matched and committed
   * record. Commit points announced before are below it or about records that are gone.
   */
  reset(base: { lsn: number; term: number }): void {
    assert(base.lsn >= this.#commitLsn, 'a snapshot never takes the commit point back');
    this.#lastLsn = base.lsn;
    this.#durableLsn = base.lsn;
    this.#matchLsn = base.lsn;
    this.#commitLsn = base.lsn;
    this.#announced = [];
    this.#ackSent = -1;
    this.#terms.reset(base);
  }

  /**
   * A full sync at `lsn` is being received (null: none): the commit point must not pass it, or
   * installing the snapshot would take the replica's state back.
   */
  limitCommit(lsn: number | null): void {
    assert(lsn === null || lsn >= this.#commitLsn, 'a limit at or above the commit point');
    this.#commitLimit = lsn ?? Infinity;
  }

  /** The log made everything through `lsn` durable. */
  durable(lsn: number): void {
    // Never beyond the records it holds (a report may race a truncation).
    lsn = Math.min(lsn, this.#lastLsn);
    if (lsn <= this.#durableLsn) return;
    this.#durableLsn = lsn;
    this.#advanceCommit(0);
    this.#ack(true, this.#matchLsn);
  }

  step(from: string, message: PeerMessage): void {
    if (!('term' in message)) return;
    if (message.term < this.#term) {
      this.#send(from, this.#ackMessage(false, 0, this.#lastLsn + 1));
      return;
    }
    if (message.term > this.#term || this.#primary === null) {
      if (message.type !== 'append' && message.type !== 'heartbeat') return;
      this.#follow(message.term, from);
    }
    if (from !== this.#primary) {
      this.#out.push({ kind: 'reject', from, reason: `not the primary of term ${this.#term}` });
      return;
    }
    switch (message.type) {
      case 'append':
        this.#onAppend(message);
        return;
      case 'heartbeat':
        this.#onHeartbeat(message);
        return;
      case 'eligibility':
        this.#setEligible(message.granted);
        return;
      default:
        return;
    }
  }

  #follow(term: number, primary: string): void {
    this.#term = term;
    this.#primary = primary;
    this.#matchLsn = 0;
    this.#ackSent = -1;
    this.#setEligible(false);
  }

  #setEligible(granted: boolean): void {
    if (this.#eligible === granted) return;
    this.#eligible = granted;
    this.#out.push({ kind: 'eligible', granted });
  }

  /** Does the log hold `lsn` with `term`? Below the commit point the logs match by safety. */
  #matches(lsn: number, term: number): boolean {
    if (lsn > this.#lastLsn) return false;
    if (lsn <= this.#commitLsn || lsn <= this.#terms.baseLsn) return true;
    return this.#terms.termAt(lsn) === term;
  }

  #onAppend(message: Append): void {
    if (!this.#matches(message.prevLsn, message.prevTerm)) {
      this.#send(message.from, this.#ackMessage(false, 0, message.prevLsn));
      return;
    }
    const peeks = peekFrames(message.frames);
    const misplaced =
      typeof peeks !== 'string' && (peeks[0]?.lsn ?? message.prevLsn + 1) !== message.prevLsn + 1;
    if (typeof peeks === 'string' || misplaced) {
      const reason = typeof peeks === 'string' ? peeks : 'first frame does not follow prevLsn';
      this.#out.push({ kind: 'reject', from: message.from, reason });
      return;
    }
    let index = 0;
    while (index < peeks.length) {
      const peek = peeks[index];
      assert(peek !== undefined, 'dense');
      if (peek.lsn > this.#lastLsn) break;
      if (!this.#matches(peek.lsn, peek.term)) {
        assert(peek.lsn > this.#commitLsn, 'a committed record never conflicts');
        assert(peek.lsn > this.#matchLsn, 'a matched record never conflicts');
        this.#out.push({ kind: 'truncate', afterLsn: peek.lsn - 1 });
        this.#terms.truncateAfter(peek.lsn - 1);
        this.#lastLsn = peek.lsn - 1;
        this.#durableLsn = Math.min(this.#durableLsn, this.#lastLsn);
        break;
      }
      index += 1;
    }
    const fresh = peeks.slice(index);
    const first = fresh[0];
    const last = fresh.at(-1);
    if (first !== undefined && last !== undefined) {
      for (const peek of fresh) this.#terms.note(peek.lsn, peek.term);
      this.#out.push({
        kind: 'append',
        frames: message.frames.subarray(first.offset),
        firstLsn: first.lsn,
        lastLsn: last.lsn,
      });
      this.#lastLsn = last.lsn;
    }
    this.#matchLsn = Math.max(this.#matchLsn, message.lastLsn);
    this.#advanceCommit(message.commitLsn);
    this.#ack(true, this.#matchLsn, true);
  }

  #onHeartbeat(message: Heartbeat): void {
    this.#eligibleSet = message.eligible.map((entry) => entry.id);
    this.#setEligible(this.#eligibleSet.includes(this.nodeId));
    this.#advanceCommit(message.commitLsn);
    this.#send(message.from, {
      type: 'heartbeat-ack',
      term: this.#term,
      from: this.nodeId,
      seq: message.seq,
      ackLsn: this.ackLsn,
      lastLsn: this.#lastLsn,
      lastTerm: this.lastTerm,
    });
  }

  /**
   * Notes the primary's commit point and moves ours to the highest announced point that this
   * replica holds durably and knows to match the primary's log.
   */
  #advanceCommit(primaryCommit: number): void {
    const announced = this.#announced;
    if (primaryCommit > Math.max(this.#commitLsn, announced.at(-1) ?? 0)) {
      announced.push(primaryCommit);
      // Bounded: dropping the oldest points only delays applying, never misapplies.
      if (announced.length > announcedMax) announced.splice(0, announced.length - announcedMax);
    }
    const limit = Math.min(this.#matchLsn, this.#durableLsn, this.#lastLsn, this.#commitLimit);
    let lsn = this.#commitLsn;
    let taken = 0;
    while (taken < announced.length && (announced[taken] ?? Infinity) <= limit) {
      lsn = announced[taken] ?? lsn;
      taken += 1;
    }
    if (taken > 0) announced.splice(0, taken);
    if (lsn <= this.#commitLsn) return;
    this.#commitLsn = lsn;
    this.#out.push({ kind: 'commit', lsn });
  }

  /** Acks when something changed (or `force`: every append gets an answer). */
  #ack(success: boolean, matchLsn: number, force = false): void {
    if (this.#primary === null) return;
    if (success && !force && this.ackLsn === this.#ackSent) return;
    if (success) this.#ackSent = this.ackLsn;
    this.#send(this.#primary, this.#ackMessage(success, matchLsn));
  }

  /**
   * A failed append's hint: the replica's last record when `prevLsn` is beyond it, else the
   * record before the conflicting term (the primary skips the whole term in one round trip).
   */
  #ackMessage(success: boolean, matchLsn: number, prevLsn = 0): AppendAck {
    const hintLsn = success
      ? this.#lastLsn
      : prevLsn > this.#lastLsn
        ? this.#lastLsn
        : Math.max(this.#commitLsn, this.#terms.termStart(prevLsn) - 1);
    return {
      type: 'append-ack',
      term: this.#term,
      from: this.nodeId,
      success,
      matchLsn,
      ackLsn: success ? this.ackLsn : 0,
      hintLsn: Math.max(0, hintLsn),
      hintTerm: this.#terms.termAt(Math.max(0, hintLsn)),
    };
  }

  #send(to: string, message: PeerMessage): void {
    this.#out.push({ kind: 'send', to, message });
  }
}
