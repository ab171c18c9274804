import { assert } from '../assert.js';
import { InvalidError } from '../errors.js';
import { RecordType, readU64, writeU64 } from './frame.js';

/**
 * Payload codecs for each record type (all little-endian). The log itself treats payloads as
 * opaque bytes; these codecs are shared by the engine, replication and wal-inspect.
 *
 * INTENT  u8 version=1 | u8 flags (bit 0: request id present) | u16 0 | u32 opCount
 *         [u16 requestIdBytes | requestId utf-8]
 *         opCount x ( u8 op (1 put, 2 delete) | u32 keyBytes | key
 *                     | put only: u32 valueBytes | value )
 * COMMIT  u64 commitLsn | u64 intentLsn | u32 intentChecksum | u32 0
 *         (intentLsn/intentChecksum: the last intent the commit covers, 0/0 if none)
 * ABORT   u64 lsnFirst | u64 lsnLast
 * TERM    u64 term | u16 primaryIdBytes | primaryId utf-8
 * CHECKPOINT u64 lsn
 * SEAL    empty (the frame header carries the sealed LSN; prevCrc is that record's crc)
 */
export type Effect =
  { op: 'put'; key: Uint8Array; value: Uint8Array } | { op: 'delete'; key: Uint8Array };

export interface IntentPayload {
  requestId: string | null;
  effects: Effect[];
}
export interface CommitPayload {
  commitLsn: number;
  intentLsn: number;
  intentChecksum: number;
}
export interface AbortPayload {
  lsnFirst: number;
  lsnLast: number;
}
export interface TermPayload {
  term: number;
  primaryId: string;
}
export interface CheckpointPayload {
  lsn: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const opPut = 1;
const opDelete = 2;

export function encodeIntent(intent: IntentPayload): Uint8Array {
  return encodeIntentTransient(intent).slice();
}

/** Bytes of a chunk `encodeIntentShared` carves payloads from. */
const sharedChunkBytes = 64 * 1024;
let sharedChunk = new Uint8Array(sharedChunkBytes);
let sharedChunkUsed = 0;

/**
 * Like `encodeIntent`, but the payload is carved from a chunk it shares with other payloads
 * encoded this way, as Buffer.allocUnsafe carves small Buffers from its pool: a standalone
 * small typed array costs about a microsecond to allocate, more than encoding a put. The
 * payload is the caller's (nothing writes it again), but it keeps its whole chunk alive: use
 * it for short-lived payloads (an intent waiting for its commit), and copy what must stay.
 */
export function encodeIntentShared(intent: IntentPayload): Uint8Array {
  const requestId = intent.requestId === null ? null : encoder.encode(intent.requestId);
  assert(requestId === null || requestId.length < 2 ** 16, 'request id fits u16');
  const size = intentBytes(intent.effects, requestId);
  if (size * 8 > sharedChunkBytes) {
    const own = new Uint8Array(size);
    writeIntent(own, 0, size, intent.effects, requestId);
    return own;
  }
  if (sharedChunkUsed + size > sharedChunkBytes) {
    sharedChunk = new Uint8Array(sharedChunkBytes);
    sharedChunkUsed = 0;
  }
  const payload = sharedChunk.subarray(sharedChunkUsed, sharedChunkUsed + size);
  writeIntent(sharedChunk, sharedChunkUsed, size, intent.effects, requestId);
  // Payloads start 8-aligned, as Buffer's pool does.
  sharedChunkUsed += (size + 7) & ~7;
  return payload;
}

function intentBytes(effects: readonly Effect[], requestId: Uint8Array | null): number {
  let size = 8 + (requestId === null ? 0 : 2 + requestId.length);
  for (const effect of effects) {
    size += 5 + effect.key.length + (effect.op === 'put' ? 4 + effect.value.length : 0);
  }
  return size;
}

function writeU32At(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = (value >>> 8) & 0xff;
  bytes[at + 2] = (value >>> 16) & 0xff;
  bytes[at + 3] = (value >>> 24) & 0xff;
}

/** Copies `source` to `target` at `at`: a loop for a few bytes, `set` for more. */
function copyInto(target: Uint8Array, at: number, source: Uint8Array): void {
  if (source.length > 32) {
    target.set(source, at);
    return;
  }
  for (let index = 0; index < source.length; index++) target[at + index] = source[index] as number;
}

/** Writes an INTENT payload of `size` bytes (`intentBytes`) at `start` (the layout above). */
function writeIntent(
  bytes: Uint8Array,
  start: number,
  size: number,
  effects: readonly Effect[],
  requestId: Uint8Array | null,
): void {
  bytes[start] = 1;
  bytes[start + 1] = requestId === null ? 0 : 1;
  bytes[start + 2] = 0;
  bytes[start + 3] = 0;
  writeU32At(bytes, start + 4, effects.length);
  let at = start + 8;
  if (requestId !== null) {
    bytes[at] = requestId.length & 0xff;
    bytes[at + 1] = requestId.length >>> 8;
    copyInto(bytes, at + 2, requestId);
    at += 2 + requestId.length;
  }
  for (const effect of effects) {
    bytes[at] = effect.op === 'put' ? opPut : opDelete;
    writeU32At(bytes, at + 1, effect.key.length);
    copyInto(bytes, at + 5, effect.key);
    at += 5 + effect.key.length;
    if (effect.op === 'put') {
      writeU32At(bytes, at, effect.value.length);
      copyInto(bytes, at + 4, effect.value);
      at += 4 + effect.value.length;
    }
  }
  assert(at === start + size, 'intent encoding filled exactly its size');
}

let scratch = new Uint8Array(64 * 1024);

/**
 * Like `encodeIntent`, but the result is a view into a buffer that the next call overwrites:
 * use it at once. Saves an allocation where the bytes are only read right away.
 */
export function encodeIntentTransient(intent: IntentPayload): Uint8Array {
  const requestId = intent.requestId === null ? null : encoder.encode(intent.requestId);
  assert(requestId === null || requestId.length < 2 ** 16, 'request id fits u16');
  const size = intentBytes(intent.effects, requestId);
  if (size > scratch.length) scratch = new Uint8Array(Math.max(size, scratch.length * 2));
  writeIntent(scratch, 0, size, intent.effects, requestId);
  return scratch.subarray(0, size);
}

class Reader {
  at = 0;
  readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }
  need(count: number): void {
    if (this.at + count > this.bytes.length) {
      throw new InvalidError(`${this.what} payload truncated at byte ${this.at}`);
    }
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.at++);
  }
  u16(): number {
    this.need(2);
    const value = this.view.getUint16(this.at, true);
    this.at += 2;
    return value;
  }
  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.at, true);
    this.at += 4;
    return value;
  }
  u64(): number {
    this.need(8);
    const value = readU64(this.view, this.at);
    if (value < 0) throw new InvalidError(`${this.what} u64 beyond 2^53 at byte ${this.at}`);
    this.at += 8;
    return value;
  }
  take(count: number): Uint8Array {
    this.need(count);
    const slice = this.bytes.subarray(this.at, this.at + count);
    this.at += count;
    return slice;
  }
  utf8(count: number): string {
    try {
      return decoder.decode(this.take(count));
    } catch (error: unknown) {
      throw new InvalidError(`${this.what} has invalid utf-8`, { cause: error });
    }
  }
  end(): void {
    if (this.at !== this.bytes.length) {
      throw new InvalidError(`${this.what} payload has ${this.bytes.length - this.at} extra bytes`);
    }
  }
}

