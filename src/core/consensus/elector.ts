import { assert } from '../assert.js';
import {
  candidateRank,
  decideVote,
  electionDelayMs,
  mayCampaign,
  type ElectionTiming,
  type LogPosition,
} from './election.js';
import type { EligibleReplica, VoteRequest, VoteResponse } from './messages.js';
import { majorityOf } from './quorum.js';

/**
 * One node's side of elections (DESIGN §4), sans-IO like Primary and Follower: inputs are what
 * the node heard (the primary's heartbeats and appends, vote messages, acks), its log's end,
 * its eligibility and the time; outputs are actions. It decides only who is primary of which
 * term; the replication core does the rest (the driver builds a Primary on `elected` and a
 * Follower on `follow`).
 *
 * Durability: a vote or a new term takes effect only once the hard state holding it is durable.
 * The elector asks with a `persist` action (numbered); the driver writes the hard state and
 * calls `persisted(seq)`; only then are the vote answered or the vote requests sent. Persists
 * complete in order.
 *
 * Phases: follower → (no primary heard for its delay, and allowed to campaign) pre-candidate →
 * (pre-votes from a majority) candidate → (votes from a majority) primary. A primary that hears
 * no ack from a majority for `electionTimeoutMs` steps down (check-quorum); anything of a newer
 * term makes any phase a follower of that term.
 */
export interface ElectorOptions {
  nodeId: string;
  /** Every voting member, this node included. */
  members: readonly string[];
  /** A follower's wait after the last word from a primary: base + rank × step + jitter. */
  timing: ElectionTiming;
  /** No word from a primary for this long: it is dead to pre-votes. A primary without acks
   * from a majority for this long steps down. */
  electionTimeoutMs: number;
  /** A campaign (pre-vote or vote) that has not won in this long ends; the node waits again. */
  campaignTimeoutMs: number;
}

export interface ElectorInit {
  /** From the hard state. */
  term: number;
  votedFor: string | null;
  log: LogPosition;
  /** The primary the TERM record of the log's last term names (null: none). */
  lastTermPrimary: string | null;
  now: number;
  /** Draws in [0, 1) for the jitter (seeded in simulations). */
  random: () => number;
}

export type ElectorPhase = 'follower' | 'pre-candidate' | 'candidate' | 'primary';

export type ElectorAction =
  | { kind: 'send'; to: string; message: VoteRequest | VoteResponse }
  | { kind: 'persist'; seq: number; term: number; votedFor: string | null }
  | { kind: 'elected'; term: number }
  | { kind: 'follow'; term: number; primary: string | null; reason: string };

interface Waiting {
  seq: number;
  then: () => void;
}

export class Elector {
  readonly #options: ElectorOptions;
  readonly #random: () => number;
  #phase: ElectorPhase = 'follower';
  #term: number;
  #votedFor: string | null;
  #log: LogPosition;
  #lastTermPrimary: string | null;
  #eligible = false;
  #primary: string | null = null;
  #heardAt: number;
  #heartbeat: { from: string; eligible: readonly EligibleReplica[] } | null = null;
  #deadline: number;
  #votes = new Set<string>();
  #ackAt = new Map<string, number>();
  #persistSeq = 0;
  #waiting: Waiting[] = [];
  #now: number;
  #out: ElectorAction[] = [];

  constructor(options: ElectorOptions, init: ElectorInit) {
    assert(options.members.includes(options.nodeId), 'a node is a member of its shard');
    assert(options.campaignTimeoutMs > 0 && options.electionTimeoutMs > 0, 'positive timeouts');
    this.#options = options;
    this.#random = init.random;
    this.#term = init.term;
    this.#votedFor = init.votedFor;
    this.#log = { ...init.log };
    this.#lastTermPrimary = init.lastTermPrimary;
    this.#now = init.now;
    // Nobody was heard yet: a restarted node waits its delay before campaigning.
    this.#heardAt = init.now;
    this.#deadline = init.now + this.#delay();
  }

  get phase(): ElectorPhase {
    return this.#phase;
  }
  get term(): number {
    return this.#term;
  }
  get primary(): string | null {
    return this.#phase === 'primary' ? this.#options.nodeId : this.#primary;
  }

