/**
 * The fast paths of the RESP layer against their general forms: the parser's whole-command
 * path must accept and refuse exactly what the byte-at-a-time path does (seeded fuzz), and the
 * shared reply encoder must give the bytes `encodeReply` gives, never touching bytes it handed
 * out, whatever the interleaving of connections and pool boundaries.
 */
import { describe, expect, it } from 'vitest';
import { CommandLookup } from '../../src/server/commands/lookup.js';
import { commandTable } from '../../src/server/commands/table.js';
import { ReplyEncoder, copyBytesMax, encodeReply } from '../../src/server/resp/output.js';
import { RequestParser, type ParserLimits } from '../../src/server/resp/parser.js';
import { reply, type Reply } from '../../src/server/resp/reply.js';

const limits: ParserLimits = {
  bulkBytesMax: 40,
  argumentsMax: 6,
  inlineBytesMax: 16,
  commandBytesMax: 100,
};

/** xorshift32, seeded. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
}

/** Every command (as latin1 strings) and the error, if any, in the order the parser gave. */
function parseChunks(chunks: readonly Buffer[], parserLimits = limits): string[] {
  const parser = new RequestParser(parserLimits);
  const out: string[] = [];
  for (const chunk of chunks) {
    parser.push(chunk);
    for (let step = 0; step < 10_000; step++) {
      const args = parser.nextCommand();
      if (args !== null) {
        out.push(JSON.stringify(args.map((arg) => arg.toString('latin1'))));
        continue;
      }
      if (parser.failure !== null) out.push(`error: ${parser.failure}`);
      break;
    }
    if (parser.failure !== null) break;
  }
  return out;
}

/** A length header: usually right, sometimes with leading zeros, off by one or malformed. */
function header(next: () => number, type: string, value: number): string {
  const pick = next();
  if (pick < 0.7) return `${type}${value}\r\n`;
  if (pick < 0.78) return `${type}${'0'.repeat(1 + Math.floor(next() * 12))}${value}\r\n`;
  if (pick < 0.84) return `${type}${value + 1}\r\n`;
  if (pick < 0.88) return `${type}${value}\n`;
  if (pick < 0.91) return `${type}-1\r\n`;
  if (pick < 0.94) return `${type}${value}x\r\n`;
  if (pick < 0.97) return `${type}\r\n`;
  return `${type}${'9'.repeat(13)}\r\n`;
}

/** A pipeline of mostly valid multibulk commands, with some inline ones and some damage. */
function pipeline(seed: number): Buffer {
  const next = random(seed);
  let text = '';
  for (let command = 0; command < 12; command++) {
    if (next() < 0.1) {
      text += next() < 0.5 ? 'PING\r\n' : 'set a b\n';
      continue;
    }
    const count = Math.floor(next() * 8);
    text += header(next, '*', count);
    for (let index = 0; index < count; index++) {
      const length = Math.floor(next() * 48);
      const body = String.fromCharCode(...Array.from({ length }, () => 97 + (index % 26)));
      text += header(next, '$', length);
      text += next() < 0.97 ? `${body}\r\n` : `${body}\rX`;
    }
  }
  return Buffer.from(text, 'latin1');
}

describe('RequestParser whole-command path', () => {
  it('parses exactly as the byte-at-a-time path, on 2,000 seeded pipelines', () => {
    let commands = 0;
    let errors = 0;
    for (let seed = 1; seed <= 2_000; seed++) {
      const bytes = pipeline(seed);
      const whole = parseChunks([bytes]);
      const single = parseChunks(Array.from(bytes, (byte) => Buffer.from([byte])));
      expect(whole, `seed ${seed}`).toEqual(single);
      // Header lines longer than the inline limit are refused by both paths alike (the general
      // path's message for an overlong line depends on whether its end has arrived yet).
      const short = { ...limits, inlineBytesMax: 4 };
      const anyError = (lines: string[]) =>
        lines.map((line) => (line.startsWith('error') ? 'error' : line));
      expect(anyError(parseChunks([bytes], short)), `seed ${seed}, short lines`).toEqual(
        anyError(
          parseChunks(
            Array.from(bytes, (byte) => Buffer.from([byte])),
            short,
          ),
        ),
      );
      const next = random(seed + 7_919);
      const pieces: Buffer[] = [];
      for (let offset = 0; offset < bytes.length;) {
        const size = 1 + Math.floor(next() * 64);
        pieces.push(bytes.subarray(offset, offset + size));
        offset += size;
      }
      expect(parseChunks(pieces), `seed ${seed}, random chunks`).toEqual(single);
      commands += whole.filter((line) => !line.startsWith('error')).length;
      errors += whole.filter((line) => line.startsWith('error')).length;
    }
    // The fuzz reaches both outcomes often (it would prove little otherwise).
    expect(commands).toBeGreaterThan(2_000);
    expect(errors).toBeGreaterThan(500);
  });

  it('takes leading zeros and refuses 13 digits, as the general path does', () => {
    expect(parseChunks([Buffer.from('*02\r\n$003\r\nGET\r\n$1\r\nk\r\n')])).toEqual([
      JSON.stringify(['GET', 'k']),
    ]);
    expect(parseChunks([Buffer.from(`*1\r\n$${'0'.repeat(12)}3\r\nGET\r\n`)])).toEqual([
      'error: Protocol error: invalid bulk length',
    ]);
  });

  it('gives views of the received bytes, not copies', () => {
    const bytes = Buffer.from('*2\r\n$3\r\nSET\r\n$5\r\nvalue\r\n');
    const parser = new RequestParser(limits);
    parser.push(bytes);
    const args = parser.nextCommand();
    expect(args?.[1]?.buffer).toBe(bytes.buffer);
    expect(parser.bufferedBytes).toBe(0);
  });
});

