/**
 * Assertions detect programmer errors. A failed assertion means the code is wrong, not the
 * world, so an AssertionError is never caught and handled: the process must stop. Operating
 * errors (EIO, ENOSPC, a corrupt segment, a peer speaking garbage) are typed errors from
 * `errors.ts` instead.
 */
export class AssertionError extends Error {
  override get name(): string {
    return 'AssertionError';
  }
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** Marks a branch the type system proves unreachable (exhaustive switches). */
export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
