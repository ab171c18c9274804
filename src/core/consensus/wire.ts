import { assert } from '../assert.js';
import { crc32 } from '../checksum.js';
import {
  lsnMax,
  peerAuthNonceBytes,
  peerBulkBytesMax,
  peerEligibleReplicasMax,
  peerFrameBodyBytesMax,
  peerFrameHeaderBytes,
  peerIdBytesMax,
} from '../limits.js';
import { protocolVersion } from './messages.js';
import type { EligibleReplica, PeerMessage } from './messages.js';

/**
 * The peer wire codec: every message of the peer protocol (messages.ts) and of the transport
 * handshake travels as one frame. All integers are little-endian.
 *
 * ```
 *  byte  0             4         5         6              8              12
 *        +-------------+---------+---------+--------------+--------------+-------------------+
 *        | bodyLength  | version | type    | flags        | checksum     | body              |
 *        | u32         | u8      | u8      | u16 = 0      | u32          | bodyLength bytes  |
 *        +-------------+---------+---------+--------------+--------------+-------------------+
 * ```
 *
 * - `checksum` is CRC-32 (IEEE, checksum.ts) of header bytes [0, 8) followed by the body. It
 *   covers the header too, so a flipped type, version or length bit is caught even when the
 *   flipped value is valid (a body that happens to parse as another message type).
 * - `bodyLength` is checked against `peerFrameBodyBytesMax` from the 12 header bytes alone,
 *   before anything waits for, buffers or allocates the body. `version` must equal
 *   `protocolVersion`, `type` must be a known code and `flags` zero, also from the header alone,
 *   so a peer speaking garbage is refused after 12 bytes.
 * - The body is the message's fields in its layout's order (`layouts` below), each encoded by
 *   its kind: `u32`; `u64` (a safe integer, at most `lsnMax`); `bool` (one byte, 0 or 1); `id`
 *   (u16 byte length, 1 to `peerIdBytesMax` bytes of UTF-8); `bulk` (u32 byte length, at most
 *   `peerBulkBytesMax` bytes, carried verbatim: record frames, snapshot entries); `bytes32`
 *   (exactly 32 bytes, no length: a nonce or an HMAC-SHA256 proof); `eligible` (u16 count, at
 *   most `peerEligibleReplicasMax`, then per replica its `id` and its acked LSN as `u64`). A
 *   body with bytes left over after its last field is malformed.
 *
 * Type codes: 0 is invalid; 1-63 are peer messages, 64-71 the transport handshake. A new
 * message (issue #5's votes) is one new row in `layouts` with an unused code; a changed layout
 * bumps `protocolVersion`.
 */

/** The transport handshake (node/transport.ts) before any PeerMessage; never reaches the core. */
export interface AuthChallenge {
  type: 'auth-challenge';
  shardId: string;
  from: string;
  to: string;
  nonce: Uint8Array;
}

/** HMAC-SHA256 over both nonces, the shard id and both node ids, keyed by the shard secret. */
export interface AuthProof {
  type: 'auth-proof';
  proof: Uint8Array;
}

/** The short refusal a peer that failed the handshake gets: it says nothing about why. */
export interface AuthRefused {
  type: 'auth-refused';
}

export type HandshakeMessage = AuthChallenge | AuthProof | AuthRefused;
export type WireMessage = PeerMessage | HandshakeMessage;
export type WireMessageType = WireMessage['type'];

type FieldKind = 'u32' | 'u64' | 'bool' | 'id' | 'bulk' | 'bytes32' | 'eligible';

/** The kinds a field of TypeScript type V may be encoded as. */
type KindFor<V> = [V] extends [boolean]
  ? 'bool'
  : [V] extends [number]
    ? 'u32' | 'u64'
    : [V] extends [string]
      ? 'id'
      : [V] extends [Uint8Array]
        ? 'bulk' | 'bytes32'
        : [V] extends [readonly EligibleReplica[]]
          ? 'eligible'
          : never;

type FieldName<M> = Exclude<keyof M, 'type'>;
type FieldSpec<M> = { [K in FieldName<M>]: readonly [K, KindFor<M[K]>] }[FieldName<M>];

interface Layout<M extends WireMessage> {
  code: number;
  fields: readonly FieldSpec<M>[];
}

type Layouts = { [T in WireMessageType]: Layout<Extract<WireMessage, { type: T }>> };

