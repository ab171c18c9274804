import type { Reply } from './resp/reply.js';
import { reply } from './resp/reply.js';

/**
 * How a node's typed error becomes a RESP error reply. The first word of a RESP error is its
 * prefix, which clients branch on (ioredis puts the whole line in `error.message`). Where
 * Redis has a spelling for the situation we use it; where it has none, our own stable code.
 *
 * | engine code | RESP prefix  | why                                                          |
 * | ----------- | ------------ | ------------------------------------------------------------ |
 * | INVALID     | `ERR`        | Redis's spelling for a bad argument                          |
 * | NOREPLICAS  | `NOREPLICAS` | Redis's spelling: the policy could not be met; never visible |
 * | NOTPRIMARY  | `READONLY`   | Redis's spelling for a write sent to a replica; + primary |
 * | UNKNOWN     | `UNKNOWN`    | ours: outcome not known yet; `STATUS <requestId>` resolves it |
 * | CLOSED      | `CLOSED`     | ours: the node is shutting down                              |
 * | IOERR       | `IOERR`      | ours: the node fenced itself after an I/O failure            |
 * | NOSPACE     | `NOSPACE`    | ours: disk full; nothing was logged; retry later             |
 * | CORRUPT     | `CORRUPT`    | ours: stored data failed verification                        |
 * | LOCKED      | `LOCKED`     | ours: the data directory is held by another process          |
 * | TRYAGAIN    | `TRYAGAIN`   | a primary that just took over is not serving reads yet       |
 * | (none)      | `ERR`        | a bug; logged with its stack                                 |
 */
export const errorPrefixes: Readonly<Record<string, string>> = {
  INVALID: 'ERR',
  NOREPLICAS: 'NOREPLICAS',
  NOTPRIMARY: 'READONLY',
  UNKNOWN: 'UNKNOWN',
  CLOSED: 'CLOSED',
  IOERR: 'IOERR',
  NOSPACE: 'NOSPACE',
  CORRUPT: 'CORRUPT',
  LOCKED: 'LOCKED',
  TRYAGAIN: 'TRYAGAIN',
};

function codeOf(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code in errorPrefixes ? code : null;
}

/** A syncwal error's message carries its code first (`INVALID: ...`); drop it. */
function detail(error: unknown, code: string): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message;
}

/**
 * The reply for an error a backend call threw, or null if it is not a typed node error (the
 * caller logs it and answers `ERR internal error`).
 */
export function errorReply(error: unknown, primaryHint: string | null = null): Reply | null {
  const code = codeOf(error);
  if (code === null) return null;
  const prefix = errorPrefixes[code]!;
  const text = detail(error, code);
  if (code === 'NOTPRIMARY') {
    const hint = primaryHint === null ? '' : ` The primary is ${primaryHint}.`;
    return reply.error(`READONLY You can't write against a read only replica.${hint} (${text})`);
  }
  return reply.error(`${prefix} ${text}`);
}

export const errors = {
  syntax: (): Reply => reply.error('ERR syntax error'),
  notInteger: (): Reply => reply.error('ERR value is not an integer or out of range'),
  wrongArguments: (name: string): Reply =>
    reply.error(`ERR wrong number of arguments for '${name}' command`),
  noAuth: (): Reply => reply.error('NOAUTH Authentication required.'),
  wrongPass: (): Reply =>
    reply.error('WRONGPASS invalid username-password pair or user is disabled.'),
  internal: (): Reply => reply.error('ERR internal error (logged by the server)'),
  unsupported: (what: string): Reply => reply.error(`ERR ${what} is not supported by syncwal`),
  singleNode: (what: string): Reply =>
    reply.error(`ERR ${what} is not supported on a single node (no replication)`),
};

/** `'a' 'b'` for the unknown-command error, as Redis prints it (bounded). */
export function unknownCommand(args: readonly Buffer[]): Reply {
  const name = printable(args[0] ?? Buffer.alloc(0));
  const rest = args
    .slice(1, 9)
    .map((arg) => `'${printable(arg)}'`)
    .join(' ');
  return reply.error(`ERR unknown command '${name}', with args beginning with: ${rest}`);
}

function printable(bytes: Buffer): string {
  const text = bytes.subarray(0, 128).toString('latin1');
  return text.replace(/[^\x20-\x7e]/g, '?');
}
