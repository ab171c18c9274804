import { SyncwalError } from '../core/errors.js';

/**
 * UNKNOWN: the write may or may not have taken effect (the node fenced itself before it
 * resolved). `status(requestId)` on the restarted node answers definitively.
 */
export class UnknownOutcomeError extends SyncwalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNKNOWN', message, options);
  }
}

/**
 * TRYAGAIN: a synchronous read that would have to wait (a primary that just took over has not
 * committed its first record yet, so its state may still lack acknowledged writes).
 */
export class TryAgainError extends SyncwalError {
  constructor(message: string) {
    super('TRYAGAIN', message);
  }
}

/** NOREPLICAS: the write will never become visible (its intent was aborted). */
export class NoReplicasError extends SyncwalError {
  constructor(message: string) {
    super('NOREPLICAS', message);
  }
}

/**
 * NOTPRIMARY: this node is a replica (or no longer the primary); nothing was logged. `primary`
 * names the node to send writes to, when known.
 */
export class NotPrimaryError extends SyncwalError {
  readonly primary: string | null;
  constructor(primary: string | null, message?: string) {
    super(
      'NOTPRIMARY',
      message ?? `this node is not the primary (primary: ${primary ?? 'unknown'})`,
    );
    this.primary = primary;
  }
}
