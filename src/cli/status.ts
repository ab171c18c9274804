import { Command } from 'commander';
import { RespClient, RespErrorReply, replyText, type RespValue } from '../server/resp/client.js';
import type { Output } from './entry.js';

/**
 * `syncwal status`: asks one node (over RESP, its client port) for INFO replication and prints
 * the shard as that node sees it: itself, and on the primary one row per replica.
 */

export const statusExitCodes = { ok: 0, usage: 64, unavailable: 69, auth: 77 } as const;

export interface StatusOptions {
  host: string;
  port: number;
  password: string | null;
  tls: boolean;
  json: boolean;
}

export interface StatusRow {
  node: string;
  role: string;
  term: string;
  commitLsn: string;
  lastLsn: string;
  ackedLsn: string;
  lag: string;
  eligible: string;
  link: string;
}

/** `field:value` lines of an INFO reply. */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    if (line.length === 0 || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

function parseReplicaLine(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const pair of text.split(',')) {
    const equals = pair.indexOf('=');
    if (equals > 0) fields.set(pair.slice(0, equals), pair.slice(equals + 1));
  }
  return fields;
}

/** The table rows from INFO replication's fields. */
export function statusRows(info: Map<string, string>): StatusRow[] {
  const get = (field: string): string => info.get(field) ?? '-';
  const primary = get('syncwal_role') === 'primary';
  const rows: StatusRow[] = [
    {
      node: get('node_id'),
      role: get('syncwal_role'),
      term: get('term'),
      commitLsn: get('commit_lsn'),
      lastLsn: get('last_lsn'),
      ackedLsn: primary ? get('last_lsn') : '-',
      lag: primary ? '0' : '-',
      eligible: primary ? '-' : get('eligible') === '1' ? 'yes' : 'no',
      link: primary ? 'self' : get('master_link_status'),
    },
  ];
  for (let index = 0; info.has(`slave${index}`); index++) {
    const replica = parseReplicaLine(info.get(`slave${index}`)!);
    rows.push({
      node: replica.get('id') ?? `replica${index}`,
      role: 'replica',
      term: get('term'),
      commitLsn: '-',
      lastLsn: '-',
      ackedLsn: replica.get('offset') ?? '-',
      lag: replica.get('lag_lsn') ?? '-',
      eligible: replica.get('eligible') === '1' ? 'yes' : 'no',
      link: replica.get('state') ?? '-',
    });
  }
  return rows;
}

const headers: Record<keyof StatusRow, string> = {
  node: 'NODE',
  role: 'ROLE',
  term: 'TERM',
  commitLsn: 'COMMIT LSN',
  lastLsn: 'LAST LSN',
  ackedLsn: 'ACKED LSN',
  lag: 'LAG',
  eligible: 'ELIGIBLE',
  link: 'LINK',
};

export function formatTable(rows: readonly StatusRow[]): string[] {
  const columns = Object.keys(headers) as (keyof StatusRow)[];
  const widths = columns.map((column) =>
    Math.max(headers[column].length, ...rows.map((row) => row[column].length)),
  );
  const line = (cells: string[]): string =>
    cells
      .map((cell, index) => cell.padEnd(widths[index]!))
      .join('  ')
      .trimEnd();
  return [
    line(columns.map((column) => headers[column])),
    ...rows.map((row) => line(columns.map((column) => row[column]))),
  ];
}

function failure(value: RespValue): string | null {
  return value instanceof RespErrorReply ? value.message : null;
}

async function queryInfo(client: RespClient, options: StatusOptions): Promise<Map<string, string>> {
  if (options.password !== null) {
    const auth = failure(await client.call('AUTH', options.password));
    if (auth !== null)
      throw Object.assign(new Error(`AUTH failed: ${auth}`), { exit: statusExitCodes.auth });
  }
  const value = await client.call('INFO', 'replication');
  const error = failure(value);
  if (error !== null) {
    const exit = error.startsWith('NOAUTH') ? statusExitCodes.auth : statusExitCodes.unavailable;
    throw Object.assign(new Error(error), { exit });
  }
  return parseInfo(replyText(value) ?? '');
}

export async function runStatus(options: StatusOptions, output: Output): Promise<number> {
  const where = `${options.host}:${options.port}`;
  let client: RespClient;
  try {
    client = await RespClient.connect({ host: options.host, port: options.port, tls: options.tls });
  } catch (error: unknown) {
    output.err(`syncwal status: cannot connect to ${where}: ${(error as Error).message}`);
    return statusExitCodes.unavailable;
  }
  try {
    const info = await queryInfo(client, options);
    const rows = statusRows(info);
    if (options.json) {
      output.out(JSON.stringify({ primary: info.get('primary_id') ?? null, nodes: rows }));
      return statusExitCodes.ok;
    }
    for (const line of formatTable(rows)) output.out(line);
    const primary = info.get('primary_id');
    if (info.get('syncwal_role') !== 'primary' && primary !== undefined) {
      const host = info.get('master_host') ?? '';
      const port = info.get('master_port') ?? '';
      output.out(`primary: ${primary}${host === '' ? '' : ` at ${host}:${port}`}`);
    }
    return statusExitCodes.ok;
  } catch (error: unknown) {
    output.err(`syncwal status: ${where}: ${(error as Error).message}`);
    return (error as { exit?: number }).exit ?? statusExitCodes.unavailable;
  } finally {
    client.close();
  }
}

export function registerStatus(
  program: Command,
  output: Output,
  env: Readonly<Record<string, string | undefined>>,
  setCode: (code: number) => void,
): void {
  program
    .command('status')
    .description("print the shard's state as one node sees it (role, term, LSNs, lag)")
    .option('--host <host>', 'node address', '127.0.0.1')
    .option('--port <port>', 'node client port', '7001')
    .option('--password <password>', 'AUTH password [SYNCWAL_PASSWORD]')
    .option('--tls', 'connect with TLS (certificate not verified)')
    .option('--json', 'print JSON')
    .action(async (flags: Record<string, unknown>) => {
      const port = Number(flags['port']);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        output.err(`syncwal status: --port '${String(flags['port'])}': must be a port number`);
        setCode(statusExitCodes.usage);
        return;
      }
      const password = (flags['password'] as string | undefined) ?? env['SYNCWAL_PASSWORD'];
      const options: StatusOptions = {
        host: String(flags['host']),
        port,
        password: password === undefined || password === '' ? null : password,
        tls: flags['tls'] === true,
        json: flags['json'] === true,
      };
      setCode(await runStatus(options, output));
    });
}
