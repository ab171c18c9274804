/**
 * Unit tests of the RESP pieces: the request parser (every byte split, every limit, every
 * malformed frame), the reply encoder in RESP2 and RESP3, the client's reply parser, globs and
 * SCAN cursors.
 */
import { describe, expect, it } from 'vitest';
import { ScanCursors } from '../../src/server/cursors.js';
import { globMatch, literalPrefix } from '../../src/server/glob.js';
import {
  encodeCommand,
  parseReply,
  RespErrorReply,
  type RespValue,
} from '../../src/server/resp/client.js';
import { RequestParser, splitInline, type ParserLimits } from '../../src/server/resp/parser.js';
import { encodeReply, reply } from '../../src/server/resp/reply.js';

const limits: ParserLimits = {
  bulkBytesMax: 1024,
  argumentsMax: 16,
  inlineBytesMax: 64,
  commandBytesMax: 4096,
};

function parseAll(parser: RequestParser): (string[] | string)[] {
  const out: (string[] | string)[] = [];
  for (let step = 0; step < 10_000; step++) {
    const result = parser.next();
    if (result.kind === 'incomplete') return out;
    if (result.kind === 'error') {
      out.push(result.message);
      return out;
    }
    out.push(result.args.map((arg) => arg.toString('latin1')));
  }
  throw new Error('parser did not settle');
}

