import { RecordType } from '../core/format/frame.js';
import { encodeAbort } from '../core/format/record.js';
import type { SyncwalError } from '../core/errors.js';
import type { Log } from '../storage/log.js';
import { NoReplicasError, UnknownOutcomeError } from './errors.js';
import type { Pending } from './pending.js';
import type { RequestIds } from './request-ids.js';

interface AbortGroup {
  abortLsn: number;
  entries: Pending[];
  deadline: number;
  /** The writers already got UNKNOWN; their ids are still recorded once the ABORT is safe. */
  answered: boolean;
}

/**
 * Commit timeouts on a replicated primary (DESIGN §4): a write not committed within
 * `commitTimeoutMs` is aborted together with every pending write after it. The ABORT record is
 * logged and replicated; the writers get NOREPLICAS only once the ABORT is durable on a majority
 * that includes the primary (then no future primary can commit them), and UNKNOWN if that does
 * not happen within another timeout.
 */
export class WriteAborts {
  #groups: AbortGroup[] = [];
  /** Logging time of each pending intent, oldest first (LSN order). */
  #since: { lsn: number; at: number }[] = [];

  constructor(
    private readonly deps: {
      log: Log;
      ids: RequestIds;
      pendingIds: Map<string, Pending>;
      term: () => number;
      hold: (firstLsn: number, abortLsn: number) => void;
      majorityLsn: () => number;
      onAppend: (durable: Promise<number>) => void;
    },
  ) {}

  /** An intent was logged at `at`. */
  logged(lsn: number, at: number): void {
    this.#since.push({ lsn, at });
  }

  /** Forgets the times of intents the commit point passed. */
  committed(lsn: number): void {
    let count = 0;
    while (count < this.#since.length && (this.#since[count]?.lsn ?? Infinity) <= lsn) count++;
    if (count > 0) this.#since.splice(0, count);
  }

  /** True if the oldest pending intent was logged before `before`. */
  expired(before: number): boolean {
    const oldest = this.#since[0];
    return oldest !== undefined && oldest.at < before;
  }

  /** Aborts `entries` (every pending intent, oldest first) with one ABORT record. */
  abort(entries: Pending[], now: number, timeoutMs: number): void {
    this.#since = [];
    const first = entries[0];
    if (first === undefined) return;
    const payload = encodeAbort({ lsnFirst: first.lsn, lsnLast: this.deps.log.lastLsn });
    const durable = this.deps.log.append([
      { type: RecordType.Abort, term: this.deps.term(), payload },
    ]);
    const abortLsn = this.deps.log.lastLsn;
    this.deps.onAppend(durable);
    this.deps.hold(first.lsn, abortLsn);
    this.#groups.push({ abortLsn, entries, deadline: now + timeoutMs, answered: false });
  }

  /** Answers the writers whose ABORT is now safe (NOREPLICAS) or took too long (UNKNOWN). */
  resolve(now: number): void {
    if (this.#groups.length === 0) return;
    const majority = this.deps.majorityLsn();
    const open: AbortGroup[] = [];
    for (const group of this.#groups) {
      if (group.abortLsn <= majority) {
        this.#settle(group, true);
        continue;
      }
      if (now > group.deadline && !group.answered) this.#settle(group, false);
      open.push(group);
    }
    this.#groups = open;
  }

  #settle(group: AbortGroup, safe: boolean): void {
    const answered = group.answered;
    group.answered = true;
    for (const entry of group.entries) {
      const error: SyncwalError = safe
        ? new NoReplicasError(
            `not committed within the commit timeout; aborted at lsn ${group.abortLsn}`,
          )
        : new UnknownOutcomeError(
            `not committed in time and its ABORT (lsn ${group.abortLsn}) is not yet safe; ` +
              'status(requestId) answers once the shard resolves it',
          );
      if (entry.requestId !== null) {
        this.deps.pendingIds.delete(entry.requestId);
        if (safe) {
          this.deps.ids.record(entry.requestId, {
            lsn: entry.lsn,
            outcome: 'aborted',
            value: null,
          });
        }
      }
      if (!answered) entry.reject(error);
    }
  }

  /** Every writer still waiting on an ABORT gets `error` (the node fenced or closed). */
  failAll(error: SyncwalError): void {
    for (const group of this.#groups) {
      if (!group.answered) for (const entry of group.entries) entry.reject(error);
    }
    this.#groups = [];
    this.#since = [];
  }

  /**
   * True while `requestId` belongs to an aborted write whose ABORT is not safe yet: a retry
   * must not log a second intent, since the first could still commit if the primary lost the
   * ABORT in a crash (and then both would).
   */
  unresolved(requestId: string): boolean {
    return this.#groups.some((group) =>
      group.entries.some((entry) => entry.requestId === requestId),
    );
  }

  get waiting(): number {
    return this.#groups.reduce((sum, group) => sum + group.entries.length, 0);
  }
}
