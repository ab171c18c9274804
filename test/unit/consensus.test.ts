import { describe, expect, it } from 'vitest';
import { Follower } from '../../src/core/consensus/follower.js';
import { peekFrames, TermIndex } from '../../src/core/consensus/frames.js';
import type { PeerMessage } from '../../src/core/consensus/messages.js';
import { Primary, type PrimaryAction } from '../../src/core/consensus/primary.js';
import {
  durabilityPolicyDefault,
  majorityLsn,
  policyLsn,
  policyUnmeetable,
  type DurabilityPolicy,
} from '../../src/core/consensus/quorum.js';
import { encodeFrame, RecordType } from '../../src/core/format/frame.js';
import { Random } from '../../src/sim/random.js';

const quorum: DurabilityPolicy = { ...durabilityPolicyDefault };
const all: DurabilityPolicy = { ...durabilityPolicyDefault, acks: 'all' };

describe('quorum arithmetic', () => {
  const replicas = (acks: [number, boolean][]) =>
    acks.map(([ackLsn, eligible], index) => ({ id: `r${index}`, ackLsn, eligible }));
  it.each([
    // voters, primary durable, replica acks, policy, expected
    [
      3,
      10,
      [
        [7, false],
        [3, false],
      ],
      quorum,
      7,
    ],
    [
      3,
      5,
      [
        [7, false],
        [3, false],
      ],
      quorum,
      5,
    ],
    [
      3,
      10,
      [
        [0, false],
        [0, false],
      ],
      quorum,
      0,
    ],
    [
      5,
      10,
      [
        [9, false],
        [8, false],
        [2, false],
        [1, false],
      ],
      quorum,
      8,
    ],
    [
      3,
      10,
      [
        [9, true],
        [4, true],
      ],
      all,
      4,
    ],
    [
      3,
      10,
      [
        [9, true],
        [4, false],
      ],
      all,
      9,
    ],
    [
      3,
      10,
      [
        [9, false],
        [4, false],
      ],
      { ...quorum, minReplicas: 2 },
      4,
    ],
    [1, 10, [], quorum, 10],
  ] as [number, number, [number, boolean][], DurabilityPolicy, number][])(
    'voters %i primary %i acks %j -> %j',
    (voters, primaryDurableLsn, acks, policy, expected) => {
      const input = { voters, primaryDurableLsn, replicas: replicas(acks) };
      expect(policyLsn(input, policy)).toBe(expected);
      expect(policyLsn(input, policy)).toBeLessThanOrEqual(majorityLsn(input));
    },
  );
  it('says why a policy cannot be met before logging', () => {
    expect(policyUnmeetable(3, 0, quorum)).toMatch(/majority needs 1/);
    expect(policyUnmeetable(3, 1, quorum)).toBeNull();
    expect(policyUnmeetable(3, 1, { ...quorum, minReplicas: 2 })).toMatch(/minReplicas is 2/);
  });
});

describe('TermIndex', () => {
  it('answers terms and term starts, and forgets truncated terms', () => {
    const terms = new TermIndex({ lsn: 0, term: 0 });
    for (let lsn = 1; lsn <= 3; lsn++) terms.note(lsn, 1);
    for (let lsn = 4; lsn <= 6; lsn++) terms.note(lsn, 3);
    expect([0, 1, 3, 4, 6].map((lsn) => terms.termAt(lsn))).toEqual([0, 1, 1, 3, 3]);
    expect(terms.termStart(5)).toBe(4);
    terms.truncateAfter(3);
    expect(terms.termAt(5)).toBe(1);
  });
});

