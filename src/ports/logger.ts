/**
 * Structured logging as the core and adapters see it: an event name plus fields, never a
 * pre-formatted string, so `syncwal serve --log-format json` can print one JSON object per line
 * and the text format stays readable. Adapters (the server) decide where lines go.
 */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

/** Discards everything (the default for embedded use and tests). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
