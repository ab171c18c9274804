import type { BackendKey, BackendWriteOptions, ServerBackend } from '../backend.js';
import type { CommandContext, CommandSpec } from '../context.js';
import { errors } from '../errors.js';
import { globMatch, literalPrefix } from '../glob.js';
import { reply, type Reply } from '../resp/reply.js';
import { count, int64, int64Min, keyword, text } from './args.js';

/**
 * The key-value commands: GET, SET, DEL/UNLINK, EXISTS, MGET, MSET, INCR/INCRBY/DECR/DECRBY,
 * TYPE, DBSIZE, SCAN. Every value is a string (there are no other types, so WRONGTYPE never
 * happens); keys never expire. Writes reply only once committed (durable per the policy).
 */

function writeOptions(context: CommandContext): BackendWriteOptions | undefined {
  return context.requestId === null ? undefined : { requestId: context.requestId };
}

function noteWrite(context: CommandContext, lsn: number): void {
  if (lsn > context.client.lastWriteLsn) context.client.lastWriteLsn = lsn;
}

/**
 * Reads go through `getSync` when the backend has it (a node's default read never waits), so
 * a pipeline of reads runs without a promise and a turn of the event loop per read.
 */
function readValues(
  backend: ServerBackend,
  keys: readonly BackendKey[],
): (Buffer | null)[] | Promise<(Buffer | null)[]> {
  if (backend.getSync !== undefined) {
    try {
      return keys.map((key) => backend.getSync!(key));
    } catch (error: unknown) {
      if (!mustWait(error)) throw error;
    }
  }
  return Promise.all(keys.map((key) => backend.get(key)));
}

/**
 * TRYAGAIN from `getSync`: a primary that just took over reads only once its first record
 * committed (decision 0004); the waiting `get` answers then.
 */
function mustWait(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'TRYAGAIN';
}

function found(context: CommandContext, value: Buffer | null): Reply {
  if (value === null) context.server.stats.keyspaceMisses++;
  else context.server.stats.keyspaceHits++;
  return reply.bulkOrNil(value);
}

function get(context: CommandContext, args: readonly Buffer[]): Reply | Promise<Reply> {
  const backend = context.server.backend;
  if (backend.getSync !== undefined) {
    try {
      return found(context, backend.getSync(args[1]!));
    } catch (error: unknown) {
      if (!mustWait(error)) throw error;
    }
  }
  return backend.get(args[1]!).then((value) => found(context, value));
}

const expiryOptions = new Set(['EX', 'PX', 'EXAT', 'PXAT', 'KEEPTTL']);

interface SetOptions {
  onlyIfAbsent: boolean;
  requestId: string | null;
}

/** SET's options after the value, or the reply refusing them. */
function setOptions(context: CommandContext, args: readonly Buffer[]): SetOptions | Reply {
  const options: SetOptions = { onlyIfAbsent: false, requestId: context.requestId };
  for (let index = 3; index < args.length; index++) {
    const option = keyword(args[index]);
    if (option === 'NX') options.onlyIfAbsent = true;
    else if (option === 'RID' && index + 1 < args.length && context.requestId === null) {
      options.requestId = text(args[++index]);
    } else if (option === 'XX' || option === 'GET') {
      return errors.unsupported(`SET ${option}`);
    } else if (expiryOptions.has(option)) {
      return errors.unsupported('key expiry (EX, PX, EXAT, PXAT, KEEPTTL)');
    } else {
      return errors.syntax();
    }
  }
  return options;
}

/**
 * `SET key value` without options or request id: a put, answered OK once committed. The
 * connection also sends a pipeline's plain SETs to the engine as one batch (connection.ts),
 * and falls back to this, one SET at a time, when the batch is refused as a whole.
 */
export function plainSet(context: CommandContext, key: Buffer, value: Buffer): Promise<Reply> {
  return context.server.backend.put(key, value).then((result) => {
    noteWrite(context, result.lsn);
    return reply.ok();
  });
}

/** Is this command a plain SET (see `plainSet`)? */
export function isPlainSet(
  spec: CommandSpec,
  args: readonly Buffer[],
  requestId: string | null,
): boolean {
  return spec.run === set && args.length === 3 && requestId === null;
}

function set(context: CommandContext, args: readonly Buffer[]): Reply | Promise<Reply> {
  if (args.length === 3 && context.requestId === null) {
    return plainSet(context, args[1]!, args[2]!);
  }
  return setWithOptions(context, args);
}

