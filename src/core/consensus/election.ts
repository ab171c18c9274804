import { assert } from '../assert.js';

/**
 * The election rules of DESIGN §4 as pure functions: who may campaign, in what order, and how a
 * voter decides. No state, no IO: the node that drives an election (issue #5) feeds them what
 * its log, its hard state (src/storage/hard-state.ts) and the latest heartbeat say. Each rule
 * names the failure it prevents (DESIGN §4 "Why each rule is there").
 */

/** Where a log ends: the term and LSN of its last record. */
export interface LogPosition {
  lastTerm: number;
  lastLsn: number;
}

/** Raft's up-to-date order: a later last term wins, then a longer log. */
export function compareLogs(left: LogPosition, right: LogPosition): number {
  if (left.lastTerm !== right.lastTerm) return left.lastTerm - right.lastTerm;
  return left.lastLsn - right.lastLsn;
}

/** What a node knows that decides whether it may campaign. */
export interface CandidacyView {
  nodeId: string;
  /** Granted by the primary of the current term and not lost since (volatile). */
  eligible: boolean;
  /** The primary named by the TERM record of the last term in this node's log (null: none). */
  lastTermPrimary: string | null;
}

/**
 * Only an eligible replica, or the node whose own log names it primary of its last term, may
 * campaign. Without the first half, right after a full-shard outage (every replica ineligible)
 * an empty replica could win; without the second, nobody could resume after an outage.
 */
export function mayCampaign(view: CandidacyView): { allowed: boolean; reason: string } {
  if (view.lastTermPrimary === view.nodeId) {
    return { allowed: true, reason: 'its log names it primary of its last term' };
  }
  if (view.eligible) return { allowed: true, reason: 'eligible' };
  return { allowed: false, reason: 'neither eligible nor primary of its last term' };
}

/** A candidate as the ranking sees it. */
export interface RankedCandidate extends LogPosition {
  nodeId: string;
}

/**
 * Position of `self` among the possible candidates (0 = campaigns first): by last term and last
 * LSN descending, then node id ascending. `others` are the other nodes that may campaign, with
 * the log positions this node last heard (the heartbeat's eligible set with acked LSNs).
 */
export function candidateRank(self: RankedCandidate, others: readonly RankedCandidate[]): number {
  let rank = 0;
  for (const other of others) {
    if (other.nodeId === self.nodeId) continue;
    const order = compareLogs(other, self);
    if (order > 0 || (order === 0 && other.nodeId < self.nodeId)) rank += 1;
  }
  return rank;
}

export interface ElectionTiming {
  baseMs: number;
  stepMs: number;
  /** Up to this much is added, from the node's seeded randomness (a draw in [0, 1)). */
  jitterMs: number;
}

/** How long a node waits before campaigning: base + rank × step + jitter. */
export function electionDelayMs(rank: number, timing: ElectionTiming, draw: number): number {
  assert(Number.isSafeInteger(rank) && rank >= 0, 'a rank is a non-negative integer');
  assert(draw >= 0 && draw < 1, 'a jitter draw is in [0, 1)');
  return timing.baseMs + rank * timing.stepMs + Math.floor(draw * timing.jitterMs);
}

/** What a voter knows when a vote request arrives. */
export interface VoterView extends LogPosition {
  nodeId: string;
  /** From the hard state. */
  term: number;
  votedFor: string | null;
  /** The primary named by the TERM record of this voter's last log term (null: none). */
  lastTermPrimary: string | null;
  /**
   * The latest heartbeat this voter received in its current life (null after a restart: the
   * eligible set is volatile), with the eligible set it carried.
   */
  heartbeat: { from: string; eligible: readonly string[] } | null;
  /** A primary was heard from within the election timeout (pre-vote and check-quorum). */
  primaryAlive: boolean;
}

export interface VoteRequest extends LogPosition {
  /** The term the candidate will (pre-vote) or does campaign in. */
  term: number;
  candidate: string;
  preVote: boolean;
}

export type VoteRefusal =
  'stale-term' | 'already-voted' | 'log-behind' | 'not-eligible' | 'primary-alive';

export type VoteDecision =
  { granted: true; reason: string } | { granted: false; refusal: VoteRefusal; reason: string };

function refuse(refusal: VoteRefusal, reason: string): VoteDecision {
  return { granted: false, refusal, reason };
}

/**
 * Whether `voter` grants `request` its (pre-)vote. A granted real vote must be persisted in the
 * hard state (term and votedFor) before it is answered; a pre-vote changes nothing.
 *
 * Raft's rules (one vote per term, the candidate's log at least as up to date), plus:
 * (a) a candidate whose last log term equals the voter's is also up to date when the voter's
 *     TERM record for that term names the candidate: the voter's extra records of that term were
 *     never committed (a commit needs the primary's own durability, and the primary lacks them).
 *     Without it, after an outage where the old primary's unsynced records reached both
 *     replicas, nobody could ever campaign.
 * (b) a candidate missing from the eligible set of the voter's latest heartbeat is refused,
 *     unless that heartbeat came from the candidate: a replica revoked while cut off cannot
 *     gather votes from peers that heard of the revocation.
 * Pre-vote: refused while the voter still hears from a live primary, so a partitioned node
 * coming back cannot disrupt a healthy shard with a higher term.
 */
export function decideVote(voter: VoterView, request: VoteRequest): VoteDecision {
  if (request.term < voter.term) {
    return refuse('stale-term', `term ${request.term} is below the voter's ${voter.term}`);
  }
  if (request.preVote && voter.primaryAlive) {
    return refuse('primary-alive', 'the voter hears from a live primary');
  }
  const sameTerm = request.term === voter.term;
  if (!request.preVote && sameTerm && voter.votedFor !== null) {
    if (voter.votedFor !== request.candidate) {
      return refuse('already-voted', `voted for ${voter.votedFor} in term ${voter.term}`);
    }
  }
  const heartbeat = voter.heartbeat;
  if (
    heartbeat !== null &&
    heartbeat.from !== request.candidate &&
    !heartbeat.eligible.includes(request.candidate)
  ) {
    return refuse('not-eligible', `not in the eligible set ${heartbeat.from} last announced`);
  }
  if (compareLogs(request, voter) >= 0) return { granted: true, reason: 'log up to date' };
  if (request.lastTerm === voter.lastTerm && voter.lastTermPrimary === request.candidate) {
    return { granted: true, reason: `rule (a): primary of term ${voter.lastTerm}` };
  }
  return refuse(
    'log-behind',
    `candidate log (${request.lastTerm}, ${request.lastLsn}) is behind ` +
      `(${voter.lastTerm}, ${voter.lastLsn})`,
  );
}
