/**
 * An incremental parser of RESP *requests* (what a client sends to a server), with strict
 * limits checked before anything is allocated.
 *
 * Why not an npm parser: the maintained ones (`redis-parser`, the decoder inside
 * `@redis/client`, `respjs`) parse *replies* for clients. None of them accepts inline commands,
 * none bounds a bulk length or the bytes it buffers (a `$536870912` header makes them wait for,
 * and keep, half a gigabyte), and none reports a protocol error in a way that lets a server
 * answer and close just that client. A request is only an array of bulk strings or one inline
 * line, so the parser is small; docs/server.md says the same.
 *
 * Two request forms (as Redis accepts them):
 *
 *     *<count>\r\n  then <count> times  $<length>\r\n<length bytes>\r\n      (multibulk)
 *     SET key "a value"\n                                                  (inline, telnet)
 *
 * Memory: the bytes of a bulk argument arrive into a list of chunk views and are joined once
 * when complete, so a large value received in many small chunks costs O(size), never
 * O(size × chunks). Unparsed bytes are held only while a command is incomplete; what one
 * command may hold is bounded by `commandBytesMax`, and a line without its terminator by
 * `inlineBytesMax`.
 *
 * Speed: a pipelined client sends many whole commands per socket read, so a multibulk command
 * that is entirely in the buffer and well-formed is read in one pass over its bytes (lengths
 * parsed from the bytes, each argument one view of the buffer, no strings, no regular
 * expressions). Anything else (a command cut by the end of the buffer, a malformed or
 * over-limit header) goes through the general path below, which has the last word on errors,
 * so both paths accept exactly the same input.
 */

export interface ParserLimits {
  /** Largest bulk argument, in bytes (Redis: proto-max-bulk-len). */
  bulkBytesMax: number;
  /** Most arguments in one command, name included. */
  argumentsMax: number;
  /** Longest inline command or header line, in bytes, terminator excluded. */
  inlineBytesMax: number;
  /** Most argument bytes in one command. */
  commandBytesMax: number;
}

export type ParseResult =
  { kind: 'command'; args: Buffer[] } | { kind: 'incomplete' } | { kind: 'error'; message: string };

const incomplete: ParseResult = { kind: 'incomplete' };
const empty = Buffer.alloc(0);
const asterisk = 0x2a;
const dollar = 0x24;
const carriageReturn = 0x0d;
const lineFeed = 0x0a;
/** Most digits of a length in a header (as `parseLength` allows). */
const headerDigitsMax = 12;

/**
 * Feed socket chunks with `push`, then call `next` until it answers `incomplete`. After an
 * `error` the parser stays failed: the connection must answer the error and close.
 */
export class RequestParser {
  readonly #limits: ParserLimits;
  #buffer: Buffer = empty;
  #offset = 0;
  /** Arguments still expected by the multibulk command being read, or -1 between commands. */
  #argumentsExpected = -1;
  #args: Buffer[] = [];
  #commandBytes = 0;
  /** Length of the bulk argument being read, or -1 when its header is next. */
  #bulkLength = -1;
  #bulkParts: Buffer[] = [];
  #bulkReceived = 0;
  #failure: string | null = null;
  /** Where the header `#header` read last ends (the offset after its LF). */
  #headerEnd = 0;

  constructor(limits: ParserLimits) {
    this.#limits = limits;
  }

  /** Bytes received and not yet returned as part of a command. */
  get bufferedBytes(): number {
    return this.#buffer.length - this.#offset + this.#bulkReceived;
  }