function parse(input: string | Buffer, parserLimits = limits): (string[] | string)[] {
  const parser = new RequestParser(parserLimits);
  parser.push(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
  return parseAll(parser);
}

describe('RequestParser', () => {
  const pipeline =
    '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva\r\nl\r\n' +
    'PING\r\n' +
    '*0\r\n' +
    '*-1\r\n' +
    '\r\n' +
    '*2\r\n$3\r\nGET\r\n$0\r\n\r\n' +
    "echo \"a b\\x41\\n\" 'it\\'s'\n";
  const expected = [['SET', 'k', 'va\r\nl'], ['PING'], ['GET', ''], ['echo', 'a bA\n', "it's"]];

  it('parses multibulk and inline commands, skipping empty ones', () => {
    expect(parse(pipeline)).toEqual(expected);
  });

  it('gives the same commands however the bytes are split', () => {
    const bytes = Buffer.from(pipeline, 'latin1');
    for (const size of [1, 2, 3, 5, 7, 13]) {
      const parser = new RequestParser(limits);
      const commands: (string[] | string)[] = [];
      for (let offset = 0; offset < bytes.length; offset += size) {
        parser.push(bytes.subarray(offset, offset + size));
        commands.push(...parseAll(parser));
      }
      expect(commands, `chunks of ${size}`).toEqual(expected);
      expect(parser.bufferedBytes).toBe(0);
    }
  });

  it('joins a large bulk argument received in many chunks', () => {
    const value = Buffer.alloc(1000, 0x61);
    const frame = Buffer.concat([
      Buffer.from('*2\r\n$4\r\nECHO\r\n$1000\r\n'),
      value,
      Buffer.from('\r\n'),
    ]);
    const parser = new RequestParser(limits);
    const results: (string[] | string)[] = [];
    for (let offset = 0; offset < frame.length; offset += 10) {
      parser.push(frame.subarray(offset, offset + 10));
      results.push(...parseAll(parser));
    }
    expect(results).toEqual([['ECHO', value.toString('latin1')]]);
  });

  it('refuses oversized and malformed frames before allocating', () => {
    const cases: [string, RegExp][] = [
      ['*1\r\n$536870912\r\n', /invalid bulk length/],
      ['*1\r\n$1025\r\n', /invalid bulk length/],
      ['*17\r\n', /invalid multibulk length/],
      ['*1x\r\n', /invalid multibulk length/],
      ['*1\r\n$-1\r\n', /invalid bulk length/],
      ['*1\r\n$abc\r\n', /invalid bulk length/],
      ['*1\r\nfoo\r\n', /expected '\$', got 'f'/],
      ['*1\r\n$3\r\nabcXY', /not terminated by CRLF/],
      ['*1\n', /invalid multibulk length/],
      [`${'x'.repeat(65)}`, /too big inline request/],
      [`*${'1'.repeat(70)}`, /too big mbulk count string/],
      ['GET "unbalanced\r\n', /unbalanced quotes/],
      ['GET "a"b\r\n', /unbalanced quotes/],
      [`${'a '.repeat(17)}\r\n`, /too many arguments/],
    ];
    for (const [input, message] of cases) {
      const result = parse(input);
      expect(result, JSON.stringify(input)).toHaveLength(1);
      expect(result[0], JSON.stringify(input)).toMatch(/^Protocol error: /);
      expect(result[0], JSON.stringify(input)).toMatch(message);
    }
  });

  it('bounds the bytes of one command, and stays failed after an error', () => {
    const parser = new RequestParser({ ...limits, commandBytesMax: 1500 });
    parser.push(Buffer.from('*3\r\n$3\r\nSET\r\n$1000\r\n'));
    parser.push(Buffer.alloc(1000, 0x62));
    parser.push(Buffer.from('\r\n$1000\r\n'));
    const results = parseAll(parser);
    expect(results).toEqual(['Protocol error: command larger than 1500 bytes']);
    parser.push(Buffer.from('PING\r\n'));
    expect(parser.next().kind).toBe('error');
  });

  it('splits inline commands like sdssplitargs', () => {
    const split = (line: string) => splitInline(Buffer.from(line))?.map((arg) => arg.toString());
    expect(split('  set  a   b ')).toEqual(['set', 'a', 'b']);
    expect(split('"\\t\\r" \'\\n\'')).toEqual(['\t\r', '\\n']);
    expect(splitInline(Buffer.from('"x'))).toBeNull();
    expect(split('')).toEqual([]);
  });
});

describe('reply encoding', () => {
  it('encodes every reply type in RESP2 and RESP3', () => {
    const value = reply.array([
      reply.ok(),
      reply.error('ERR bad\r\nthing'),
      reply.integer(-7n),
      reply.bulk('héllo'),
      reply.bulk(Buffer.from([0, 1])),
      reply.nil(),
      { type: 'null-array' },
      reply.map([['k', reply.integer(1)]]),
      reply.verbatim('a:b\r\n'),
    ]);
    expect(encodeReply(value, 2).toString('latin1')).toBe(
      '*9\r\n+OK\r\n-ERR bad thing\r\n:-7\r\n$6\r\nh\u00c3\u00a9llo\r\n$2\r\n\u0000\u0001\r\n' +
        '$-1\r\n*-1\r\n*2\r\n$1\r\nk\r\n:1\r\n$5\r\na:b\r\n\r\n',
    );
    expect(encodeReply(value, 3).toString('latin1')).toBe(
      '*9\r\n+OK\r\n-ERR bad thing\r\n:-7\r\n$6\r\nh\u00c3\u00a9llo\r\n$2\r\n\u0000\u0001\r\n' +
        '_\r\n_\r\n%1\r\n$1\r\nk\r\n:1\r\n=9\r\ntxt:a:b\r\n\r\n',
    );
  });

  it('round-trips through the client parser', () => {
    const value = reply.array([
      reply.simple('PONG'),
      reply.map([['a', reply.array([reply.bulk('x'), reply.nil()])]]),
      reply.error('NOREPLICAS not enough'),
      reply.verbatim('text'),
    ]);
    for (const protocol of [2, 3] as const) {
      const bytes = encodeReply(value, protocol);
      const parsed = parseReply(bytes, 0);
      expect(parsed?.next).toBe(bytes.length);
      const items = parsed?.value as RespValue[];
      expect(items[0]).toBe('PONG');
      expect(items[2]).toBeInstanceOf(RespErrorReply);
      expect((items[2] as RespErrorReply).prefix).toBe('NOREPLICAS');
      if (protocol === 3) {
        expect(items[1]).toEqual(new Map([['a', [Buffer.from('x'), null]]]));
        expect(items[3]).toBe('text');
      }
      // Every proper prefix of the bytes is incomplete, never an error.
      for (let cut = 0; cut < bytes.length; cut++) {
        expect(parseReply(bytes.subarray(0, cut), 0)).toBeNull();
      }
    }
  });

  it('encodes commands as arrays of bulk strings', () => {
    expect(encodeCommand(['SET', 'k', Buffer.from('v')]).toString()).toBe(
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n',
    );
  });
});

describe('glob', () => {
  const match = (pattern: string, subject: string) =>
    globMatch(Buffer.from(pattern), Buffer.from(subject));

  it('matches like Redis', () => {
    expect(match('*', 'anything')).toBe(true);
    expect(match('user:*', 'user:1')).toBe(true);
    expect(match('user:*', 'users')).toBe(false);
    expect(match('h?llo', 'hello')).toBe(true);
    expect(match('h[ae]llo', 'hallo')).toBe(true);
    expect(match('h[^e]llo', 'hello')).toBe(false);
    expect(match('h[a-c]llo', 'hbllo')).toBe(true);
    expect(match('a\\*b', 'a*b')).toBe(true);
    expect(match('a\\*b', 'axb')).toBe(false);
    expect(match('*a*b*c*', 'xxaxxbxxcxx')).toBe(true);
    expect(match('*a*b*c*', 'xxaxxcxxbxx')).toBe(false);
    expect(match('', '')).toBe(true);
    expect(match('a*', '')).toBe(false);
  });

  it('finds the literal prefix a scan can start from', () => {
    expect(literalPrefix(Buffer.from('user:*:name')).toString()).toBe('user:');
    expect(literalPrefix(Buffer.from('a\\*b*')).toString()).toBe('a*b');
    expect(literalPrefix(Buffer.from('[ab]*')).toString()).toBe('');
  });

  it('costs at most pattern × subject steps on a hostile pattern', () => {
    const subject = Buffer.from('a'.repeat(5000));
    const pattern = Buffer.from(`${'*a'.repeat(50)}b`);
    expect(globMatch(pattern, subject)).toBe(false);
  });
});

describe('ScanCursors', () => {
  it('remembers a bounded number of cursors, oldest forgotten first', () => {
    const cursors = new ScanCursors(2);
    const first = cursors.save(Buffer.from('a'));
    const second = cursors.save(Buffer.from('b'));
    expect(cursors.load(first)?.toString()).toBe('a');
    const third = cursors.save(Buffer.from('c'));
    expect(cursors.load(first)).toBeNull();
    expect(cursors.load(second)?.toString()).toBe('b');
    expect(cursors.load(third)?.toString()).toBe('c');
    expect(cursors.load('0')).toBeNull();
    expect(cursors.size).toBe(2);
  });
});