/**
 * Every message's type code and field order. The round-trip tests compare whole messages, so a
 * field missing here fails them.
 */
const layouts: Layouts = {
  hello: {
    code: 1,
    fields: [
      ['protocolVersion', 'u32'],
      ['shardId', 'id'],
      ['from', 'id'],
      ['term', 'u64'],
      ['lastLsn', 'u64'],
      ['lastTerm', 'u64'],
    ],
  },
  append: {
    code: 2,
    fields: [
      ['term', 'u64'],
      ['from', 'id'],
      ['prevLsn', 'u64'],
      ['prevTerm', 'u64'],
      ['prevChecksum', 'u32'],
      ['lastLsn', 'u64'],
      ['commitLsn', 'u64'],
      ['frames', 'bulk'],
    ],
  },
  'append-ack': {
    code: 3,
    fields: [
      ['term', 'u64'],
      ['from', 'id'],
      ['success', 'bool'],
      ['matchLsn', 'u64'],
      ['ackLsn', 'u64'],
      ['hintLsn', 'u64'],
      ['hintTerm', 'u64'],
    ],
  },
  heartbeat: {
    code: 4,
    fields: [
      ['term', 'u64'],
      ['from', 'id'],
      ['seq', 'u64'],
      ['commitLsn', 'u64'],
      ['lastLsn', 'u64'],
      ['eligible', 'eligible'],
    ],
  },
  'heartbeat-ack': {
    code: 5,
    fields: [
      ['term', 'u64'],
      ['from', 'id'],
      ['seq', 'u64'],
      ['ackLsn', 'u64'],
      ['lastLsn', 'u64'],
      ['lastTerm', 'u64'],
    ],
  },
  eligibility: {
    code: 6,
    fields: [
      ['term', 'u64'],
      ['from', 'id'],
      ['granted', 'bool'],
    ],
  },
  'snapshot-begin': {
    code: 7,
    fields: [
      ['term', 'u64'],
      ['from', 'id'],
      ['snapshotId', 'u64'],
      ['snapshotLsn', 'u64'],
      ['snapshotTerm', 'u64'],
      ['snapshotChecksum', 'u32'],
      ['streams', 'u32'],
      ['keys', 'u64'],
      ['bytes', 'u64'],
    ],
  },
  'snapshot-chunk': {
    code: 8,
    fields: [
      ['term', 'u64'],
      ['from', 'id'],
      ['snapshotId', 'u64'],
      ['stream', 'u32'],
      ['seq', 'u64'],
      ['done', 'bool'],
      ['entries', 'bulk'],
    ],
  },
  'snapshot-ack': {
    code: 9,
    fields: [
      ['term', 'u64'],
      ['from', 'id'],
      ['snapshotId', 'u64'],
      ['stream', 'u32'],
      ['seq', 'u64'],
      ['installed', 'bool'],
    ],
  },
  'vote-request': {
    code: 10,
    fields: [
      ['term', 'u64'],
      ['from', 'id'],
      ['lastLsn', 'u64'],
      ['lastTerm', 'u64'],
      ['preVote', 'bool'],
    ],
  },
  'vote-response': {
    code: 11,
    fields: [
      ['term', 'u64'],
      ['from', 'id'],
      ['granted', 'bool'],
      ['preVote', 'bool'],
    ],
  },
  'auth-challenge': {
    code: 64,
    fields: [
      ['shardId', 'id'],
      ['from', 'id'],
      ['to', 'id'],
      ['nonce', 'bytes32'],
    ],
  },
  'auth-proof': { code: 65, fields: [['proof', 'bytes32']] },
  'auth-refused': { code: 66, fields: [] },
};

/** A layout with its message type erased, for the generic encode and decode loops. */
interface AnyLayout {
  type: WireMessageType;
  code: number;
  fields: readonly (readonly [string, FieldKind])[];
}

const layoutsByCode = new Map<number, AnyLayout>();
for (const [type, layout] of Object.entries(layouts)) {
  assert(layout.code > 0 && layout.code < 256, 'type codes are non-zero bytes');
  assert(!layoutsByCode.has(layout.code), 'type codes are unique');
  layoutsByCode.set(layout.code, { ...layout, type: type as WireMessageType } as AnyLayout);
}

const layoutsByType = new Map<WireMessageType, AnyLayout>(
  [...layoutsByCode.values()].map((layout) => [layout.type, layout]),
);

