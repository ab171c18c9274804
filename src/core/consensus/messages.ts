/**
 * The peer protocol's messages (DESIGN §4): a discriminated union on `type`, pure data.
 *
 * The wire codec (src/core/consensus/wire.ts) turns each into one length-prefixed, checksummed
 * frame; the simulated network carries them through the same codec. Every message carries the
 * sender's `term` and id; a receiver ignores messages of an older term and steps up to a newer
 * one.
 *
 * LSNs and terms are safe integers (the log stores them as u64; limits.ts bounds them far below
 * 2^53). `frames` holds record frames exactly as they are on the primary's disk (SEAL frames,
 * which are local to a node, never travel).
 */

/** Incremented on any incompatible change to a message layout. */
export const protocolVersion = 1;

/** Exchanged once per connection, before anything else (after the HMAC challenge passed). */
export interface Hello {
  type: 'hello';
  protocolVersion: number;
  shardId: string;
  from: string;
  term: number;
  lastLsn: number;
  lastTerm: number;
}

/**
 * Primary → replica: records after `prevLsn`. The replica accepts only if its log holds
 * `prevLsn` with term `prevTerm` and chain checksum `prevChecksum` (log matching, and byte
 * identity of everything before). `frames` may be empty (a probe). `commitLsn` is the primary's
 * commit point.
 */
export interface Append {
  type: 'append';
  term: number;
  from: string;
  prevLsn: number;
  prevTerm: number;
  prevChecksum: number;
  /** LSN of the last frame in `frames` (equals `prevLsn` when empty). */
  lastLsn: number;
  commitLsn: number;
  frames: Uint8Array;
}

/**
 * Replica → primary. `success`: the replica's log matches the primary's through `matchLsn`
 * and `ackLsn` (≤ matchLsn) of it is durable. Not `success`: the append did not fit; `hintLsn`
 * and `hintTerm` are the replica's last record, to pick the next `prevLsn` quickly.
 */
export interface AppendAck {
  type: 'append-ack';
  term: number;
  from: string;
  success: boolean;
  matchLsn: number;
  ackLsn: number;
  hintLsn: number;
  hintTerm: number;
}

export interface EligibleReplica {
  id: string;
  ackedLsn: number;
}

/**
 * Primary → replica, every heartbeat interval: the commit point and the eligible set with each
 * eligible replica's acked LSN (DESIGN §4). `seq` lets the primary match acks to rounds
 * (read-index reads and check-quorum count them).
 */
export interface Heartbeat {
  type: 'heartbeat';
  term: number;
  from: string;
  seq: number;
  commitLsn: number;
  lastLsn: number;
  eligible: EligibleReplica[];
}

export interface HeartbeatAck {
  type: 'heartbeat-ack';
  term: number;
  from: string;
  seq: number;
  /** Same meaning as in AppendAck: durable and known to match the primary's log. */
  ackLsn: number;
  lastLsn: number;
  lastTerm: number;
}

/** Primary → replica: it was granted (or lost) eligibility. */
export interface Eligibility {
  type: 'eligibility';
  term: number;
  from: string;
  granted: boolean;
}

/**
 * Primary → replica: full sync. The replica's next LSN is no longer in the primary's log, so it
 * receives committed state at `snapshotLsn` in `streams` key-range streams, then the log after.
 */
export interface SnapshotBegin {
  type: 'snapshot-begin';
  term: number;
  from: string;
  snapshotId: number;
  snapshotLsn: number;
  snapshotTerm: number;
  /** Chain checksum of the record at `snapshotLsn`: the replica's log resumes from it. */
  snapshotChecksum: number;
  streams: number;
  keys: number;
  bytes: number;
}

/**
 * One chunk of one stream: `entries` is a sequence of (u32 key length, key, u32 value length,
 * value) in key order. `done` marks the stream's last chunk. Streams 0..streams-1 are the key
 * ranges; stream `streams` carries the primary's request ids instead (encoding in
 * src/engine/full-sync-source.ts). `seq` counts from 1 in each stream.
 */
export interface SnapshotChunk {
  type: 'snapshot-chunk';
  term: number;
  from: string;
  snapshotId: number;
  stream: number;
  seq: number;
  done: boolean;
  entries: Uint8Array;
}

/**
 * Replica → primary: every chunk of `stream` up to `seq` is staged (cumulative); seq 0 answers
 * the SnapshotBegin. A repeated SnapshotBegin is answered with the replica's current state, so
 * the primary learns `installed` by repeating it (src/engine/full-sync.ts).
 */
export interface SnapshotAck {
  type: 'snapshot-ack';
  term: number;
  from: string;
  snapshotId: number;
  stream: number;
  seq: number;
  /** True once every stream is received and the snapshot is installed durably. */
  installed: boolean;
}

/**
 * Candidate → voter (DESIGN §4). A pre-vote (`preVote`) asks whether the voter would grant a
 * vote in `term` without changing anything on either side; a real vote request is sent only
 * after the candidate persisted `term` and its vote for itself.
 */
export interface VoteRequest {
  type: 'vote-request';
  term: number;
  from: string;
  lastLsn: number;
  lastTerm: number;
  preVote: boolean;
}

/** Voter → candidate: the answer to a VoteRequest of `term` (a real vote is persisted first). */
export interface VoteResponse {
  type: 'vote-response';
  term: number;
  from: string;
  granted: boolean;
  preVote: boolean;
}

export type PeerMessage =
  | Hello
  | Append
  | AppendAck
  | Heartbeat
  | HeartbeatAck
  | Eligibility
  | SnapshotBegin
  | SnapshotChunk
  | SnapshotAck
  | VoteRequest
  | VoteResponse;

export type PeerMessageType = PeerMessage['type'];
