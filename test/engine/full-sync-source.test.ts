import { describe, expect, it } from 'vitest';
import type { PeerMessage, SnapshotChunk } from '../../src/core/consensus/messages.js';
import { peerBulkBytesMax } from '../../src/core/limits.js';
import {
  SnapshotSender,
  resolveFullSyncOptions,
  type FullSyncOptions,
} from '../../src/engine/full-sync.js';
import {
  decodeEntries,
  decodeRequestIds,
  entriesSnapshotSource,
  latin1SnapshotSource,
  requestIdCursor,
  streamRange,
  type SnapshotCursor,
} from '../../src/engine/full-sync-source.js';
import type { RequestIdRecord } from '../../src/ports/checkpoint.js';

function drain(cursor: SnapshotCursor, chunkBytes = 1 << 20): Uint8Array {
  const buffer = new Uint8Array(chunkBytes);
  let used = 0;
  for (let size = cursor.peekSize(); size !== null; size = cursor.peekSize()) {
    cursor.writeNext(buffer, used);
    used += size;
  }
  return buffer.subarray(0, used);
}

describe('full sync sources and chunk encodings', () => {
  it('splits keys into disjoint ascending ranges that cover every key once', () => {
    for (const count of [0, 1, 3, 7, 1000, 1001]) {
      for (const streams of [1, 2, 4, 7, 64]) {
        let next = 0;
        for (let index = 0; index < streams; index++) {
          const range = streamRange(count, index, streams);
          expect(range.first).toBe(next);
          expect(range.end).toBeGreaterThanOrEqual(range.first);
          next = range.end;
        }
        expect(next).toBe(count);
      }
    }
  });

  it('round-trips latin1 and byte entries through a chunk, stream by stream', () => {
    const keys = ['', 'a', 'b\u00ff', 'c\u0000d', 'zz'];
    const values = ['x', '', '\u0080\u00ff', 'v'.repeat(300), '0'];
    const source = latin1SnapshotSource({
      lsn: 5,
      term: 1,
      checksum: 2,
      keys,
      values,
      requestIds: [],
    });
    expect([source.keys, source.bytes]).toEqual([5, 8 + 304]);
    const decoded: string[][] = [];
    for (let index = 0; index < 3; index++) {
      const entries = decodeEntries(drain(source.cursor(index, 3)));
      expect(typeof entries).not.toBe('string');
      for (const entry of entries as { key: Uint8Array; value: Uint8Array }[]) {
        decoded.push([
          Buffer.from(entry.key).toString('latin1'),
          Buffer.from(entry.value).toString('latin1'),
        ]);
      }
    }
    expect(decoded).toEqual(keys.map((key, index) => [key, values[index]]));
    const bytes = entriesSnapshotSource({
      lsn: 5,
      term: 1,
      checksum: 2,
      entries: decoded.map(([key, value]) => ({
        key: Buffer.from(key!, 'latin1'),
        value: Buffer.from(value!, 'latin1'),
      })),
      requestIds: [],
    });
    expect(drain(bytes.cursor(0, 1))).toEqual(drain(source.cursor(0, 1)));
  });

  it('reports malformed entry chunks instead of reading past them', () => {
    expect(decodeEntries(new Uint8Array(0))).toEqual([]);
    expect(decodeEntries(Uint8Array.of(1, 0, 0))).toMatch(/truncated/);
    expect(decodeEntries(Uint8Array.of(5, 0, 0, 0, 1, 0, 0, 0))).toMatch(/runs past/);
    expect(decodeEntries(Uint8Array.of(0, 0, 0, 0, 9, 0, 0, 0, 1))).toMatch(/runs past/);
  });

  it('round-trips request ids, and refuses malformed ones', () => {
    const records: RequestIdRecord[] = [
      { requestId: 'a', lsn: 2 ** 40 + 3, outcome: 'committed', value: Uint8Array.of(1, 2) },
      { requestId: '\u{1F600}', lsn: 7, outcome: 'aborted', value: null },
      { requestId: 'empty', lsn: 8, outcome: 'committed', value: new Uint8Array(0) },
    ];
    const bytes = drain(requestIdCursor(records));
    expect(decodeRequestIds(bytes)).toEqual(records);
    const broken = bytes.slice();
    broken[2 + 1 + 8] = 9;
    expect(decodeRequestIds(broken)).toMatch(/malformed/);
    expect(decodeRequestIds(bytes.subarray(0, 5))).toMatch(/runs past/);
  });

  it('refuses an entry that cannot fit one chunk', () => {
    const source = latin1SnapshotSource({
      lsn: 1,
      term: 1,
      checksum: 0,
      keys: ['k'],
      values: ['v'.repeat(peerBulkBytesMax)],
      requestIds: [],
    });
    expect(() => source.cursor(0, 1).peekSize()).toThrow(/exceeds one chunk/);
  });

  it('validates its options, naming the field', () => {
    expect(resolveFullSyncOptions().streams).toBe(4);
    expect(() => resolveFullSyncOptions({ streams: 0 })).toThrow(/fullSync.streams/);
    expect(() => resolveFullSyncOptions({ chunkBytes: peerBulkBytesMax + 1 })).toThrow(
      /fullSync.chunkBytes/,
    );
    expect(() => resolveFullSyncOptions({ windowChunks: 1.5 })).toThrow(/windowChunks/);
  });
});