/** One node's log in memory: frames with their chain, a durable watermark. */
class MemLog {
  frames: { lsn: number; term: number; checksum: number; bytes: Uint8Array }[] = [];
  durable = 0;
  get lastLsn() {
    return this.frames.length;
  }
  get lastChecksum() {
    return this.frames.at(-1)?.checksum ?? 0;
  }
  create(term: number, type: number): { bytes: Uint8Array; offsets: number[]; checksum: number } {
    const lsn = this.lastLsn + 1;
    const payload = new TextEncoder().encode(`record ${lsn}`);
    const fields = {
      type: type as RecordType,
      term,
      lsn,
      prevChecksum: this.lastChecksum,
      payload,
    };
    const { bytes, checksum } = encodeFrame(fields);
    this.frames.push({ lsn, term, checksum, bytes });
    return { bytes, offsets: [0], checksum };
  }
  appendRaw(frames: Uint8Array): void {
    const peeks = peekFrames(frames);
    if (typeof peeks === 'string') throw new Error(peeks);
    for (const peek of peeks) {
      expect(peek.lsn).toBe(this.lastLsn + 1);
      expect(peek.prevChecksum).toBe(this.lastChecksum);
      const bytes = frames.slice(peek.offset, peek.offset + peek.size);
      this.frames.push({ lsn: peek.lsn, term: peek.term, checksum: peek.checksum, bytes });
    }
  }
  truncateAfter(lsn: number): void {
    this.frames.length = lsn;
    this.durable = Math.min(this.durable, lsn);
  }
}

interface Envelope {
  at: number;
  from: string;
  to: string;
  message: PeerMessage;
}

