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

/** The protocol bytes of one reply (encoded by resp/output.ts). */
export { encodeReply } from './output.js';
