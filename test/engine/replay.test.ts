import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../../src/core/errors.js';
import { RecordType } from '../../src/core/format/frame.js';
import {
  decodeIntent,
  encodeAbort,
  encodeCommit,
  encodeIntent,
  encodeTerm,
  type Effect,
} from '../../src/core/format/record.js';
import { keyString, valueString } from '../../src/engine/keys.js';
import { decodeIntentFast, decodeIntentRecord } from '../../src/engine/replay.js';
import { SimDisk } from '../../src/sim/disk.js';
import { Random } from '../../src/sim/random.js';
import { Log } from '../../src/storage/log.js';
import { MemoryCheckpoint, simNode, text } from './helpers.js';

function randomBytes(random: Random, lengthMax: number): Uint8Array {
  return Uint8Array.from({ length: random.int(lengthMax + 1) }, () => random.int(256));
}

function randomEffects(random: Random): Effect[] {
  return Array.from({ length: random.range(1, 6) }, (): Effect => {
    const key = randomBytes(random, 20);
    return random.bool(0.3)
      ? { op: 'delete', key }
      : { op: 'put', key, value: randomBytes(random, 40) };
  });
}

function record(payload: Uint8Array) {
  return { lsn: 7, term: 1, type: RecordType.Intent, checksum: 1, prevChecksum: 0, payload };
}

describe('replay: INTENT decoding', () => {
  it('reads the same keys and values as decodeIntent, with or without a request id', () => {
    const random = new Random(41);
    for (let round = 0; round < 500; round++) {
      const requestId = random.bool(0.3) ? `req-${round}` : null;
      const payload = encodeIntent({ requestId, effects: randomEffects(random) });
      const reference = decodeIntent(payload);
      const decoded = decodeIntentRecord(record(payload));
      expect(decoded.requestId).toBe(reference.requestId);
      expect(decoded.names).toEqual(reference.effects.map((effect) => keyString(effect.key)));
      expect(decoded.values).toEqual(
        reference.effects.map((effect) => (effect.op === 'put' ? valueString(effect.value) : null)),
      );
      // The fast path takes every intent without a request id.
      expect(decodeIntentFast(payload) === null).toBe(requestId !== null);
    }
  });

  it('reports every malformed payload as corruption, exactly where decodeIntent refuses it', () => {
    const random = new Random(42);
    const payload = encodeIntent({ requestId: null, effects: randomEffects(random) });
    const damaged: Uint8Array[] = [];
    for (let cut = 0; cut < payload.length; cut++) damaged.push(payload.subarray(0, cut));
    damaged.push(Uint8Array.from([...payload, 0]));
    const badOp = Uint8Array.from(payload);
    badOp[8] = 9;
    damaged.push(badOp);
    const badVersion = Uint8Array.from(payload);
    badVersion[0] = 2;
    damaged.push(badVersion);
    for (const bytes of damaged) {
      expect(() => decodeIntent(bytes)).toThrow();
      expect(decodeIntentFast(bytes)).toBeNull();
      expect(() => decodeIntentRecord(record(bytes))).toThrow(CorruptionError);
    }
  });
});