describe('SnapshotSender bounds', () => {
  const keys = Array.from({ length: 4_000 }, (_unused, index) => `k${index + 100_000}`);
  const values = keys.map(() => 'v'.repeat(100));
  const source = latin1SnapshotSource({
    lsn: 9,
    term: 2,
    checksum: 3,
    keys,
    values,
    requestIds: [],
  });

  function senderWith(options: Partial<FullSyncOptions>) {
    const sent: PeerMessage[] = [];
    const sender = new SnapshotSender({
      transport: { send: (_to, message) => sent.push(message) > 0, queuedBytes: () => 0 },
      nodeId: 'p',
      peer: 'r',
      term: 2,
      snapshotId: 1,
      source,
      now: 0,
      options,
    });
    const ack = (stream: number, seq: number, installed = false) => ({
      type: 'snapshot-ack' as const,
      term: 2,
      from: 'r',
      snapshotId: 1,
      stream,
      seq,
      installed,
    });
    return { sent, sender, ack };
  }

  it('sends the Begin first and no chunk before it is acknowledged (retrying it)', () => {
    const { sent, sender, ack } = senderWith({ retransmitMs: 100 });
    expect(sent.map((message) => message.type)).toEqual(['snapshot-begin']);
    sender.tick(50);
    sender.tick(100);
    expect(sent.map((message) => message.type)).toEqual(['snapshot-begin', 'snapshot-begin']);
    sender.step(ack(0, 0), 120);
    expect(sender.state).toBe('streaming');
    expect(sent.filter((message) => message.type === 'snapshot-chunk').length).toBeGreaterThan(0);
  });

  it('keeps at most windowChunks unacknowledged per stream and encodes a bounded amount', () => {
    const { sent, sender, ack } = senderWith({
      streams: 2,
      chunkBytes: 4 * 1024,
      windowChunks: 3,
      encodeBytesPerTurn: 10 * 1024,
      retransmitMs: 1_000_000,
    });
    sender.step(ack(0, 0), 1);
    const chunks = () => sent.filter((m): m is SnapshotChunk => m.type === 'snapshot-chunk');
    // 10 KiB per turn: the chunks that fit it, plus at most the one that crosses it.
    expect(chunks().length).toBeLessThanOrEqual(4);
    for (let now = 2; now < 20; now++) sender.tick(now);
    const perStream = [0, 1, 2].map((stream) => chunks().filter((m) => m.stream === stream));
    expect(perStream[0]!.length).toBe(3);
    expect(perStream[1]!.length).toBe(3);
    // An ack frees window slots: exactly that many new chunks of the stream follow.
    sender.step(ack(0, 2), 30);
    sender.tick(31);
    expect(
      chunks()
        .filter((m) => m.stream === 0)
        .map((m) => m.seq),
    ).toEqual([1, 2, 3, 4, 5]);
  });

  it('retransmits an unacknowledged chunk after retransmitMs, backing off, then stalls', () => {
    const { sent, sender, ack } = senderWith({
      streams: 1,
      windowChunks: 1,
      retransmitMs: 100,
      stallMs: 1_000,
    });
    sender.step(ack(0, 0), 0);
    const firstChunks = () =>
      sent.filter((m) => m.type === 'snapshot-chunk' && m.stream === 0 && m.seq === 1).length;
    expect(firstChunks()).toBe(1);
    for (let now = 10; now <= 1_000; now += 10) sender.tick(now);
    // Sent at 0, again at 100, 300, 700 (doubling).
    expect(firstChunks()).toBe(4);
    expect(sender.state).toBe('streaming');
    sender.tick(1_001);
    expect(sender.state).toBe('failed');
    expect(sender.failure).toMatch(/no progress/);
    // Three times for the key stream's chunk and three for the request-id stream's.
    expect(sender.progress(1_001).retransmits).toBe(6);
  });

  it('is done on an installed ack even if the last chunk acks were lost', () => {
    const { sender, ack } = senderWith({ streams: 1 });
    sender.step(ack(0, 0), 0);
    sender.step(ack(1, 1, true), 5);
    expect(sender.state).toBe('done');
    expect(sender.progress(5)).toMatchObject({ keysDone: 4_000, etaMs: 0 });
  });
});
