import { describe, expect, it } from 'vitest';
import { InvalidError } from '../../src/core/errors.js';
import {
  decodeAbort,
  decodeCheckpoint,
  decodeCommit,
  decodeIntent,
  decodeTerm,
  describePayload,
  encodeAbort,
  encodeCheckpoint,
  encodeCommit,
  encodeIntent,
  encodeTerm,
} from '../../src/core/format/record.js';
import { RecordType } from '../../src/core/format/frame.js';

const text = new TextEncoder();

describe('record payload codecs', () => {
  it('round-trips an intent with puts, deletes and a request id', () => {
    const intent = {
      requestId: 'req-1',
      effects: [
        { op: 'put' as const, key: text.encode('k1'), value: text.encode('v1') },
        { op: 'delete' as const, key: text.encode('k2') },
        { op: 'put' as const, key: text.encode(''), value: new Uint8Array([0, 255]) },
      ],
    };
    const decoded = decodeIntent(encodeIntent(intent));
    expect(decoded.requestId).toBe('req-1');
    expect(decoded.effects).toHaveLength(3);
    expect(describePayload(RecordType.Intent, encodeIntent(intent))).toEqual({
      requestId: 'req-1',
      ops: [
        { op: 'put', key: 'k1', value: 'v1' },
        { op: 'delete', key: 'k2' },
        { op: 'put', key: '', value: '0x00ff' },
      ],
    });
  });

  it('round-trips commit, abort, term and checkpoint', () => {
    expect(
      decodeCommit(encodeCommit({ commitLsn: 9, intentLsn: 8, intentChecksum: 0xfeedface })),
    ).toEqual({
      commitLsn: 9,
      intentLsn: 8,
      intentChecksum: 0xfeedface,
    });
    expect(decodeAbort(encodeAbort({ lsnFirst: 3, lsnLast: 5 }))).toEqual({
      lsnFirst: 3,
      lsnLast: 5,
    });
    expect(decodeTerm(encodeTerm({ term: 4, primaryId: 'n1' }))).toEqual({
      term: 4,
      primaryId: 'n1',
    });
    expect(decodeCheckpoint(encodeCheckpoint({ lsn: 2 ** 50 }))).toEqual({ lsn: 2 ** 50 });
  });

  it('rejects truncated and padded payloads with INVALID, and dump shows them', () => {
    const bytes = encodeIntent({
      requestId: null,
      effects: [{ op: 'delete', key: text.encode('k') }],
    });
    expect(() => decodeIntent(bytes.subarray(0, bytes.length - 1))).toThrow(InvalidError);
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes);
    expect(() => decodeIntent(padded)).toThrow(/extra bytes/);
    expect(describePayload(RecordType.Intent, padded)).toHaveProperty('error');
    expect(() => decodeIntent(new Uint8Array([1, 0, 0, 0, 255, 255, 255, 255]))).toThrow(
      /too large/,
    );
  });
});
