import { describe, expect, it } from 'vitest';
import { keyBytes, keyString, keyStringOf } from '../../src/engine/keys.js';

const encoder = new TextEncoder();

describe('engine key strings', () => {
  it('gives an ASCII string the same key string as its UTF-8 bytes', () => {
    for (const key of ['', 'user:1', 'a\u0000b', '\u007f~', 'k'.repeat(300)]) {
      expect(keyStringOf(key, 'key')).toEqual({
        name: keyString(encoder.encode(key)),
        bytes: encoder.encode(key).length,
      });
    }
  });

  it('encodes non-ASCII strings as UTF-8 and round-trips bytes exactly', () => {
    const key = 'clé-€';
    const bytes = encoder.encode(key);
    const { name, bytes: length } = keyStringOf(key, 'key');
    expect(length).toBe(bytes.length);
    expect([...keyBytes(name)]).toEqual([...bytes]);
    const binary = Uint8Array.of(0, 255, 128, 10);
    expect([...keyBytes(keyStringOf(binary, 'key').name)]).toEqual([0, 255, 128, 10]);
  });

  it('orders key strings like their bytes', () => {
    const keys = [Uint8Array.of(1), Uint8Array.of(0xff), Uint8Array.of(0x7f, 0), Uint8Array.of()];
    const sorted = keys.map((bytes) => keyString(bytes)).sort();
    expect(sorted.map((name) => [...keyBytes(name)])).toEqual([[], [1], [0x7f, 0], [0xff]]);
  });

  it('rejects other types with INVALID naming the field', () => {
    expect(() => keyStringOf(42, 'key')).toThrow(/key must be a string or a Uint8Array/);
  });
});
