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

let scratch = new Uint8Array(64 * 1024);
let scratchView = new DataView(scratch.buffer);

/**
 * Like `encodeIntent`, but the result is a view into a buffer that the next call overwrites:
 * use it at once (the log copies an appended payload before `append` returns). Saves an
 * allocation and a DataView per write on the hot path.
 */
export function encodeIntentTransient(intent: IntentPayload): Uint8Array {
  const requestId = intent.requestId === null ? null : encoder.encode(intent.requestId);
  assert(requestId === null || requestId.length < 2 ** 16, 'request id fits u16');
  let size = 8 + (requestId === null ? 0 : 2 + requestId.length);
  for (const effect of intent.effects) {
    size += 5 + effect.key.length + (effect.op === 'put' ? 4 + effect.value.length : 0);
  }
  if (size > scratch.length) {
    scratch = new Uint8Array(Math.max(size, scratch.length * 2));
    scratchView = new DataView(scratch.buffer);
  }
  const bytes = scratch;
  const view = scratchView;
  view.setUint8(0, 1);
  view.setUint8(1, requestId === null ? 0 : 1);
  view.setUint16(2, 0, true);
  view.setUint32(4, intent.effects.length, true);
  let at = 8;
  if (requestId !== null) {
    view.setUint16(at, requestId.length, true);
    bytes.set(requestId, at + 2);
    at += 2 + requestId.length;
  }
  for (const effect of intent.effects) {
    view.setUint8(at, effect.op === 'put' ? opPut : opDelete);
    view.setUint32(at + 1, effect.key.length, true);
    bytes.set(effect.key, at + 5);
    at += 5 + effect.key.length;
    if (effect.op === 'put') {
      view.setUint32(at, effect.value.length, true);
      bytes.set(effect.value, at + 4);
      at += 4 + effect.value.length;
    }
  }
  assert(at === size, 'intent encoding filled exactly its size');
  return bytes.subarray(0, size);
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