  take(): ElectorAction[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /** The hard state of persist `seq` (and every earlier one) is durable. */
  persisted(seq: number): void {
    while (this.#waiting.length > 0 && (this.#waiting[0]?.seq ?? Infinity) <= seq) {
      this.#waiting.shift()?.then();
    }
  }

  /** The log's end moved (appends, truncation, a full sync). */
  setLog(log: LogPosition, lastTermPrimary: string | null): void {
    this.#log = { ...log };
    this.#lastTermPrimary = lastTermPrimary;
  }

  /** The primary granted or revoked this node's eligibility (or the link to it dropped). */
  setEligible(eligible: boolean): void {
    this.#eligible = eligible;
  }

  /**
   * A follower heard the primary of `term` (an append or a heartbeat; a heartbeat brings the
   * eligible set, which rule (b) and the ranking use).
   */
  heard(from: string, term: number, now: number, eligible?: readonly EligibleReplica[]): void {
    this.#now = Math.max(this.#now, now);
    if (term < this.#term) return;
    if (term > this.#term || this.#phase !== 'follower' || this.#primary !== from) {
      if (this.#phase === 'primary' && term === this.#term) return;
      this.#follow(term, from, `heard the primary of term ${term}`);
    }
    this.#heardAt = this.#now;
    if (eligible !== undefined) this.#heartbeat = { from, eligible };
    this.#deadline = this.#now + this.#delay();
  }

  /** Primary: `peer` acked something of this term (check-quorum counts it). */
  acked(peer: string, now: number): void {
    this.#now = Math.max(this.#now, now);
    if (this.#phase === 'primary') this.#ackAt.set(peer, this.#now);
  }

  tick(now: number): void {
    this.#now = Math.max(this.#now, now);
    switch (this.#phase) {
      case 'follower':
        if (this.#now >= this.#deadline) this.#maybePreVote();
        return;
      case 'pre-candidate':
      case 'candidate':
        if (this.#now >= this.#deadline) {
          this.#phase = 'follower';
          this.#deadline = this.#now + this.#delay();
        }
        return;
      case 'primary':
        this.#checkQuorum();
        return;
    }
  }

  step(from: string, message: VoteRequest | VoteResponse, now: number): void {
    this.#now = Math.max(this.#now, now);
    if (!this.#options.members.includes(from) || from === this.#options.nodeId) return;
    if (message.type === 'vote-request') this.#onRequest(from, message);
    else this.#onResponse(from, message);
  }

  // -- Candidate -------------------------------------------------------------------------

  #maybePreVote(): void {
    const allowed = mayCampaign({
      nodeId: this.#options.nodeId,
      eligible: this.#eligible,
      lastTermPrimary: this.#lastTermPrimary,
    });
    this.#deadline = this.#now + this.#delay();
    if (!allowed.allowed) return;
    this.#phase = 'pre-candidate';
    this.#deadline = this.#now + this.#options.campaignTimeoutMs;
    this.#votes = new Set([this.#options.nodeId]);
    this.#requestVotes(this.#term + 1, true);
    this.#maybeWon();
  }

  #campaign(): void {
    this.#phase = 'candidate';
    this.#deadline = this.#now + this.#options.campaignTimeoutMs;
    this.#term += 1;
    this.#votedFor = this.#options.nodeId;
    this.#primary = null;
    this.#votes = new Set([this.#options.nodeId]);
    const term = this.#term;
    this.#persist(term, this.#options.nodeId, () => {
      if (this.#phase !== 'candidate' || this.#term !== term) return;
      this.#requestVotes(term, false);
      this.#maybeWon();
    });
  }

  #requestVotes(term: number, preVote: boolean): void {
    for (const member of this.#options.members) {
      if (member === this.#options.nodeId) continue;
      this.#send(member, {
        type: 'vote-request',
        term,
        from: this.#options.nodeId,
        lastLsn: this.#log.lastLsn,
        lastTerm: this.#log.lastTerm,
        preVote,
      });
    }
  }

  #onResponse(from: string, response: VoteResponse): void {
    if (response.term > this.#term && !(response.preVote && response.granted)) {
      // A voter is in a newer term: whatever this node was doing is over.
      this.#follow(response.term, null, `${from} is in term ${response.term}`);
      return;
    }
    if (!response.granted) return;
    const preVoting = this.#phase === 'pre-candidate' && response.preVote;
    const voting = this.#phase === 'candidate' && !response.preVote;
    const expected = preVoting ? this.#term + 1 : this.#term;
    if (!(preVoting || voting) || response.term !== expected) return;
    this.#votes.add(from);
    this.#maybeWon();
  }

