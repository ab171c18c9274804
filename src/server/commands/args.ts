/** Argument helpers shared by the command modules. Arguments are raw bytes, as sent. */

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;

export function text(arg: Buffer | undefined): string {
  return arg === undefined ? '' : arg.toString('utf8');
}

/** The argument as an upper-case keyword (`set` → `SET`), for option matching. */
export function keyword(arg: Buffer | undefined): string {
  if (arg === undefined || arg.length > 32) return '';
  return arg.toString('latin1').toUpperCase();
}

/** A signed 64-bit integer in canonical decimal form (as Redis's string2ll), or null. */
export function int64(arg: Buffer | undefined): bigint | null {
  if (arg === undefined || arg.length === 0 || arg.length > 20) return null;
  const value = arg.toString('latin1');
  if (!/^(0|-?[1-9]\d*)$/.test(value)) return null;
  const number = BigInt(value);
  return number < int64Min || number > int64Max ? null : number;
}

/** A non-negative integer that fits a JS number exactly, or null. */
export function count(arg: Buffer | undefined): number | null {
  const value = int64(arg);
  if (value === null || value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return Number(value);
}

export { int64Max, int64Min };