async function setWithOptions(context: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  const options = setOptions(context, args);
  if ('type' in options) return options;
  const backend = context.server.backend;
  const write = options.requestId === null ? undefined : { requestId: options.requestId };
  if (options.onlyIfAbsent) {
    const result = await backend.compareAndSet(args[1]!, null, args[2]!, write);
    if (!result.ok) return reply.nil();
    noteWrite(context, result.lsn);
    return reply.ok();
  }
  const result = await backend.put(args[1]!, args[2]!, write);
  noteWrite(context, result.lsn);
  return reply.ok();
}

/**
 * DEL deletes each key as its own atomic write, all started together (they usually share
 * one fsync), so the count is exact: a key that was absent logs nothing.
 */
async function del(context: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  if (context.requestId !== null && args.length > 2) {
    return reply.error('ERR a request id (RID) applies to a DEL of a single key');
  }
  const backend = context.server.backend;
  const options = writeOptions(context);
  const results = await Promise.all(args.slice(1).map((key) => backend.delete(key, options)));
  let deleted = 0;
  for (const result of results) {
    if (!result.deleted) continue;
    deleted++;
    noteWrite(context, result.lsn);
  }
  return reply.integer(deleted);
}

function exists(context: CommandContext, args: readonly Buffer[]): Reply | Promise<Reply> {
  const count = (values: (Buffer | null)[]): Reply =>
    reply.integer(values.filter((value) => value !== null).length);
  const values = readValues(context.server.backend, args.slice(1));
  return values instanceof Promise ? values.then(count) : count(values);
}

function mget(context: CommandContext, args: readonly Buffer[]): Reply | Promise<Reply> {
  const list = (values: (Buffer | null)[]): Reply =>
    reply.array(values.map((value) => reply.bulkOrNil(value)));
  const values = readValues(context.server.backend, args.slice(1));
  return values instanceof Promise ? values.then(list) : list(values);
}

/** MSET is atomic: one batch, one intent; every key is visible together or none is. */
async function mset(context: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  if ((args.length - 1) % 2 !== 0) return errors.wrongArguments('mset');
  const operations = [];
  for (let index = 1; index < args.length; index += 2) {
    operations.push({ op: 'put' as const, key: args[index]!, value: args[index + 1]! });
  }
  const result = await context.server.backend.batch(operations, writeOptions(context));
  noteWrite(context, result.lsn);
  return reply.ok();
}

async function increment(context: CommandContext, key: Buffer, delta: bigint): Promise<Reply> {
  const result = await context.server.backend.incrBy(key, delta, writeOptions(context));
  noteWrite(context, result.lsn);
  return reply.integer(result.value);
}

function incrBy(sign: 1n | -1n) {
  return (context: CommandContext, args: readonly Buffer[]): Reply | Promise<Reply> => {
    const delta = int64(args[2]);
    if (delta === null) return errors.notInteger();
    if (sign < 0n && delta === int64Min) return reply.error('ERR decrement would overflow');
    return increment(context, args[1]!, delta * sign);
  };
}

function type(context: CommandContext, args: readonly Buffer[]): Reply | Promise<Reply> {
  const kind = (values: (Buffer | null)[]): Reply =>
    reply.simple(values[0] === null ? 'none' : 'string');
  const values = readValues(context.server.backend, [args[1]!]);
  return values instanceof Promise ? values.then(kind) : kind(values);
}

function dbsize(context: CommandContext): Reply {
  return reply.integer(context.server.backend.info().keys);
}

interface ScanRequest {
  start: Buffer | null;
  pattern: Buffer | null;
  count: number;
  stringsOnly: boolean;
}

function scanRequest(context: CommandContext, args: readonly Buffer[]): ScanRequest | Reply {
  const cursor = text(args[1]);
  if (!/^\d+$/.test(cursor)) return reply.error('ERR invalid cursor');
  const start = cursor === '0' ? null : context.server.cursors.load(cursor);
  if (cursor !== '0' && start === null) return reply.error('ERR invalid cursor');
  const request: ScanRequest = { start, pattern: null, count: 10, stringsOnly: true };
  for (let index = 2; index < args.length; index += 2) {
    const option = keyword(args[index]);
    const value = args[index + 1];
    if (value === undefined) return errors.syntax();
    if (option === 'MATCH') request.pattern = value;
    else if (option === 'TYPE') request.stringsOnly = keyword(value) === 'STRING';
    else if (option === 'COUNT') {
      const size = count(value);
      if (size === null || size < 1) return errors.syntax();
      request.count = Math.min(size, context.server.limits.scanCountMax);
    } else return errors.syntax();
  }
  return request;
}

