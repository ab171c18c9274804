import { describe, expect, it } from 'vitest';
import {
  candidateRank,
  decideVote,
  electionDelayMs,
  mayCampaign,
  type VoteRequest,
  type VoterView,
} from '../../src/core/consensus/election.js';
import { Random } from '../../src/sim/random.js';

const voter: VoterView = {
  nodeId: 'n2',
  term: 3,
  votedFor: null,
  lastTerm: 3,
  lastLsn: 100,
  lastTermPrimary: 'n1',
  heartbeat: null,
  primaryAlive: false,
};

const request = (fields: Partial<VoteRequest>): VoteRequest => ({
  term: 4,
  candidate: 'n3',
  lastTerm: 3,
  lastLsn: 100,
  preVote: false,
  ...fields,
});

describe('election rules: votes (DESIGN §4)', () => {
  it('Raft: refuses a stale term, votes once per term, wants an up-to-date log', () => {
    expect(decideVote(voter, request({ term: 2 }))).toMatchObject({ refusal: 'stale-term' });
    const voted = { ...voter, term: 4, votedFor: 'n1' };
    expect(decideVote(voted, request({}))).toMatchObject({ refusal: 'already-voted' });
    // Asking again for the vote it already has is answered the same way.
    expect(decideVote({ ...voted, votedFor: 'n3' }, request({}))).toMatchObject({ granted: true });
    expect(decideVote(voter, request({ lastLsn: 99 }))).toMatchObject({ refusal: 'log-behind' });
    expect(decideVote(voter, request({ lastTerm: 2, lastLsn: 500 }))).toMatchObject({
      refusal: 'log-behind',
    });
    expect(decideVote(voter, request({ lastTerm: 4, lastLsn: 1 }))).toMatchObject({
      granted: true,
    });
    expect(decideVote(voter, request({ lastLsn: 101 }))).toMatchObject({ granted: true });
  });

  it('rule (a): the primary of the last term is up to date with fewer records of it', () => {
    // Scenario "no rule (a)": the old primary n1 lost unsynced records the replicas hold.
    const shorter = request({ candidate: 'n1', lastLsn: 90 });
    expect(decideVote(voter, shorter)).toMatchObject({ granted: true });
    // Only for the primary that voter's TERM record names, and only within that term.
    expect(decideVote(voter, request({ candidate: 'n3', lastLsn: 90 }))).toMatchObject({
      refusal: 'log-behind',
    });
    expect(
      decideVote(voter, request({ candidate: 'n1', lastTerm: 2, lastLsn: 200 })),
    ).toMatchObject({ refusal: 'log-behind' });
  });

  it('rule (b): a candidate revoked from the eligible set is refused by voters who heard', () => {
    const heard = { ...voter, heartbeat: { from: 'n1', eligible: ['n2'] } };
    expect(decideVote(heard, request({ candidate: 'n3' }))).toMatchObject({
      refusal: 'not-eligible',
    });
    expect(decideVote(heard, request({ candidate: 'n1', lastLsn: 90 }))).toMatchObject({
      granted: true,
    });
    const listed = { ...voter, heartbeat: { from: 'n1', eligible: ['n2', 'n3'] } };
    expect(decideVote(listed, request({ candidate: 'n3' }))).toMatchObject({ granted: true });
    // After a restart the eligible set is gone (volatile): only the log decides.
    expect(decideVote(voter, request({ candidate: 'n3' }))).toMatchObject({ granted: true });
  });

  it('pre-vote is refused while a primary is alive; it never needs the vote slot', () => {
    const alive = { ...voter, primaryAlive: true };
    expect(decideVote(alive, request({ preVote: true }))).toMatchObject({
      refusal: 'primary-alive',
    });
    const voted = { ...voter, term: 4, votedFor: 'n1' };
    expect(decideVote(voted, request({ term: 4, preVote: true }))).toMatchObject({
      granted: true,
    });
  });

  it('a voter that persists its votes never grants two candidates in one term (seeded)', () => {
    const random = new Random(51);
    for (let round = 0; round < 200; round++) {
      const state: VoterView = { ...voter, term: 1, votedFor: null };
      const granted = new Map<number, string>();
      for (let step = 0; step < 50; step++) {
        const ask = request({
          term: random.range(1, 4),
          candidate: random.pick(['n1', 'n3', 'n4']),
          lastTerm: random.range(2, 4),
          lastLsn: random.range(90, 110),
          preVote: random.bool(0.3),
        });
        const decision = decideVote(state, ask);
        if (!decision.granted || ask.preVote) continue;
        // What the hard state does before the vote is answered.
        if (ask.term > state.term) state.votedFor = null;
        state.term = ask.term;
        state.votedFor = ask.candidate;
        const earlier = granted.get(ask.term);
        expect(earlier === undefined || earlier === ask.candidate).toBe(true);
        granted.set(ask.term, ask.candidate);
      }
    }
  });
});

describe('election rules: who campaigns, and when', () => {
  it('after a full-shard outage only the node its log names primary may campaign', () => {
    // Scenario "campaigning without eligibility": every replica is ineligible after restarting.
    expect(mayCampaign({ nodeId: 'n2', eligible: false, lastTermPrimary: 'n1' }).allowed).toBe(
      false,
    );
    expect(mayCampaign({ nodeId: 'n1', eligible: false, lastTermPrimary: 'n1' }).allowed).toBe(
      true,
    );
    expect(mayCampaign({ nodeId: 'n2', eligible: true, lastTermPrimary: 'n1' }).allowed).toBe(true);
  });

  it('ranks by last term and LSN, then node id; the best campaigns first', () => {
    const candidates = [
      { nodeId: 'n3', lastTerm: 3, lastLsn: 100 },
      { nodeId: 'n2', lastTerm: 3, lastLsn: 100 },
      { nodeId: 'n4', lastTerm: 3, lastLsn: 120 },
      { nodeId: 'n5', lastTerm: 2, lastLsn: 500 },
    ];
    const ranks = candidates.map((self) => [self.nodeId, candidateRank(self, candidates)]);
    expect(Object.fromEntries(ranks)).toEqual({ n4: 0, n2: 1, n3: 2, n5: 3 });
    const timing = { baseMs: 300, stepMs: 150, jitterMs: 50 };
    const random = new Random(52);
    for (let round = 0; round < 100; round++) {
      const first = electionDelayMs(0, timing, random.next());
      const second = electionDelayMs(1, timing, random.next());
      expect(first).toBeLessThan(second);
      expect(first).toBeGreaterThanOrEqual(300);
    }
  });
});
