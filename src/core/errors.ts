/**
 * Typed errors with stable `code` strings. Callers branch on `code`, never on class names or
 * messages. Messages are for people and may change; codes never do.
 *
 * | code        | meaning                                                                    |
 * | ----------- | -------------------------------------------------------------------------- |
 * | INVALID     | the caller passed something malformed (bad option, oversized record, ...)  |
 * | CLOSED      | the log or node was closed                                                 |
 * | LOCKED      | another process holds the node directory's lock                            |
 * | IOERR       | an I/O call failed (EIO, fsync failure, ...); the log is fenced            |
 * | NOSPACE     | the disk is full; nothing acknowledged was lost, appends resume later      |
 * | CORRUPT     | stored data failed verification; the error names segment, offset and LSN   |
 * | UNKNOWN     | the outcome of an operation is not known (e.g. fenced before it resolved)  |
 * | NOREPLICAS  | the durability policy cannot be met; the write will never be visible      |
 * | NOTPRIMARY  | this node is not the primary; nothing was logged                           |
 * | TRYAGAIN    | the operation cannot be answered right now without waiting; nothing changed |
 */
export type ErrorCode =
  | 'INVALID'
  | 'CLOSED'
  | 'LOCKED'
  | 'IOERR'
  | 'NOSPACE'
  | 'CORRUPT'
  | 'UNKNOWN'
  | 'NOREPLICAS'
  | 'NOTPRIMARY'
  | 'TRYAGAIN';

const brand = Symbol.for('syncwal.error');

export class SyncwalError extends Error {
  readonly code: ErrorCode;
  readonly [brand] = true;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
  }

  override get name(): string {
    return 'SyncwalError';
  }

  /**
   * `instanceof SyncwalError` works across two loaded copies of the library (undici's branded
   * instanceof). Subclasses keep the ordinary prototype check, so `instanceof CorruptionError`
   * is true only for corruption errors.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== SyncwalError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && brand in value;
  }
}

export class InvalidError extends SyncwalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID', message, options);
  }
}

export class ClosedError extends SyncwalError {
  constructor(message = 'closed') {
    super('CLOSED', message);
  }
}

export class LockedError extends SyncwalError {
  readonly path: string;
  constructor(path: string, options?: { cause?: unknown }) {
    super('LOCKED', `${path} is locked by another process`, options);
    this.path = path;
  }
}

/** An I/O call failed. `cause` holds the errno error. After one of these the log is fenced. */
export class IoError extends SyncwalError {
  readonly syscall: string;
  constructor(syscall: string, message: string, options?: { cause?: unknown }) {
    super('IOERR', `${syscall}: ${message}`, options);
    this.syscall = syscall;
  }
}

export class NoSpaceError extends SyncwalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NOSPACE', message, options);
  }
}

/** Where stored data failed verification. `lsn` is the expected LSN at that place, if known. */
export interface CorruptionSite {
  segment: string;
  offset: number;
  lsn: number | null;
}

export class CorruptionError extends SyncwalError {
  readonly site: CorruptionSite;
  readonly reason: string;
  constructor(site: CorruptionSite, reason: string) {
    const lsn = site.lsn === null ? 'unknown' : String(site.lsn);
    super('CORRUPT', `${reason} (segment ${site.segment}, offset ${site.offset}, lsn ${lsn})`);
    this.site = site;
    this.reason = reason;
  }
}

export function isSyncwalError(value: unknown): value is SyncwalError {
  return value instanceof SyncwalError;
}

/** The errno code of a Node.js system error (`'EIO'`, `'ENOSPC'`, ...), or null. */
export function errnoCode(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : null;
}

/** Maps a failed disk call to a typed error: ENOSPC/EDQUOT become NOSPACE, the rest IOERR. */
export function diskError(syscall: string, error: unknown): SyncwalError {
  if (error instanceof SyncwalError) return error;
  const code = errnoCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new NoSpaceError(`${syscall}: no space left on device`, { cause: error });
  }
  return new IoError(syscall, detail, { cause: error });
}
