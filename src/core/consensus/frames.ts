import { assert } from '../assert.js';
import { frameBytesFor, readU64 } from '../format/frame.js';
import { frameHeaderBytes, recordPayloadBytesMax } from '../limits.js';

/**
 * Record frames as replication handles them: a run of frames back to back, exactly the bytes
 * the primary wrote to its log. Here only the headers are peeked (LSN, term, chain); the log
 * verifies each frame's checksum and the chain before a replica writes a byte.
 */
export interface FramePeek {
  lsn: number;
  term: number;
  type: number;
  checksum: number;
  prevChecksum: number;
  offset: number;
  size: number;
}

/** The frames' headers, or a reason they are malformed (lengths, LSN order, alignment). */
export function peekFrames(frames: Uint8Array): FramePeek[] | string {
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  const peeks: FramePeek[] = [];
  let offset = 0;
  while (offset < frames.length) {
    if (frames.length - offset < frameHeaderBytes) return `truncated frame header at ${offset}`;
    const length = view.getUint32(offset + 8, true);
    if (length > recordPayloadBytesMax) return `frame length ${length} over the limit`;
    const size = frameBytesFor(length);
    if (size > frames.length - offset) return `frame at ${offset} runs past the message`;
    const lsn = readU64(view, offset + 24);
    const term = readU64(view, offset + 16);
    if (lsn < 1 || term < 0) return `frame at ${offset} has an out-of-range LSN or term`;
    const previous = peeks.at(-1);
    if (previous !== undefined && lsn !== previous.lsn + 1) return `LSN gap after ${previous.lsn}`;
    peeks.push({
      lsn,
      term,
      type: view.getUint8(offset + 12),
      checksum: view.getUint32(offset, true),
      prevChecksum: view.getUint32(offset + 4, true),
      offset,
      size,
    });
    offset += size;
  }
  return peeks;
}

/**
 * The terms of a log: where each term's records start. `termAt` answers for any LSN at or
 * after the base (the record before the log's first, whose term the log may not hold: then 0).
 */
export class TermIndex {
  /** Ascending by firstLsn and by term. */
  readonly #starts: { term: number; firstLsn: number }[] = [];
  #baseLsn: number;
  #baseTerm: number;

  constructor(base: { lsn: number; term: number }) {
    this.#baseLsn = base.lsn;
    this.#baseTerm = base.term;
  }

  get baseLsn(): number {
    return this.#baseLsn;
  }

  /** Records `term` for `lsn`, the log's next record. */
  note(lsn: number, term: number): void {
    const last = this.#starts.at(-1);
    assert(term >= (last?.term ?? this.#baseTerm), 'terms never go backwards in a log');
    if (last === undefined || term > last.term) this.#starts.push({ term, firstLsn: lsn });
  }

  /** The term of the record at `lsn` (0 for LSN 0; the base term below the first start). */
  termAt(lsn: number): number {
    if (lsn <= 0) return 0;
    for (let index = this.#starts.length - 1; index >= 0; index--) {
      const start = this.#starts[index];
      assert(start !== undefined, 'dense');
      if (start.firstLsn <= lsn) return start.term;
    }
    return this.#baseTerm;
  }

  /** First LSN of the term of the record at `lsn` (the base + 1 when unknown). */
  termStart(lsn: number): number {
    for (let index = this.#starts.length - 1; index >= 0; index--) {
      const start = this.#starts[index];
      assert(start !== undefined, 'dense');
      if (start.firstLsn <= lsn) return start.firstLsn;
    }
    return this.#baseLsn + 1;
  }

  /** Forgets records after `lsn` (suffix truncation). */
  truncateAfter(lsn: number): void {
    while ((this.#starts.at(-1)?.firstLsn ?? 0) > lsn) this.#starts.pop();
  }

  /** Restarts the index after a snapshot install: the log continues after `lsn`. */
  reset(base: { lsn: number; term: number }): void {
    this.#starts.length = 0;
    this.#baseLsn = base.lsn;
    this.#baseTerm = base.term;
  }
}

interface WindowChunk {
  firstLsn: number;
  lastLsn: number;
  bytes: Uint8Array;
  /** Offset of each record's frame in `bytes`, index = lsn - firstLsn. */
  offsets: readonly number[];
}

/**
 * The primary's most recent frames, kept in memory (bounded) so replicas that keep up are fed
 * without reading the disk. Older ranges come from the log on request.
 */
export class FrameWindow {
  readonly #chunks: WindowChunk[] = [];
  #head = 0;
  #bytes = 0;
  readonly #bytesMax: number;

  constructor(bytesMax: number) {
    this.#bytesMax = bytesMax;
  }

  /** First LSN held (Infinity when empty). */
  get firstLsn(): number {
    return this.#chunks[this.#head]?.firstLsn ?? Number.POSITIVE_INFINITY;
  }

  push(firstLsn: number, bytes: Uint8Array, offsets: readonly number[]): void {
    const last = this.#chunks.at(-1);
    assert(last === undefined || last.lastLsn + 1 === firstLsn, 'window chunks are contiguous');
    this.#chunks.push({ firstLsn, lastLsn: firstLsn + offsets.length - 1, bytes, offsets });
    this.#bytes += bytes.length;
    while (this.#bytes > this.#bytesMax && this.#head < this.#chunks.length - 1) {
      this.#bytes -= this.#chunks[this.#head]?.bytes.length ?? 0;
      this.#head += 1;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#chunks.length) {
      this.#chunks.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /**
   * Frames from `fromLsn` on, about `bytesMax` of them (at least one record), with the chain
   * checksum of the record before; null if `fromLsn` is not in the window.
   */
  slice(
    fromLsn: number,
    bytesMax: number,
  ): { frames: Uint8Array; lastLsn: number; prevChecksum: number } | null {
    const index = this.#find(fromLsn);
    if (index < 0) return null;
    const parts: Uint8Array[] = [];
    let bytes = 0;
    let lastLsn = fromLsn - 1;
    let prevChecksum = 0;
    for (let at = index; at < this.#chunks.length; at++) {
      const chunk = this.#chunks[at];
      assert(chunk !== undefined, 'dense');
      const startLsn = Math.max(fromLsn, chunk.firstLsn);
      const start = chunk.offsets[startLsn - chunk.firstLsn] ?? 0;
      if (parts.length === 0) {
        const view = new DataView(chunk.bytes.buffer, chunk.bytes.byteOffset);
        prevChecksum = view.getUint32(start + 4, true);
      }
      if (parts.length > 0 && bytes + chunk.bytes.length - start > bytesMax) break;
      parts.push(chunk.bytes.subarray(start));
      bytes += chunk.bytes.length - start;
      lastLsn = chunk.lastLsn;
    }
    const frames = parts.length === 1 ? (parts[0] as Uint8Array) : concat(parts, bytes);
    return { frames, lastLsn, prevChecksum };
  }

  #find(lsn: number): number {
    let low = this.#head;
    let high = this.#chunks.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const chunk = this.#chunks[middle];
      assert(chunk !== undefined, 'dense');
      if (lsn < chunk.firstLsn) high = middle - 1;
      else if (lsn > chunk.lastLsn) low = middle + 1;
      else return middle;
    }
    return -1;
  }
}

function concat(parts: Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