function sample(next: () => number, depth = 0): Reply {
  const pick = Math.floor(next() * (depth > 2 ? 6 : 8));
  switch (pick) {
    case 0:
      return reply.ok();
    case 1:
      return reply.error(`ERR bad ${Math.floor(next() * 1000)}\r\nline`);
    case 2:
      return reply.integer(next() < 0.5 ? -Math.floor(next() * 1e9) : BigInt(2 ** 60));
    case 3:
      return reply.bulk(Buffer.alloc(Math.floor(next() * 3000), 0x61 + Math.floor(next() * 26)));
    case 4:
      return next() < 0.5 ? reply.nil() : reply.bulk('héllo wörld');
    case 5:
      return reply.verbatim('a\r\nb');
    case 6:
      return reply.array(
        Array.from({ length: Math.floor(next() * 5) }, () => sample(next, depth + 1)),
      );
    default:
      return reply.map([
        ['k', sample(next, depth + 1)],
        ['m', sample(next, depth + 1)],
      ]);
  }
}

describe('ReplyEncoder', () => {
  it('gives encodeReply bytes, and never rewrites bytes it handed out', () => {
    const encoder = new ReplyEncoder();
    const next = random(42);
    const handedOut: { chunks: Buffer[]; copy: Buffer }[] = [];
    for (let flush = 0; flush < 400; flush++) {
      const protocol = next() < 0.5 ? 2 : 3;
      const replies = Array.from({ length: 1 + Math.floor(next() * 40) }, () => sample(next));
      for (const value of replies) encoder.add(value, protocol);
      const chunks = encoder.take();
      const expected = Buffer.concat(replies.map((value) => encodeReply(value, protocol)));
      const copy = Buffer.concat(chunks);
      expect(copy.equals(expected), `flush ${flush}`).toBe(true);
      handedOut.push({ chunks, copy });
    }
    // Later flushes filled many fresh pools; the bytes of earlier ones are as they were.
    for (const { chunks, copy } of handedOut) expect(Buffer.concat(chunks).equals(copy)).toBe(true);
    expect(encoder.take()).toEqual([]);
  });

  it('sends a large bulk value as its own chunk, without copying it', () => {
    const encoder = new ReplyEncoder();
    const large = Buffer.alloc(copyBytesMax, 0x62);
    encoder.add(reply.ok(), 2);
    encoder.add(reply.bulk(large), 2);
    encoder.add(reply.integer(5), 2);
    const chunks = encoder.take();
    expect(chunks).toHaveLength(3);
    expect(chunks[1]).toBe(large);
    expect(Buffer.concat(chunks).toString('latin1')).toBe(
      `+OK\r\n$${copyBytesMax}\r\n${large.toString('latin1')}\r\n:5\r\n`,
    );
  });

  it('encodes null and OK per protocol', () => {
    expect(encodeReply(reply.nil(), 2).toString()).toBe('$-1\r\n');
    expect(encodeReply(reply.nil(), 3).toString()).toBe('_\r\n');
    expect(encodeReply(reply.simple('OK'), 3).toString()).toBe('+OK\r\n');
    expect(encodeReply(reply.bulk(Buffer.alloc(0)), 2).toString()).toBe('$0\r\n\r\n');
    expect(encodeReply(reply.bulk(Buffer.alloc(10)), 2).length).toBe(17);
  });
});

describe('CommandLookup', () => {
  it('finds every command by its name in any case, and nothing else', () => {
    const table = commandTable();
    const lookup = new CommandLookup(table);
    const next = random(7);
    for (let round = 0; round < 20; round++) {
      for (const [name, spec] of table) {
        const mixed = Array.from(name, (char) => (next() < 0.5 ? char.toUpperCase() : char)).join(
          '',
        );
        expect(lookup.find(Buffer.from(mixed, 'latin1')), mixed).toBe(spec);
        // One byte off, one byte more or less: no command (the last one found is not reused).
        const bytes = Buffer.from(name, 'latin1');
        const changed = Buffer.from(bytes);
        changed[changed.length - 1] = changed[changed.length - 1]! ^ 0x01;
        expect(lookup.find(changed)?.name, `${name} changed`).not.toBe(name);
        expect(lookup.find(bytes.subarray(0, bytes.length - 1))?.name).not.toBe(name);
        expect(lookup.find(Buffer.concat([bytes, Buffer.from('x')]))?.name).not.toBe(name);
      }
    }
    expect(lookup.find(Buffer.alloc(0))).toBeUndefined();
    expect(lookup.find(Buffer.from('S\u00c9T', 'latin1'))).toBeUndefined();
    expect(lookup.find(Buffer.alloc(33, 0x61))).toBeUndefined();
  });
});
