import { assert } from '../../core/assert.js';
import type { ProtocolVersion, Reply } from './reply.js';

/**
 * Encodes replies straight into bytes that go to a socket, with one allocation per many
 * replies: the server's connections share one pool buffer, each flush appends its replies
 * there and hands the region it filled to its socket as one chunk. A region is never written
 * again once handed out (the socket may still be sending it); a pool that runs out is replaced
 * by a fresh one and the old one lives as long as the chunks that view it.
 *
 * Sharing is safe because a flush is synchronous: `add` a connection's replies, then `take`
 * the chunks, with no other connection in between (callers never keep a region open across
 * an await).
 *
 * A large bulk value (at least `copyBytesMax`) is not copied: it becomes a chunk of its own
 * between the pool regions around it. Every byte of a region is written before it is handed
 * out (the pool comes from allocUnsafe; nothing unwritten may reach a socket).
 */

/** Bytes of one pool buffer. */
const poolBytes = 64 * 1024;
/** Bulk values this large or larger are sent as they are, not copied into the pool. */
export const copyBytesMax = 16 * 1024;

const crlf = '\r\n';
const okBytes = Buffer.from('+OK\r\n');
const null2Bytes = Buffer.from('$-1\r\n');
const nullArray2Bytes = Buffer.from('*-1\r\n');
const null3Bytes = Buffer.from('_\r\n');
const carriageReturn = 0x0d;
const lineFeed = 0x0a;

/** Simple strings and errors are one line: a CR or LF inside would split the reply. */
function oneLine(text: string): string {
  return text.includes('\r') || text.includes('\n') ? text.replace(/[\r\n]+/g, ' ') : text;
}

/** Decimal digits of a non-negative safe integer. */
function digitCount(value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}

/** Work left while encoding: a reply, or a reply's pieces still to write. */
type Step = Reply | readonly [Reply, Reply];

export class ReplyEncoder {
  #pool: Buffer = Buffer.allocUnsafe(poolBytes);
  /** Bytes of the pool written so far (handed out or in the open region). */
  #used = 0;
  /** Where the open region starts. */
  #start = 0;
  readonly #chunks: Buffer[] = [];

