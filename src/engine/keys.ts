import BTreeModule from 'sorted-btree';
import { InvalidError } from '../core/errors.js';
import { latin1Of } from '../core/latin1.js';

/**
 * Keys are raw bytes. In memory they are held as latin1 strings (one char per byte): exact,
 * compact (V8 stores them one byte per char), fast as Map keys, and they compare in byte order
 * with the ordinary string comparison, which is what scans need.
 */
export type KeyString = string;

// sorted-btree is CommonJS: Node's ESM loader hands over module.exports (class on `.default`),
// while bundler-style interop (vitest) hands over the class itself. Accept both.
type BTreeClass = typeof BTreeModule.default;
const loaded = BTreeModule as unknown as { default?: BTreeClass };
const BTree: BTreeClass = loaded.default ?? (BTreeModule as unknown as BTreeClass);
export type SortedKeys = InstanceType<typeof BTree<KeyString, undefined>>;

export function newSortedKeys(): SortedKeys {
  return new BTree<KeyString, undefined>();
}

/**
 * Accepts a string (encoded as UTF-8) or bytes; anything else is INVALID naming `field`. A
 * string's bytes come from Buffer's pool (a standalone small Uint8Array, as TextEncoder makes,
 * costs several times more): they are for reading at once, not for keeping.
 */
export function toBytes(value: unknown, field: string): Uint8Array {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return value;
  throw new InvalidError(`${field} must be a string or a Uint8Array`);
}

/** The key's bytes as a latin1 string (see core/latin1.ts). */
export function keyString(bytes: Uint8Array): KeyString {
  return latin1Of(bytes, 0, bytes.length);
}

const asciiOnly = /^[\x00-\x7f]*$/;

/**
 * The KeyString of a key given as a string or bytes. An ASCII string's UTF-8 bytes are its
 * own char codes, so it is its own KeyString: no encoding, no allocation (the read path).
 */
export function keyStringOf(input: unknown, field: string): { name: KeyString; bytes: number } {
  if (typeof input === 'string' && asciiOnly.test(input))
    return { name: input, bytes: input.length };
  const bytes = toBytes(input, field);
  return { name: keyString(bytes), bytes: bytes.length };
}

/**
 * The KeyString of a key given as a string or bytes, like `keyStringOf`. A KeyString has one
 * char per byte, so its length is the key's size in bytes.
 */
export function keyNameOf(input: unknown, field: string): KeyString {
  if (typeof input === 'string' && asciiOnly.test(input)) return input;
  return keyString(toBytes(input, field));
}

export function keyBytes(key: KeyString): Buffer {
  return Buffer.from(key, 'latin1');
}

/**
 * Committed and pending values are held the same way as keys: a latin1 string, one char per
 * byte. Turning the caller's bytes into one is the copy the engine needs anyway (the caller may
 * change its buffer later), and it is several times cheaper than a standalone Uint8Array (an
 * ArrayBuffer with an off-heap backing store: measured at about a microsecond each, plus its
 * garbage collection). It is also smaller: one heap object of 16 bytes plus the bytes.
 */
export type ValueString = string;

/** The value's bytes as a ValueString (a copy: later changes to `bytes` do not show). */
export function valueString(bytes: Uint8Array): ValueString {
  return keyString(bytes);
}

/** A fresh Buffer with a ValueString's bytes (the caller may keep and change it). */
export function valueBytes(value: ValueString): Buffer {
  return Buffer.from(value, 'latin1');
}