describe('replay: one pass over the log, merged with the checkpoint', () => {
  it('restores checkpoint plus log, for keys rewritten and deleted on both sides', async () => {
    const disk = new SimDisk({ seed: 43 });
    const checkpoint = new MemoryCheckpoint();
    const random = new Random(43);
    const model = new Map<string, string>();
    const node = await simNode(disk, checkpoint, { segmentSizeBytes: 65536 });
    const step = async (round: number) => {
      const key = `k${random.int(40)}`;
      if (random.bool(0.25)) {
        await node.delete(key);
        model.delete(key);
      } else {
        await node.put(key, `v${round}`);
        model.set(key, `v${round}`);
      }
    };
    for (let round = 0; round < 300; round++) await step(round);
    // The log keeps the records below the checkpoint (one segment): they are replayed again.
    await node.checkpoint();
    for (let round = 300; round < 600; round++) await step(round);
    await node.close();
    const check = async (reopened: Awaited<ReturnType<typeof simNode>>) => {
      expect(reopened.info().keys).toBe(model.size);
      for (let index = 0; index < 40; index++) {
        const key = `k${index}`;
        expect(text(await reopened.get(key))).toBe(model.get(key) ?? null);
      }
    };
    const reopened = await simNode(disk, checkpoint, { segmentSizeBytes: 65536 });
    await check(reopened);
    // What the replay noted as changed reaches the next checkpoint, each key once.
    await reopened.checkpoint();
    const stored = new Map([...checkpoint.entries].map(([key, value]) => [key, text(value)]));
    expect(stored).toEqual(model);
    await reopened.close();
    await check(await simNode(disk, checkpoint, { segmentSizeBytes: 65536 }));
  });

  it('refuses an ABORT of an intent a COMMIT already passed, and honours one before', async () => {
    const write = async (disk: SimDisk, abortAfterCommit: boolean) => {
      const log = await Log.open(disk, { dir: '/node', segmentSizeBytes: 16384 });
      const term = 1;
      const intent = (key: string) =>
        encodeIntent({
          requestId: null,
          effects: [{ op: 'put', key: Buffer.from(key), value: Buffer.from('v') }],
        });
      await log.append([
        { type: RecordType.Term, term, payload: encodeTerm({ term, primaryId: 'n1' }) },
      ]);
      await log.append([{ type: RecordType.Intent, term, payload: intent('kept') }]);
      await log.append([{ type: RecordType.Intent, term, payload: intent('aborted') }]);
      const aborted = log.lastLsn;
      const abortedChecksum = log.lastChecksum;
      const abort = {
        type: RecordType.Abort,
        term,
        payload: encodeAbort({ lsnFirst: aborted, lsnLast: aborted }),
      };
      if (!abortAfterCommit) await log.append([abort]);
      const commit = encodeCommit({
        commitLsn: log.lastLsn,
        intentLsn: aborted,
        intentChecksum: abortedChecksum,
      });
      await log.append([{ type: RecordType.Commit, term, payload: commit }]);
      if (abortAfterCommit) await log.append([abort]);
      await log.close();
    };
    const valid = new SimDisk({ seed: 44 });
    await write(valid, false);
    const node = await simNode(valid, new MemoryCheckpoint());
    expect(text(await node.get('kept'))).toBe('v');
    expect(await node.get('aborted')).toBeNull();
    await node.close();
    const contradictory = new SimDisk({ seed: 45 });
    await write(contradictory, true);
    await expect(simNode(contradictory, new MemoryCheckpoint())).rejects.toMatchObject({
      code: 'CORRUPT',
    });
  });
});

describe('node engine: getSync and the pending overlay', () => {
  it('getSync answers like get: committed state only, a fresh copy, errors thrown', async () => {
    const disk = new SimDisk({ seed: 46 });
    const node = await simNode(disk, new MemoryCheckpoint(), { keyBytesMax: 8 });
    const write = node.put('k', 'one');
    expect(node.getSync('k')).toBeNull();
    await write;
    const copy = node.getSync(Buffer.from('k'));
    expect(text(copy)).toBe('one');
    copy?.fill(0);
    expect(text(node.getSync('k'))).toBe('one');
    expect(() => node.getSync('123456789')).toThrow(expect.objectContaining({ code: 'INVALID' }));
    await node.close();
    expect(() => node.getSync('k')).toThrow(expect.objectContaining({ code: 'CLOSED' }));
  });

  it('computes against the latest pending write of a key (batches, deletes)', async () => {
    const disk = new SimDisk({ seed: 47 });
    const node = await simNode(disk, new MemoryCheckpoint());
    await node.put('n', '5');
    const writes = [
      node.put('other', 'x'),
      node.batch([
        { op: 'put', key: 'n', value: '10' },
        { op: 'put', key: 'n', value: '20' },
      ]),
      node.incr('n'),
      node.delete('gone-soon'),
      node.put('d', 'present'),
      node.delete('d'),
      node.compareAndSet('d', null, 'again'),
    ];
    const results = await Promise.all(writes);
    expect((results[2] as unknown as { value: bigint }).value).toBe(21n);
    expect((results[6] as unknown as { ok: boolean }).ok).toBe(true);
    expect(text(await node.get('n'))).toBe('21');
    expect(text(await node.get('d'))).toBe('again');
    // Caller buffers are read at once: changing them afterwards changes nothing.
    const key = Buffer.from('mutable');
    const value = Buffer.from('before');
    const pending = node.put(key, value);
    key.fill(0x41);
    value.fill(0x41);
    await pending;
    expect(text(await node.get('mutable'))).toBe('before');
    await node.close();
  });
});