  /** Bytes added since the last `take` (approximate until then: regions not yet closed). */
  get pendingBytes(): number {
    let total = this.#used - this.#start;
    for (const chunk of this.#chunks) total += chunk.length;
    return total;
  }

  /** Appends the encoding of `value` in `protocol`. */
  add(value: Reply, protocol: ProtocolVersion): void {
    if (value.type === 'simple' && value.value === 'OK') {
      this.#copy(okBytes);
      return;
    }
    // Depth first with an explicit stack (no recursion): every reply is visited once.
    const stack: Step[] = [value];
    while (stack.length > 0) {
      const step = stack.pop()!;
      if (Array.isArray(step)) {
        const [key, item] = step as readonly [Reply, Reply];
        stack.push(item, key);
        continue;
      }
      this.#one(step as Reply, protocol, stack);
    }
  }

  /** The chunks holding everything added since the last `take`, in order; usually one. */
  take(): Buffer[] {
    this.#closeRegion();
    return this.#chunks.splice(0);
  }

  /** Encodes one reply; an array's or map's items go on `stack` (last pushed, first out). */
  #one(value: Reply, protocol: ProtocolVersion, stack: Step[]): void {
    switch (value.type) {
      case 'simple':
        this.#line('+', oneLine(value.value));
        return;
      case 'error':
        this.#line('-', oneLine(value.value));
        return;
      case 'integer':
        this.#text(`:${value.value}${crlf}`);
        return;
      case 'bulk':
        this.#bulk(value.value);
        return;
      case 'null':
        this.#copy(protocol === 3 ? null3Bytes : null2Bytes);
        return;
      case 'null-array':
        this.#copy(protocol === 3 ? null3Bytes : nullArray2Bytes);
        return;
      case 'verbatim':
        this.#verbatim(value.value, protocol);
        return;
      case 'array':
        this.#text(`*${value.value.length}${crlf}`);
        for (let index = value.value.length - 1; index >= 0; index--) {
          stack.push(value.value[index]!);
        }
        return;
      case 'map':
        this.#text(
          protocol === 3 ? `%${value.value.length}${crlf}` : `*${value.value.length * 2}${crlf}`,
        );
        for (let index = value.value.length - 1; index >= 0; index--) {
          stack.push(value.value[index]!);
        }
        return;
    }
  }

  #line(prefix: string, text: string): void {
    this.#text(`${prefix}${text}${crlf}`);
  }

  #verbatim(text: string, protocol: ProtocolVersion): void {
    if (protocol === 2) {
      this.#bulk(text);
      return;
    }
    this.#text(`=${Buffer.byteLength(text) + 4}${crlf}txt:${text}${crlf}`);
  }

  #bulk(value: Uint8Array | string): void {
    if (typeof value === 'string') {
      this.#text(`$${Buffer.byteLength(value)}${crlf}${value}${crlf}`);
      return;
    }
    const length = value.length;
    const headerBytes = digitCount(length) + 3;
    if (length >= copyBytesMax) {
      this.#bulkHeader(length, headerBytes);
      this.#closeRegion();
      this.#chunks.push(
        Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, length),
      );
      this.#copy(crlfBytes);
      return;
    }
    this.#reserve(headerBytes + length + 2);
    this.#bulkHeader(length, headerBytes);
    this.#pool.set(value, this.#used);
    this.#used += length;
    this.#pool[this.#used++] = carriageReturn;
    this.#pool[this.#used++] = lineFeed;
  }

  /** `$<length>\r\n`, `headerBytes` long, at the end of the open region. */
  #bulkHeader(length: number, headerBytes: number): void {
    this.#reserve(headerBytes);
    const pool = this.#pool;
    pool[this.#used] = 0x24;
    let index = this.#used + headerBytes - 3;
    for (let rest = length; ; rest = Math.floor(rest / 10)) {
      pool[index--] = 0x30 + (rest % 10);
      if (rest < 10) break;
    }
    assert(index === this.#used, 'the digits filled their room exactly');
    this.#used += headerBytes;
    pool[this.#used - 2] = carriageReturn;
    pool[this.#used - 1] = lineFeed;
  }

  #copy(bytes: Buffer): void {
    this.#reserve(bytes.length);
    this.#pool.set(bytes, this.#used);
    this.#used += bytes.length;
  }

  #text(text: string): void {
    this.#reserve(Buffer.byteLength(text));
    const written = this.#pool.write(text, this.#used, 'utf8');
    this.#used += written;
  }

  /** Makes room for `bytes` more in the open region, starting a new pool if needed. */
  #reserve(bytes: number): void {
    if (this.#used + bytes <= this.#pool.length) return;
    this.#closeRegion();
    this.#pool = Buffer.allocUnsafe(Math.max(poolBytes, bytes));
    this.#used = 0;
    this.#start = 0;
  }

  /** Hands the open region out as a chunk (if it holds anything). */
  #closeRegion(): void {
    if (this.#used === this.#start) return;
    assert(this.#used <= this.#pool.length, 'a region ends inside its pool');
    this.#chunks.push(this.#pool.subarray(this.#start, this.#used));
    this.#start = this.#used;
  }
}

const crlfBytes = Buffer.from(crlf);

/** One encoder for `encodeReply` (synchronous use only, like every encoder). */
const standalone = new ReplyEncoder();

/** The protocol bytes of one reply. */
export function encodeReply(value: Reply, protocol: ProtocolVersion): Buffer {
  standalone.add(value, protocol);
  const chunks = standalone.take();
  if (chunks.length === 1) return chunks[0]!;
  return Buffer.concat(chunks);
}
