import { InvalidError } from '../core/errors.js';
import type { Effect } from '../core/format/record.js';
import { keyString, valueBytes, valueString, type KeyString, type ValueString } from './keys.js';

/**
 * Pure computations of write operations. Each turns a request into effects (puts and deletes)
 * against a view of committed state plus pending intents, so what is logged is always the
 * effect, never the command (DESIGN §2: INCR is logged as the put of its result).
 */
export interface StateView {
  /** The value a new intent would see: latest pending effect, else committed; null if absent. */
  read(key: KeyString): ValueString | null;
}

export interface Computed<T> {
  effects: Effect[];
  result: T;
}

const int64Max = 2n ** 63n - 1n;
const int64Min = -(2n ** 63n);
const integerPattern = /^-?(0|[1-9][0-9]{0,18})$/;
const decoder = new TextDecoder();
const asciiOnly = /^[\x00-\x7f]*$/;
const encoder = new TextEncoder();

/** Parses a stored value as a signed 64-bit integer the way Redis does (or INVALID). */
export function parseInteger(value: ValueString | null): bigint {
  if (value === null) return 0n;
  // A ValueString has one char per byte; decoding its bytes as UTF-8 keeps an ASCII integer as
  // it is and turns any other byte into something the pattern rejects, exactly as before.
  const text = asciiOnly.test(value) ? value : decoder.decode(valueBytes(value));
  if (!integerPattern.test(text) || text === '-0') {
    throw new InvalidError('value is not an integer or out of range');
  }
  const parsed = BigInt(text);
  if (parsed > int64Max || parsed < int64Min) {
    throw new InvalidError('value is not an integer or out of range');
  }
  return parsed;
}

export function computeIncrement(view: StateView, key: Uint8Array, delta: bigint) {
  const current = parseInteger(view.read(keyString(key)));
  const next = current + delta;
  if (next > int64Max || next < int64Min) {
    throw new InvalidError('increment or decrement would overflow');
  }
  const value = encoder.encode(next.toString());
  const computed: Computed<{ value: bigint }> = {
    effects: [{ op: 'put', key, value }],
    result: { value: next },
  };
  return computed;
}

/**
 * Sets `key` to `next` (null: delete) only if its current value equals `expected` (null:
 * absent). A mismatch logs nothing and reports the current value. The values it reports are
 * fresh copies the caller may keep.
 */
export function computeCompareAndSet(
  view: StateView,
  key: Uint8Array,
  expected: Uint8Array | null,
  next: Uint8Array | null,
) {
  const current = view.read(keyString(key));
  const want = expected === null ? null : valueString(expected);
  if (current !== want) {
    const computed: Computed<{ ok: boolean; current: Uint8Array | null }> = {
      effects: [],
      result: { ok: false, current: current === null ? null : valueBytes(current) },
    };
    return computed;
  }
  const effect: Effect = next === null ? { op: 'delete', key } : { op: 'put', key, value: next };
  const computed: Computed<{ ok: boolean; current: Uint8Array | null }> = {
    effects: current === null && next === null ? [] : [effect],
    result: { ok: true, current: next === null ? null : Buffer.from(next) },
  };
  return computed;
}

/** A delete of an absent key changes nothing, so it logs nothing (as Redis does not). */
export function computeDelete(view: StateView, key: Uint8Array) {
  const existed = view.read(keyString(key)) !== null;
  const computed: Computed<{ deleted: boolean }> = {
    effects: existed ? [{ op: 'delete', key }] : [],
    result: { deleted: existed },
  };
  return computed;
}
