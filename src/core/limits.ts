import { assert } from './assert.js';

/**
 * Every bound in one place, units last. Module-load assertions relate them, so a change that
 * breaks a relationship fails at import, not in production.
 */

/** Bytes of the frame header (see format/frame.ts). */
export const frameHeaderBytes = 32;
/** Frames start on this alignment; the padding is zero and covered by the checksum. */
export const frameAlignmentBytes = 8;
/** Bytes of the segment header (see format/segment-header.ts). */
export const segmentHeaderBytes = 64;

/**
 * The largest record payload. A length field above it is never trusted (no allocation happens
 * for it): it marks the frame bad. 16 MiB leaves room for a batch of values at the engine's
 * value limit.
 */
export const recordPayloadBytesMax = 16 * 1024 * 1024;

/** Default segment size (DESIGN §2). */
export const segmentSizeBytesDefault = 64 * 1024 * 1024;
/** Tests use tiny segments; below this the header and one frame would not fit usefully. */
export const segmentSizeBytesMin = 4096;
/** Segment offsets are stored in u32 index arrays. */
export const segmentSizeBytesMax = 1024 * 1024 * 1024;

/** The most frames one group-commit write carries (bounds the write buffer and the wait). */
export const writeBatchRecordsMax = 65_536;
/** The most bytes one group-commit write carries. */
export const writeBatchBytesMax = 8 * 1024 * 1024;

/** Chunk used to zero-fill (preallocate) a segment. */
export const preallocateChunkBytes = 1024 * 1024;

/** Free space kept in reserve beyond one segment before preallocating another. */
export const freeSpaceReserveBytes = 16 * 1024 * 1024;

/** Segment names carry the first LSN in this many decimal digits, so names sort. */
export const segmentNameDigits = 20;

/** LSNs and terms are u64 on disk but must stay exact JS numbers in memory. */
export const lsnMax = Number.MAX_SAFE_INTEGER;

assert(frameHeaderBytes % frameAlignmentBytes === 0, 'frame header keeps alignment');
assert(segmentHeaderBytes % frameAlignmentBytes === 0, 'segment header keeps alignment');
assert(segmentSizeBytesMin > segmentHeaderBytes + 2 * frameHeaderBytes, 'a segment holds frames');
assert(segmentSizeBytesDefault >= segmentSizeBytesMin, 'default segment within bounds');
assert(segmentSizeBytesDefault <= segmentSizeBytesMax, 'default segment within bounds');
assert(recordPayloadBytesMax < 2 ** 32, 'payload length fits the u32 length field');
assert(writeBatchRecordsMax <= 2 ** 16, 'batches stay bounded');
assert(preallocateChunkBytes % 4096 === 0, 'preallocation writes whole pages');

// ---------------------------------------------------------------------------------------------
// Peer wire protocol (core/consensus/wire.ts) and transports (node/transport.ts, sim/network.ts).

/** Bytes of a peer frame header: body length, version, type, flags, checksum (see wire.ts). */
export const peerFrameHeaderBytes = 12;
/** The longest id (node id, shard id) on the wire, in UTF-8 bytes. */
export const peerIdBytesMax = 255;
/** The most replicas a heartbeat's eligible set lists (far above any sensible shard size). */
export const peerEligibleReplicasMax = 255;
/**
 * The most bytes of an append's `frames` or a snapshot chunk's `entries`. An append carries at
 * most one group-commit write of frames (a log's appendBytesMax is at most writeBatchBytesMax),
 * and the largest key and value pair a write may hold fits in one such write as well.
 */
export const peerBulkBytesMax = writeBatchBytesMax;
/** Room for every field of a message other than its bulk bytes (ids, integers, eligible set). */
export const peerFixedFieldsBytesMax = 128 * 1024;
/** The longest peer frame body; a length field above it is refused before anything is read. */
export const peerFrameBodyBytesMax = peerBulkBytesMax + peerFixedFieldsBytesMax;
/** The longest peer frame, header included. */
export const peerFrameBytesMax = peerFrameHeaderBytes + peerFrameBodyBytesMax;
/** Bytes of a handshake nonce, and of an HMAC-SHA256 proof (the wire's `bytes32` kind). */
export const peerAuthNonceBytes = 32;
/**
 * The longest frame body a connection accepts before its handshake is done: an unauthenticated
 * peer cannot make a node buffer more than this (handshake frames are far smaller).
 */
export const peerHandshakeBodyBytesMax = 1024;
/** The most inbound connections still in their handshake at once; more are cut at once. */
export const peerHandshakesPendingMax = 64;
/** Default bound of the bytes queued to one peer and not yet handed to the OS. */
export const peerSendQueueBytesDefault = 4 * peerFrameBytesMax;
/** Default time a connection has to finish its handshake (auth and Hello) before it is cut. */
export const peerHandshakeTimeoutMsDefault = 5_000;
/** Default reconnect backoff: the first delay and the cap of the exponential growth. */
export const peerReconnectDelayMsInitial = 50;
export const peerReconnectDelayMsMax = 5_000;

assert(peerBulkBytesMax >= writeBatchBytesMax, 'an append carries a whole group-commit write');
assert(
  peerEligibleReplicasMax * (2 + peerIdBytesMax + 8) + 64 * 8 + 2 * (2 + peerIdBytesMax) <=
    peerFixedFieldsBytesMax,
  'the fixed fields of any message fit their room',
);
assert(peerAuthNonceBytes === 32, 'nonces and HMAC-SHA256 proofs share the bytes32 kind');
assert(peerFrameBytesMax < 2 ** 32, 'a peer frame length fits the u32 length field');
assert(
  3 * (2 + peerIdBytesMax) + peerAuthNonceBytes + 64 <= peerHandshakeBodyBytesMax,
  'every handshake message (challenge, proof, Hello) fits the handshake bound',
);
assert(peerSendQueueBytesDefault >= peerFrameBytesMax, 'the default queue holds a largest frame');
assert(peerReconnectDelayMsInitial <= peerReconnectDelayMsMax, 'backoff bounds are ordered');
