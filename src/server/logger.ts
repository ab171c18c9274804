import type { LogFields, Logger } from '../ports/logger.js';

/**
 * The Logger port's adapter for `syncwal serve`: one line per event, to a sink (stdout).
 *
 *   text (default): `2025-01-02T03:04:05.678Z INFO  server.listening host=127.0.0.1 port=7001`
 *   json:           `{"time":"2025-...","level":"info","event":"server.listening","host":...}`
 *
 * A line is built whole and written with one call, so lines never interleave or break off
 * half-way. Values with spaces, quotes or `=` are JSON-quoted in the text format.
 */

export type LogFormat = 'text' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const levelOrder: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LoggerOptions {
  format: LogFormat;
  level: LogLevel;
  /** Receives one complete line, newline included. */
  write: (line: string) => void;
  /** Wall-clock milliseconds, for the timestamp. */
  wallMs: () => number;
  /** Fields added to every line (the node id). */
  base?: LogFields;
}

function textValue(value: string | number | boolean | null): string {
  const plain = String(value);
  return /^[^\s"=]+$/.test(plain) ? plain : JSON.stringify(plain);
}

export function formatLine(
  format: LogFormat,
  time: string,
  level: LogLevel,
  event: string,
  fields: LogFields,
): string {
  if (format === 'json') {
    const record: Record<string, unknown> = { time, level, event };
    for (const [key, value] of Object.entries(fields)) {
      if (value !== undefined && !(key in record)) record[key] = value;
    }
    return `${JSON.stringify(record)}\n`;
  }
  let line = `${time} ${level.toUpperCase().padEnd(5)} ${event}`;
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined) line += ` ${key}=${textValue(value)}`;
  }
  return `${line}\n`;
}

export function createLogger(options: LoggerOptions): Logger {
  const threshold = levelOrder[options.level];
  const base = options.base ?? {};
  const emit = (level: LogLevel, event: string, fields: LogFields = {}): void => {
    if (levelOrder[level] < threshold) return;
    const time = new Date(options.wallMs()).toISOString();
    options.write(formatLine(options.format, time, level, event, { ...base, ...fields }));
  };
  return {
    debug: (event, fields) => emit('debug', event, fields),
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
  };
}
