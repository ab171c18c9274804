/**
 * Output helpers shared by the `replication` and `server` suites: an aligned table of any
 * columns, the machine's load average, a "stays under" target line, and the report itself
 * (one JSON object on stdout with `--json`, notes on stderr; as in lib.ts's printReport).
 */
import { loadavg } from 'node:os';

export function formatNumber(value: number, fractionDigits: number): string {
  if (!Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: fractionDigits,
    maximumFractionDigits: fractionDigits,
  });
}

/** An aligned table: the first column left-aligned, the others right-aligned. */
export function formatColumns(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const pad = (cell: string, column: number): string =>
    column === 0 ? cell.padEnd(widths[0]!) : cell.padStart(widths[column]!);
  const line = (cells: readonly string[]): string => cells.map(pad).join('  ');
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** The 1, 5 and 15 minute load averages, e.g. "4.75 5.55 5.63". */
export function loadAverage(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');
}

/** "3node-quorum p99 at c=16: 3.2 ms (target < 5 ms: met)". */
export function formatUnder(label: string, valueMs: number, limitMs: number): string {
  const verdict = valueMs < limitMs ? 'met' : 'NOT met';
  return `${label}: ${formatNumber(valueMs, 2)} ms (target < ${limitMs} ms: ${verdict})`;
}

/** "0.41/0.93/0.30": the cores each process kept busy during a row. */
export function formatCores(values: readonly number[]): string {
  return values.map((value) => formatNumber(value, 2)).join('/');
}

/** CPU microseconds per operation, summed over processes, from cores busy and operations/s. */
export function cpuMicrosPerOperation(cores: readonly number[], operationsPerSec: number): number {
  const total = cores.reduce((sum, value) => sum + value, 0);
  return operationsPerSec > 0 ? (total / operationsPerSec) * 1e6 : Number.NaN;
}

export function printSuiteReport(
  report: { bench: string; results: readonly object[]; figures?: object },
  table: string,
  lines: readonly string[],
  options: { json: boolean },
): void {
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    for (const line of lines) process.stderr.write(`${line}\n`);
    return;
  }
  console.log(`\n${report.bench}\n`);
  console.log(table);
  if (lines.length > 0) console.log(`\n${lines.join('\n')}`);
}