export function decodeIntent(payload: Uint8Array): IntentPayload {
  const reader = new Reader(payload, 'INTENT');
  const version = reader.u8();
  if (version !== 1) throw new InvalidError(`INTENT version ${version} unknown`);
  const flags = reader.u8();
  reader.u16();
  const count = reader.u32();
  const requestId = (flags & 1) === 1 ? reader.utf8(reader.u16()) : null;
  // Each effect takes at least 5 bytes, which bounds the loop by the payload size.
  if (count * 5 > payload.length) throw new InvalidError(`INTENT op count ${count} too large`);
  const effects: Effect[] = [];
  for (let index = 0; index < count; index++) {
    const op = reader.u8();
    const key = reader.take(reader.u32());
    if (op === opPut) effects.push({ op: 'put', key, value: reader.take(reader.u32()) });
    else if (op === opDelete) effects.push({ op: 'delete', key });
    else throw new InvalidError(`INTENT op ${op} unknown`);
  }
  reader.end();
  return { requestId, effects };
}

function readU32At(bytes: Uint8Array, at: number): number {
  return (
    ((bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16)) +
    (bytes[at + 3] as number) * 0x1000000
  );
}

/**
 * Where the effects of an INTENT payload start, after checking the payload exactly as far as
 * `decodeIntent` does, except for the request id's UTF-8 (decode the id with `decodeIntent` when
 * `intentHasRequestId`); -1 if `decodeIntent` would refuse it for any other reason. Reads the
 * payload in place, without building effects (the replay of a million keys runs through here).
 */
