import { describe, expect, it } from 'vitest';
import type { LogPosition } from '../../src/core/consensus/election.js';
import { Elector, type ElectorAction } from '../../src/core/consensus/elector.js';
import type { VoteRequest, VoteResponse } from '../../src/core/consensus/messages.js';
import { Random } from '../../src/sim/random.js';

/**
 * Electors of a shard over a seeded, lossy, partitionable message queue, with hard state that
 * becomes durable some milliseconds after it is asked for (a crash loses what is not durable
 * yet). Replication is abstracted: a primary "heartbeats" every 20 ms (a follower that hears it
 * becomes eligible unless the test excludes it) and followers "ack" it.
 */
type Envelope =
  | { kind: 'vote'; from: string; to: string; message: VoteRequest | VoteResponse }
  | { kind: 'heartbeat'; from: string; to: string; term: number; eligible: string[] }
  | { kind: 'ack'; from: string; to: string; term: number };

interface SimNode {
  id: string;
  elector: Elector | null;
  durable: { term: number; votedFor: string | null };
  persists: { seq: number; term: number; votedFor: string | null; at: number }[];
  log: LogPosition;
  lastTermPrimary: string | null;
  nextHeartbeatAt: number;
}

class ElectionSim {
  readonly random: Random;
  readonly nodes = new Map<string, SimNode>();
  readonly queue: { at: number; envelope: Envelope }[] = [];
  readonly electedIn = new Map<number, string>();
  readonly cut = new Set<string>();
  /** Followers a primary leaves out of its eligible set (revoked). */
  readonly revoked = new Set<string>();
  now = 0;
  drop = 0;
  violations: string[] = [];

  constructor(seed: number, logs: Record<string, LogPosition>, lastTermPrimary: string) {
    this.random = new Random(seed);
    for (const [id, log] of Object.entries(logs)) {
      this.nodes.set(id, {
        id,
        elector: null,
        durable: { term: log.lastTerm, votedFor: null },
        persists: [],
        log,
        lastTermPrimary,
        nextHeartbeatAt: 0,
      });
    }
    for (const id of this.nodes.keys()) this.start(id);
  }

  get members(): string[] {
    return [...this.nodes.keys()];
  }

  start(id: string): void {
    const node = this.nodes.get(id)!;
    node.persists = [];
    node.elector = new Elector(
      {
        nodeId: id,
        members: this.members,
        timing: { baseMs: 150, stepMs: 100, jitterMs: 40 },
        electionTimeoutMs: 120,
        campaignTimeoutMs: 200,
      },
      {
        ...node.durable,
        log: node.log,
        lastTermPrimary: node.lastTermPrimary,
        now: this.now,
        random: () => this.random.next(),
      },
    );
  }

  crash(id: string): void {
    const node = this.nodes.get(id)!;
    node.elector = null;
    node.persists = [];
  }

  linked(from: string, to: string): boolean {
    return !this.cut.has(from) && !this.cut.has(to);
  }

  post(envelope: Envelope): void {
    if (!this.linked(envelope.from, envelope.to) || this.random.bool(this.drop)) return;
    this.queue.push({ at: this.now + this.random.range(1, 15), envelope });
  }

  perform(node: SimNode, actions: ElectorAction[]): void {
    for (const action of actions) {
      if (action.kind === 'send') {
        this.post({ kind: 'vote', from: node.id, to: action.to, message: action.message });
      } else if (action.kind === 'persist') {
        node.persists.push({ ...action, at: this.now + this.random.range(0, 5) });
      } else if (action.kind === 'elected') {
        const earlier = this.electedIn.get(action.term);
        if (earlier !== undefined && earlier !== node.id) {
          this.violations.push(`term ${action.term}: ${earlier} and ${node.id} both elected`);
        }
        if (node.durable.term !== action.term || node.durable.votedFor !== node.id) {
          this.violations.push(`${node.id} elected in ${action.term} without its vote durable`);
        }
        this.electedIn.set(action.term, node.id);
        node.nextHeartbeatAt = this.now;
      }
    }
  }

  deliver(envelope: Envelope): void {
    const node = this.nodes.get(envelope.to)!;
    const elector = node.elector;
    if (elector === null) return;
    if (envelope.kind === 'vote') {
      elector.step(envelope.from, envelope.message, this.now);
    } else if (envelope.kind === 'heartbeat') {
      elector.heard(
        envelope.from,
        envelope.term,
        this.now,
        envelope.eligible.map((id) => ({ id, ackedLsn: this.nodes.get(id)!.log.lastLsn })),
      );
      if (elector.primary === envelope.from) {
        elector.setEligible(envelope.eligible.includes(node.id));
        this.post({ kind: 'ack', from: node.id, to: envelope.from, term: envelope.term });
      }
    } else if (elector.phase === 'primary' && envelope.term === elector.term) {
      elector.acked(envelope.from, this.now);
    }
    this.perform(node, elector.take());
  }

  run(ms: number): void {
    const end = this.now + ms;
    for (; this.now < end; this.now++) {
      this.queue.sort((left, right) => left.at - right.at);
      while ((this.queue[0]?.at ?? Infinity) <= this.now)
        this.deliver(this.queue.shift()!.envelope);
      for (const node of this.nodes.values()) this.stepNode(node);
    }
  }

