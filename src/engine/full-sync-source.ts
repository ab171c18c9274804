import { assert } from '../core/assert.js';
import { InvalidError } from '../core/errors.js';
import { peerBulkBytesMax } from '../core/limits.js';
import type { CheckpointEntry, RequestIdRecord } from '../ports/checkpoint.js';

/**
 * What a full sync sends (DESIGN §5), and how its chunks are encoded. No node:* imports: the
 * engine layer, pure enough to run on simulated ports.
 *
 * A snapshot is committed state at one LSN, split into `streams` key-range streams (disjoint,
 * ascending, together every key once), plus one more stream, numbered `streams`, that carries
 * the request ids the primary remembers (so a retried request is still recognised on the
 * replica after it installed the snapshot).
 *
 * Chunk encodings (little-endian, like the peer wire):
 * - key-range streams: entries back to back, each `u32 keyLength | key | u32 valueLength |
 *   value`, in key order;
 * - the request-id stream: records back to back, each `u16 idLength | id (UTF-8) | u64 lsn |
 *   u8 outcome (1 committed, 2 aborted) | u32 valueLength, 0xffffffff for none | value`.
 */
export interface SnapshotSource {
  /** The LSN the state is at: every committed intent up to it, nothing after. */
  readonly lsn: number;
  /** Term of the record at `lsn`. */
  readonly term: number;
  /** Chain checksum of the record at `lsn`: the replica's log continues from it. */
  readonly checksum: number;
  /** Number of keys, and their bytes (key plus value lengths, no framing). */
  readonly keys: number;
  readonly bytes: number;
  readonly requestIds: readonly RequestIdRecord[];
  /** Stream `index` of `streams`: a cursor over its key range, from its start. */
  cursor(index: number, streams: number): SnapshotCursor;
}

/** Walks one stream's entries, encoding them one at a time into a chunk. */
export interface SnapshotCursor {
  /** Encoded size of the next entry, or null when the stream has no more. */
  peekSize(): number | null;
  /** Encodes the next entry at `offset` (there is room for `peekSize()` bytes); returns the
   * entry's key plus value bytes. */
  writeNext(target: Uint8Array, offset: number): number;
}

/** Framing bytes of one entry (its two u32 lengths). */
export const entryFramingBytes = 8;

/** Key-range `index` of `streams` over `count` sorted keys: [first, end) by position. */
export function streamRange(count: number, index: number, streams: number) {
  assert(Number.isSafeInteger(streams) && streams >= 1, 'streamRange: streams >= 1');
  assert(Number.isSafeInteger(index) && index >= 0 && index < streams, 'streamRange: index');
  return {
    first: Math.floor((count * index) / streams),
    end: Math.floor((count * (index + 1)) / streams),
  };
}

type Latin1Write = (this: Uint8Array, text: string, offset: number, length: number) => number;
const latin1Write = (Buffer.prototype as unknown as { latin1Write?: Latin1Write }).latin1Write;

/** Writes a latin1 string's bytes (one per char) at `offset`. */
function writeLatin1(target: Uint8Array, offset: number, text: string): void {
  if (latin1Write !== undefined) {
    const written = latin1Write.call(target, text, offset, text.length);
    assert(written === text.length, 'writeLatin1: the target has room');
    return;
  }
  for (let index = 0; index < text.length; index++) {
    target[offset + index] = text.charCodeAt(index);
  }
}

function writeU32(target: Uint8Array, offset: number, value: number): void {
  target[offset] = value & 0xff;
  target[offset + 1] = (value >>> 8) & 0xff;
  target[offset + 2] = (value >>> 16) & 0xff;
  target[offset + 3] = (value >>> 24) & 0xff;
}

function readU32(source: Uint8Array, offset: number): number {
  return (
    ((source[offset] as number) |
      ((source[offset + 1] as number) << 8) |
      ((source[offset + 2] as number) << 16) |
      ((source[offset + 3] as number) << 24)) >>>
    0
  );
}

/** An entry's encoded size, checked to fit one chunk on its own. */
function fitsChunk(size: number): number {
  if (size > peerBulkBytesMax) {
    throw new InvalidError(`a snapshot entry of ${size} bytes exceeds one chunk`);
  }
  return size;
}

/**
 * A snapshot over sorted keys and their values held as latin1 strings (one char per byte), the
 * way CommittedState holds them. Strings are immutable, so arrays taken at the snapshot's LSN
 * stay a consistent snapshot while the state moves on. `keys` must be ascending and unique.
 */
export function latin1SnapshotSource(init: {
  lsn: number;
  term: number;
  checksum: number;
  keys: readonly string[];
  values: readonly string[];
  requestIds: readonly RequestIdRecord[];
}): SnapshotSource {
  const { keys, values } = init;
  assert(keys.length === values.length, 'latin1SnapshotSource: one value per key');
  let bytes = 0;
  for (let index = 0; index < keys.length; index++) {
    bytes += (keys[index] as string).length + (values[index] as string).length;
  }
  return {
    lsn: init.lsn,
    term: init.term,
    checksum: init.checksum,
    keys: keys.length,
    bytes,
    requestIds: init.requestIds,
    cursor(index, streams) {
      const range = streamRange(keys.length, index, streams);
      let position = range.first;
      return {
        peekSize() {
          if (position >= range.end) return null;
          const key = keys[position] as string;
          return fitsChunk(entryFramingBytes + key.length + (values[position] as string).length);
        },
        writeNext(target, offset) {
          const key = keys[position] as string;
          const value = values[position] as string;
          position += 1;
          writeU32(target, offset, key.length);
          writeLatin1(target, offset + 4, key);
          writeU32(target, offset + 4 + key.length, value.length);
          writeLatin1(target, offset + 8 + key.length, value);
          return key.length + value.length;
        },
      };
    },
  };
}