export function intentEffectsStart(payload: Uint8Array): number {
  const length = payload.length;
  if (length < 8 || payload[0] !== 1) return -1;
  const count = intentEffectCount(payload);
  let at = 8;
  if (intentHasRequestId(payload)) {
    if (at + 2 > length) return -1;
    at += 2 + ((payload[at] as number) | ((payload[at + 1] as number) << 8));
    if (at > length) return -1;
  }
  const start = at;
  // Each effect takes at least 5 bytes, which bounds the loop by the payload size.
  if (count * 5 > length) return -1;
  for (let index = 0; index < count; index++) {
    if (at + 5 > length) return -1;
    const op = payload[at];
    at += 5 + readU32At(payload, at + 1);
    if (op === opDelete) continue;
    if (op !== opPut || at + 4 > length) return -1;
    at += 4 + readU32At(payload, at);
  }
  return at === length ? start : -1;
}

/** The effect count of an INTENT payload (at least 8 bytes long). */
export function intentEffectCount(payload: Uint8Array): number {
  assert(payload.length >= 8, 'an INTENT payload has a header');
  return readU32At(payload, 4);
}

export function intentHasRequestId(payload: Uint8Array): boolean {
  return ((payload[1] as number) & 1) === 1;
}

/**
 * Calls `visit` for each effect of an INTENT payload that `intentEffectsStart` accepted (`start`
 * is what it returned): the key is `payload[keyStart, keyEnd)`, the value of a put
 * `payload[keyEnd + 4, valueEnd)`; a delete has `valueEnd` -1.
 */
export function visitIntentEffects(
  payload: Uint8Array,
  start: number,
  visit: (keyStart: number, keyEnd: number, valueEnd: number) => void,
): void {
  const count = intentEffectCount(payload);
  let at = start;
  for (let index = 0; index < count; index++) {
    const op = payload[at];
    const keyStart = at + 5;
    const keyEnd = keyStart + readU32At(payload, at + 1);
    assert(keyEnd <= payload.length, 'a checked INTENT: keys within the payload');
    if (op === opDelete) {
      visit(keyStart, keyEnd, -1);
      at = keyEnd;
      continue;
    }
    assert(op === opPut, 'a checked INTENT: known ops');
    const valueEnd = keyEnd + 4 + readU32At(payload, keyEnd);
    assert(valueEnd <= payload.length, 'a checked INTENT: values within the payload');
    visit(keyStart, keyEnd, valueEnd);
    at = valueEnd;
  }
  assert(at === payload.length, 'a checked INTENT: the effects fill the payload');
}

/**
 * Writes where each effect of an INTENT payload that `intentEffectsStart` accepted lies
 * (`start` is what it returned) into `ranges`, three numbers per effect, in order: the key is
 * `payload[keyStart, keyEnd)`, the value of a put `payload[keyEnd + 4, valueEnd)`; a delete has
 * `valueEnd` -1. `ranges` must hold three numbers per effect. A loop over the ranges costs less
 * than a callback per effect (`visitIntentEffects`), which counts at a million effects.
 */
export function intentEffectRanges(payload: Uint8Array, start: number, ranges: Int32Array): void {
  const count = intentEffectCount(payload);
  assert(ranges.length >= 3 * count, 'room for every effect');
  let at = start;
  for (let index = 0; index < count; index++) {
    const op = payload[at];
    const keyStart = at + 5;
    const keyEnd = keyStart + readU32At(payload, at + 1);
    assert(keyEnd <= payload.length, 'a checked INTENT: keys within the payload');
    let valueEnd = -1;
    at = keyEnd;
    if (op !== opDelete) {
      assert(op === opPut, 'a checked INTENT: known ops');
      valueEnd = keyEnd + 4 + readU32At(payload, keyEnd);
      assert(valueEnd <= payload.length, 'a checked INTENT: values within the payload');
      at = valueEnd;
    }
    ranges[3 * index] = keyStart;
    ranges[3 * index + 1] = keyEnd;
    ranges[3 * index + 2] = valueEnd;
  }
  assert(at === payload.length, 'a checked INTENT: the effects fill the payload');
}