/** The type code of a message type (for tests and tools). */
export function wireTypeCode(type: WireMessageType): number {
  const layout = layoutsByType.get(type);
  assert(layout !== undefined, 'known message type');
  return layout.code;
}

/** True if the message belongs to the handshake (the transport's business, never the core's). */
export function isHandshakeMessage(message: WireMessage): message is HandshakeMessage {
  return message.type.startsWith('auth-');
}

// ---------------------------------------------------------------------------------------------
// Encoding.

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Encodes `message` as one frame in a new array. Field values out of range (a negative LSN, an
 * id over `peerIdBytesMax`, bulk bytes over `peerBulkBytesMax`) are programmer errors and
 * fail assertions: callers split and validate before they send.
 */
export function encodeWireMessage(message: WireMessage): Uint8Array {
  const layout = layoutsByType.get(message.type);
  assert(layout !== undefined, 'encodeWireMessage: known message type');
  const values = message as unknown as Readonly<Record<string, unknown>>;
  // Ids are encoded once, in field order, for both the measuring and the writing pass.
  const ids: Uint8Array[] = [];
  let bodyBytes = 0;
  for (const [name, kind] of layout.fields) {
    bodyBytes += fieldBytes(kind, values[name], ids);
  }
  assert(bodyBytes <= peerFrameBodyBytesMax, 'encodeWireMessage: body within limit');
  const frame = new Uint8Array(peerFrameHeaderBytes + bodyBytes);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const writer: BodyWriter = { frame, view, offset: peerFrameHeaderBytes, ids, idIndex: 0 };
  for (const [name, kind] of layout.fields) writeField(writer, kind, values[name]);
  assert(writer.offset === frame.length, 'encodeWireMessage: body filled exactly');
  view.setUint32(0, bodyBytes, true);
  frame[4] = protocolVersion;
  frame[5] = layout.code;
  view.setUint16(6, 0, true);
  view.setUint32(8, frameChecksum(frame, bodyBytes), true);
  return frame;
}

/** CRC-32 of header bytes [0, 8) then the body of the frame starting at frame[0]. */
function frameChecksum(frame: Uint8Array, bodyBytes: number): number {
  const headerChecksum = crc32(frame.subarray(0, 8));
  const bodyEnd = peerFrameHeaderBytes + bodyBytes;
  return crc32(frame.subarray(peerFrameHeaderBytes, bodyEnd), headerChecksum);
}

/** Bytes `value` takes as a field of `kind`; encodes ids into `ids` on the way. */
function fieldBytes(kind: FieldKind, value: unknown, ids: Uint8Array[]): number {
  switch (kind) {
    case 'u32':
      return 4;
    case 'u64':
      return 8;
    case 'bool':
      return 1;
    case 'id':
      return 2 + idBytes(value, ids);
    case 'bulk':
      assert(value instanceof Uint8Array, 'bulk field is a Uint8Array');
      assert(value.length <= peerBulkBytesMax, 'bulk field within peerBulkBytesMax');
      return 4 + value.length;
    case 'bytes32':
      assert(value instanceof Uint8Array, 'bytes32 field is a Uint8Array');
      assert(value.length === peerAuthNonceBytes, 'bytes32 field has 32 bytes');
      return peerAuthNonceBytes;
    case 'eligible': {
      assert(Array.isArray(value), 'eligible field is an array');
      assert(value.length <= peerEligibleReplicasMax, 'eligible set within limit');
      let bytes = 2;
      for (const replica of value as EligibleReplica[]) bytes += 2 + idBytes(replica.id, ids) + 8;
      return bytes;
    }
  }
}

function idBytes(value: unknown, ids: Uint8Array[]): number {
  assert(typeof value === 'string', 'id field is a string');
  const encoded = textEncoder.encode(value);
  assert(encoded.length >= 1, 'id is not empty');
  assert(encoded.length <= peerIdBytesMax, 'id within peerIdBytesMax');
  ids.push(encoded);
  return encoded.length;
}

interface BodyWriter {
  frame: Uint8Array;
  view: DataView;
  offset: number;
  ids: Uint8Array[];
  idIndex: number;
}