  #maybeWon(): void {
    if (this.#votes.size < majorityOf(this.#options.members.length)) return;
    if (this.#phase === 'pre-candidate') {
      this.#campaign();
      return;
    }
    if (this.#phase !== 'candidate' || this.#waiting.length > 0) return;
    this.#phase = 'primary';
    this.#primary = this.#options.nodeId;
    this.#ackAt = new Map(this.#options.members.map((member) => [member, this.#now]));
    this.#out.push({ kind: 'elected', term: this.#term });
  }

  #checkQuorum(): void {
    let fresh = 1;
    for (const [member, at] of this.#ackAt) {
      if (member !== this.#options.nodeId && this.#now - at <= this.#options.electionTimeoutMs) {
        fresh += 1;
      }
    }
    if (fresh >= majorityOf(this.#options.members.length)) return;
    this.#follow(
      this.#term,
      null,
      `no ack from a majority for ${this.#options.electionTimeoutMs} ms`,
    );
  }

  // -- Voter -----------------------------------------------------------------------------

  #onRequest(from: string, request: VoteRequest): void {
    const primaryAlive =
      this.#phase === 'primary' ||
      (this.#primary !== null && this.#now - this.#heardAt < this.#options.electionTimeoutMs);
    const heartbeat = this.#heartbeat;
    const decision = decideVote(
      {
        nodeId: this.#options.nodeId,
        term: this.#term,
        votedFor: this.#votedFor,
        lastTerm: this.#log.lastTerm,
        lastLsn: this.#log.lastLsn,
        lastTermPrimary: this.#lastTermPrimary,
        heartbeat:
          heartbeat === null
            ? null
            : { from: heartbeat.from, eligible: heartbeat.eligible.map((entry) => entry.id) },
        primaryAlive,
      },
      {
        term: request.term,
        candidate: from,
        lastTerm: request.lastTerm,
        lastLsn: request.lastLsn,
        preVote: request.preVote,
      },
    );
    const answer = (granted: boolean, term: number) =>
      this.#send(from, {
        type: 'vote-response',
        term,
        from: this.#options.nodeId,
        granted,
        preVote: request.preVote,
      });
    if (request.preVote) {
      answer(decision.granted, decision.granted ? request.term : this.#term);
      return;
    }
    if (request.term > this.#term) {
      this.#follow(request.term, null, `${from} campaigns in term ${request.term}`);
    }
    const term = this.#term;
    if (!decision.granted) {
      this.#afterPersists(() => answer(false, term));
      return;
    }
    if (this.#votedFor === from) {
      this.#afterPersists(() => answer(true, term));
      return;
    }
    this.#votedFor = from;
    // Granting a vote resets the wait: the candidate gets its chance before this node tries.
    this.#deadline = this.#now + this.#delay();
    this.#persist(term, from, () => answer(true, term));
  }

  // -- Shared ----------------------------------------------------------------------------

  /** Becomes a follower of `term` (persisted first if it is newer) under `primary`, if known. */
  #follow(term: number, primary: string | null, reason: string): void {
    const before = { phase: this.#phase, term: this.#term, primary: this.#primary };
    if (term > this.#term) {
      this.#term = term;
      this.#votedFor = null;
      this.#persist(term, null, () => undefined);
    }
    this.#phase = 'follower';
    this.#primary = primary;
    if (primary === null || before.primary !== primary) this.#heartbeat = null;
    if (primary !== null) this.#heardAt = this.#now;
    this.#deadline = this.#now + this.#delay();
    const changed =
      before.phase !== 'follower' || before.term !== this.#term || before.primary !== primary;
    if (changed) this.#out.push({ kind: 'follow', term: this.#term, primary, reason });
  }

  #persist(term: number, votedFor: string | null, then: () => void): void {
    this.#persistSeq += 1;
    this.#out.push({ kind: 'persist', seq: this.#persistSeq, term, votedFor });
    this.#waiting.push({ seq: this.#persistSeq, then });
  }

  /** Runs `then` once every persist asked for so far is durable. */
  #afterPersists(then: () => void): void {
    if (this.#waiting.length === 0) then();
    else this.#waiting.push({ seq: this.#persistSeq, then });
  }

  /** This node's wait before campaigning, from its rank among the eligible set it last heard. */
  #delay(): number {
    const self = { nodeId: this.#options.nodeId, ...this.#log };
    // Eligible replicas follow one primary: their logs are prefixes of its log, so LSNs alone
    // order them (the heartbeat does not say their last terms).
    const others = (this.#heartbeat?.eligible ?? []).map((entry) => ({
      nodeId: entry.id,
      lastTerm: this.#log.lastTerm,
      lastLsn: entry.ackedLsn,
    }));
    const rank = candidateRank(self, others);
    return electionDelayMs(rank, this.#options.timing, this.#random());
  }

  #send(to: string, message: VoteRequest | VoteResponse): void {
    this.#out.push({ kind: 'send', to, message });
  }
}