  push(chunk: Buffer): void {
    if (this.#failure !== null || chunk.length === 0) return;
    if (this.#offset >= this.#buffer.length) {
      this.#buffer = chunk;
    } else {
      this.#buffer = Buffer.concat([this.#buffer.subarray(this.#offset), chunk]);
    }
    this.#offset = 0;
  }

  /** Why the parser failed (`Protocol error: ...`), or null while it has not. */
  get failure(): string | null {
    return this.#failure;
  }

  next(): ParseResult {
    const args = this.nextCommand();
    if (args !== null) return { kind: 'command', args };
    if (this.#failure !== null) return { kind: 'error', message: this.#failure };
    return incomplete;
  }

  /**
   * `next` without the result object: the next command's arguments, or null when the input
   * runs out or the parser failed (then `failure` says why). Arguments are views of the
   * received bytes, valid as long as the caller keeps them.
   */
  nextCommand(): Buffer[] | null {
    if (this.#failure !== null) return null;
    for (;;) {
      if (this.#argumentsExpected < 0) {
        if (this.#buffer[this.#offset] === asterisk) {
          const whole = this.#wholeCommand();
          if (whole !== null) return whole;
        }
        const start = this.#startCommand();
        if (start !== null) return start.kind === 'command' ? start.args : null;
        if (this.#argumentsExpected < 0) continue;
      }
      const bulk = this.#readArguments();
      if (bulk !== null) return null;
      const args = this.#args;
      this.#args = [];
      this.#argumentsExpected = -1;
      this.#commandBytes = 0;
      return args;
    }
  }

  /**
   * The fast path: a multibulk command that lies whole in the buffer, with every header
   * well-formed and within the limits, read in one pass. Null (nothing consumed) for anything
   * else; the general path then reads it, or reports what is wrong with it.
   */
  #wholeCommand(): Buffer[] | null {
    const buffer = this.#buffer;
    const limits = this.#limits;
    const count = this.#header(this.#offset + 1);
    if (count < 1 || count > limits.argumentsMax) return null;
    let position = this.#headerEnd;
    const args: Buffer[] = [];
    let bytes = 0;
    for (let index = 0; index < count; index++) {
      if (buffer[position] !== dollar) return null;
      const length = this.#header(position + 1);
      if (length < 0 || length > limits.bulkBytesMax) return null;
      bytes += length;
      if (bytes > limits.commandBytesMax) return null;
      const start = this.#headerEnd;
      const end = start + length;
      if (end + 2 > buffer.length) return null;
      if (buffer[end] !== carriageReturn || buffer[end + 1] !== lineFeed) return null;
      args.push(buffer.subarray(start, end));
      position = end + 2;
    }
    this.#offset = position;
    return args;
  }

  /**
   * The number in the header whose digits start at `position`: 1 to 12 decimal digits ending
   * in CRLF, within a line of at most `inlineBytesMax` bytes (counting its type byte and CR,
   * as `#readLine` does); `#headerEnd` is then the offset after the LF. -1 for anything else.
   */
  #header(position: number): number {
    const buffer = this.#buffer;
    const end = Math.min(buffer.length, position + headerDigitsMax);
    let value = 0;
    let index = position;
    for (; index < end; index++) {
      const digit = buffer[index]! - 0x30;
      if (digit < 0 || digit > 9) break;
      value = value * 10 + digit;
    }
    const digits = index - position;
    if (digits === 0 || digits + 2 > this.#limits.inlineBytesMax) return -1;
    if (buffer[index] !== carriageReturn || buffer[index + 1] !== lineFeed) return -1;
    this.#headerEnd = index + 2;
    return value;
  }

  #fail(message: string): ParseResult {
    this.#failure = `Protocol error: ${message}`;
    this.#buffer = empty;
    this.#offset = 0;
    this.#args = [];
    this.#bulkParts = [];
    return { kind: 'error', message: this.#failure };
  }

  /**
   * Reads what starts a command. Returns a result to hand out (a whole inline command,
   * incomplete, an error), or null with `#argumentsExpected` set (multibulk header read) or
   * left at -1 (an empty command was skipped, as Redis skips `*0` and blank lines).
   */
  #startCommand(): ParseResult | null {
    if (this.#offset >= this.#buffer.length) return incomplete;
    if (this.#buffer[this.#offset] !== asterisk) return this.#readInline();
    const line = this.#readLine();
    if (line === null) return this.#lineIncomplete('too big mbulk count string');
    if (line === 'invalid') return this.#fail('invalid multibulk length');
    const count = parseLength(line);
    if (count === null) return this.#fail('invalid multibulk length');
    // `*0` and `*-1` are empty commands; Redis skips them, and so do we.
    if (count > this.#limits.argumentsMax) return this.#fail('invalid multibulk length');
    if (count > 0) this.#argumentsExpected = count;
    return null;
  }

  /** Reads the bulk arguments of a multibulk command; null once all of them are in. */
  #readArguments(): ParseResult | null {
    while (this.#args.length < this.#argumentsExpected) {
      if (this.#bulkLength < 0) {
        const header = this.#readBulkHeader();
        if (header !== null) return header;
      }
      const body = this.#readBulkBody();
      if (body !== null) return body;
    }
    return null;
  }

  #readBulkHeader(): ParseResult | null {
    if (this.#offset >= this.#buffer.length) return incomplete;
    const first = this.#buffer[this.#offset];
    if (first !== dollar) {
      return this.#fail(`expected '$', got '${String.fromCharCode(first ?? 0)}'`);
    }
    const line = this.#readLine();
    if (line === null) return this.#lineIncomplete('too big bulk count string');
    if (line === 'invalid') return this.#fail('invalid bulk length');
    const length = parseLength(line);
    if (length === null || length < 0 || length > this.#limits.bulkBytesMax) {
      return this.#fail('invalid bulk length');
    }
    this.#commandBytes += length;
    if (this.#commandBytes > this.#limits.commandBytesMax) {
      return this.#fail(`command larger than ${this.#limits.commandBytesMax} bytes`);
    }
    this.#bulkLength = length;
    this.#bulkParts = [];
    this.#bulkReceived = 0;
    return null;
  }

  #readBulkBody(): ParseResult | null {
    const available = this.#buffer.length - this.#offset;
    const take = Math.min(this.#bulkLength - this.#bulkReceived, available);
    if (take > 0) {
      this.#bulkParts.push(this.#buffer.subarray(this.#offset, this.#offset + take));
      this.#offset += take;
      this.#bulkReceived += take;
    }
    if (this.#bulkReceived < this.#bulkLength) {
      // Everything buffered went into the argument: the next chunk starts a fresh buffer.
      this.#buffer = empty;
      this.#offset = 0;
      return incomplete;
    }
    if (this.#buffer.length - this.#offset < 2) return incomplete;
    if (
      this.#buffer[this.#offset] !== carriageReturn ||
      this.#buffer[this.#offset + 1] !== lineFeed
    ) {
      return this.#fail('bulk argument not terminated by CRLF');
    }
    this.#offset += 2;
    const parts = this.#bulkParts;
    this.#args.push(parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.#bulkLength));
    this.#bulkParts = [];
    this.#bulkReceived = 0;
    this.#bulkLength = -1;
    return null;
  }

  /** A header line is not complete yet: fine unless it is already longer than allowed. */
  #lineIncomplete(message: string): ParseResult {
    if (this.#buffer.length - this.#offset > this.#limits.inlineBytesMax)
      return this.#fail(message);
    return incomplete;
  }

  /**
   * The CRLF-terminated line at the offset, without its first byte (`*` or `$`), consuming
   * it; null if the terminator has not arrived; 'invalid' for a bare LF or an overlong line.
   */
  #readLine(): string | null | 'invalid' {
    const end = this.#buffer.indexOf(lineFeed, this.#offset);
    if (end < 0) return null;
    if (end - this.#offset > this.#limits.inlineBytesMax) return 'invalid';
    if (end === this.#offset || this.#buffer[end - 1] !== carriageReturn) return 'invalid';
    const line = this.#buffer.toString('latin1', this.#offset + 1, end - 1);
    this.#offset = end + 1;
    return line;
  }

  #readInline(): ParseResult | null {
    const end = this.#buffer.indexOf(lineFeed, this.#offset);
    if (end < 0) return this.#lineIncomplete('too big inline request');
    if (end - this.#offset > this.#limits.inlineBytesMax)
      return this.#fail('too big inline request');
    const lineEnd = end > this.#offset && this.#buffer[end - 1] === carriageReturn ? end - 1 : end;
    const line = this.#buffer.subarray(this.#offset, lineEnd);
    this.#offset = end + 1;
    const args = splitInline(line);
    if (args === null) return this.#fail('unbalanced quotes in request');
    if (args.length === 0) return null;
    if (args.length > this.#limits.argumentsMax) return this.#fail('too many arguments');
    return { kind: 'command', args };
  }
}

/** A decimal length of at most 12 digits, or -1; null for anything else. */
function parseLength(text: string): number | null {
  if (text === '-1') return -1;
  return /^\d{1,12}$/.test(text) ? Number(text) : null;
}

const space = 0x20;
const tab = 0x09;
const doubleQuote = 0x22;
const singleQuote = 0x27;
const backslash = 0x5c;

const escapes: Record<number, number> = {
  0x6e: 0x0a,
  0x72: 0x0d,
  0x74: 0x09,
  0x62: 0x08,
  0x61: 0x07,
};

/**
 * Splits an inline command into arguments like Redis's sdssplitargs: blanks separate, "double
 * quotes" take \n \r \t \b \a \xHH and \" escapes, 'single quotes' take \'. A closing quote
 * must be followed by a blank or the end. Null if the quotes do not balance.
 */
export function splitInline(line: Buffer): Buffer[] | null {
  const args: Buffer[] = [];
  let index = 0;
  while (index < line.length) {
    const byte = line[index]!;
    if (byte === space || byte === tab) {
      index++;
      continue;
    }
    const token =
      byte === doubleQuote || byte === singleQuote
        ? readQuoted(line, index)
        : readBare(line, index);
    if (token === null) return null;
    args.push(token.value);
    index = token.next;
  }
  return args;
}

function readBare(line: Buffer, start: number): { value: Buffer; next: number } {
  let end = start;
  while (end < line.length && line[end] !== space && line[end] !== tab) end++;
  return { value: Buffer.from(line.subarray(start, end)), next: end };
}

function readQuoted(line: Buffer, start: number): { value: Buffer; next: number } | null {
  const quote = line[start]!;
  const bytes: number[] = [];
  let index = start + 1;
  while (index < line.length) {
    const byte = line[index]!;
    if (byte === quote) {
      const after = line[index + 1];
      if (after !== undefined && after !== space && after !== tab) return null;
      return { value: Buffer.from(bytes), next: index + 1 };
    }
    if (byte === backslash && index + 1 < line.length) {
      const escaped = line[index + 1]!;
      if (quote === doubleQuote && escaped === 0x78 && index + 3 < line.length) {
        const hex = line.toString('latin1', index + 2, index + 4);
        if (/^[0-9a-fA-F]{2}$/.test(hex)) {
          bytes.push(parseInt(hex, 16));
          index += 4;
          continue;
        }
      }
      if (quote === doubleQuote || escaped === singleQuote) {
        bytes.push(quote === doubleQuote ? (escapes[escaped] ?? escaped) : escaped);
        index += 2;
        continue;
      }
    }
    bytes.push(byte);
    index++;
  }
  return null;
}