/** A snapshot over sorted entries as bytes (tests, tools). Keys ascending and unique. */
export function entriesSnapshotSource(init: {
  lsn: number;
  term: number;
  checksum: number;
  entries: readonly CheckpointEntry[];
  requestIds: readonly RequestIdRecord[];
}): SnapshotSource {
  const { entries } = init;
  let bytes = 0;
  for (const entry of entries) bytes += entry.key.length + entry.value.length;
  return {
    lsn: init.lsn,
    term: init.term,
    checksum: init.checksum,
    keys: entries.length,
    bytes,
    requestIds: init.requestIds,
    cursor(index, streams) {
      const range = streamRange(entries.length, index, streams);
      let position = range.first;
      return {
        peekSize() {
          if (position >= range.end) return null;
          const entry = entries[position] as CheckpointEntry;
          return fitsChunk(entryFramingBytes + entry.key.length + entry.value.length);
        },
        writeNext(target, offset) {
          const entry = entries[position] as CheckpointEntry;
          position += 1;
          writeU32(target, offset, entry.key.length);
          target.set(entry.key, offset + 4);
          writeU32(target, offset + 4 + entry.key.length, entry.value.length);
          target.set(entry.value, offset + 8 + entry.key.length);
          return entry.key.length + entry.value.length;
        },
      };
    },
  };
}

/**
 * Decodes a key-range chunk into entries (views into `bytes`, no copy). Returns a reason
 * instead if the chunk is malformed (a length running past the end).
 */
export function decodeEntries(bytes: Uint8Array): CheckpointEntry[] | string {
  const entries: CheckpointEntry[] = [];
  let offset = 0;
  const end = bytes.length;
  while (offset < end) {
    if (end - offset < 4) return `truncated key length at ${offset}`;
    const keyBytes = readU32(bytes, offset);
    if (keyBytes > end - offset - 8) return `key length ${keyBytes} runs past the chunk`;
    const keyStart = offset + 4;
    const valueBytes = readU32(bytes, keyStart + keyBytes);
    const valueStart = keyStart + keyBytes + 4;
    if (valueBytes > end - valueStart) return `value length ${valueBytes} runs past the chunk`;
    entries.push({
      key: bytes.subarray(keyStart, keyStart + keyBytes),
      value: bytes.subarray(valueStart, valueStart + valueBytes),
    });
    offset = valueStart + valueBytes;
  }
  return entries;
}

const outcomeCodes = { committed: 1, aborted: 2 } as const;
const noValue = 0xffffffff;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** A cursor over request ids, encoded as the request-id stream's records. */
export function requestIdCursor(records: readonly RequestIdRecord[]): SnapshotCursor {
  let position = 0;
  let encodedId: Uint8Array | null = null;
  const idBytes = (): Uint8Array => {
    encodedId ??= textEncoder.encode((records[position] as RequestIdRecord).requestId);
    return encodedId;
  };
  return {
    peekSize() {
      if (position >= records.length) return null;
      const record = records[position] as RequestIdRecord;
      assert(idBytes().length <= 0xffff, 'request ids are short');
      return fitsChunk(2 + idBytes().length + 8 + 1 + 4 + (record.value?.length ?? 0));
    },
    writeNext(target, offset) {
      const record = records[position] as RequestIdRecord;
      const id = idBytes();
      position += 1;
      encodedId = null;
      target[offset] = id.length & 0xff;
      target[offset + 1] = id.length >>> 8;
      target.set(id, offset + 2);
      let at = offset + 2 + id.length;
      writeU32(target, at, record.lsn % 2 ** 32);
      writeU32(target, at + 4, Math.floor(record.lsn / 2 ** 32));
      target[at + 8] = outcomeCodes[record.outcome];
      writeU32(target, at + 9, record.value === null ? noValue : record.value.length);
      at += 13;
      if (record.value !== null) target.set(record.value, at);
      return 0;
    },
  };
}

/** Decodes a request-id chunk (copies: the records outlive the chunk), or a reason. */
export function decodeRequestIds(bytes: Uint8Array): RequestIdRecord[] | string {
  const records: RequestIdRecord[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 2) return `truncated request id at ${offset}`;
    const idLength = (bytes[offset] as number) | ((bytes[offset + 1] as number) << 8);
    const fixed = offset + 2 + idLength;
    if (fixed + 13 > bytes.length) return `request id record at ${offset} runs past the chunk`;
    let requestId: string;
    try {
      requestId = textDecoder.decode(bytes.subarray(offset + 2, fixed));
    } catch {
      return `request id at ${offset} is not UTF-8`;
    }
    const lsn = readU32(bytes, fixed) + readU32(bytes, fixed + 4) * 2 ** 32;
    const code = bytes[fixed + 8];
    const outcome = code === 1 ? 'committed' : code === 2 ? 'aborted' : null;
    const valueLength = readU32(bytes, fixed + 9);
    const valueStart = fixed + 13;
    const valueEnd = valueStart + (valueLength === noValue ? 0 : valueLength);
    if (outcome === null || !Number.isSafeInteger(lsn) || valueEnd > bytes.length) {
      return `request id record at ${offset} is malformed`;
    }
    const value =
      valueLength === noValue ? null : new Uint8Array(bytes.subarray(valueStart, valueEnd));
    records.push({ requestId, lsn, outcome, value });
    offset = valueEnd;
  }
  return records;
}