function runCluster(seed: number) {
  const random = new Random(seed);
  const ids = ['p', 'a', 'b'];
  const logs = new Map(ids.map((id) => [id, new MemLog()]));
  const primaryLog = logs.get('p')!;
  primaryLog.create(1, RecordType.Term);
  const terms = new TermIndex({ lsn: 0, term: 0 });
  terms.note(1, 1);
  const primary = new Primary(
    {
      nodeId: 'p',
      replicas: ['a', 'b'],
      policy: random.bool(0.5) ? quorum : all,
      heartbeatIntervalMs: 20,
      appendBytesMax: 256,
      inflightBytesMax: 1024,
      retransmitMs: 60,
      windowBytesMax: random.bool(0.5) ? 512 : 1 << 20,
      eligibilityLagRecords: 2,
      eligibilityPauseMs: 30,
    },
    {
      term: 1,
      termStartLsn: 1,
      firstLsn: 1,
      lastLsn: 1,
      lastChecksum: primaryLog.lastChecksum,
      durableLsn: 0,
      commitLsn: 0,
      terms,
    },
  );
  const makeFollower = (id: string) => {
    const log = logs.get(id)!;
    const followerTerms = new TermIndex({ lsn: 0, term: 0 });
    for (const frame of log.frames) followerTerms.note(frame.lsn, frame.term);
    return new Follower({
      nodeId: id,
      term: log.frames.at(-1)?.term ?? 0,
      lastLsn: log.lastLsn,
      lastTerm: log.frames.at(-1)?.term ?? 0,
      durableLsn: log.durable,
      commitLsn: 0,
      terms: followerTerms,
    });
  };
  const followers = new Map(['a', 'b'].map((id) => [id, makeFollower(id)]));
  const followerCommit = new Map<string, number>();
  let queue: Envelope[] = [];
  let now = 0;
  let lossy = true;
  const down = new Set<string>();
  const send = (from: string, to: string, message: PeerMessage) => {
    if (down.has(from) || down.has(to)) return;
    if (lossy && random.bool(0.1)) return;
    const copies = lossy && random.bool(0.05) ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      queue.push({ at: now + random.range(1, lossy ? 15 : 3), from, to, message });
    }
  };
  const drainPrimary = () => {
    for (const action of primary.take()) handlePrimary(action);
  };
  const handlePrimary = (action: PrimaryAction) => {
    if (action.kind === 'send') send('p', action.to, action.message);
    if (action.kind === 'commit') {
      const holders = ids.filter((id) => logs.get(id)!.durable >= action.lsn);
      expect(holders).toContain('p');
      expect(holders.length).toBeGreaterThanOrEqual(2);
    }
    if (action.kind === 'read') {
      const from = action.fromLsn;
      const slice = primaryLog.frames.slice(from - 1, from + 2);
      const frames = Buffer.concat(slice.map((frame) => frame.bytes));
      const prevChecksum = primaryLog.frames[from - 2]?.checksum ?? 0;
      primary.readDone(action.peer, from, {
        frames,
        lastLsn: from + slice.length - 1,
        prevChecksum,
      });
    }
  };
  const drainFollower = (id: string) => {
    const follower = followers.get(id)!;
    const log = logs.get(id)!;
    for (const action of follower.take()) {
      if (action.kind === 'send') send(id, action.to, action.message);
      if (action.kind === 'truncate') log.truncateAfter(action.afterLsn);
      if (action.kind === 'append') log.appendRaw(action.frames);
      if (action.kind === 'commit') {
        expect(action.lsn).toBeLessThanOrEqual(primary.commitLsn);
        followerCommit.set(id, action.lsn);
      }
      if (action.kind === 'reject') throw new Error(action.reason);
    }
  };
  for (const id of ['a', 'b']) {
    primary.peerUp(id, {
      type: 'hello',
      protocolVersion: 1,
      shardId: 's',
      from: id,
      term: 0,
      lastLsn: 0,
      lastTerm: 0,
    });
  }
  drainPrimary();
  for (let step = 0; step < 3000; step++) {
    now += 1;
    if (step === 2000) lossy = false;
    if (step < 2000 && random.bool(0.3)) {
      const frame = primaryLog.create(1, RecordType.Intent);
      primary.appended(primaryLog.lastLsn, frame.bytes, frame.offsets, frame.checksum);
      primary.noteTerm(primaryLog.lastLsn, 1);
      primary.flush();
    }
    if (random.bool(0.2)) {
      primaryLog.durable = primaryLog.lastLsn;
      primary.durable(primaryLog.durable);
    }
    for (const [id, follower] of followers) {
      if (!down.has(id) && random.bool(0.2)) {
        logs.get(id)!.durable = logs.get(id)!.lastLsn;
        follower.durable(logs.get(id)!.durable);
        drainFollower(id);
      }
    }
    if (step < 1800 && random.bool(0.003)) {
      // A replica crashes: unsynced records are lost, it comes back fresh.
      const id = random.pick(['a', 'b']);
      down.add(id);
      primary.peerDown(id);
      logs.get(id)!.truncateAfter(logs.get(id)!.durable);
      followers.set(id, makeFollower(id));
    } else if (down.size > 0 && random.bool(0.02)) {
      const id = [...down][0]!;
      down.delete(id);
      const log = logs.get(id)!;
      primary.peerUp(id, {
        type: 'hello',
        protocolVersion: 1,
        shardId: 's',
        from: id,
        term: 1,
        lastLsn: log.lastLsn,
        lastTerm: 1,
      });
    }
    const due = queue.filter((envelope) => envelope.at <= now);
    queue = queue.filter((envelope) => envelope.at > now);
    for (const envelope of due) {
      if (down.has(envelope.to) || down.has(envelope.from)) continue;
      if (envelope.to === 'p') primary.step(envelope.from, envelope.message);
      else {
        followers.get(envelope.to)!.step(envelope.from, envelope.message);
        drainFollower(envelope.to);
      }
    }
    primary.flush();
    primary.tick(now);
    drainPrimary();
  }
  return { primary, logs, followerCommit, primaryLog, down };
}

describe('replication core, primary and two replicas over a lossy network', () => {
  for (let seed = 1; seed <= 40; seed++) {
    it(`seed ${seed}: replicas converge to the primary's bytes, commits need a majority`, () => {
      const { primary, logs, followerCommit, primaryLog } = runCluster(seed);
      expect(primary.commitLsn).toBe(primaryLog.lastLsn);
      for (const id of ['a', 'b']) {
        const log = logs.get(id)!;
        expect(log.lastLsn).toBe(primaryLog.lastLsn);
        log.frames.forEach((frame, index) => {
          expect(
            Buffer.from(frame.bytes).equals(Buffer.from(primaryLog.frames[index]!.bytes)),
          ).toBe(true);
        });
        expect(followerCommit.get(id)).toBe(primary.commitLsn);
      }
      expect(primary.replicas().every((replica) => replica.eligible)).toBe(true);
    });
  }
});