/**
 * SCAN walks the committed keys in order, one engine page per call. A cursor is a number
 * standing for the key to resume at, remembered by this server process (redis-cli parses
 * cursors as integers); a cursor from before a restart answers `ERR invalid cursor`. As in
 * Redis, a page filtered by MATCH may be empty while the cursor is not yet 0.
 */
async function scan(context: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  const request = scanRequest(context, args);
  if ('type' in request) return request;
  const prefix = request.pattern === null ? null : literalPrefix(request.pattern);
  const page = await context.server.backend.scan({
    ...(prefix !== null && prefix.length > 0 ? { prefix } : {}),
    ...(request.start !== null ? { start: request.start } : {}),
    limit: request.count,
  });
  const pattern = request.pattern;
  const keys = page.entries
    .map((entry) => entry.key)
    .filter((key) => request.stringsOnly && (pattern === null || globMatch(pattern, key)));
  const cursor = page.next === null ? '0' : context.server.cursors.save(page.next);
  return reply.array([reply.bulk(cursor), reply.array(keys.map((key) => reply.bulk(key)))]);
}

const write = ['write', 'denyoom'] as const;
const readonly = ['readonly', 'fast'] as const;
const oneKey = [1, 1, 1] as const;

export const keyCommands: readonly CommandSpec[] = [
  {
    name: 'get',
    arity: 2,
    order: 'read',
    flags: readonly,
    keys: oneKey,
    summary: 'value of a key',
    run: get,
  },
  {
    name: 'set',
    arity: -3,
    order: 'write',
    requestId: true,
    flags: write,
    keys: oneKey,
    summary: 'SET key value [NX] [RID request-id]',
    run: set,
  },
  {
    name: 'del',
    arity: -2,
    order: 'write',
    requestId: true,
    flags: ['write'],
    keys: [1, -1, 1],
    summary: 'delete keys',
    run: del,
  },
  {
    name: 'unlink',
    arity: -2,
    order: 'write',
    requestId: true,
    flags: ['write'],
    keys: [1, -1, 1],
    summary: 'same as DEL',
    run: del,
  },
  {
    name: 'exists',
    arity: -2,
    order: 'read',
    flags: readonly,
    keys: [1, -1, 1],
    summary: 'count existing keys',
    run: exists,
  },
  {
    name: 'mget',
    arity: -2,
    order: 'read',
    flags: readonly,
    keys: [1, -1, 1],
    summary: 'values of keys',
    run: mget,
  },
  {
    name: 'mset',
    arity: -3,
    order: 'write',
    requestId: true,
    flags: write,
    keys: [1, -1, 2],
    summary: 'set keys atomically',
    run: mset,
  },
  {
    name: 'incr',
    arity: 2,
    order: 'write',
    requestId: true,
    flags: write,
    keys: oneKey,
    summary: 'add 1',
    run: (context, args) => increment(context, args[1]!, 1n),
  },
  {
    name: 'decr',
    arity: 2,
    order: 'write',
    requestId: true,
    flags: write,
    keys: oneKey,
    summary: 'subtract 1',
    run: (context, args) => increment(context, args[1]!, -1n),
  },
  {
    name: 'incrby',
    arity: 3,
    order: 'write',
    requestId: true,
    flags: write,
    keys: oneKey,
    summary: 'add n',
    run: incrBy(1n),
  },
  {
    name: 'decrby',
    arity: 3,
    order: 'write',
    requestId: true,
    flags: write,
    keys: oneKey,
    summary: 'subtract n',
    run: incrBy(-1n),
  },
  {
    name: 'type',
    arity: 2,
    order: 'read',
    flags: readonly,
    keys: oneKey,
    summary: 'string or none',
    run: type,
  },
  {
    name: 'dbsize',
    arity: 1,
    order: 'read',
    flags: readonly,
    keys: [0, 0, 0],
    summary: 'number of keys',
    run: dbsize,
  },
  {
    name: 'scan',
    arity: -2,
    order: 'read',
    flags: ['readonly'],
    keys: [0, 0, 0],
    summary: 'SCAN cursor [MATCH pattern] [COUNT n]',
    run: scan,
  },
];
