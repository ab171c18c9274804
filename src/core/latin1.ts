type Latin1Slice = (this: Uint8Array, start: number, end: number) => string;
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: Latin1Slice }).latin1Slice;

/**
 * `bytes[start, end)` as a latin1 string (one char per byte), the form keys and values take in
 * memory (engine/keys.ts). Uses Buffer's latin1Slice directly on the Uint8Array:
 * `Buffer.from(bytes.buffer, ...)` would make V8 move a small on-heap array off the heap on
 * every call (measured: a quarter of the CPU of a put).
 */
export function latin1Of(bytes: Uint8Array, start: number, end: number): string {
  if (latin1Slice !== undefined) return latin1Slice.call(bytes, start, end);
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}
