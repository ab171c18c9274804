/**
 * Redis-style glob patterns over bytes (SCAN MATCH, CONFIG GET, INFO sections): `*` any run,
 * `?` one byte, `[abc]`, `[^a-z]` / `[!a-z]` classes, `\x` a literal x. Matching is iterative
 * (one backtrack point for the last `*`), so a hostile pattern costs O(pattern × subject).
 */

const star = 0x2a;
const question = 0x3f;
const open = 0x5b;
const close = 0x5d;
const backslash = 0x5c;
const caret = 0x5e;
const bang = 0x21;
const dash = 0x2d;

/** Does the class starting at `pattern[start] === '['` match `byte`? Also where it ends. */
function matchClass(
  pattern: Uint8Array,
  start: number,
  byte: number,
): { ok: boolean; end: number } {
  let index = start + 1;
  const negate = pattern[index] === caret || pattern[index] === bang;
  if (negate) index++;
  let matched = false;
  while (index < pattern.length && pattern[index] !== close) {
    let low = pattern[index]!;
    if (low === backslash && index + 1 < pattern.length) low = pattern[++index]!;
    let high = low;
    if (pattern[index + 1] === dash && index + 2 < pattern.length && pattern[index + 2] !== close) {
      high = pattern[index + 2]!;
      if (high === backslash && index + 3 < pattern.length) high = pattern[++index + 2]!;
      index += 2;
    }
    if (low > high) [low, high] = [high, low];
    if (byte >= low && byte <= high) matched = true;
    index++;
  }
  // An unterminated class matches up to the end of the pattern, as in Redis.
  return { ok: matched !== negate, end: Math.min(index, pattern.length - 1) };
}

export function globMatch(pattern: Uint8Array, subject: Uint8Array): boolean {
  let p = 0;
  let s = 0;
  let starP = -1;
  let starS = 0;
  while (s < subject.length) {
    const token = pattern[p];
    if (token === star) {
      while (pattern[p] === star) p++;
      if (p === pattern.length) return true;
      starP = p;
      starS = s;
      continue;
    }
    let step = 1;
    let ok = false;
    if (token === question) ok = true;
    else if (token === open) {
      const result = matchClass(pattern, p, subject[s]!);
      ok = result.ok;
      step = result.end - p + 1;
    } else if (token === backslash && p + 1 < pattern.length) {
      ok = pattern[p + 1] === subject[s];
      step = 2;
    } else if (token !== undefined) ok = token === subject[s];
    if (ok) {
      p += step;
      s++;
      continue;
    }
    if (starP < 0) return false;
    p = starP;
    s = ++starS;
  }
  while (pattern[p] === star) p++;
  return p === pattern.length;
}

/** The bytes every match must start with (the pattern up to its first special character). */
export function literalPrefix(pattern: Uint8Array): Buffer {
  const bytes: number[] = [];
  for (let index = 0; index < pattern.length; index++) {
    const byte = pattern[index]!;
    if (byte === star || byte === question || byte === open) break;
    if (byte === backslash) {
      if (index + 1 >= pattern.length) break;
      bytes.push(pattern[++index]!);
      continue;
    }
    bytes.push(byte);
  }
  return Buffer.from(bytes);
}

export function globMatchText(pattern: string, subject: string): boolean {
  return globMatch(Buffer.from(pattern.toLowerCase()), Buffer.from(subject.toLowerCase()));
}
