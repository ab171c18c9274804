import { describe, expect, it } from 'vitest';
import { AssertionError } from '../../src/core/assert.js';
import { crc32 } from '../../src/core/checksum.js';
import { protocolVersion } from '../../src/core/consensus/messages.js';
import type { PeerMessage } from '../../src/core/consensus/messages.js';
import {
  WireReader,
  decodeWireMessage,
  encodeWireMessage,
  wireTypeCode,
} from '../../src/core/consensus/wire.js';
import type { WireDecode, WireMessage, WireMessageType } from '../../src/core/consensus/wire.js';
import {
  lsnMax,
  peerBulkBytesMax,
  peerFrameBodyBytesMax,
  peerFrameHeaderBytes,
  peerIdBytesMax,
} from '../../src/core/limits.js';
import { Random } from '../../src/sim/random.js';

function bytesOf(length: number, seed: number): Uint8Array {
  const random = new Random(seed);
  const bytes = new Uint8Array(length);
  for (let index = 0; index < length; index++) bytes[index] = random.int(256);
  return bytes;
}

/** One message of every type, with values that exercise each field kind's edges. */
const samples: readonly WireMessage[] = [
  { type: 'hello', protocolVersion, shardId: 's1', from: 'n1', term: 3, lastLsn: 9, lastTerm: 2 },
  {
    type: 'append',
    term: 2 ** 40,
    from: 'n1',
    prevLsn: lsnMax,
    prevTerm: 0,
    prevChecksum: 0xffffffff,
    lastLsn: 12,
    commitLsn: 11,
    frames: bytesOf(100, 1),
  },
  {
    type: 'append',
    term: 1,
    from: 'n1',
    prevLsn: 5,
    prevTerm: 1,
    prevChecksum: 0,
    lastLsn: 5,
    commitLsn: 5,
    frames: new Uint8Array(0),
  },
  {
    type: 'append-ack',
    term: 7,
    from: 'replica-β',
    success: true,
    matchLsn: 10,
    ackLsn: 9,
    hintLsn: 10,
    hintTerm: 7,
  },
  {
    type: 'append-ack',
    term: 7,
    from: 'n2',
    success: false,
    matchLsn: 0,
    ackLsn: 0,
    hintLsn: 3,
    hintTerm: 1,
  },
  {
    type: 'heartbeat',
    term: 4,
    from: 'n1',
    seq: 99,
    commitLsn: 50,
    lastLsn: 51,
    eligible: [
      { id: 'n2', ackedLsn: 50 },
      { id: 'n3', ackedLsn: 0 },
    ],
  },
  { type: 'heartbeat', term: 4, from: 'n1', seq: 0, commitLsn: 0, lastLsn: 0, eligible: [] },
  {
    type: 'heartbeat-ack',
    term: 4,
    from: 'n2',
    seq: 99,
    ackLsn: 50,
    lastLsn: 51,
    lastTerm: 4,
  },
  { type: 'eligibility', term: 4, from: 'n1', granted: true },
  { type: 'eligibility', term: 4, from: 'n1', granted: false },
  {
    type: 'snapshot-begin',
    term: 5,
    from: 'n1',
    snapshotId: 2,
    snapshotLsn: 1000,
    snapshotTerm: 4,
    snapshotChecksum: 0x12345678,
    streams: 4,
    keys: 100_000,
    bytes: 2 ** 35,
  },
  {
    type: 'snapshot-chunk',
    term: 5,
    from: 'n1',
    snapshotId: 2,
    stream: 3,
    seq: 17,
    done: true,
    entries: bytesOf(333, 2),
  },
  {
    type: 'snapshot-ack',
    term: 5,
    from: 'n2',
    snapshotId: 2,
    stream: 3,
    seq: 17,
    installed: false,
  },
  { type: 'auth-challenge', shardId: 's1', from: 'n1', to: 'n2', nonce: bytesOf(32, 3) },
  { type: 'auth-proof', proof: bytesOf(32, 4) },
  { type: 'auth-refused' },
  { type: 'vote-request', term: 4, from: 'n2', lastLsn: lsnMax, lastTerm: 3, preVote: true },
  { type: 'vote-response', term: 2 ** 40, from: 'n3', granted: false, preVote: false },
];

