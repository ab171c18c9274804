import { InvalidError } from '../core/errors.js';
import type { LogRecord } from './log.js';
import {
  segmentSizeBytesDefault,
  segmentSizeBytesMax,
  segmentSizeBytesMin,
  frameAlignmentBytes,
} from '../core/limits.js';

/** Options of `Log.open`. Validated in one place; a wrong option names its field. */
export interface LogOptions {
  /** The node directory. The log lives in `<dir>/wal`; `<dir>/LOCK` is flocked. */
  dir: string;
  /** Segment size in bytes (default 64 MiB). Existing segments keep their own size. */
  segmentSizeBytes?: number;
  /** LSN of the first record of a brand-new log (default 1). */
  firstLsn?: number;
  /** Take the directory lock (default true). */
  lock?: boolean;
  /** Keep the next segment preallocated in the background (default true). */
  preallocate?: boolean;
  /**
   * Called during `open` with each record recovery keeps, in LSN order from the first, as the
   * recovery scan verifies it: a caller that rebuilds its state from the whole log can do so
   * without reading it a second time. The payload is a view into a buffer recovery drops
   * afterwards (copy what you keep). If `open` rejects, discard what was delivered.
   */
  onRecoveredRecord?: (record: LogRecord) => void;
}

export interface LogOptionsResolved {
  dir: string;
  walDir: string;
  segmentSizeBytes: number;
  firstLsn: number;
  lock: boolean;
  preallocate: boolean;
  onRecoveredRecord: ((record: LogRecord) => void) | null;
}

function field(name: string, problem: string): never {
  throw new InvalidError(`option ${name}: ${problem}`);
}

export function resolveLogOptions(options: LogOptions): LogOptionsResolved {
  if (typeof options !== 'object' || options === null) field('options', 'must be an object');
  if (typeof options.dir !== 'string' || options.dir.length === 0) field('dir', 'must be a path');
  const segmentSizeBytes = options.segmentSizeBytes ?? segmentSizeBytesDefault;
  if (!Number.isSafeInteger(segmentSizeBytes)) field('segmentSizeBytes', 'must be an integer');
  if (segmentSizeBytes < segmentSizeBytesMin || segmentSizeBytes > segmentSizeBytesMax) {
    field('segmentSizeBytes', `must be in [${segmentSizeBytesMin}, ${segmentSizeBytesMax}]`);
  }
  if (segmentSizeBytes % 4096 !== 0 || segmentSizeBytes % frameAlignmentBytes !== 0) {
    field('segmentSizeBytes', 'must be a multiple of 4096');
  }
  const firstLsn = options.firstLsn ?? 1;
  if (!Number.isSafeInteger(firstLsn) || firstLsn < 1) field('firstLsn', 'must be an integer >= 1');
  const dir = options.dir.replace(/\/+$/, '') || '/';
  return {
    dir,
    walDir: `${dir}/wal`,
    segmentSizeBytes,
    firstLsn,
    lock: options.lock ?? true,
    preallocate: options.preallocate ?? true,
    onRecoveredRecord: options.onRecoveredRecord ?? null,
  };
}