function writeField(writer: BodyWriter, kind: FieldKind, value: unknown): void {
  switch (kind) {
    case 'u32':
      assert(Number.isInteger(value), 'u32 field is an integer');
      assert((value as number) >= 0 && (value as number) < 2 ** 32, 'u32 field in range');
      writer.view.setUint32(writer.offset, value as number, true);
      writer.offset += 4;
      return;
    case 'u64':
      writeU64(writer, value);
      return;
    case 'bool':
      assert(typeof value === 'boolean', 'bool field is a boolean');
      writer.frame[writer.offset++] = value ? 1 : 0;
      return;
    case 'id':
      writeId(writer);
      return;
    case 'bulk':
      writer.view.setUint32(writer.offset, (value as Uint8Array).length, true);
      writer.frame.set(value as Uint8Array, writer.offset + 4);
      writer.offset += 4 + (value as Uint8Array).length;
      return;
    case 'bytes32':
      writer.frame.set(value as Uint8Array, writer.offset);
      writer.offset += peerAuthNonceBytes;
      return;
    case 'eligible':
      writer.view.setUint16(writer.offset, (value as EligibleReplica[]).length, true);
      writer.offset += 2;
      for (const replica of value as EligibleReplica[]) {
        writeId(writer);
        writeU64(writer, replica.ackedLsn);
      }
      return;
  }
}

function writeU64(writer: BodyWriter, value: unknown): void {
  assert(Number.isSafeInteger(value), 'u64 field is a safe integer');
  assert((value as number) >= 0 && (value as number) <= lsnMax, 'u64 field in range');
  writer.view.setUint32(writer.offset, (value as number) % 2 ** 32, true);
  writer.view.setUint32(writer.offset + 4, Math.floor((value as number) / 2 ** 32), true);
  writer.offset += 8;
}

