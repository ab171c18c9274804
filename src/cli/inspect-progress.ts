import type { Disk } from '../ports/disk.js';
import { listSegments } from '../storage/scan-log.js';

/**
 * Progress bars for wal-inspect's long scans: one line on stderr, redrawn in place with `\r`,
 * and only when stderr is a terminal (never in a pipe, a file or a test), so they never mix
 * with the output a script reads.
 *
 * A one-line renderer rather than a package such as cli-progress: the scans run synchronously
 * through a whole segment between two awaits, so a bar that redraws on its own timer (as
 * cli-progress does) could only draw between segments anyway, and its timer would have to be
 * stopped on every exit path or it keeps the process alive. This bar redraws when the shown
 * value changes (at most 1001 times per scan), needs no clock, and adds no dependency.
 */
export interface ProgressSink {
  /** Writes raw text to the terminal (no newline is added). */
  write(text: string): void;
  /** The terminal's width in columns, if known. */
  readonly columns: number | undefined;
}

/** stderr as a progress sink, or null when stderr is not a terminal. */
export function stderrProgressSink(): ProgressSink | null {
  const stderr = process.stderr;
  if (stderr.isTTY !== true) return null;
  return {
    write: (text) => {
      stderr.write(text);
    },
    get columns() {
      return stderr.columns;
    },
  };
}

const columnsDefault = 80;
const barWidthMin = 10;
const barWidthMax = 40;

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** One frame of the bar, e.g. `verify [#####-----]  50.0% 2.0 MiB/4.0 MiB`, cut to fit. */
export function renderProgress(
  label: string,
  done: number,
  total: number,
  columns: number,
): string {
  const permille = progressPermille(done, total);
  const percent = (permille / 10).toFixed(1).padStart(5);
  const right = ` ${percent}% ${formatBytes(done)}/${formatBytes(total)}`;
  const room = columns - 1 - label.length - 3 - right.length;
  const width = Math.max(barWidthMin, Math.min(barWidthMax, room));
  const filled = Math.round((width * permille) / 1000);
  const line = `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}]${right}`;
  // Never wrap: a wrapped line cannot be redrawn with `\r`.
  return line.slice(0, Math.max(1, columns - 1));
}

function progressPermille(done: number, total: number): number {
  if (total <= 0) return 1000;
  return Math.max(0, Math.min(1000, Math.floor((done * 1000) / total)));
}

export class ProgressBar {
  #shownPermille = -1;
  #drawn = false;

  constructor(
    readonly sink: ProgressSink,
    readonly label: string,
    readonly total: number,
  ) {}

  /** Shows `done` of `total`; draws only when the shown value changes. */
  update(done: number): void {
    const permille = progressPermille(done, this.total);
    if (permille === this.#shownPermille) return;
    this.#shownPermille = permille;
    const columns = this.sink.columns ?? columnsDefault;
    this.sink.write(`\r${renderProgress(this.label, done, this.total, columns)}`);
    this.#drawn = true;
  }

  /** Clears the line, so whatever is printed next starts on a clean line. */
  finish(): void {
    if (this.#drawn) this.sink.write('\r\u001b[K');
    this.#drawn = false;
    this.#shownPermille = -1;
  }
}

/** Reports how far a scan of one log has come, in bytes of its segment files. */
export interface ScanProgress {
  /** A frame ending at `endOffset` of `segment` was scanned. */
  frame(segment: string, endOffset: number): void;
  finish(): void;
}

/** A progress bar over the segment files of `walDir` (by bytes), or null without a sink. */
export async function scanProgress(
  sink: ProgressSink | null,
  disk: Disk,
  walDir: string,
  label: string,
): Promise<ScanProgress | null> {
  if (sink === null) return null;
  const { segments } = await listSegments(disk, walDir);
  const starts = new Map<string, number>();
  let total = 0;
  for (const segment of segments.sort((left, right) => left.firstLsn - right.firstLsn)) {
    starts.set(segment.name, total);
    total += (await disk.size(`${walDir}/${segment.name}`).catch(() => null)) ?? 0;
  }
  const bar = new ProgressBar(sink, label, total);
  bar.update(0);
  return {
    frame: (segment, endOffset) => bar.update((starts.get(segment) ?? 0) + endOffset),
    finish: () => bar.finish(),
  };
}
