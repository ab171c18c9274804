import { assert } from '../../core/assert.js';
import type { CommandSpec } from '../context.js';

/**
 * Finds a command by the bytes of its name, case-insensitively, without making a string of
 * them (the dispatcher does this once per command, so it is on every command's path). Names
 * are ASCII: folding A-Z to a-z is all the case-insensitivity there is (a byte outside ASCII
 * never matches, as with the lower-cased string lookup this replaces).
 */

/** No command name is longer; a longer first argument is an unknown command. */
export const commandNameBytesMax = 32;

function fold(byte: number): number {
  return byte >= 0x41 && byte <= 0x5a ? byte + 0x20 : byte;
}

/** FNV-1a over the folded bytes. */
function foldedHash(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < bytes.length; index++) {
    hash = Math.imul(hash ^ fold(bytes[index]!), 0x01000193);
  }
  return hash >>> 0;
}

/** Does `bytes` spell the lower-case ASCII `name`, in any case? */
export function namedAs(bytes: Uint8Array, name: string): boolean {
  if (bytes.length !== name.length) return false;
  for (let index = 0; index < bytes.length; index++) {
    if (fold(bytes[index]!) !== name.charCodeAt(index)) return false;
  }
  return true;
}

export class CommandLookup {
  readonly #buckets = new Map<number, { name: string; spec: CommandSpec }[]>();
  /** The last command found: a pipeline usually repeats one command (a SET after a SET). */
  #last: { name: string; spec: CommandSpec } | null = null;

  /** `table` maps lower-case ASCII names to commands (commands/table.ts). */
  constructor(table: ReadonlyMap<string, CommandSpec>) {
    for (const [name, spec] of table) {
      assert(name.length <= commandNameBytesMax, 'command names are short');
      assert(/^[\x21-\x40\x5b-\x7e]+$/.test(name), 'command names are lower-case ASCII');
      const hash = foldedHash(Buffer.from(name, 'latin1'));
      const bucket = this.#buckets.get(hash);
      if (bucket === undefined) this.#buckets.set(hash, [{ name, spec }]);
      else bucket.push({ name, spec });
    }
  }

  /** The command named `bytes` (any case), or undefined. */
  find(bytes: Uint8Array): CommandSpec | undefined {
    const last = this.#last;
    if (last !== null && namedAs(bytes, last.name)) return last.spec;
    if (bytes.length === 0 || bytes.length > commandNameBytesMax) return undefined;
    const bucket = this.#buckets.get(foldedHash(bytes));
    if (bucket === undefined) return undefined;
    for (const entry of bucket) {
      if (!namedAs(bytes, entry.name)) continue;
      this.#last = entry;
      return entry.spec;
    }
    return undefined;
  }
}