/** Writes the next id encoded by the measuring pass (ids are met in the same order). */
function writeId(writer: BodyWriter): void {
  const encoded = writer.ids[writer.idIndex++];
  assert(encoded !== undefined, 'id measured before it is written');
  writer.view.setUint16(writer.offset, encoded.length, true);
  writer.frame.set(encoded, writer.offset + 2);
  writer.offset += 2 + encoded.length;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/** Why a frame was refused. A refused frame means the stream cannot be trusted any further. */
export type WireFault = 'oversized' | 'version' | 'type' | 'flags' | 'checksum' | 'malformed';

/**
 * - `more`: the buffer holds a prefix of a frame; `bytesNeeded` is how many bytes (from the
 *   start of the buffer) the next step needs (the header, or the whole frame once the header is
 *   known and valid).
 * - `ok`: one message, which took the first `bytesConsumed` bytes. Its `bulk` fields are views
 *   into the given buffer.
 * - `bad`: the frame is refused; `reason` says why, for the log.
 */
export type WireDecode =
  | { kind: 'more'; bytesNeeded: number }
  | { kind: 'ok'; message: WireMessage; bytesConsumed: number }
  | { kind: 'bad'; fault: WireFault; reason: string };

/**
 * Decodes the frame at the start of `bytes` (which may hold more frames after it).
 * `bodyBytesMax` lowers the length bound (a connection still in its handshake uses a small one).
 */
export function decodeWireMessage(
  bytes: Uint8Array,
  bodyBytesMax = peerFrameBodyBytesMax,
): WireDecode {
  assert(bodyBytesMax <= peerFrameBodyBytesMax, 'decodeWireMessage: bound within the limit');
  if (bytes.length < peerFrameHeaderBytes) {
    return { kind: 'more', bytesNeeded: peerFrameHeaderBytes };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = checkHeader(view, bodyBytesMax);
  if (header.kind !== 'ok') return header;
  const frameBytes = peerFrameHeaderBytes + header.bodyBytes;
  if (bytes.length < frameBytes) return { kind: 'more', bytesNeeded: frameBytes };
  const checksum = frameChecksum(bytes, header.bodyBytes);
  if (checksum !== view.getUint32(8, true)) {
    return { kind: 'bad', fault: 'checksum', reason: 'frame checksum mismatch' };
  }
  const reader: BodyReader = {
    bytes,
    view,
    offset: peerFrameHeaderBytes,
    end: frameBytes,
    failure: null,
  };
  const message = readBody(reader, header.layout);
  if (reader.failure === null && reader.offset !== reader.end) {
    reader.failure = `${reader.end - reader.offset} bytes after the last field`;
  }
  if (reader.failure !== null) {
    const reason = `${header.layout.type}: ${reader.failure}`;
    return { kind: 'bad', fault: 'malformed', reason };
  }
  return { kind: 'ok', message, bytesConsumed: frameBytes };
}

type HeaderCheck =
  | { kind: 'ok'; bodyBytes: number; layout: AnyLayout }
  | { kind: 'bad'; fault: WireFault; reason: string };

/** Checks what the 12 header bytes alone can tell, before the body is awaited. */
function checkHeader(view: DataView, bodyBytesMax: number): HeaderCheck {
  const bodyBytes = view.getUint32(0, true);
  if (bodyBytes > bodyBytesMax) {
    const reason = `body of ${bodyBytes} bytes exceeds ${bodyBytesMax}`;
    return { kind: 'bad', fault: 'oversized', reason };
  }
  const version = view.getUint8(4);
  if (version !== protocolVersion) {
    const reason = `protocol version ${version}, expected ${protocolVersion}`;
    return { kind: 'bad', fault: 'version', reason };
  }
  const code = view.getUint8(5);
  const layout = layoutsByCode.get(code);
  if (layout === undefined) {
    return { kind: 'bad', fault: 'type', reason: `unknown message type code ${code}` };
  }
  const flags = view.getUint16(6, true);
  if (flags !== 0) return { kind: 'bad', fault: 'flags', reason: `reserved flags ${flags}` };
  return { kind: 'ok', bodyBytes, layout };
}

/**
 * A cursor over one body. A read past `end` or an invalid value sets `failure` (the first one
 * wins) and returns a placeholder, so the field loop needs no exceptions.
 */
interface BodyReader {
  bytes: Uint8Array;
  view: DataView;
  offset: number;
  end: number;
  failure: string | null;
}

function readBody(reader: BodyReader, layout: AnyLayout): WireMessage {
  const message: Record<string, unknown> = { type: layout.type };
  for (const [name, kind] of layout.fields) {
    message[name] = readField(reader, kind, name);
    if (reader.failure !== null) break;
  }
  return message as unknown as WireMessage;
}

/** True if `bytes` more bytes are in the body; else records the failure. */
function take(reader: BodyReader, bytes: number, name: string): boolean {
  if (reader.failure !== null) return false;
  if (reader.end - reader.offset >= bytes) return true;
  reader.failure = `${name} runs past the end of the body`;
  return false;
}

function readField(reader: BodyReader, kind: FieldKind, name: string): unknown {
  switch (kind) {
    case 'u32': {
      if (!take(reader, 4, name)) return 0;
      const value = reader.view.getUint32(reader.offset, true);
      reader.offset += 4;
      return value;
    }
    case 'u64':
      return readU64(reader, name);
    case 'bool': {
      if (!take(reader, 1, name)) return false;
      const value = reader.bytes[reader.offset++];
      if (value !== 0 && value !== 1) reader.failure = `${name} is ${value}, not a boolean`;
      return value === 1;
    }
    case 'id':
      return readId(reader, name);
    case 'bulk':
      return readBulk(reader, name);
    case 'bytes32': {
      if (!take(reader, peerAuthNonceBytes, name)) return new Uint8Array(0);
      const value = reader.bytes.subarray(reader.offset, reader.offset + peerAuthNonceBytes);
      reader.offset += peerAuthNonceBytes;
      return value;
    }
    case 'eligible':
      return readEligible(reader, name);
  }
}

function readU64(reader: BodyReader, name: string): number {
  if (!take(reader, 8, name)) return 0;
  const low = reader.view.getUint32(reader.offset, true);
  const high = reader.view.getUint32(reader.offset + 4, true);
  reader.offset += 8;
  const value = high * 2 ** 32 + low;
  if (high >= 2 ** 21 || value > lsnMax) {
    reader.failure = `${name} does not fit a safe integer`;
    return 0;
  }
  return value;
}

function readId(reader: BodyReader, name: string): string {
  if (!take(reader, 2, name)) return '';
  const length = reader.view.getUint16(reader.offset, true);
  reader.offset += 2;
  if (length === 0 || length > peerIdBytesMax) {
    reader.failure = `${name} of ${length} bytes is outside 1..${peerIdBytesMax}`;
    return '';
  }
  if (!take(reader, length, name)) return '';
  const encoded = reader.bytes.subarray(reader.offset, reader.offset + length);
  reader.offset += length;
  try {
    return textDecoder.decode(encoded);
  } catch {
    // A fatal TextDecoder throws on invalid UTF-8: the peer sent bytes that are no id.
    reader.failure = `${name} is not valid UTF-8`;
    return '';
  }
}

function readBulk(reader: BodyReader, name: string): Uint8Array {
  if (!take(reader, 4, name)) return new Uint8Array(0);
  const length = reader.view.getUint32(reader.offset, true);
  reader.offset += 4;
  if (length > peerBulkBytesMax) {
    reader.failure = `${name} of ${length} bytes exceeds ${peerBulkBytesMax}`;
    return new Uint8Array(0);
  }
  if (!take(reader, length, name)) return new Uint8Array(0);
  const value = reader.bytes.subarray(reader.offset, reader.offset + length);
  reader.offset += length;
  return value;
}

function readEligible(reader: BodyReader, name: string): EligibleReplica[] {
  if (!take(reader, 2, name)) return [];
  const count = reader.view.getUint16(reader.offset, true);
  reader.offset += 2;
  if (count > peerEligibleReplicasMax) {
    reader.failure = `${name} lists ${count} replicas, more than ${peerEligibleReplicasMax}`;
    return [];
  }
  const replicas: EligibleReplica[] = [];
  for (let index = 0; index < count && reader.failure === null; index++) {
    const id = readId(reader, `${name}[${index}].id`);
    const ackedLsn = readU64(reader, `${name}[${index}].ackedLsn`);
    replicas.push({ id, ackedLsn });
  }
  return replicas;
}

// ---------------------------------------------------------------------------------------------
// Stream reassembly.

/**
 * Reassembles frames from a byte stream delivered in arbitrary chunks (a socket). Chunks are
 * kept as they come and joined only when a header or a whole frame spans several of them, so a
 * large frame arriving in many chunks is copied once. What it buffers is bounded by one frame
 * (`peerFrameBytesMax`) plus the chunk that completed it, because a header announcing more is
 * refused before its body is awaited.
 *
 * After a `bad` result the stream cannot be resynchronized; `next` keeps returning it.
 */
export class WireReader {
  #chunks: Uint8Array[] = [];
  #bufferedBytes = 0;
  #failure: WireDecode | null = null;

  /** Bytes received and not yet consumed by a decoded frame. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Appends received bytes. The reader keeps (does not copy) `chunk`: do not reuse it. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#bufferedBytes += chunk.length;
  }

  /**
   * The next frame, `more` if it has not fully arrived, or the fault that ended the stream.
   * `bodyBytesMax` as in decodeWireMessage.
   */
  next(bodyBytesMax = peerFrameBodyBytesMax): WireDecode {
    if (this.#failure !== null) return this.#failure;
    const head = this.#head(peerFrameHeaderBytes);
    if (head === null) return { kind: 'more', bytesNeeded: peerFrameHeaderBytes };
    let result = decodeWireMessage(head, bodyBytesMax);
    if (result.kind === 'more') {
      const whole = this.#head(result.bytesNeeded);
      if (whole === null) return result;
      result = decodeWireMessage(whole, bodyBytesMax);
    }
    if (result.kind === 'bad') {
      this.#failure = result;
      this.#chunks = [];
      this.#bufferedBytes = 0;
    } else if (result.kind === 'ok') {
      this.#consume(result.bytesConsumed);
    }
    return result;
  }

  /** The first chunk, after joining chunks until it holds `bytes` bytes; null if too few. */
  #head(bytes: number): Uint8Array | null {
    const first = this.#chunks[0];
    if (first === undefined || this.#bufferedBytes < bytes) return null;
    if (first.length >= bytes) return first;
    let joinedBytes = 0;
    let count = 0;
    while (joinedBytes < bytes) joinedBytes += this.#chunks[count++]!.length;
    const joined = new Uint8Array(joinedBytes);
    let offset = 0;
    for (const chunk of this.#chunks.slice(0, count)) {
      joined.set(chunk, offset);
      offset += chunk.length;
    }
    this.#chunks.splice(0, count, joined);
    return joined;
  }

  #consume(bytes: number): void {
    const first = this.#chunks[0];
    assert(first !== undefined && first.length >= bytes, 'a decoded frame lies in one chunk');
    if (first.length === bytes) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(bytes);
    this.#bufferedBytes -= bytes;
  }
}