  stepNode(node: SimNode): void {
    const elector = node.elector;
    if (elector === null) return;
    while ((node.persists[0]?.at ?? Infinity) <= this.now) {
      const persist = node.persists.shift()!;
      node.durable = { term: persist.term, votedFor: persist.votedFor };
      elector.persisted(persist.seq);
    }
    if (this.now % 5 === 0) elector.tick(this.now);
    if (elector.phase === 'primary' && this.now >= node.nextHeartbeatAt) {
      node.nextHeartbeatAt = this.now + 20;
      const eligible = this.members.filter((id) => id !== node.id && !this.revoked.has(id));
      for (const to of this.members) {
        if (to === node.id) continue;
        this.post({ kind: 'heartbeat', from: node.id, to, term: elector.term, eligible });
      }
    }
    this.perform(node, elector.take());
  }

  primaries(): string[] {
    return [...this.nodes.values()]
      .filter((node) => node.elector?.phase === 'primary')
      .map((node) => node.id);
  }
}

const logs = (lsns: Record<string, number>) =>
  Object.fromEntries(Object.entries(lsns).map(([id, lastLsn]) => [id, { lastTerm: 3, lastLsn }]));

describe('elector: deterministic elections on a simulated network', () => {
  it('after a full-shard outage only the last primary may campaign, and it resumes', () => {
    // Replicas hold more of term 3 than the old primary (its unsynced tail was lost): rule (a).
    const sim = new ElectionSim(1, logs({ n1: 90, n2: 100, n3: 100 }), 'n1');
    sim.run(2_000);
    expect(sim.primaries()).toEqual(['n1']);
    expect(sim.electedIn.get(4)).toBe('n1');
    expect(sim.violations).toEqual([]);
  });

  it('with the old primary gone for good after an outage, nobody takes over', () => {
    const sim = new ElectionSim(2, logs({ n1: 90, n2: 100, n3: 100 }), 'n1');
    sim.crash('n1');
    sim.run(3_000);
    expect(sim.primaries()).toEqual([]);
    expect(sim.electedIn.size).toBe(0);
  });

  it('when the primary dies, the most up-to-date eligible replica wins', () => {
    for (let seed = 0; seed < 10; seed++) {
      const sim = new ElectionSim(10 + seed, logs({ n1: 100, n2: 97, n3: 100 }), 'n1');
      sim.run(1_000);
      expect(sim.primaries()).toEqual(['n1']);
      sim.crash('n1');
      sim.run(2_000);
      // n3's log is ahead of n2's: it ranks first and normally wins.
      expect(sim.primaries(), `seed ${10 + seed}`).toEqual(['n3']);
      expect(sim.violations).toEqual([]);
    }
  });

  it('rule (b): a replica revoked while cut off cannot win the votes of those who heard', () => {
    // n3 holds a record n2 lacks and ranks first, but n2 heard the primary revoke it.
    const sim = new ElectionSim(3, logs({ n1: 100, n2: 99, n3: 100 }), 'n1');
    sim.run(1_000);
    sim.cut.add('n3');
    sim.revoked.add('n3');
    sim.run(500);
    sim.cut.delete('n3');
    sim.crash('n1');
    sim.run(3_000);
    // Nobody may win: n2 refuses n3 (rule (b)), n3 refuses n2 (its log is behind).
    expect(sim.primaries()).toEqual([]);
    expect([...sim.electedIn.values()]).not.toContain('n3');
    // The shard waits for the old primary; back, it resumes.
    sim.start('n1');
    sim.run(2_000);
    expect(sim.primaries()).toEqual(['n1']);
    expect(sim.violations).toEqual([]);
  });

  it('a primary that cannot reach a majority steps down (check-quorum)', () => {
    const sim = new ElectionSim(4, logs({ n1: 100, n2: 100, n3: 100 }), 'n1');
    sim.run(1_000);
    sim.cut.add('n1');
    sim.run(1_500);
    const node = sim.nodes.get('n1')!;
    expect(node.elector?.phase).not.toBe('primary');
    expect(sim.primaries().length).toBe(1);
    sim.cut.delete('n1');
    sim.run(1_000);
    // Back, it follows the new primary instead of disrupting it (pre-vote).
    expect(sim.primaries().length).toBe(1);
    expect(sim.primaries()).not.toContain('n1');
  });

  it('never elects two primaries in one term under crashes, cuts and loss (200 seeds)', () => {
    let elections = 0;
    for (let seed = 0; seed < 200; seed++) {
      const lsns = { n1: 100, n2: 98 + (seed % 5), n3: 96 + (seed % 7), n4: 100, n5: 90 };
      const sim = new ElectionSim(1_000 + seed, logs(lsns), 'n1');
      sim.drop = [0, 0.05, 0.2][seed % 3]!;
      const random = new Random(seed);
      for (let round = 0; round < 20; round++) {
        const id = random.pick(sim.members);
        const roll = random.next();
        if (roll < 0.25) sim.crash(id);
        else if (roll < 0.5 && sim.nodes.get(id)!.elector === null) sim.start(id);
        else if (roll < 0.7) sim.cut.add(id);
        else sim.cut.clear();
        sim.run(random.range(50, 400));
      }
      expect(sim.violations, `seed ${1_000 + seed}`).toEqual([]);
      elections += sim.electedIn.size;
    }
    // The faults made elections happen (not one quiet primary per seed).
    expect(elections).toBeGreaterThan(300);
  });
});