export function encodeCommit(commit: CommitPayload): Uint8Array {
  const bytes = new Uint8Array(24);
  const view = new DataView(bytes.buffer);
  writeU64(view, 0, commit.commitLsn);
  writeU64(view, 8, commit.intentLsn);
  view.setUint32(16, commit.intentChecksum >>> 0, true);
  return bytes;
}

export function decodeCommit(payload: Uint8Array): CommitPayload {
  const reader = new Reader(payload, 'COMMIT');
  const commitLsn = reader.u64();
  const intentLsn = reader.u64();
  const intentChecksum = reader.u32();
  reader.u32();
  reader.end();
  return { commitLsn, intentLsn, intentChecksum };
}

export function encodeAbort(abort: AbortPayload): Uint8Array {
  assert(abort.lsnFirst <= abort.lsnLast, 'abort range is ordered');
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  writeU64(view, 0, abort.lsnFirst);
  writeU64(view, 8, abort.lsnLast);
  return bytes;
}

export function decodeAbort(payload: Uint8Array): AbortPayload {
  const reader = new Reader(payload, 'ABORT');
  const lsnFirst = reader.u64();
  const lsnLast = reader.u64();
  reader.end();
  if (lsnFirst > lsnLast) throw new InvalidError('ABORT range is reversed');
  return { lsnFirst, lsnLast };
}

export function encodeTerm(term: TermPayload): Uint8Array {
  const id = encoder.encode(term.primaryId);
  assert(id.length < 2 ** 16, 'primary id fits u16');
  const bytes = new Uint8Array(10 + id.length);
  const view = new DataView(bytes.buffer);
  writeU64(view, 0, term.term);
  view.setUint16(8, id.length, true);
  bytes.set(id, 10);
  return bytes;
}

export function decodeTerm(payload: Uint8Array): TermPayload {
  const reader = new Reader(payload, 'TERM');
  const term = reader.u64();
  const primaryId = reader.utf8(reader.u16());
  reader.end();
  return { term, primaryId };
}

export function encodeCheckpoint(checkpoint: CheckpointPayload): Uint8Array {
  const bytes = new Uint8Array(8);
  writeU64(new DataView(bytes.buffer), 0, checkpoint.lsn);
  return bytes;
}

export function decodeCheckpoint(payload: Uint8Array): CheckpointPayload {
  const reader = new Reader(payload, 'CHECKPOINT');
  const lsn = reader.u64();
  reader.end();
  return { lsn };
}

/** A JSON-friendly rendering of bytes: the UTF-8 string if printable, else hex. */
export function renderBytes(bytes: Uint8Array): string {
  let printable = true;
  for (const byte of bytes) {
    if (byte < 0x20 || byte === 0x7f) {
      printable = false;
      break;
    }
  }
  if (printable) {
    try {
      return decoder.decode(bytes);
    } catch {
      // Not valid UTF-8: fall through to hex.
    }
  }
  return `0x${toHex(bytes)}`;
}

export type DecodedPayload = Record<string, unknown>;

/** Decodes a payload for display; a payload that does not decode is reported, not thrown. */
export function describePayload(type: number, payload: Uint8Array): DecodedPayload {
  try {
    return describeKnownPayload(type, payload);
  } catch (error: unknown) {
    const message = error instanceof Error ? error.message : String(error);
    return { error: message, raw: renderBytes(payload) };
  }
}

function describeKnownPayload(type: number, payload: Uint8Array): DecodedPayload {
  switch (type) {
    case RecordType.Intent: {
      const intent = decodeIntent(payload);
      return {
        requestId: intent.requestId,
        ops: intent.effects.map((effect) =>
          effect.op === 'put'
            ? { op: 'put', key: renderBytes(effect.key), value: renderBytes(effect.value) }
            : { op: 'delete', key: renderBytes(effect.key) },
        ),
      };
    }
    case RecordType.Commit:
      return { ...decodeCommit(payload) };
    case RecordType.Abort:
      return { ...decodeAbort(payload) };
    case RecordType.Term:
      return { ...decodeTerm(payload) };
    case RecordType.Checkpoint:
      return { ...decodeCheckpoint(payload) };
    default:
      return payload.length === 0 ? {} : { raw: renderBytes(payload) };
  }
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}
