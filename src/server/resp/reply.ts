/**
 * Replies as values, and their encoding in RESP2 or RESP3 (chosen per connection by HELLO).
 *
 * Commands build `Reply` values and never write protocol bytes themselves, so one command
 * serves both protocol versions: a map is a RESP3 `%` map or, in RESP2, a flat array of
 * alternating keys and values; null is `_` or `$-1`; verbatim text is `=` or a bulk string.
 */

export type Reply =
  | { type: 'simple'; value: string }
  | { type: 'error'; value: string }
  | { type: 'integer'; value: number | bigint }
  | { type: 'bulk'; value: Uint8Array | string }
  | { type: 'null' }
  | { type: 'null-array' }
  | { type: 'array'; value: readonly Reply[] }
  | { type: 'map'; value: readonly (readonly [Reply, Reply])[] }
  | { type: 'verbatim'; value: string };

export type ProtocolVersion = 2 | 3;

const okReply: Reply = { type: 'simple', value: 'OK' };
const nullReply: Reply = { type: 'null' };

export const reply = {
  ok: (): Reply => okReply,
  simple: (value: string): Reply => ({ type: 'simple', value }),
  /** `line` starts with the error prefix: `ERR ...`, `NOAUTH ...`, `READONLY ...`. */
  error: (line: string): Reply => ({ type: 'error', value: line }),
  integer: (value: number | bigint): Reply => ({ type: 'integer', value }),
  bulk: (value: Uint8Array | string): Reply => ({ type: 'bulk', value }),
  nil: (): Reply => nullReply,
  array: (value: readonly Reply[]): Reply => ({ type: 'array', value }),
  /** A map whose keys are text. */
  map: (entries: readonly (readonly [string, Reply])[]): Reply => ({
    type: 'map',
    value: entries.map(([key, value]) => [{ type: 'bulk', value: key }, value] as const),
  }),
  verbatim: (value: string): Reply => ({ type: 'verbatim', value }),
  /** A bulk string, or null for a missing value. */
  bulkOrNil: (value: Uint8Array | string | null): Reply =>
    value === null ? nullReply : { type: 'bulk', value },
};

const crlf = '\r\n';
const constants = {
  ok: Buffer.from('+OK\r\n'),
  null2: Buffer.from('$-1\r\n'),
  nullArray2: Buffer.from('*-1\r\n'),
  null3: Buffer.from('_\r\n'),
};

/** Simple strings and errors are one line: a CR or LF inside would split the reply. */
function oneLine(text: string): string {
  return /[\r\n]/.test(text) ? text.replace(/[\r\n]+/g, ' ') : text;
}

/** Encodes `value` into `parts` (strings are UTF-8 encoded by the caller's Buffer.concat). */
function encodeInto(value: Reply, protocol: ProtocolVersion, parts: (Buffer | string)[]): void {
  switch (value.type) {
    case 'simple':
      parts.push(`+${oneLine(value.value)}${crlf}`);
      return;
    case 'error':
      parts.push(`-${oneLine(value.value)}${crlf}`);
      return;
    case 'integer':
      parts.push(`:${value.value}${crlf}`);
      return;
    case 'bulk':
      encodeBulk(value.value, parts);
      return;
    case 'null':
      parts.push(protocol === 3 ? constants.null3 : constants.null2);
      return;
    case 'null-array':
      parts.push(protocol === 3 ? constants.null3 : constants.nullArray2);
      return;
    case 'verbatim':
      encodeVerbatim(value.value, protocol, parts);
      return;
    case 'array':
      parts.push(`*${value.value.length}${crlf}`);
      for (const item of value.value) encodeInto(item, protocol, parts);
      return;
    case 'map':
      parts.push(
        protocol === 3 ? `%${value.value.length}${crlf}` : `*${value.value.length * 2}${crlf}`,
      );
      for (const [key, item] of value.value) {
        encodeInto(key, protocol, parts);
        encodeInto(item, protocol, parts);
      }
      return;
  }
}

function encodeBulk(value: Uint8Array | string, parts: (Buffer | string)[]): void {
  if (typeof value === 'string') {
    parts.push(`$${Buffer.byteLength(value)}${crlf}${value}${crlf}`);
    return;
  }
  parts.push(`$${value.length}${crlf}`);
  parts.push(
    Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length),
  );
  parts.push(crlf);
}

function encodeVerbatim(text: string, protocol: ProtocolVersion, parts: (Buffer | string)[]): void {
  if (protocol === 2) {
    encodeBulk(text, parts);
    return;
  }
  parts.push(`=${Buffer.byteLength(text) + 4}${crlf}txt:${text}${crlf}`);
}

/** The protocol bytes of one reply. */
export function encodeReply(value: Reply, protocol: ProtocolVersion): Buffer {
  if (value === okReply) return constants.ok;
  if (value.type === 'null') return protocol === 3 ? constants.null3 : constants.null2;
  const parts: (Buffer | string)[] = [];
  encodeInto(value, protocol, parts);
  if (parts.length === 1) {
    const only = parts[0]!;
    return typeof only === 'string' ? Buffer.from(only) : only;
  }
  return Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part)));
}