const allTypes: readonly WireMessageType[] = [
  'hello',
  'append',
  'append-ack',
  'heartbeat',
  'heartbeat-ack',
  'eligibility',
  'snapshot-begin',
  'snapshot-chunk',
  'snapshot-ack',
  'vote-request',
  'vote-response',
  'auth-challenge',
  'auth-proof',
  'auth-refused',
];

function decodeOk(frame: Uint8Array): { message: WireMessage; bytesConsumed: number } {
  const result = decodeWireMessage(frame);
  if (result.kind !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(result)}`);
  return result;
}

/** A frame with the given header fields and body, and a correct checksum. */
function frameOf(options: { code: number; body: Uint8Array; version?: number; flags?: number }) {
  const frame = new Uint8Array(peerFrameHeaderBytes + options.body.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, options.body.length, true);
  frame[4] = options.version ?? protocolVersion;
  frame[5] = options.code;
  view.setUint16(6, options.flags ?? 0, true);
  frame.set(options.body, peerFrameHeaderBytes);
  const checksum = crc32(options.body, crc32(frame.subarray(0, 8)));
  view.setUint32(8, checksum, true);
  return frame;
}

describe('wire codec: round trips', () => {
  it('has a sample of every message type', () => {
    expect(new Set(samples.map((message) => message.type))).toEqual(new Set(allTypes));
  });

  it('round-trips every sample exactly', () => {
    for (const message of samples) {
      const frame = encodeWireMessage(message);
      const { message: decoded, bytesConsumed } = decodeOk(frame);
      expect(bytesConsumed).toBe(frame.length);
      expect(decoded).toEqual(message);
    }
  });

  it('lays out the header as documented', () => {
    const frame = encodeWireMessage(samples[0]!);
    const view = new DataView(frame.buffer);
    expect(view.getUint32(0, true)).toBe(frame.length - peerFrameHeaderBytes);
    expect(frame[4]).toBe(protocolVersion);
    expect(frame[5]).toBe(wireTypeCode('hello'));
    expect(view.getUint16(6, true)).toBe(0);
    const body = frame.subarray(peerFrameHeaderBytes);
    expect(view.getUint32(8, true)).toBe(crc32(body, crc32(frame.subarray(0, 8))));
  });

  it('returns bulk bytes as views into the decoded buffer', () => {
    const frame = encodeWireMessage(samples[1]!);
    const decoded = decodeOk(frame).message;
    expect(decoded.type).toBe('append');
    if (decoded.type !== 'append') return;
    expect(decoded.frames.buffer).toBe(frame.buffer);
  });

  it('decodes one frame at the start of a longer buffer', () => {
    const first = encodeWireMessage(samples[3]!);
    const second = encodeWireMessage(samples[4]!);
    const both = new Uint8Array(first.length + second.length);
    both.set(first);
    both.set(second, first.length);
    const result = decodeOk(both);
    expect(result.bytesConsumed).toBe(first.length);
    expect(result.message).toEqual(samples[3]);
    expect(decodeOk(both.subarray(first.length)).message).toEqual(samples[4]);
  });

  it('round-trips a bulk field at its limit', () => {
    const frames = new Uint8Array(peerBulkBytesMax);
    frames[0] = 1;
    frames[frames.length - 1] = 2;
    const message: PeerMessage = { ...(samples[1] as PeerMessage & { type: 'append' }), frames };
    const decoded = decodeOk(encodeWireMessage(message)).message;
    expect(decoded.type).toBe('append');
    if (decoded.type !== 'append') return;
    // Buffer.equals: a deep toEqual of 8 MiB element by element takes over a minute.
    expect(Buffer.from(decoded.frames).equals(frames)).toBe(true);
    expect({ ...decoded, frames: null }).toEqual({ ...message, frames: null });
  });

  it('refuses to encode out-of-range fields (programmer errors)', () => {
    const append = samples[1] as PeerMessage & { type: 'append' };
    const tooBig = { ...append, frames: new Uint8Array(peerBulkBytesMax + 1) };
    expect(() => encodeWireMessage(tooBig)).toThrow(AssertionError);
    expect(() => encodeWireMessage({ ...append, from: 'x'.repeat(peerIdBytesMax + 1) })).toThrow(
      AssertionError,
    );
    expect(() => encodeWireMessage({ ...append, from: '' })).toThrow(AssertionError);
    expect(() => encodeWireMessage({ ...append, term: -1 })).toThrow(AssertionError);
    expect(() => encodeWireMessage({ ...append, term: 2 ** 53 })).toThrow(AssertionError);
    expect(() => encodeWireMessage({ ...append, prevChecksum: 2 ** 32 })).toThrow(AssertionError);
    const proof = { type: 'auth-proof' as const, proof: new Uint8Array(31) };
    expect(() => encodeWireMessage(proof)).toThrow(AssertionError);
  });
});

// ---------------------------------------------------------------------------------------------
// Seeded random messages.

const idAlphabet = ['a', 'z', '0', '-', '.', '_', 'é', 'ß', '节', '点', '🦀'];

function randomId(random: Random): string {
  let id = '';
  const length = random.range(1, 20);
  for (let index = 0; index < length; index++) id += random.pick(idAlphabet);
  return id;
}

function randomU64(random: Random): number {
  switch (random.int(4)) {
    case 0:
      return random.int(16);
    case 1:
      return lsnMax - random.int(16);
    default:
      return random.uint32() * 2 ** 21 + (random.uint32() >>> 11);
  }
}

function randomBytes(random: Random, lengthMax: number): Uint8Array {
  const bytes = new Uint8Array(random.int(lengthMax + 1));
  for (let index = 0; index < bytes.length; index++) bytes[index] = random.int(256);
  return bytes;
}

function randomMessage(random: Random, type: WireMessageType): WireMessage {
  const term = randomU64(random);
  const from = randomId(random);
  const u64 = (): number => randomU64(random);
  switch (type) {
    case 'vote-request':
      return { type, term, from, lastLsn: u64(), lastTerm: u64(), preVote: random.bool(0.5) };
    case 'vote-response':
      return { type, term, from, granted: random.bool(0.5), preVote: random.bool(0.5) };
    case 'hello':
      return {
        type,
        protocolVersion: random.uint32(),
        shardId: randomId(random),
        from,
        term,
        lastLsn: u64(),
        lastTerm: u64(),
      };
    case 'append':
      return {
        type,
        term,
        from,
        prevLsn: u64(),
        prevTerm: u64(),
        prevChecksum: random.uint32(),
        lastLsn: u64(),
        commitLsn: u64(),
        frames: randomBytes(random, 2048),
      };
    case 'append-ack':
      return {
        type,
        term,
        from,
        success: random.bool(0.5),
        matchLsn: u64(),
        ackLsn: u64(),
        hintLsn: u64(),
        hintTerm: u64(),
      };
    case 'heartbeat': {
      const eligible = Array.from({ length: random.int(6) }, () => ({
        id: randomId(random),
        ackedLsn: u64(),
      }));
      return { type, term, from, seq: u64(), commitLsn: u64(), lastLsn: u64(), eligible };
    }
    case 'heartbeat-ack':
      return { type, term, from, seq: u64(), ackLsn: u64(), lastLsn: u64(), lastTerm: u64() };
    case 'eligibility':
      return { type, term, from, granted: random.bool(0.5) };
    case 'snapshot-begin':
      return {
        type,
        term,
        from,
        snapshotId: u64(),
        snapshotLsn: u64(),
        snapshotTerm: u64(),
        snapshotChecksum: random.uint32(),
        streams: random.uint32(),
        keys: u64(),
        bytes: u64(),
      };
    case 'snapshot-chunk':
      return {
        type,
        term,
        from,
        snapshotId: u64(),
        stream: random.uint32(),
        seq: u64(),
        done: random.bool(0.5),
        entries: randomBytes(random, 2048),
      };
    case 'snapshot-ack':
      return {
        type,
        term,
        from,
        snapshotId: u64(),
        stream: random.uint32(),
        seq: u64(),
        installed: random.bool(0.5),
      };
    case 'auth-challenge':
      return {
        type,
        shardId: randomId(random),
        from,
        to: randomId(random),
        nonce: bytesOf(32, random.uint32()),
      };
    case 'auth-proof':
      return { type, proof: bytesOf(32, random.uint32()) };
    case 'auth-refused':
      return { type };
  }
}

describe('wire codec: seeded random round trips', () => {
  const seed = Number(process.env['SEED'] ?? 20240611);

  it(`round-trips 3000 random messages (SEED=${seed})`, () => {
    const random = new Random(seed);
    for (let round = 0; round < 3000; round++) {
      const message = randomMessage(random, random.pick(allTypes));
      const frame = encodeWireMessage(message);
      const result = decodeOk(frame);
      expect(result.bytesConsumed, `SEED=${seed} round ${round}`).toBe(frame.length);
      expect(result.message, `SEED=${seed} round ${round}`).toEqual(message);
    }
  });

  it(`reassembles a stream split at random points (SEED=${seed})`, () => {
    const random = new Random(seed + 1);
    const messages = Array.from({ length: 200 }, () =>
      randomMessage(random, random.pick(allTypes)),
    );
    const frames = messages.map((message) => encodeWireMessage(message));
    const stream = new Uint8Array(frames.reduce((sum, frame) => sum + frame.length, 0));
    let offset = 0;
    for (const frame of frames) {
      stream.set(frame, offset);
      offset += frame.length;
    }
    const reader = new WireReader();
    const decoded: WireMessage[] = [];
    for (let at = 0; at < stream.length;) {
      const length = random.range(1, random.bool(0.2) ? 5000 : 40);
      // A copy, as a socket hands out fresh buffers.
      reader.push(stream.slice(at, at + length));
      at += length;
      for (let result = reader.next(); result.kind !== 'more'; result = reader.next()) {
        if (result.kind === 'bad') throw new Error(`SEED=${seed}: ${result.reason}`);
        decoded.push(result.message);
      }
    }
    expect(decoded).toEqual(messages);
    expect(reader.bufferedBytes).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Damage.

/** Decodes a damaged frame; a `more` is completed with zero bytes, as more stream would come. */
function decodeDamaged(frame: Uint8Array): WireDecode {
  const first = decodeWireMessage(frame);
  if (first.kind !== 'more') return first;
  expect(first.bytesNeeded).toBeGreaterThan(frame.length);
  const padded = new Uint8Array(first.bytesNeeded);
  padded.set(frame);
  return decodeWireMessage(padded);
}

describe('wire codec: damage', () => {
  it('rejects every single-bit flip of every sample frame', () => {
    for (const message of samples) {
      const frame = encodeWireMessage(message);
      for (let bit = 0; bit < frame.length * 8; bit++) {
        const damaged = frame.slice();
        damaged[bit >> 3]! ^= 1 << (bit & 7);
        const result = decodeDamaged(damaged);
        expect(result.kind, `${message.type} bit ${bit}`).toBe('bad');
      }
    }
  });

  it('reads every truncation as "need more bytes"', () => {
    for (const message of samples) {
      const frame = encodeWireMessage(message);
      for (let length = 0; length < frame.length; length++) {
        const result = decodeWireMessage(frame.subarray(0, length));
        expect(result.kind).toBe('more');
        if (result.kind !== 'more') continue;
        expect(result.bytesNeeded).toBeGreaterThan(length);
        expect(result.bytesNeeded).toBeLessThanOrEqual(frame.length);
      }
    }
  });

  it('refuses an oversized length from the header alone, before the body arrives', () => {
    for (const bodyBytes of [peerFrameBodyBytesMax + 1, 2 ** 31, 2 ** 32 - 1]) {
      const header = frameOf({ code: wireTypeCode('append'), body: new Uint8Array(0) });
      new DataView(header.buffer).setUint32(0, bodyBytes, true);
      const result = decodeWireMessage(header);
      expect(result).toMatchObject({ kind: 'bad', fault: 'oversized' });
      const reader = new WireReader();
      reader.push(header);
      expect(reader.next()).toMatchObject({ kind: 'bad', fault: 'oversized' });
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  it('accepts a length at the limit as a frame still to come', () => {
    const header = frameOf({ code: wireTypeCode('append'), body: new Uint8Array(0) });
    new DataView(header.buffer).setUint32(0, peerFrameBodyBytesMax, true);
    const result = decodeWireMessage(header);
    expect(result).toEqual({
      kind: 'more',
      bytesNeeded: peerFrameHeaderBytes + peerFrameBodyBytesMax,
    });
  });

  it('classifies header faults from the header alone', () => {
    const body = new Uint8Array(0);
    const refused = wireTypeCode('auth-refused');
    expect(decodeWireMessage(frameOf({ code: refused, body }))).toMatchObject({ kind: 'ok' });
    expect(decodeWireMessage(frameOf({ code: refused, body, version: 2 }))).toMatchObject({
      kind: 'bad',
      fault: 'version',
    });
    for (const code of [0, 12, 63, 67, 255]) {
      expect(decodeWireMessage(frameOf({ code, body }))).toMatchObject({ fault: 'type' });
    }
    expect(decodeWireMessage(frameOf({ code: refused, body, flags: 1 }))).toMatchObject({
      fault: 'flags',
    });
  });

  it('refuses a bad checksum', () => {
    const frame = encodeWireMessage(samples[5]!);
    frame[8]! ^= 0xff;
    expect(decodeWireMessage(frame)).toMatchObject({ kind: 'bad', fault: 'checksum' });
  });

  it('refuses malformed bodies that carry a correct checksum', () => {
    const eligibility = wireTypeCode('eligibility');
    const valid = encodeWireMessage(samples[8]!).subarray(peerFrameHeaderBytes);
    const rest = valid.slice(8);
    const cases: [string, number, Uint8Array][] = [
      ['trailing byte', eligibility, Uint8Array.from([...valid, 0])],
      ['short body', eligibility, valid.subarray(0, valid.length - 1)],
      ['bool of 2', eligibility, Uint8Array.from([...valid.subarray(0, -1), 2])],
      ['u64 above 2^53', eligibility, Uint8Array.from([0, 0, 0, 0, 0, 0, 0x20, 0, ...rest])],
      ['empty id', eligibility, Uint8Array.from([...valid.subarray(0, 8), 0, 0, 1])],
      ['invalid UTF-8', eligibility, Uint8Array.from([...valid.subarray(0, 8), 1, 0, 0xff, 1])],
      ['id over limit', eligibility, Uint8Array.from([...valid.subarray(0, 8), 0, 1, 1])],
      ['short nonce', wireTypeCode('auth-proof'), new Uint8Array(31)],
      ['eligible count', wireTypeCode('heartbeat'), heartbeatWithCount(0xffff)],
      ['eligible short', wireTypeCode('heartbeat'), heartbeatWithCount(3)],
    ];
    for (const [label, code, body] of cases) {
      const result = decodeWireMessage(frameOf({ code, body }));
      expect(result, label).toMatchObject({ kind: 'bad', fault: 'malformed' });
    }
  });

  it('keeps refusing a stream after a bad frame', () => {
    const reader = new WireReader();
    const good = encodeWireMessage(samples[0]!);
    const bad = encodeWireMessage(samples[0]!);
    bad[peerFrameHeaderBytes]! ^= 1;
    reader.push(bad);
    reader.push(good);
    expect(reader.next()).toMatchObject({ kind: 'bad', fault: 'checksum' });
    expect(reader.next()).toMatchObject({ kind: 'bad', fault: 'checksum' });
  });
});

/** A heartbeat body from sample 5 with its eligible count replaced by `count`. */
function heartbeatWithCount(count: number): Uint8Array {
  const body = encodeWireMessage(samples[5]!).slice(peerFrameHeaderBytes);
  // term (8) + from (2 + 2) + seq, commitLsn, lastLsn (24): the count follows.
  new DataView(body.buffer).setUint16(8 + 4 + 24, count, true);
  return body;
}
